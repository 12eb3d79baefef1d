//! Nanoseconds per streamed chunk for the load generator's SSE path (the
//! parser and the chunk reader), on a vLLM 0.32 completions stream, for
//! bench/wire_speed.sh's CPU figures and for work on the hot path:
//!
//!   sse_scan [STREAM_FILE=tests/fixtures/vllm-0.32-cpu-completions-stream.txt] [SECONDS=2]
//!
//! Prints one JSON line: ns per chunk through the one-pass reader, and
//! through serde (what a reader that parses every chunk pays).

use std::time::Instant;

use aibench_core::loadgen::sse::{SseParser, Tokens};

fn main() -> Result<(), String> {
    let a: Vec<String> = std::env::args().collect();
    let path = a.get(1).map_or("tests/fixtures/vllm-0.32-cpu-completions-stream.txt", |s| s.as_str());
    let secs: f64 = a.get(2).map_or(Ok(2.0), |s| s.parse()).map_err(|_| "SECONDS: expected a number")?;
    let body = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let run = |capture: bool| {
        let (mut p, mut t) = (SseParser::default(), Tokens::default());
        t.capture = capture;
        let (t0, mut chunks, mut n) = (Instant::now(), 0u64, 0u64);
        while t0.elapsed().as_secs_f64() < secs / 2.0 {
            for _ in 0..100 {
                p.reset();
                t.reset();
                let now = Instant::now();
                p.feed(&body, &mut |d| t.openai_event(d, now));
                chunks += t.content_chunks + 2;
                n += 1;
            }
        }
        assert!(t.done && t.bad_chunks == 0, "{path}: not a complete OpenAI stream");
        (t0.elapsed().as_secs_f64() * 1e9 / chunks as f64, n)
    };
    let parse_only = {
        let mut p = SseParser::default();
        let (t0, mut events) = (Instant::now(), 0u64);
        while t0.elapsed().as_secs_f64() < secs / 4.0 {
            for _ in 0..100 {
                p.reset();
                p.feed(&body, &mut |d| events += d.len().min(1) as u64);
            }
        }
        t0.elapsed().as_secs_f64() * 1e9 / events as f64
    };
    let (fast, _) = run(false);
    let (serde, _) = run(true);
    println!(
        "{}",
        serde_json::json!({"stream": path, "bytes": body.len(), "ns_per_chunk": fast, "ns_per_chunk_sse_framing_only": parse_only, "ns_per_chunk_serde": serde})
    );
    Ok(())
}
