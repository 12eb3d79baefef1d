//! Shared by the integration tests: what external services are available,
//! a plain HTTP client, the simulator as a process.
#![allow(dead_code)]

pub mod http;
pub mod sim;

use std::path::Path;
use std::process::Command;

/// `AIBENCH_REQUIRE_SLURM=1`: missing services fail tests instead of skipping them.
pub fn required() -> bool {
    std::env::var("AIBENCH_REQUIRE_SLURM").is_ok_and(|v| v == "1")
}

/// The first lines of a test file (where it declares what it needs).
pub fn header_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().take(10).map(|l| l.trim().to_string()).collect()
}

/// Needs declared in a test file's header (`-- needs: slurm, prometheus`).
pub fn needs_of(path: &Path) -> Vec<String> {
    header_lines(path)
        .iter()
        .filter_map(|l| l.strip_prefix("-- needs:"))
        .flat_map(|l| l.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>())
        .collect()
}

pub fn missing(needs: &[String]) -> Vec<String> {
    needs.iter().filter(|n| !available(n)).cloned().collect()
}

pub fn available(need: &str) -> bool {
    match need {
        "slurm" => slurm_up(),
        "prometheus" => on_path("prometheus"),
        "chromium" => on_path("chromium"),
        _ => false,
    }
}

pub fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

/// A SLURM controller answers `sinfo`.
pub fn slurm_up() -> bool {
    on_path("sinfo") && Command::new("sinfo").arg("-h").output().is_ok_and(|o| o.status.success())
}
