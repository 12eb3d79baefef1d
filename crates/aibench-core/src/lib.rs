//! aibench's engines: everything that must be fast, exact or close to the
//! operating system, and knows nothing of Lua (this crate does not depend
//! on mlua, so no engine can reach up into the bindings).
//!
//! - [`loadgen`]: the async load generator;
//! - [`sim`]: the simulated vLLM server;
//! - [`jobs`]: job scripts and the executors (SLURM and local) behind one
//!   interface; [`agent`]: the job agent that supervises a service;
//! - [`tokenize`]: token counts (a local tokenizer, the server's
//!   `/tokenize`) and prompts of an exact length;
//! - [`registry`]: the discovery registry; [`prom`]: Prometheus;
//!   [`plot`]: SVG charts;
//! - shared pieces: [`clock`], [`httpc`] (the control-plane HTTP client),
//!   [`typed`] (typed values from JSON), [`interrupt`] (signal policy),
//!   [`procs`], [`util`].

pub mod agent;
pub mod clock;
pub mod datasets;
pub mod gpu;
pub mod hpc;
pub mod httpc;
pub mod inputs;
pub mod interrupt;
pub mod jobs;
pub mod loadgen;
pub mod plot;
pub mod procs;
pub mod prom;
pub mod registry;
pub mod schema;
pub mod sim;
pub mod tokenize;
pub mod typed;
pub mod util;

use std::io::Write;

/// Flushes stdout and stderr (before `process::exit`).
pub fn flush_std() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// Prints a line to standard output. A reader that went away (`aibench eval
/// ... | head`) ends the process quietly with 141, as a Unix tool killed
/// by SIGPIPE does, rather than a panic.
pub fn print_line(s: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|_| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            let _ = std::io::stderr().flush();
            std::process::exit(141);
        }
        eprintln!("aibench: writing to standard output failed: {e}");
    }
}
