//! Files the user names: datasets and traces, `tokenizer.json`, chat
//! templates, a recorded GPU scrape (`monitoring.gpu_from_file`). Every one
//! is read here, so that none can take the process down:
//!
//! - only a regular file is read: a device (`/dev/zero`), a FIFO, a socket
//!   or a directory is refused by name, before it is opened for reading (a
//!   FIFO is never waited on);
//! - each kind of file has a size cap, checked from the file's metadata
//!   before reading and enforced while reading (`Read::take`), so a file
//!   that grows while it is read is caught as well. `AIBENCH_MAX_INPUT_MB`
//!   sets every cap, in MiB (fractions allowed);
//! - a SIGINT or SIGTERM (see [`crate::interrupt`]) stops a read at its next
//!   call, with an error that names the file; loops over lines check
//!   [`check_interrupt`] as well.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The environment variable that sets every cap, in MiB.
pub const MAX_INPUT_ENV: &str = "AIBENCH_MAX_INPUT_MB";

const MIB: u64 = 1 << 20;

/// What a file is for, which decides its size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A dataset of any format, or a trace: 4 GiB.
    Dataset,
    /// `tokenizer.json`, `tokenizer_config.json`: 512 MiB.
    Tokenizer,
    /// A chat template file (`chat_template.jinja`): 1 MiB.
    Template,
    /// A recorded GPU scrape (`monitoring.gpu_from_file`): 16 MiB.
    GpuScrape,
    /// A settings file (a simulator profile): 16 MiB.
    Settings,
}

impl Kind {
    /// The cap without `AIBENCH_MAX_INPUT_MB`, in bytes.
    pub fn default_limit(self) -> u64 {
        match self {
            Kind::Dataset => 4096 * MIB,
            Kind::Tokenizer => 512 * MIB,
            Kind::Template => MIB,
            Kind::GpuScrape => 16 * MIB,
            Kind::Settings => 16 * MIB,
        }
    }

    /// The kind of file, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Kind::Dataset => "datasets",
            Kind::Tokenizer => "tokenizer files",
            Kind::Template => "chat templates",
            Kind::GpuScrape => "recorded GPU scrapes",
            Kind::Settings => "settings files",
        }
    }

    /// The cap in bytes: `AIBENCH_MAX_INPUT_MB` when it is set, else the default.
    pub fn limit(self) -> Result<u64, String> {
        match std::env::var(MAX_INPUT_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                parse_mb(&v).ok_or_else(|| format!("{MAX_INPUT_ENV}: expected a positive number of MiB, got \"{v}\""))
            }
            _ => Ok(self.default_limit()),
        }
    }
}

/// MiB (a positive number, fractions allowed) as bytes.
fn parse_mb(v: &str) -> Option<u64> {
    let mb: f64 = v.trim().parse().ok()?;
    if !(mb.is_finite() && mb > 0.0) {
        return None;
    }
    Some(((mb * MIB as f64) as u64).max(1))
}

/// A size for messages: whole MiB as such, else with two decimals.
fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{:.2} MiB", bytes as f64 / MIB as f64)
    }
}

/// How to raise a cap, for messages; `need` is the size to allow, if known.
fn raise_hint(kind: Kind, limit: u64, need: Option<u64>) -> String {
    let suggest = need.unwrap_or(0).max(limit.saturating_mul(2)).div_ceil(MIB).max(1);
    format!(
        "the limit for {} is {}; set {MAX_INPUT_ENV} (MiB, e.g. {MAX_INPUT_ENV}={suggest}) to raise it",
        kind.what(),
        mib(limit)
    )
}

/// What a file that is not a regular file is, for messages.
fn type_name(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

fn check_meta(shown: &str, meta: &std::fs::Metadata, kind: Kind, limit: u64) -> Result<(), String> {
    let ft = meta.file_type();
    if !ft.is_file() {
        return Err(format!("'{shown}' is {}; expected a regular file", type_name(&ft)));
    }
    if meta.len() > limit {
        return Err(format!(
            "'{shown}' is {} ({} bytes), over the size limit: {}",
            mib(meta.len()),
            meta.len(),
            raise_hint(kind, limit, Some(meta.len()))
        ));
    }
    Ok(())
}

/// The error when a stop was asked for (SIGINT or SIGTERM) while `path`
/// is being loaded: `interrupted (SIGINT) while loading 'FILE'`.
pub fn check_interrupt(path: &str) -> Result<(), String> {
    match interrupted() {
        Some(sig) => Err(format!("interrupted ({sig}) while loading '{path}'")),
        None => Ok(()),
    }
}

/// The name of the stop request waiting, if any.
fn interrupted() -> Option<&'static str> {
    if test_stop() {
        return Some("SIGINT");
    }
    crate::interrupt::pending().map(|s| s.name())
}

#[cfg(test)]
thread_local! {
    static TEST_STOP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn test_stop() -> bool {
    TEST_STOP.with(|c| c.get())
}

#[cfg(not(test))]
fn test_stop() -> bool {
    false
}

/// Tests: acts as if a SIGINT were pending, on this thread only, until dropped.
#[cfg(test)]
pub(crate) struct TestInterrupt(());

#[cfg(test)]
impl TestInterrupt {
    pub(crate) fn start() -> TestInterrupt {
        TEST_STOP.with(|c| c.set(true));
        TestInterrupt(())
    }
}

#[cfg(test)]
impl Drop for TestInterrupt {
    fn drop(&mut self) {
        TEST_STOP.with(|c| c.set(false));
    }
}

/// A regular file opened for reading, at most its cap: reading past the cap
/// (a file that grew) or after a stop request is an error naming the file.
pub struct Bounded {
    inner: io::Take<File>,
    shown: String,
    kind: Kind,
    limit: u64,
    read: u64,
    size: u64,
}

impl Bounded {
    /// The file's size when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The path, as messages show it.
    pub fn path(&self) -> &str {
        &self.shown
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(sig) = interrupted() {
            // Not ErrorKind::Interrupted: readers retry that one.
            return Err(io::Error::other(format!("interrupted ({sig}) while loading '{}'", self.shown)));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot read '{}': {e}", self.shown))),
        };
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(format!(
                "'{}' grew past the size limit while it was read: {}",
                self.shown,
                raise_hint(self.kind, self.limit, None)
            )));
        }
        Ok(n)
    }
}

/// Opens a user's file of `kind` for streaming: refused unless it is a
/// regular file within its cap. Errors name the path.
pub fn open(path: impl AsRef<Path>, kind: Kind) -> Result<Bounded, String> {
    let limit = kind.limit()?;
    open_with_limit(path, kind, limit)
}

/// [`open`] with an explicit cap, in bytes.
pub fn open_with_limit(path: impl AsRef<Path>, kind: Kind, limit: u64) -> Result<Bounded, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path.as_ref();
    let shown = path.display().to_string();
    // Before opening: opening a FIFO would wait for a writer, a device may
    // act on being opened.
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read '{shown}': {e}"))?;
    check_meta(&shown, &meta, kind, limit)?;
    // Non-blocking, and checked again on the file itself, in case the path
    // changed in between (no effect on reading a regular file).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read '{shown}': {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read '{shown}': {e}"))?;
    check_meta(&shown, &meta, kind, limit)?;
    Ok(Bounded { inner: file.take(limit.saturating_add(1)), shown, kind, limit, read: 0, size: meta.len() })
}

/// A user's whole file of `kind` (see [`open`]).
pub fn read_to_vec(path: impl AsRef<Path>, kind: Kind) -> Result<Vec<u8>, String> {
    read_all(open(path, kind)?)
}

/// A user's whole file of `kind`, which must be UTF-8 text (see [`open`]).
pub fn read_to_string(path: impl AsRef<Path>, kind: Kind) -> Result<String, String> {
    let r = open(path, kind)?;
    let shown = r.shown.clone();
    text(&shown, read_all(r)?)
}

fn read_all(mut r: Bounded) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(r.size.min(r.limit) as usize);
    r.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn text(shown: &str, bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| format!("'{shown}' is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
}

/// The UTF-8 byte-order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `text` without a leading UTF-8 byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mkfifo(p: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_by_name() {
        let e = read_to_vec("/dev/zero", Kind::Dataset).unwrap_err();
        assert_eq!(e, "'/dev/zero' is a character device; expected a regular file");
        let d = tempfile::tempdir().unwrap();
        let e = read_to_string(d.path(), Kind::Template).unwrap_err();
        assert!(e.ends_with("is a directory; expected a regular file"), "{e}");
        let fifo = d.path().join("pipe");
        mkfifo(&fifo);
        let started = std::time::Instant::now();
        let e = open(&fifo, Kind::Dataset).err().expect("a FIFO is refused");
        assert!(e.contains("pipe' is a FIFO (named pipe); expected a regular file"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "never waits for a writer");
        let e = read_to_vec(d.path().join("missing"), Kind::Dataset).unwrap_err();
        assert!(e.starts_with("cannot read '") && e.contains("missing'"), "{e}");
    }

    #[test]
    fn a_huge_sparse_file_is_refused_from_its_size() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("huge.jsonl");
        File::create(&p).unwrap().set_len(5 << 30).unwrap();
        let e = open(&p, Kind::Dataset).err().expect("over 4 GiB");
        assert!(e.contains("huge.jsonl' is 5120 MiB"), "{e}");
        assert!(e.contains("the limit for datasets is 4096 MiB; set AIBENCH_MAX_INPUT_MB"), "{e}");
        let e = open_with_limit(&p, Kind::Template, MIB).err().unwrap();
        assert!(e.contains("the limit for chat templates is 1 MiB"), "{e}");
    }

    #[test]
    fn a_file_that_grows_while_read_is_caught() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("grows.txt");
        std::fs::write(&p, b"12345").unwrap();
        let mut r = open_with_limit(&p, Kind::GpuScrape, 10).unwrap();
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(&[b'x'; 100]).unwrap();
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err().to_string();
        assert!(e.contains("grows.txt' grew past the size limit"), "{e}");
        assert!(out.len() <= 11, "{}", out.len());
        // Within the cap it reads as a file.
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read_to_string(&p, Kind::GpuScrape).unwrap(), "hello");
    }

    #[test]
    fn a_stop_request_ends_a_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big.jsonl");
        std::fs::write(&p, "\"x\"\n".repeat(10_000)).unwrap();
        let _stop = TestInterrupt::start();
        let e = read_to_vec(&p, Kind::Dataset).unwrap_err();
        assert!(e.starts_with("interrupted (SIGINT) while loading '") && e.ends_with("big.jsonl'"), "{e}");
        assert!(check_interrupt("f").unwrap_err().contains("while loading 'f'"));
    }

    #[test]
    fn the_cap_variable_is_mib() {
        assert_eq!(parse_mb("1"), Some(MIB));
        assert_eq!(parse_mb(" 0.5 "), Some(MIB / 2));
        assert_eq!(parse_mb("0"), None);
        assert_eq!(parse_mb("-3"), None);
        assert_eq!(parse_mb("lots"), None);
        assert_eq!(parse_mb("inf"), None);
        assert_eq!(mib(3 * MIB), "3 MiB");
        assert_eq!(mib(MIB / 2), "0.50 MiB");
        assert_eq!(strip_bom("\u{feff}[1]"), "[1]");
        assert_eq!(Kind::Dataset.default_limit(), 4 << 30);
    }
}
