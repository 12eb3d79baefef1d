//! Runs every `tests/lua/*.lua` inside the real host (`aibench run`), one
//! test per file, discovered at run time. A file fails by raising.
//!
//! A file may declare what it needs in its first lines: `-- needs: slurm`,
//! `-- needs: prometheus`, `-- needs: chromium`. When a need is missing the
//! test is reported as ignored, never as passed; with `AIBENCH_REQUIRE_SLURM=1`
//! (set by `.ci/run`) a missing need is a failure.
//!
//! A file whose header says `-- exclusive` (timing-sensitive assertions)
//! runs alone: no other file runs beside it.

use std::path::Path;
use std::process::Command;

use std::sync::RwLock;

use libtest_mimic::{Arguments, Failed, Trial};

/// Shared by ordinary files, taken exclusively by `-- exclusive` ones.
static RUNNING: RwLock<()> = RwLock::new(());

#[path = "support/mod.rs"]
mod support;

fn main() {
    let args = Arguments::from_args();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/lua")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .collect();
    files.sort();
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let needs = support::needs_of(&path);
            let missing = support::missing(&needs);
            let ignored = !missing.is_empty() && !support::required();
            let exclusive = support::header_lines(&path).iter().any(|l| l == "-- exclusive");
            Trial::test(name, move || {
                if exclusive {
                    let _alone = RUNNING.write().unwrap_or_else(|e| e.into_inner());
                    run(&path, &missing)
                } else {
                    let _shared = RUNNING.read().unwrap_or_else(|e| e.into_inner());
                    run(&path, &missing)
                }
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn run(path: &Path, missing: &[String]) -> Result<(), Failed> {
    if !missing.is_empty() {
        return Err(format!(
            "needs {} but it is not available (AIBENCH_REQUIRE_SLURM=1 makes this a failure)",
            missing.join(", ")
        )
        .into());
    }
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = Command::new(env!("CARGO_BIN_EXE_aibench"))
        .arg("run")
        .arg(path)
        .env("AIBENCH_HOME", home.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("cannot run aibench: {e}"))?;
    // Whatever the file started and did not stop (a failed case skips its own
    // clean-up) is stopped here, so no server, monitor or job outlives it. A
    // passing file must have stopped everything itself.
    let leftovers = stop_everything(home.path());
    if out.status.success() {
        if leftovers.is_empty() {
            Ok(())
        } else {
            Err(format!("{} passed but left running: {}", path.display(), leftovers.join("; ")).into())
        }
    } else {
        Err(format!(
            "{} exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            path.display(),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into())
    }
}

/// Runs `aibench client|monitor|server stop-all` for a test's `AIBENCH_HOME`;
/// returns what each stopped, when it stopped anything (or failed).
fn stop_everything(home: &Path) -> Vec<String> {
    let mut left = Vec::new();
    for kind in ["client", "monitor", "server"] {
        let out = Command::new(env!("CARGO_BIN_EXE_aibench"))
            .args([kind, "stop-all"])
            .env("AIBENCH_HOME", home)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
                if !text.starts_with("stopped 0 ") {
                    left.push(text);
                }
            }
            Ok(o) => left.push(format!("{kind} stop-all failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => left.push(format!("cannot run {kind} stop-all: {e}")),
        }
    }
    left
}
