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

/// Writes a file atomically: a temporary file in the same folder, fsync, rename.
/// Readers see the old content or the new one, never a torn write.
pub fn atomic_write(path: &Path, data: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".aibench-tmp-").tempfile_in(&dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    if let Some(m) = mode {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(m))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `$AIBENCH_HOME`, default `~/.aibenchmark` (the seed's location).
pub fn aibench_home() -> PathBuf {
    if let Some(h) = std::env::var_os("AIBENCH_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".aibenchmark")
}

/// Creates a directory (and parents) readable only by the owner.
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    let meta = std::fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
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
    fn suggestions() {
        assert_eq!(did_you_mean("duraton", ["duration", "users", "rate"]), Some("duration"));
        assert_eq!(did_you_mean("zzz", ["duration", "users"]), None);
        assert_eq!(
            closest("vllm-sm", ["vllm-sim", "vllm-server", "ollama-server"], 2),
            vec!["vllm-sim", "vllm-server"]
        );
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
