//! Real traffic against the in-process simulator: trace replay (order,
//! timing, every request sent), prefix-cache hits equal to the blocks a
//! trace's hash ids or a synthetic dataset's groups share, multi-turn
//! sessions (the history grows by exactly the reply and the new message;
//! later turns' TTFT drops with prefix caching and not without), and bad
//! dataset input named by file:line and field.

use aibench::datasets::trace::{Trace, TraceFile};
use aibench::datasets::{Common, DatasetStats};
use aibench::loadgen::{self, Control, Report};
use aibench::prom::expfmt;
use aibench::sim::{Profile, SimConfig, SimServer};
use serde_json::{Value, json};
use tokio::sync::watch;

mod support;

/// Timing tests run one at a time.
static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TOK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tokenizer-en-bpe-8k");
const TRACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mooncake-200.jsonl");
const SHAREGPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sharegpt-small.json");

async fn sim(profile: &str, caching: bool, block_size: u32) -> SimServer {
    let mut cfg = SimConfig::new(Profile::load(profile).unwrap());
    cfg.tokenizer = aibench::sim::tokens::SimTokenizer::load(TOK).unwrap();
    cfg.profile.enable_prefix_caching = caching;
    cfg.profile.block_size = block_size;
    aibench::sim::start(cfg).await.unwrap()
}

async fn run(spec: Value) -> Result<Report, String> {
    let (_tx, rx) = watch::channel(None);
    let spec = loadgen::ValidSpec::from_json(spec).map_err(|e| e.to_string())?;
    loadgen::run(spec, Control::new(rx)).await.map_err(|e| e.to_string())
}

async fn counter(s: &SimServer, name: &str) -> f64 {
    let m = expfmt::parse(&support::http::get(&s.url(), "/metrics").await.text()).unwrap();
    expfmt::family(&m, name).unwrap().total()
}

fn target(s: &SimServer, api: &str) -> Value {
    json!({"url": s.url(), "api": api, "tokenizer": TOK})
}

fn log_lines(path: &std::path::Path) -> Vec<Value> {
    let mut v: Vec<Value> =
        std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    v.sort_by_key(|l| l["seq"].as_u64());
    v
}

fn fixture_trace() -> Trace {
    let spec = TraceFile { path: TRACE.into(), block_size: 512, common: Common::default() };
    Trace::load(&spec, &mut DatasetStats::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_replay_keeps_order_and_timing_and_sends_every_request() {
    let _t = TIMING.lock().await;
    let s = sim("instant", true, 128).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let r = run(json!({
        "target": target(&s, "openai-completions"),
        "workload": {"pattern": "trace", "time_scale": 0.5},
        "dataset": {"type": "trace", "path": TRACE},
        "per_request_log": log.to_str().unwrap(),
    }))
    .await
    .unwrap();
    assert_eq!((r.total_requests, r.successes, r.errors), (200, 200, 0));
    let tr = r.trace.as_ref().expect("a trace section");
    assert_eq!((tr.offered, tr.sent), (200, 200));
    assert_eq!(tr.offered_per_s.iter().sum::<u64>(), 200);
    assert_eq!(tr.sent_per_s.iter().sum::<u64>(), 200);
    let lag = r.send_lag_ms.as_ref().unwrap();
    assert!(lag.p99 < 5.0, "p99 send lag {} ms", lag.p99);
    // Each request at its timestamp × 0.5, in the trace's order.
    let trace = fixture_trace();
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 200);
    let mut last_sent = 0.0;
    for (l, e) in lines.iter().zip(&trace.entries) {
        let intended = l["intended_s"].as_f64().unwrap();
        assert!((intended - e.at_ms / 1000.0 * 0.5).abs() < 1e-6, "{l} vs {e:?}");
        let sent = l["sent_s"].as_f64().unwrap();
        assert!(sent >= intended && sent - intended < 0.05, "{l}");
        assert!(sent + 0.005 >= last_sent, "sent out of order: {l}");
        last_sent = sent;
        // Exact lengths: the trace's input_length, as the server counted it.
        assert_eq!(l["input_tokens"].as_u64(), Some(e.input as u64), "{l}");
        assert_eq!(l["asked_output_tokens"].as_u64(), Some(e.output as u64));
    }
    let gaps = tr.trace_gap_ms.as_ref().unwrap();
    let achieved = tr.achieved_gap_ms.as_ref().unwrap();
    assert!((gaps.mean - achieved.mean).abs() < 1.0, "{gaps:?} vs {achieved:?}");
    assert!(r.validity.reasons.iter().all(|x| !x.contains("send lag")), "{:?}", r.validity);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_cache_hits_equal_the_blocks_a_traces_hash_ids_share() {
    let s = sim("instant", true, 128).await;
    // One request at a time, in the trace's order: the cache holds what
    // every earlier request left.
    let r = run(json!({
        "target": target(&s, "openai-completions"),
        "workload": {"pattern": "closed-loop", "users": 1, "total_requests": 200},
        "dataset": {"type": "trace", "path": TRACE},
    }))
    .await
    .unwrap();
    assert_eq!(r.errors, 0);
    let trace = fixture_trace();
    let blocks: u64 = trace.reusable_blocks(128).iter().sum();
    let inputs: u64 = trace.entries.iter().map(|e| e.input as u64).sum();
    assert!(blocks > 100, "the fixture shares blocks: {blocks}");
    assert_eq!(counter(&s, "vllm:prefix_cache_hits_total").await, (blocks * 128) as f64);
    assert_eq!(counter(&s, "vllm:prefix_cache_queries_total").await, inputs as f64);
    assert_eq!(r.dataset_stats.as_ref().unwrap().used, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_cache_hits_equal_the_blocks_shared_prefix_groups_share() {
    let s = sim("instant", true, 128).await;
    let r = run(json!({
        "target": target(&s, "openai-completions"),
        "workload": {"pattern": "closed-loop", "users": 1, "total_requests": 20},
        "dataset": {"prefix_tokens": 1024, "prefix_groups": 4, "prompt_tokens": 100, "output_tokens": 4},
    }))
    .await
    .unwrap();
    assert_eq!(r.errors, 0);
    let a = r.asked_vs_served.as_ref().unwrap();
    assert_eq!((a.prompt.asked_mean, a.prompt.worst_abs), (1124.0, 0), "{a:?}");
    // The first request of each group finds nothing; the 16 others reuse
    // their group's 1,024 tokens: 8 blocks of 128.
    assert_eq!(counter(&s, "vllm:prefix_cache_hits_total").await, (16 * 1024) as f64);
}

async fn one_session(s: &SimServer, api: &str, extra: Value) -> (Report, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let mut w = json!({"pattern": "sessions", "users": 1, "total_sessions": 1, "turns": 4});
    for (k, v) in extra.as_object().unwrap() {
        w[k] = v.clone();
    }
    let r = run(json!({
        "target": target(s, api),
        "workload": w,
        "dataset": {"prompt_tokens": 50, "output_tokens": 20},
        "per_request_log": log.to_str().unwrap(),
    }))
    .await
    .unwrap();
    (r, log_lines(&log))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_turn_sends_the_history_plus_the_reply_and_the_new_message() {
    let s = sim("instant", true, 16).await;
    let (r, lines) = one_session(&s, "openai-completions", json!({})).await;
    let sess = r.sessions.as_ref().unwrap();
    assert_eq!((sess.started, sess.completed, sess.failed, sess.cut), (1, 1, 0, 0));
    assert_eq!(sess.per_turn.len(), 4);
    assert_eq!(lines.len(), 4);
    for (t, l) in lines.iter().enumerate() {
        assert_eq!(l["turn"].as_u64(), Some(t as u64 + 1));
        // What the client counted is what the server served.
        assert_eq!(l["input_tokens"], l["asked_input_tokens"], "{l}");
        assert_eq!(l["output_tokens"].as_u64(), Some(20));
    }
    assert_eq!(lines[0]["input_tokens"].as_u64(), Some(50));
    for w in lines.windows(2) {
        let (prev, next) = (&w[0], &w[1]);
        let grown = prev["input_tokens"].as_u64().unwrap() + prev["output_tokens"].as_u64().unwrap() + 50;
        assert_eq!(next["input_tokens"].as_u64(), Some(grown), "{prev} then {next}");
    }
    // The sim served the later turns' histories from its cache.
    assert!(counter(&s, "vllm:prefix_cache_hits_total").await >= (50 + 20 + 50 + 20 + 50) as f64);
    let means: Vec<f64> = sess.per_turn.iter().map(|t| t.mean_prompt_tokens).collect();
    assert!(means.windows(2).all(|w| w[1] > w[0]), "{means:?}");

    // The chat API gets the history as messages: it grows by the reply,
    // the new message and the template's tokens for the two.
    let (r, lines) = one_session(&s, "openai-chat", json!({})).await;
    assert_eq!(r.sessions.as_ref().unwrap().completed, 1);
    let inputs: Vec<u64> = lines.iter().map(|l| l["input_tokens"].as_u64().unwrap()).collect();
    let steps: Vec<u64> = inputs.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(steps.iter().all(|d| *d > 70 && *d == steps[0]), "{inputs:?}");
    for l in &lines {
        assert_eq!(l["input_tokens"], l["asked_input_tokens"], "{l}");
    }
}

/// Mean TTFT (ms) of turn 1 and of the later turns, over four sessions one
/// after the other, each beginning with its own 1,500-token system prompt.
async fn ttft_by_turn(caching: bool) -> (f64, f64) {
    let s = sim("opt-125m-cpu", caching, 128).await;
    let r = run(json!({
        "target": target(&s, "openai-completions"),
        "workload": {"pattern": "sessions", "users": 1, "total_sessions": 4, "turns": 4},
        "dataset": {"prefix_tokens": 1500, "prefix_groups": 4, "prompt_tokens": 40, "output_tokens": 8},
    }))
    .await
    .unwrap();
    let sess = r.sessions.unwrap();
    assert_eq!(sess.completed, 4);
    let ttft = |t: &aibench::loadgen::shape::TurnReport| t.ttft_ms.as_ref().unwrap().mean;
    let later = sess.per_turn[1..].iter().map(ttft).sum::<f64>() / 3.0;
    (ttft(&sess.per_turn[0]), later)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_turns_ttft_drops_with_prefix_caching_and_not_without() {
    let _t = TIMING.lock().await;
    let (first, later) = ttft_by_turn(true).await;
    assert!(later < first * 0.6, "caching on: turn 1 {first:.1} ms, later {later:.1} ms");
    let (first, later) = ttft_by_turn(false).await;
    assert!(later > first, "caching off: turn 1 {first:.1} ms, later {later:.1} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharegpt_conversations_as_sessions_and_as_single_prompts() {
    let s = sim("instant", true, 16).await;
    let r = run(json!({
        "target": target(&s, "openai-chat"),
        "workload": {"pattern": "sessions", "users": 1, "total_sessions": 4, "history": "dataset"},
        "dataset": {"type": "sharegpt", "path": SHAREGPT, "on_bad_line": "skip"},
    }))
    .await
    .unwrap();
    let sess = r.sessions.as_ref().unwrap();
    // The usable conversations: 2 turns, then 1, then 1 (the one without
    // an answer has no output length, so it is skipped); the fourth session
    // is the first conversation again.
    assert_eq!((sess.started, sess.completed), (4, 4));
    assert_eq!(sess.per_turn[0].requests, 4);
    assert_eq!(sess.per_turn[1].requests, 2);
    assert!(sess.per_turn[1].mean_prompt_tokens > sess.per_turn[0].mean_prompt_tokens);
    let st = r.dataset_stats.as_ref().unwrap();
    assert_eq!((st.read, st.skipped["malformed"], st.skipped["empty"]), (8, 2, 2), "{st:?}");
    // Single-turn: the first human turn, the answer's length as output.
    let r = run(json!({
        "target": target(&s, "openai-completions"),
        "workload": {"pattern": "closed-loop", "users": 1, "total_requests": 3},
        "dataset": {"type": "sharegpt", "path": SHAREGPT, "on_bad_line": "skip"},
    }))
    .await
    .unwrap();
    assert_eq!(r.successes, 3);
    let a = r.asked_vs_served.as_ref().unwrap();
    assert_eq!(a.prompt.worst_abs, 0, "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_datasets_and_workloads_name_the_file_line_and_field() {
    let s = sim("instant", true, 128).await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("backwards.jsonl");
    std::fs::write(
        &bad,
        "{\"timestamp\": 10, \"input_length\": 20, \"output_length\": 2}\n{\"timestamp\": 9, \"input_length\": 20, \"output_length\": 2}\n",
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    let case = |workload: Value, dataset: Value| json!({"target": target(&s, "openai-completions"), "workload": workload, "dataset": dataset});
    let trace = json!({"pattern": "trace"});
    let one = json!({"pattern": "closed-loop", "users": 1, "total_requests": 1});
    let cases = [
        (case(trace.clone(), json!({"type": "trace", "path": bad})), format!("{bad}:2: timestamp: 9 is before")),
        (
            case(trace.clone(), json!({"type": "trace", "path": "/no/such.jsonl"})),
            "dataset.path: cannot read '/no/such.jsonl'".into(),
        ),
        (case(trace.clone(), json!({"prompt_tokens": 10})), "needs dataset.type = \"trace\"".into()),
        (case(one.clone(), json!({"type": "trace", "path": TRACE, "max_prompt_tokens": 10})), "no record of".into()),
        (
            case(one.clone(), json!({"type": "sharegpt", "path": TRACE})),
            "mooncake-200.jsonl:1: no 'conversations' field".into(),
        ),
        (case(one.clone(), json!({"type": "sharegtp", "path": TRACE})), "did you mean \"sharegpt\"".into()),
        (
            case(json!({"pattern": "sessions", "users": 1, "total_sessions": 1}), json!({"prompt_tokens": 10})),
            "workload.turns: synthetic sessions need a number of turns".into(),
        ),
        (
            case(one.clone(), json!({"prompt_tokens": {"dist": "normal", "mean": 100}})),
            "dataset.prompt_tokens.stdev: required".into(),
        ),
        (case(one.clone(), json!({"type": "csv", "path": TRACE, "field": "q"})), "has no column \"q\"".into()),
    ];
    for (spec, want) in cases {
        let e = run(spec.clone()).await.err().unwrap_or_else(|| panic!("expected an error for {spec}"));
        assert!(e.contains(&want), "{spec}\nwanted {want:?} in: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_at_a_rate_start_as_asked_and_all_complete() {
    let s = sim("instant", true, 16).await;
    let t0 = std::time::Instant::now();
    let r = run(json!({
        "target": target(&s, "openai-completions"),
        "workload": {"pattern": "sessions", "session_rate": 20, "total_sessions": 10, "turns": 3, "max_concurrency": 4},
        "dataset": {"prompt_tokens": {"dist": "uniform", "min": 20, "max": 60}, "output_tokens": 5},
    }))
    .await
    .unwrap();
    let sess = r.sessions.as_ref().unwrap();
    assert_eq!((sess.started, sess.completed, sess.failed, sess.cut), (10, 10, 0, 0));
    assert_eq!(r.total_requests, 30);
    assert_eq!(sess.per_turn.iter().map(|t| t.requests).collect::<Vec<_>>(), vec![10, 10, 10]);
    // Ten Poisson starts at 20 per second take about half a second, not none.
    assert!(t0.elapsed() > std::time::Duration::from_millis(100), "{:?}", t0.elapsed());
    let a = r.asked_vs_served.as_ref().unwrap();
    assert_eq!(a.prompt.worst_abs, 0, "{a:?}");
    let first = &sess.per_turn[0];
    assert!((20.0..=60.0).contains(&first.mean_asked_prompt_tokens), "{first:?}");
}
