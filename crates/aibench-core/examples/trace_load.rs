//! Times loading a Mooncake-style trace as a run does before it sends
//! anything (for bench/trace_load.sh), and its peak memory:
//!
//!   trace_load TRACE.jsonl
//!
//! Prints one JSON line: seconds, lines, hash ids, peak RSS (whole process).

use std::time::Instant;

use aibench_core::datasets::trace::{Trace, TraceFile};
use aibench_core::datasets::{Common, DatasetStats};

fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u.ru_maxrss as f64 / 1024.0
    }
}

fn main() -> Result<(), String> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 2 {
        return Err("usage: trace_load TRACE.jsonl".into());
    }
    let t0 = Instant::now();
    let spec = TraceFile { path: a[1].clone(), block_size: 512, common: Common::default() };
    let trace = Trace::load(&spec, &mut DatasetStats::default())?;
    let secs = t0.elapsed().as_secs_f64();
    let ids: usize = trace.entries.iter().map(|e| trace.hashes(e).len()).sum();
    println!(
        "{}",
        serde_json::json!({"seconds": secs, "lines": trace.entries.len(), "hash_ids": ids, "peak_rss_mb": peak_rss_mb()})
    );
    Ok(())
}
