//! aibench: deploy, discover, monitor and benchmark AI inference servers on
//! HPC clusters, from one binary with Lua embedded.
//!
//! The library holds the engines (no Lua) and the Lua host; `main.rs` is the
//! command line.

pub mod agent;
pub mod api;
pub mod assets;
pub mod cli;
pub mod host;
pub mod interrupt;
pub mod jobs;
pub mod loadgen;
pub mod local;
pub mod plot;
pub mod procs;
pub mod prom;
pub mod registry;
pub mod repl;
pub mod sim;
pub mod slurm;
pub mod types;
pub mod util;

use std::io::Write;

/// Flushes stdout and stderr (before `process::exit`).
pub fn flush_std() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}
