//! aibench: deploy, discover, monitor and benchmark AI inference servers on
//! HPC clusters, from one binary with Lua embedded.
//!
//! This crate is the command line and the REPL; the engines are
//! `aibench_core` (re-exported here), the Lua host is `aibench_lua`.

pub use aibench_core::*;

pub mod cli;
pub mod repl;
