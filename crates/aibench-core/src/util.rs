//! Small helpers shared by engines: suggestions, atomic file writes, paths.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The closest candidate to `input`, if one is close enough to be a typo.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(input, c);
        if score > 0.8 && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

/// Up to `n` candidates ranked by similarity (for "unknown recipe" messages).
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>, n: usize) -> Vec<&'a str> {
    let mut scored: Vec<(&str, f64)> = candidates.into_iter().map(|c| (c, strsim::jaro_winkler(input, c))).collect();
    scored.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    scored.into_iter().filter(|(_, s)| *s > 0.6).take(n).map(|(c, _)| c).collect()
}

/// Where an output path really leads, for a replace-by-rename: symlinks are
/// followed (to at most 40 hops, relative targets against the link's
/// folder), the same rule for every output aibench writes; a dangling link
/// leads to the file it names. As the kernel's `fs.protected_symlinks`
/// does, a link in a sticky world-writable folder (`/tmp`) is followed only
/// when this user or the folder's owner owns it: a link planted there by
/// someone else cannot aim a result at another file.
pub fn resolve_output(path: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let parent = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                if let Ok(dm) = std::fs::metadata(&parent) {
                    // SAFETY: geteuid has no preconditions.
                    let me = unsafe { libc::geteuid() };
                    let shared = dm.mode() & 0o1002 == 0o1002;
                    if shared && m.uid() != me && m.uid() != dm.uid() {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::PermissionDenied,
                            format!(
                                "{} is another user's symlink in a shared folder; not followed (as the kernel's protected_symlinks)",
                                p.display()
                            ),
                        ));
                    }
                }
                let to = std::fs::read_link(&p)?;
                p = if to.is_absolute() { to } else { parent.join(to) };
            }
            _ => return Ok(p),
        }
    }
    Err(std::io::Error::other(format!("{}: too many levels of symbolic links", path.display())))
}

/// A path that names one of this process's open files (`/dev/stdout`,
/// `/dev/fd/3`, `/proc/self/fd/1`, a shell's `>(cmd)`), after links: written
/// through the descriptor the shell set up, never replaced.
fn descriptor_path(path: &Path) -> bool {
    let mut p = path.to_path_buf();
    for _ in 0..8 {
        let s = p.to_string_lossy();
        if s.starts_with("/dev/fd/") || s.starts_with("/proc/self/fd/") || s == "/dev/stdout" || s == "/dev/stderr" {
            return true;
        }
        match std::fs::read_link(&p) {
            Ok(to) => {
                p = if to.is_absolute() { to } else { p.parent().unwrap_or(Path::new(".")).join(to) };
            }
            Err(_) => return false,
        }
    }
    false
}

/// What an existing output path is, when it is not a regular file that can
/// be replaced: `Some(true)` a character device or FIFO (written straight
/// into), `Some(false)` a folder, block device or socket (refused).
fn special_kind(m: &std::fs::Metadata) -> Option<(bool, &'static str)> {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_file() {
        None
    } else if t.is_char_device() {
        Some((true, "character device"))
    } else if t.is_fifo() {
        Some((true, "FIFO"))
    } else if t.is_dir() {
        Some((false, "folder"))
    } else if t.is_block_device() {
        Some((false, "block device"))
    } else if t.is_socket() {
        Some((false, "socket"))
    } else {
        Some((false, "special file"))
    }
}

/// How an output path is written, by [`atomic_write`]'s rules.
enum Target {
    /// `-`: standard output.
    Stdout,
    /// An open file of this process, a device or a FIFO: opened and written into.
    Into(PathBuf),
    /// A regular or new file: a temporary file beside it, then rename.
    Replace(PathBuf),
}

fn output_target(path: &Path) -> std::io::Result<Target> {
    use std::io::{Error, ErrorKind};
    if path.as_os_str() == "-" {
        return Ok(Target::Stdout);
    }
    if path.as_os_str().is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "an empty path; expected a file name or '-'"));
    }
    if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
        return Err(Error::new(ErrorKind::InvalidInput, "ends with '/'; expected a file, not a folder"));
    }
    // The kernel follows the links: what the path leads to decides.
    if let Ok(m) = std::fs::metadata(path)
        && let Some((writable, what)) = special_kind(&m)
    {
        if !writable {
            let kind = if m.is_dir() { ErrorKind::IsADirectory } else { ErrorKind::InvalidInput };
            return Err(Error::new(
                kind,
                format!("is a {what}; expected a regular file, a character device, a FIFO or '-'"),
            ));
        }
        return Ok(Target::Into(path.to_path_buf()));
    }
    if descriptor_path(path) {
        return Ok(Target::Into(path.to_path_buf()));
    }
    Ok(Target::Replace(resolve_output(path)?))
}

/// Opens a device, FIFO or open-file path for writing: a FIFO without a
/// reader is an error at once, not a wait; a regular file behind a
/// descriptor path is appended to (the shell's `>` truncated it already,
/// and `>>` keeps what was there).
pub fn open_into(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new().append(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENXIO) {
            std::io::Error::other("a FIFO with no reader (start the reader first)")
        } else {
            e
        }
    })?;
    // Back to blocking writes: a full pipe waits for its reader.
    // SAFETY: fcntl on a descriptor this function owns.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    Ok(f)
}

/// Standard output as a file of its own (a duplicate of descriptor 1), for
/// writers that own their file (the per-request log given as `-`).
pub fn stdout_file() -> std::io::Result<std::fs::File> {
    use std::os::unix::io::FromRawFd;
    // SAFETY: dup returns a new descriptor that the File then owns.
    let fd = unsafe { libc::dup(1) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Opens an output that is streamed (the per-request log) by the rules of
/// [`atomic_write`]: `-` is standard output, devices, FIFOs and open-file
/// paths are written into, a regular file is created or truncated (links
/// followed, as for every output).
pub fn open_stream(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    match output_target(path)? {
        Target::Stdout => stdout_file(),
        Target::Into(p) => open_into(&p),
        Target::Replace(p) => std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(p),
    }
}

/// Writes an output file. The rules, the same for every output (results,
/// reports, exports, the per-request log, `fs.write`):
/// - `-` is standard output;
/// - a symlink is followed ([`resolve_output`]);
/// - an existing character device or FIFO (`/dev/null`, a pipe) and a path
///   to one of this process's open files (`/dev/stdout`, `/dev/fd/N`) are
///   written into, never replaced; a FIFO with no reader is an error;
/// - a folder, block device or socket is refused;
/// - a regular (or new) file is written atomically: a temporary file in
///   the same folder, fsync, rename. Readers see the old content or the
///   new one, never a torn write. Without `mode`, the file gets
///   [`file_mode`] for its place.
pub fn atomic_write(path: &Path, data: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let path = match output_target(path)? {
        Target::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(data)?;
            return out.flush();
        }
        Target::Into(p) => {
            let mut f = open_into(&p)?;
            f.write_all(data)?;
            return f.flush();
        }
        Target::Replace(p) => p,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".aibench-tmp-").tempfile_in(&dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    use std::os::unix::fs::PermissionsExt;
    let m = mode.unwrap_or_else(|| file_mode(&path));
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(m))?;
    // The target may have become something else since it was looked at:
    // never rename over anything but a regular file.
    if let Ok(meta) = std::fs::symlink_metadata(&path)
        && !meta.file_type().is_file()
    {
        return Err(std::io::Error::other("changed into a non-regular file while being written; not replaced"));
    }
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(())
}

/// The names that become part of paths (recipe and service names, ids):
/// letters, digits, `.`, `_` and `-`, not starting with `.`, at most
/// [`NAME_MAX`] characters. The error says what was expected.
pub fn check_name(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("expected a name, got an empty string".into());
    }
    if v.len() > NAME_MAX {
        return Err(format!("expected at most {NAME_MAX} characters, got {} in \"{}\"", v.len(), v.escape_default()));
    }
    if v.starts_with('.') {
        return Err(format!("a name cannot start with '.', got \"{}\"", v.escape_default()));
    }
    if let Some(c) = v.chars().find(|c| !name_char(*c)) {
        return Err(format!(
            "invalid character {c:?} in \"{}\" (allowed: letters, digits, '.', '_' and '-')",
            v.escape_default()
        ));
    }
    Ok(())
}

pub const NAME_MAX: usize = 64;

pub fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// The process's umask (from /proc, which reads it without changing it).
pub fn umask() -> u32 {
    static MASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok()))
            })
            .unwrap_or(0o022)
    })
}

/// The mode for a new file: 0600 under `$AIBENCH_HOME` (job logs can hold
/// tokens from the environment); elsewhere (results, request logs) what the
/// umask allows, but never writable by the group or others.
pub fn file_mode(path: &Path) -> u32 {
    if under_home(path) { 0o600 } else { 0o666 & !umask() & !0o022 }
}

/// `p` made absolute against the working folder, with `.` and `..`
/// resolved lexically (no symlinks followed; the path may not exist yet).
pub fn absolute(p: &Path) -> PathBuf {
    let p = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
    // Lexically: `a/../b` is `b` (the folders may not exist yet).
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// True when `path` is `$AIBENCH_HOME` or inside it.
pub fn under_home(path: &Path) -> bool {
    absolute(path).starts_with(absolute(&aibench_home()))
}

/// Warns once per process when `$AIBENCH_HOME` is open to the group or
/// others: aibench keeps what it writes there private, but cannot vouch
/// for the rest.
fn check_home_mode(home: &Path) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(home)
        && m.permissions().mode() & 0o077 != 0
    {
        WARNED.call_once(|| {
            eprintln!(
                "aibench: warning: {} is accessible to other users (mode {:04o}); what aibench writes there is \
                 private (0700 folders, 0600 files), and `chmod 700 {}` protects the rest",
                home.display(),
                m.permissions().mode() & 0o7777,
                home.display()
            )
        });
    }
}

/// Creates a folder and its parents. Under `$AIBENCH_HOME` every folder
/// from the home down is private (0700: created so, or narrowed when an
/// older aibench left it wider); elsewhere the umask decides.
pub fn create_dirs(path: &Path) -> std::io::Result<()> {
    create_dirs_in(&aibench_home(), path)
}

/// [`create_dirs`] for an explicit aibench home.
pub fn create_dirs_in(home: &Path, path: &Path) -> std::io::Result<()> {
    let home = absolute(home);
    if !absolute(path).starts_with(&home) {
        return std::fs::create_dir_all(path);
    }
    if !home.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&home)?;
    } else {
        check_home_mode(&home);
    }
    let mut at = home.clone();
    for c in absolute(path).strip_prefix(&home).unwrap_or(Path::new("")).components() {
        at.push(c);
        private_dir(&at)?;
    }
    Ok(())
}

/// `$AIBENCH_HOME`, default `~/.aibenchmark` (the MeluXina report's location).
pub fn aibench_home() -> PathBuf {
    if let Some(h) = std::env::var_os("AIBENCH_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".aibenchmark")
}

/// Creates a directory (and parents) readable only by the owner; narrows
/// an existing one to 0700.
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    let meta = std::fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The free space, in bytes, that an output's file system must have before
/// a run: a result with its histograms and series is a few MiB at most.
pub const MIN_FREE_BYTES: u64 = 16 << 20;

/// Checks before a run that `path` can be written at its end, by the rules
/// of [`atomic_write`]: `-` always can; a character device, FIFO or
/// open-file path must be writable (it is not opened: a FIFO would wait for
/// a reader); a folder, block device or socket is refused; a regular or new
/// file needs its folder (created if need be) writable, since it is
/// replaced through a temporary file there, with [`MIN_FREE_BYTES`] free.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    let path = match output_target(path)? {
        Target::Stdout => return Ok(()),
        Target::Into(p) => {
            use std::os::unix::ffi::OsStrExt;
            let c = std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(Error::other)?;
            // SAFETY: a valid NUL-terminated path; access(2) only reads it.
            if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
                return Err(Error::last_os_error());
            }
            return Ok(());
        }
        Target::Replace(p) => p,
    };
    if path.exists() {
        std::fs::OpenOptions::new().append(true).open(&path)?;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Some(file) = dir.ancestors().find(|a| a.exists() && !a.is_dir()) {
        return Err(Error::new(ErrorKind::NotADirectory, format!("{} is not a folder", file.display())));
    }
    create_dirs(&dir)?;
    tempfile::Builder::new().prefix(".aibench-probe-").tempfile_in(&dir)?;
    check_free_space(&dir)
}

/// Bytes free to this user on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: statvfs fills the zeroed struct from a valid NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

fn check_free_space(path: &Path) -> std::io::Result<()> {
    let free = free_bytes(path)?;
    if free < MIN_FREE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!(
                "only {} KiB free on its file system; a result needs up to {} MiB: free some space or choose another place",
                free / 1024,
                MIN_FREE_BYTES >> 20
            ),
        ));
    }
    Ok(())
}

/// Where a result goes when its own path cannot take it (a full disk at
/// the end of a run): `$AIBENCH_HOME/rescued/`, then the temporary folder.
/// Writes `data` to a new file (created exclusively, 0600: nothing there,
/// a link or a FIFO, is followed or replaced) in the first that takes it
/// and returns its path.
pub fn rescue_write(name: &str, data: &[u8]) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let safe: String = name.chars().map(|c| if name_char(c) { c } else { '_' }).collect();
    let safe = safe.trim_start_matches('.').to_string();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let file =
        format!("{}-{}-{}", chrono_stamp(), &unique[..8], if safe.is_empty() { "result.json".into() } else { safe });
    let mut last = None;
    for dir in [aibench_home().join("rescued"), std::env::temp_dir()] {
        if let Err(e) = create_dirs(&dir) {
            last = Some(e);
            continue;
        }
        let p = dir.join(&file);
        let mut f = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p) {
            Ok(f) => f,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        match f.write_all(data).and_then(|_| f.sync_all()) {
            Ok(()) => return Ok(p),
            Err(e) => {
                // Ours (created above): a partial copy helps no one.
                let _ = std::fs::remove_file(&p);
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no place to write")))
}

fn chrono_stamp() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}{:03}", t.as_secs(), t.subsec_millis())
}

/// A new temporary folder, kept: the caller owns it and removes it.
pub fn make_tmpdir(prefix: &str) -> std::io::Result<PathBuf> {
    Ok(tempfile::Builder::new().prefix(prefix).tempdir()?.keep())
}

/// Expands `${NAME}` and `${NAME:-default}` from the environment (no shell
/// involved), so a container image can say `${SCRATCH:-/tmp}/vllm.sif`. A
/// default may itself hold `${...}`; a malformed or unterminated form is
/// kept as written. The job agent and the monitor's job both use this.
pub fn expand_env(s: &str) -> String {
    expand_with(s, &|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

fn expand_with(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        // The matching '}', past any nested `${...}` in a default.
        let mut depth = 0usize;
        let mut end = None;
        let b = after.as_bytes();
        let mut k = 0;
        while k < b.len() {
            if b[k] == b'$' && b.get(k + 1) == Some(&b'{') {
                depth += 1;
                k += 2;
                continue;
            }
            if b[k] == b'}' {
                if depth == 0 {
                    end = Some(k);
                    break;
                }
                depth -= 1;
            }
            k += 1;
        }
        let Some(end) = end else {
            out.push_str(&rest[i..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            out.push_str(&rest[i..i + 3 + end]);
        } else {
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&default.map(|d| expand_with(d, lookup)).unwrap_or_default()),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Whether a host name resolves here (to anything).
pub fn host_resolves(host: &str) -> bool {
    use std::net::ToSocketAddrs;
    (host, 80).to_socket_addrs().is_ok_and(|mut a| a.next().is_some())
}

/// This node's short host name (what SLURM calls the node).
pub fn hostname() -> String {
    let h = gethostname::gethostname().to_string_lossy().into_owned();
    h.split('.').next().unwrap_or(&h).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_resolution() {
        assert!(host_resolves("localhost"));
        assert!(!host_resolves("no-such-host.invalid"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("duraton", ["duration", "users", "rate"]), Some("duration"));
        assert_eq!(did_you_mean("zzz", ["duration", "users"]), None);
        assert_eq!(
            closest("vllm-sm", ["vllm-sim", "vllm-server", "ollama-server"], 2),
            vec!["vllm-sim", "vllm-server"]
        );
    }

    #[test]
    fn env_expansion() {
        let env = |n: &str| match n {
            "X" => Some("/scratch".to_string()),
            "Y" => Some("y".to_string()),
            _ => None,
        };
        let e = |s: &str| expand_with(s, &env);
        assert_eq!(e("${X}/a.sif"), "/scratch/a.sif");
        assert_eq!(e("${NOPE:-.}/a.sif"), "./a.sif");
        assert_eq!(e("${NOPE}/a"), "/a");
        assert_eq!(e("$HOME ${ bad} ${unterminated"), "$HOME ${ bad} ${unterminated");
        // Nested defaults, as a shell reads them.
        assert_eq!(e("${NOPE:-${X}}/v.sif"), "/scratch/v.sif");
        assert_eq!(e("${NOPE:-${ALSO_NOPE:-/tmp}}/v.sif"), "/tmp/v.sif");
        assert_eq!(e("${Y:-${X}}"), "y");
        assert_eq!(e("${NOPE:-${X}"), "${NOPE:-${X}", "unterminated stays as written");
        // SAFETY: test-only variable.
        unsafe { std::env::set_var("AIBENCH_T_X", "/s") };
        assert_eq!(expand_env("${AIBENCH_T_X}/a"), "/s/a");
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        atomic_write(&p, b"one", None).unwrap();
        atomic_write(&p, b"two", Some(0o600)).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        // no temporary files left behind
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
