//! Times preparing synthetic prompts of exact lengths, as a run does before
//! it sends anything (for bench/prompt_prep.sh):
//!
//!   prompt_prep N TOKENS local|server TOKENIZER_DIR
//!
//! `server` counts through the simulator's `/tokenize` (started here, with
//! the same tokenizer). Prints one JSON line: seconds, distinct prompts,
//! bytes, peak RSS growth.

use std::time::Instant;

use aibench_core::loadgen::dataset;
use aibench_core::sim::{Profile, SimConfig, tokens::SimTokenizer};
use aibench_core::tokenize::{LocalTokenizer, prompts::Counter, server::ServerTokenizer};

fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u.ru_maxrss as f64 / 1024.0
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 5 {
        return Err("usage: prompt_prep N TOKENS local|server TOKENIZER_DIR".into());
    }
    let n: usize = a[1].parse().map_err(|e| format!("N: {e}"))?;
    let tokens: u64 = a[2].parse().map_err(|e| format!("TOKENS: {e}"))?;
    let (mode, dir) = (a[3].as_str(), a[4].as_str());
    let mut _sim = None;
    let counter = match mode {
        "local" => Counter::Local(std::sync::Arc::new(LocalTokenizer::load(dir)?)),
        "server" => {
            let mut cfg = SimConfig::new(Profile::load("instant")?);
            cfg.tokenizer = SimTokenizer::load(dir)?;
            cfg.model = "m".into();
            let s = aibench_core::sim::start(cfg).await?;
            let c = Counter::Server(ServerTokenizer::require(&s.url(), "m").await?);
            _sim = Some(s);
            c
        }
        other => return Err(format!("mode: expected local or server, got {other}")),
    };
    let spec = aibench_core::loadgen::ValidSpec::from_json(serde_json::json!({
        "target": {"url": "http://127.0.0.1:1", "model": "m"},
        "workload": {"pattern": "closed-loop", "users": 1, "total_requests": n},
        "dataset": {"prompt_tokens": tokens, "output_tokens": 16},
    }))
    .map_err(|e| e.to_string())?;
    let rss0 = peak_rss_mb();
    let t0 = Instant::now();
    let (prepared, _) = dataset::prepare(spec.spec(), Some("m"), n, None, &counter).await.map_err(|e| e.to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    let bytes: usize = prepared.iter().map(|p| p.body.len()).sum();
    // Counted again outside the timing: every 100th prompt, with the tokenizer.
    let check = LocalTokenizer::load(dir)?;
    let sample: Vec<usize> = prepared
        .iter()
        .step_by(100)
        .map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap_or_default();
            check.count(v["prompt"].as_str().unwrap_or(""), true)
        })
        .collect();
    let exact = sample.iter().all(|n| *n as u64 == tokens);
    println!(
        "{}",
        serde_json::json!({
            "mode": mode, "prompts": prepared.len(), "tokens": tokens, "seconds": secs,
            "prompts_per_s": prepared.len() as f64 / secs, "body_mb": bytes as f64 / 1048576.0,
            "peak_rss_growth_mb": peak_rss_mb() - rss0, "recounted": sample.len(), "recounted_exact": exact,
        })
    );
    Ok(())
}
