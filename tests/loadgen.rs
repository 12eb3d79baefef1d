//! The load generator against the in-process simulator.

use std::time::Duration;

use aibench::loadgen::{self, Control, Report};
use aibench::prom::expfmt;
use aibench::sim::{Faults, Profile, SimConfig, SimServer};
use serde_json::{Value, json};
use tokio::sync::watch;

mod support;

/// Tests that measure timing run alone (`write`); the others may run beside
/// each other (`read`) but never beside a timing test, whose schedule a
/// busy neighbour on a 2-core machine would bend.
static TIMING: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

async fn sim(profile: &str, tweak: impl FnOnce(&mut SimConfig)) -> SimServer {
    let mut cfg = SimConfig::new(Profile::load(profile).unwrap());
    tweak(&mut cfg);
    aibench::sim::start(cfg).await.unwrap()
}

async fn bench(spec: Value) -> Report {
    let (_tx, rx) = watch::channel(None);
    let spec = loadgen::ValidSpec::from_json(spec).unwrap();
    loadgen::run(spec, Control::new(rx)).await.unwrap()
}

async fn metrics(s: &SimServer) -> Vec<expfmt::Family> {
    expfmt::parse(&support::http::get(&s.url(), "/metrics").await.text()).unwrap()
}

fn total(m: &[expfmt::Family], name: &str) -> f64 {
    expfmt::family(m, name).unwrap().total()
}

fn reason(m: &[expfmt::Family], r: &str) -> f64 {
    expfmt::family(m, "vllm:request_success_total")
        .unwrap()
        .samples
        .iter()
        .find(|s| s.labels["finished_reason"] == r)
        .unwrap()
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_token_timings_match_the_simulator() {
    let _g = TIMING.write().await;
    let p = Profile::load("opt-125m-cpu").unwrap();
    let s = sim("opt-125m-cpu", |_| {}).await;
    let r = bench(json!({
        "target": {"url": s.url()},
        "workload": {"pattern": "closed-loop", "users": 1, "requests_per_user": 12},
        "dataset": {"type": "synthetic", "prompt_tokens": 30, "output_tokens": 16},
    }))
    .await;
    let m = metrics(&s).await;
    assert_eq!(r.total_requests, 12);
    assert_eq!(r.successes as f64, total(&m, "vllm:request_success_total"));
    assert_eq!(r.tokens.output_total as f64, total(&m, "vllm:generation_tokens_total"));
    assert_eq!(r.tokens.input_total as f64, total(&m, "vllm:prompt_tokens_total"));
    assert_eq!(r.tokens.output_total, 12 * 16);
    assert_eq!(r.tokens.output_source, "usage");
    let ttft = r.ttft_ms.as_ref().unwrap();
    let itl = r.itl_ms.as_ref().unwrap();
    let tpot = r.tpot_ms.as_ref().unwrap();
    let want_ttft = p.step_seconds(1, 30) * 1e3;
    let want_itl = p.step_seconds(1, 0) * 1e3;
    assert!((ttft.p50 - want_ttft).abs() < 1.5, "TTFT p50 {} ms vs profile {want_ttft} ms", ttft.p50);
    assert!((itl.mean - want_itl).abs() < want_itl * 0.05 + 0.1, "ITL mean {} ms vs profile {want_itl} ms", itl.mean);
    assert!(
        (tpot.mean - want_itl).abs() < want_itl * 0.05 + 0.1,
        "TPOT mean {} ms vs profile {want_itl} ms",
        tpot.mean
    );
    assert_eq!(itl.count, 12 * 15);
    // E2E = TTFT + (n-1) x TPOT per request, so the means agree too.
    let lat = r.latency_ms.as_ref().unwrap();
    assert!((lat.mean - (ttft.mean + 15.0 * tpot.mean)).abs() < 0.5);
    // The server's own histograms agree with what the client measured.
    let server_ttft = &expfmt::family(&m, "vllm:time_to_first_token_seconds").unwrap().histograms()[0];
    assert!((server_ttft.sum / server_ttft.count * 1e3 - ttft.mean).abs() < 1.0);
}

/// How many of the first `n` request numbers the simulator fails, and how
/// many of the rest it disconnects (its draws are seeded; see sim/api.rs).
fn expected_faults(seed: u64, n: u64, fail: f64, disc: f64) -> (u64, u64) {
    let mut f = 0;
    let mut d = 0;
    for i in 0..n {
        if aibench::sim::text::unit(seed, i, 1) < fail {
            f += 1;
        } else if aibench::sim::text::unit(seed, i, 3) < disc {
            d += 1;
        }
    }
    (f, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_classified_and_no_request_is_lost() {
    let _shared = TIMING.read().await;
    let seed = 11;
    let s = sim("instant", |c| {
        c.seed = seed;
        c.faults = Faults { fail_rate: 0.2, disconnect_rate: 0.15, ..Default::default() };
    })
    .await;
    let r = bench(json!({
        "target": {"url": s.url(), "timeout_s": 10},
        "workload": {"pattern": "closed-loop", "users": 8, "requests_per_user": 50},
        "dataset": {"prompt_tokens": 8, "output_tokens": 12},
    }))
    .await;
    let (fails, discs) = expected_faults(seed, 400, 0.2, 0.15);
    assert_eq!(r.total_requests, 400);
    assert_eq!(r.successes + r.errors, r.total_requests);
    assert_eq!(r.errors_by_class["http_5xx"], fails);
    assert_eq!(r.errors_by_class["stream_broken"], discs);
    assert_eq!(r.errors, fails + discs);
    assert!(r.error_samples["http_5xx"][0].contains("HTTP 500"));
    let m = metrics(&s).await;
    // Every request that got past the 500s reached the engine and ended there,
    // finished or aborted (a disconnect after the last token still finishes).
    assert_eq!(reason(&m, "length") + reason(&m, "abort"), (r.successes + discs) as f64);
    assert!(reason(&m, "length") >= r.successes as f64);

    // Stalled streams past the client's timeout.
    let s =
        sim("instant", |c| c.faults = Faults { stall_rate: 1.0, stall: Duration::from_secs(2), ..Default::default() })
            .await;
    let r = bench(json!({"target": {"url": s.url(), "timeout_s": 0.3},
        "workload": {"pattern": "closed-loop", "users": 2, "requests_per_user": 2}}))
    .await;
    assert_eq!(r.errors_by_class["timeout"], 4);
    // Nobody listening.
    let r = bench(json!({"target": {"url": "http://127.0.0.1:9", "model": "m"},
        "workload": {"pattern": "closed-loop", "users": 2, "requests_per_user": 3}}))
    .await;
    assert_eq!(r.errors_by_class["connect"], 6);
    assert_eq!(r.total_requests, 6);
    // A model the server does not have.
    let s = sim("instant", |_| {}).await;
    let r = bench(json!({"target": {"url": s.url(), "model": "nope"},
        "workload": {"pattern": "closed-loop", "users": 1, "requests_per_user": 3}}))
    .await;
    assert_eq!(r.errors_by_class["http_4xx"], 3);
    assert!(r.error_samples["http_4xx"][0].contains("does not exist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_throughput_follows_littles_law() {
    let _g = TIMING.write().await;
    // The MeluXina report's stress scenario shape: 20 users, 100 ms think time.
    let s = sim("opt-125m-cpu", |_| {}).await;
    let r = bench(json!({
        "target": {"url": s.url()},
        "workload": {"pattern": "closed-loop", "users": 20, "think_time_ms": 100, "duration_s": 4, "ramp_up_s": 0.5, "warmup_s": 0.5},
        "dataset": {"prompt_tokens": 64, "output_tokens": 24},
    }))
    .await;
    let l = r.littles_law.as_ref().unwrap();
    assert!(
        (l.ratio - 1.0).abs() < 0.02,
        "measured {} req/s vs Little's law {} req/s",
        l.measured_req_per_sec,
        l.expected_req_per_sec
    );
    assert!(l.client_gap_ms < 2.0, "client adds {} ms between requests", l.client_gap_ms);
    assert!(r.warmup_excluded > 0);
    // The plain throughput over the window agrees within edge effects.
    assert!((r.throughput_req_per_sec / l.expected_req_per_sec - 1.0).abs() < 0.08);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_poisson_arrivals_fit() {
    let _g = TIMING.write().await;
    let s = sim("instant", |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("req.jsonl");
    let rate = 400.0;
    let n = 1200;
    let r = bench(json!({
        "target": {"url": s.url()},
        "workload": {"pattern": "open-loop", "rate": rate, "arrival": "poisson", "total_requests": n, "seed": 5},
        "dataset": {"prompt_tokens": 8, "output_tokens": 4},
        "per_request_log": log.to_str().unwrap(),
    }))
    .await;
    assert_eq!(r.total_requests, n);
    let lines: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, n, "one log line per request");
    // Intended times are the seeded schedule; actual send times must follow it.
    let mut sent: Vec<f64> = lines.iter().map(|l| l["sent_s"].as_f64().unwrap()).collect();
    sent.sort_by(f64::total_cmp);
    let mut gaps: Vec<f64> = sent.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    // Kolmogorov-Smirnov against Exp(rate), 1% level.
    let m = gaps.len() as f64;
    let d = gaps
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let cdf = 1.0 - (-rate * g).exp();
            (cdf - i as f64 / m).abs().max(((i + 1) as f64 / m - cdf).abs())
        })
        .fold(0.0, f64::max);
    assert!(d < 1.63 / m.sqrt(), "KS distance {d:.4} for {} gaps", gaps.len());
    let lag = r.send_lag_ms.as_ref().unwrap();
    assert!(lag.p99 < 5.0, "p99 send lag {} ms", lag.p99);
    let achieved = r.rate.as_ref().unwrap().achieved_req_per_sec;
    assert!((achieved / rate - 1.0).abs() < 0.1, "achieved {achieved} req/s");
    assert!(r.latency_from_intended_ms.is_some());
}

/// A server on plain threads, outside any runtime: it answers every request
/// at once and notes when each arrived, by the request number in its body.
/// When each request (by number) reached the server.
type Arrivals = std::sync::Arc<std::sync::Mutex<Vec<(u64, std::time::Instant)>>>;

fn arrival_server() -> (String, Arrivals) {
    use std::io::{Read, Write};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            let s = s.clone();
            std::thread::spawn(move || {
                let _ = c.set_nodelay(true);
                let mut buf = Vec::new();
                let mut piece = [0u8; 4096];
                loop {
                    // One request: the head, then Content-Length bytes of body.
                    let request = loop {
                        if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..h]).to_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                            if buf.len() >= h + 4 + len {
                                let body = String::from_utf8_lossy(&buf[h + 4..h + 4 + len]).into_owned();
                                buf.drain(..h + 4 + len);
                                break body;
                            }
                        }
                        match c.read(&mut piece) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&piece[..n]),
                        }
                    };
                    let at = std::time::Instant::now();
                    s.lock().unwrap().push((request.trim().parse().unwrap(), at));
                    if c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

// The open loop's pacer is a thread of its own that writes each request at
// its time on an idle connection: a runtime kept busy (here: blocked 40 ms
// of every 50, as a client thread busy reading responses would be) does not
// delay the sends. Seen from the server, not from the client's own clock.
#[tokio::test(flavor = "current_thread")]
async fn requests_go_out_on_time_while_the_runtime_is_busy() {
    let _t = TIMING.write().await;
    let (url, seen) = arrival_server();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("r.jsonl");
    let busy = tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            std::thread::sleep(Duration::from_millis(40));
        }
    });
    let n = 150u64;
    let r = bench(json!({
        "target": {"url": url, "api": "http", "method": "POST", "body": "{{seq}}"},
        "workload": {"pattern": "open-loop", "rate": 100, "arrival": "constant", "total_requests": n},
        "per_request_log": log.to_str().unwrap(),
    }))
    .await;
    busy.abort();
    assert_eq!((r.total_requests, r.successes, r.errors), (n, n, 0), "every request answered and counted");
    assert_eq!(r.client.pacer.as_ref().map(|p| p.demotions), Some(0));
    let lines: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let intended: std::collections::HashMap<u64, f64> =
        lines.iter().map(|l| (l["seq"].as_u64().unwrap(), l["intended_s"].as_f64().unwrap())).collect();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len() as u64, n, "the server saw every request once");
    // Arrival minus intended time, less the smallest such difference (the
    // two clocks' offset): how late each request reached the server.
    let t0 = seen.iter().map(|(_, at)| *at).min().unwrap();
    let diffs: Vec<f64> = seen.iter().map(|(q, at)| at.duration_since(t0).as_secs_f64() - intended[q]).collect();
    let offset = diffs.iter().copied().fold(f64::INFINITY, f64::min);
    let mut late_ms: Vec<f64> = diffs.iter().map(|d| (d - offset) * 1e3).collect();
    late_ms.sort_by(f64::total_cmp);
    // Sent from the runtime, a request due in a 40 ms block waits for its
    // end: half of them would be 20 ms late or more. The first requests
    // still connect from the runtime (no idle connection yet).
    let p90 = late_ms[late_ms.len() * 9 / 10];
    assert!(p90 < 8.0, "90% of requests within {p90:.1} ms of their time at the server (all: {late_ms:?})");
    let lag = r.send_lag_ms.as_ref().unwrap();
    assert!(lag.p90 < 8.0, "client-side send lag p90 {} ms", lag.p90);
}

// A schedule the pacer cannot keep (a million requests a second): it falls
// behind, leaves real-time priority so the threads that read the responses
// still run, and every request is still sent, answered and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_pacer_gives_up_real_time_and_loses_nothing() {
    let _t = TIMING.write().await;
    let (url, seen) = arrival_server();
    let n = 20_000u64;
    let r = bench(json!({
        "target": {"url": url, "api": "http", "method": "POST", "body": "{{seq}}"},
        // The backlog cap raised to the whole run: every request waits for
        // its slot (the default cap would count the excess as not sent).
        "workload": {"pattern": "open-loop", "rate": 1_000_000, "arrival": "constant", "total_requests": n,
                     "max_concurrency": 16, "max_in_flight": n},
    }))
    .await;
    assert_eq!((r.total_requests, r.successes, r.errors), (n, n, 0), "every request answered and counted");
    assert_eq!(r.not_sent, 0);
    assert_eq!(seen.lock().unwrap().len() as u64, n);
    let pacer = r.client.pacer.as_ref().expect("an open loop reports its pacer");
    match pacer.priority.as_str() {
        "sched_fifo" => assert!(pacer.demotions >= 1, "behind for the whole run, never demoted: {pacer:?}"),
        "normal" => assert_eq!(pacer.demotions, 0),
        other => panic!("unexpected pacer priority {other:?}"),
    }
}

fn hist_from(values: impl Iterator<Item = u64>) -> hdrhistogram::Histogram<u64> {
    let mut h = aibench::loadgen::stats::new_hist();
    for v in values {
        h.saturating_record(v.max(1));
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_equals_one_run_over_both() {
    let _shared = TIMING.read().await;
    let s = sim("opt-125m-cpu", |c| c.profile.step_base_ms = 0.3).await;
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    let mut lines: Vec<Value> = Vec::new();
    for i in 0..2 {
        let log = dir.path().join(format!("r{i}.jsonl"));
        reports.push(
            bench(json!({
                "target": {"url": s.url()},
                "workload": {"pattern": "closed-loop", "users": 3, "requests_per_user": 20 + 10 * i},
                "dataset": {"prompt_tokens": 10, "output_tokens": 6 + i, "seed": i},
                "per_request_log": log.to_str().unwrap(),
            }))
            .await,
        );
        lines.extend(std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    }
    // One run after the other is not one experiment: refused by default,
    // merged flagged when asked.
    let e = Report::merge(&reports).unwrap_err();
    assert!(e.contains("all sending for only 0%") && e.contains("allow_partial_overlap"), "{e}");
    let partial = aibench::loadgen::report::MergeOpts { allow_partial: true, ..Default::default() };
    let merged = Report::merge_with(&reports, partial).unwrap();
    let o = merged.overlap.clone().unwrap();
    assert!(o.partial && o.share < 0.01 && !o.gang_started && o.clock_offset_bound_s.is_none(), "{o:?}");
    assert!(merged.warnings.iter().any(|w| w.starts_with("partial overlap")), "{:?}", merged.warnings);
    assert_eq!(merged.total_requests, 150);
    assert_eq!(merged.successes, reports[0].successes + reports[1].successes);
    assert_eq!(merged.tokens.output_total, 60 * 6 + 90 * 7);
    // Rebuild every distribution from the raw per-request records of both runs.
    let e2e = hist_from(lines.iter().filter_map(|l| l["e2e_us"].as_u64()));
    let ttft = hist_from(lines.iter().filter_map(|l| l["ttft_us"].as_u64()));
    let itl = hist_from(lines.iter().flat_map(|l| l["itl_us"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap())));
    for (name, h, sum) in
        [("e2e", &e2e, &merged.latency_ms), ("ttft", &ttft, &merged.ttft_ms), ("itl", &itl, &merged.itl_ms)]
    {
        let want = aibench::loadgen::stats::Summary::of(h).unwrap();
        assert_eq!(sum.as_ref().unwrap(), &want, "{name} merged from two runs = computed over both runs' requests");
    }
    let back: Report = serde_json::from_str(&serde_json::to_string(&merged).unwrap()).unwrap();
    assert_eq!(back, merged, "results round-trip through JSON");
    let per_second: u64 = merged.timeseries.completed.iter().sum();
    let parts: u64 = reports.iter().map(|r| r.timeseries.completed.iter().sum::<u64>()).sum();
    assert_eq!(per_second, parts, "the merged time series keeps every completion");
    // A damaged result is refused, not merged into nonsense.
    let mut bad = reports[1].clone();
    bad.timeseries.completed.pop();
    let e = Report::merge(&[reports[0].clone(), bad]).unwrap_err();
    assert!(e.contains("result 2") && e.contains("timeseries"), "{e}");
    let mut bad = reports[0].clone();
    bad.window_start_unix = f64::NAN;
    let e = Report::merge(&[bad, reports[1].clone()]).unwrap_err();
    assert!(e.contains("result 1") && e.contains("window_start_unix"), "{e}");

    // Two clients side by side over the same window: one experiment, with
    // rates over the common window, which is the whole window: twice one's.
    let one = &reports[1];
    let twin = Report::merge(&[one.clone(), one.clone()]).unwrap();
    let o = twin.overlap.clone().unwrap();
    assert!((o.share - 1.0).abs() < 1e-9 && !o.partial && o.start_spread_s == 0.0, "{o:?}");
    assert!((twin.throughput_req_per_sec - 2.0 * one.throughput_req_per_sec).abs() < 1e-6 * one.throughput_req_per_sec);
    assert!((twin.tokens.output_per_s - 2.0 * one.tokens.output_per_s).abs() < 1e-6 * one.tokens.output_per_s);
    // The same two, one started a third of its window late: rates over the
    // common window count only what each did inside it.
    let mut late = one.clone();
    let lag = (one.window_end_unix - one.window_start_unix) / 3.0;
    late.window_start_unix += lag;
    late.window_end_unix += lag;
    late.timeseries.origin_unix += lag;
    let e = Report::merge(&[one.clone(), late.clone()]).unwrap_err();
    assert!(e.contains("for only 50%"), "{e}");
    let staggered = Report::merge_with(&[one.clone(), late.clone()], partial).unwrap();
    let o = staggered.overlap.clone().unwrap();
    assert!((o.common_s - 2.0 * lag).abs() < 1e-6 && o.partial, "{o:?}");
    assert!((o.start_spread_s - lag).abs() < 1e-6, "{o:?}");
    // Inside the common window both ran at their own rate: two clients' rate.
    let (got, want) = (staggered.throughput_req_per_sec, twin.throughput_req_per_sec);
    assert!((got - want).abs() < 0.15 * want, "staggered {got} vs side by side {want}");
    // A gang's clock offsets put the windows on one clock: the late task,
    // whose clock ran `lag` ahead, started with the other.
    let gang = |offset: f64| aibench::loadgen::gang::GangInfo {
        clock_offset_s: offset,
        clock_offset_bound_s: 0.001,
        ..Default::default()
    };
    let mut a = one.clone();
    a.gang = Some(gang(0.0));
    late.gang = Some(gang(-lag));
    let aligned = Report::merge(&[a, late]).unwrap();
    let o = aligned.overlap.unwrap();
    assert!(o.gang_started && o.share > 0.999 && o.clock_offset_bound_s == Some(0.001), "{o:?}");
    assert!((aligned.throughput_req_per_sec - twin.throughput_req_per_sec).abs() < 1e-6 * want);
    // The per-second series go on the same clock too: a part whose clock ran
    // 2 s ahead adds up second by second with the other as the side-by-side
    // pair's do (not 2 s later).
    let mut ahead = one.clone();
    ahead.window_start_unix += 2.0;
    ahead.window_end_unix += 2.0;
    ahead.timeseries.origin_unix += 2.0;
    ahead.gang = Some(gang(-2.0));
    let mut b = one.clone();
    b.gang = Some(gang(0.0));
    let series = Report::merge(&[b, ahead]).unwrap().timeseries;
    assert_eq!(series.completed, twin.timeseries.completed);
    assert_eq!(series.output_tokens, twin.timeseries.output_tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_gives_partial_results() {
    let _shared = TIMING.read().await;
    let s = sim("opt-125m-cpu", |_| {}).await;
    let (tx, rx) = watch::channel(None);
    let spec = loadgen::ValidSpec::from_json(json!({
        "target": {"url": s.url()},
        "workload": {"pattern": "closed-loop", "users": 4, "duration_s": 30},
        "dataset": {"prompt_tokens": 10, "output_tokens": 30},
    }))
    .unwrap();
    let t = tokio::spawn(loadgen::run(spec, Control::new(rx)));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let began = std::time::Instant::now();
    tx.send(Some("SIGINT")).unwrap();
    let r = t.await.unwrap().unwrap();
    assert!(began.elapsed() < Duration::from_secs(4));
    assert!(r.interrupted);
    assert!(r.successes > 0);
    assert_eq!(r.errors, 0, "in-flight requests finish cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apis_urls_and_progress() {
    let _shared = TIMING.read().await;
    let a = sim("instant", |_| {}).await;
    let b = sim("instant", |_| {}).await;
    let r = bench(json!({
        "target": {"url": [a.url(), b.url()], "api": "openai-chat"},
        "workload": {"pattern": "closed-loop", "users": 2, "requests_per_user": 10},
        "dataset": {"prompts": ["hello there", "how are you"], "output_tokens": 5},
    }))
    .await;
    assert_eq!(r.successes, 20);
    assert_eq!(total(&metrics(&a).await, "vllm:request_success_total"), 10.0, "round-robin over both");
    assert_eq!(total(&metrics(&b).await, "vllm:request_success_total"), 10.0);
    assert_eq!(r.tokens.input_total, 10 * 2 + 10 * 3);
    for api in ["ollama-generate", "ollama-chat"] {
        let r = bench(json!({
            "target": {"url": a.url(), "api": api},
            "workload": {"pattern": "closed-loop", "users": 1, "requests_per_user": 4},
            "dataset": {"prompt_tokens": 5, "output_tokens": 6},
        }))
        .await;
        assert_eq!(r.successes, 4, "{api}");
        assert_eq!(r.tokens.output_total, 24, "{api}: num_predict is honoured");
        assert_eq!(r.tokens.output_source, "usage");
        assert!(r.ttft_ms.is_some());
    }
    let r = bench(json!({
        "target": {"url": a.url(), "stream": false},
        "workload": {"pattern": "closed-loop", "users": 1, "requests_per_user": 3},
        "dataset": {"prompt_tokens": 5, "output_tokens": 6},
    }))
    .await;
    assert_eq!(r.tokens.output_total, 18);
    assert!(r.ttft_ms.is_none(), "no TTFT without streaming");
    let r = bench(json!({
        "target": {"url": format!("{}/v1/models", a.url()), "api": "http"},
        "workload": {"pattern": "closed-loop", "users": 2, "requests_per_user": 25},
    }))
    .await;
    assert_eq!(r.successes, 50);
    assert_eq!(r.tokens.output_source, "none");
    // Progress snapshots arrive about once a second.
    let (_tx, rx) = watch::channel(None);
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
    let spec = loadgen::ValidSpec::from_json(json!({
        "target": {"url": a.url()},
        "workload": {"pattern": "open-loop", "rate": 50, "duration_s": 2.2},
    }))
    .unwrap();
    let r = loadgen::run(spec, Control { stop: rx, progress: Some(ptx), gang: None }).await.unwrap();
    let mut snaps = Vec::new();
    while let Ok(p) = prx.try_recv() {
        snaps.push(p);
    }
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    assert!(snaps[1].completed > snaps[0].completed);
    assert!(r.timeseries.completed.iter().sum::<u64>() == r.successes);
}

#[test]
fn bad_specs_name_the_field() {
    let bad = |v: Value| loadgen::ValidSpec::from_json(v).unwrap_err().to_string();
    let url = json!({"url": "http://127.0.0.1:8000"});
    let e = bad(json!({"target": url, "workload": {"pattern": "zigzag", "users": 1}}));
    assert_eq!(
        e,
        "workload.pattern: expected \"closed-loop\", \"open-loop\", \"trace\" or \"sessions\", got \"zigzag\""
    );
    let e = bad(json!({"target": url, "workload": {"pattern": "open-loop", "rate": -5, "duration_s": 1}}));
    assert_eq!(e, "workload.rate: expected a positive number (at most 1e9), got -5");
    let e = bad(json!({"target": {}, "workload": {"pattern": "open-loop", "rate": 5, "duration_s": 1}}));
    assert!(e.starts_with("target: missing field `url`"), "{e}");
    let e = bad(json!({"target": url, "workload": {"pattern": "closed-loop", "users": "ten", "duration_s": 1}}));
    assert!(e.starts_with("workload.users: invalid type: string \"ten\""), "{e}");
    let e = bad(json!({"target": url, "workload": {"pattern": "closed-loop", "users": 2}}));
    assert!(e.contains("duration_s, requests_per_user or total_requests"), "{e}");
    let e = bad(
        json!({"target": {"url": "https://x"}, "workload": {"pattern": "closed-loop", "users": 2, "duration_s": 1}}),
    );
    assert!(e.contains("https is not supported"), "{e}");
    let e = bad(
        json!({"target": url, "workload": {"pattern": "closed-loop", "users": 1, "duration_s": 1, "think_time": 5}}),
    );
    assert!(e.contains("think_time"), "{e}");
}

#[tokio::test]
async fn unreadable_dataset_is_a_spec_error() {
    let _shared = TIMING.read().await;
    let (_tx, rx) = watch::channel(None);
    // Checked before the server is asked anything (no model given here).
    let spec = loadgen::ValidSpec::from_json(json!({
        "target": {"url": "http://127.0.0.1:9"},
        "workload": {"pattern": "closed-loop", "users": 1, "requests_per_user": 1},
        "dataset": {"type": "jsonl", "path": "/nonexistent/prompts.jsonl"},
    }))
    .unwrap();
    match loadgen::run(spec, Control::new(rx)).await {
        Err(loadgen::RunError::Spec(e)) => {
            let m = e.to_string();
            assert!(m.starts_with("dataset.path: cannot read '/nonexistent/prompts.jsonl'"), "{m}")
        }
        other => panic!("expected a spec error, got {:?}", other.map(|r| r.total_requests)),
    }
}

/// A TCP port nothing listens on.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_users_back_off_from_a_dead_server_and_the_run_stops_early() {
    // Load beside the timing tests would skew them.
    let _g = TIMING.write().await;
    let started = std::time::Instant::now();
    let r = bench(json!({
        "target": {"url": dead_url(), "model": "m"},
        "workload": {"pattern": "closed-loop", "users": 16, "duration_s": 30, "unreachable_s": 1.5},
    }))
    .await;
    let took = started.elapsed();
    let s = r.stopped_early.as_ref().expect("stopped early");
    assert_eq!(s.reason, "unreachable");
    assert!(s.message.starts_with(&format!("server unreachable since {}", s.since)), "{}", s.message);
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(5), "{took:?}");
    // Pauses of 10 ms doubling to 1 s: about 8 attempts per user in 1.5 s
    // (hundreds of thousands without them).
    assert!(r.total_requests <= 16 * 12, "{}", r.total_requests);
    assert_eq!(r.errors_by_class["connect"], r.total_requests);
    assert!(r.backoff.count + 16 >= r.total_requests, "{:?}", r.backoff);
    assert!(r.backoff.total_s > 16.0 * 0.5, "{:?}", r.backoff);
    assert!(r.error_samples["connect"].len() <= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_loop_keeps_its_schedule_against_a_dead_server_then_stops() {
    // Load beside the timing tests would skew them.
    let _g = TIMING.write().await;
    let r = bench(json!({
        "target": {"url": dead_url(), "model": "m"},
        "workload": {"pattern": "open-loop", "rate": 200, "arrival": "constant", "duration_s": 30, "unreachable_s": 1},
    }))
    .await;
    assert_eq!(r.stopped_early.as_ref().map(|s| s.reason.as_str()), Some("unreachable"));
    let rate = r.rate.as_ref().unwrap();
    assert!((rate.achieved_req_per_sec - 200.0).abs() < 20.0, "the schedule is the experiment: {rate:?}");
    assert!(r.total_requests >= 200 && r.total_requests < 400, "{}", r.total_requests);
    assert_eq!(r.backoff.count, 0, "open-loop sends do not back off");
    assert!(r.error_samples["connect"].len() <= 5, "error samples stay bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_going_runs_on_against_an_unreachable_server() {
    // Load beside the timing tests would skew them.
    let _g = TIMING.write().await;
    let started = std::time::Instant::now();
    let r = bench(json!({
        "target": {"url": dead_url(), "model": "m"},
        "workload": {"pattern": "closed-loop", "users": 2, "duration_s": 1.5, "unreachable_s": 0.3, "keep_going": true},
    }))
    .await;
    assert!(r.stopped_early.is_none());
    assert!(started.elapsed() >= Duration::from_secs(1), "ran past the 0.3 s limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_mid_run_ends_it_early_with_every_request_counted() {
    // Load beside the timing tests would skew them.
    let _g = TIMING.write().await;
    let mut s = sim("instant", |_| {}).await;
    let spec = loadgen::ValidSpec::from_json(json!({
        "target": {"url": s.url(), "timeout_s": 5},
        "workload": {"pattern": "closed-loop", "users": 16, "duration_s": 30, "unreachable_s": 1},
        "dataset": {"prompt_tokens": 4, "output_tokens": 4},
    }))
    .unwrap();
    let (_tx, rx) = watch::channel(None);
    let t = tokio::spawn(loadgen::run(spec, Control::new(rx)));
    tokio::time::sleep(Duration::from_millis(800)).await;
    s.stop(Duration::from_secs(1)).await;
    let r = t.await.unwrap().unwrap();
    assert!(r.stopped_early.is_some(), "stopped once nothing answered for 1 s");
    assert!(r.successes > 100, "{}", r.successes);
    assert_eq!(r.successes + r.errors, r.total_requests);
    assert!(r.errors < 16 * 12, "{} errors: users backed off", r.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_cut_short_are_short_outputs_kept_out_of_tpot() {
    let _g = TIMING.write().await;
    let mut s = sim("opt-125m-cpu", |_| {}).await;
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("r.jsonl");
    let spec = loadgen::ValidSpec::from_json(json!({
        "target": {"url": s.url()},
        "workload": {"pattern": "closed-loop", "users": 4, "duration_s": 30, "unreachable_s": 0.5},
        "dataset": {"prompt_tokens": 8, "output_tokens": 400},
        "per_request_log": log.to_str().unwrap(),
    }))
    .unwrap();
    let (_tx, rx) = watch::channel(None);
    let t = tokio::spawn(loadgen::run(spec, Control::new(rx)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Stopping ends the in-flight streams with finish_reason "abort" and [DONE].
    s.stop(Duration::from_secs(2)).await;
    let r = t.await.unwrap().unwrap();
    let lines: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let short = lines.iter().filter(|l| l["ok"] == true && l["output_tokens"].as_u64().unwrap() < 400).count() as u64;
    assert!(short >= 1, "some streams were cut short");
    assert_eq!(r.short_outputs, short);
    let full = r.successes - r.short_outputs;
    assert_eq!(r.tpot_ms.as_ref().map(|t| t.count).unwrap_or(0), full, "short outputs are not in TPOT");
}

/// Each URL's share, by URL.
fn share<'a>(r: &'a Report, url: &str) -> &'a aibench::loadgen::report::UrlReport {
    r.per_url.iter().find(|u| u.url == url).unwrap_or_else(|| panic!("no per_url entry for {url}: {:?}", r.per_url))
}

/// Over the URLs, successes and errors add up to the run's.
fn assert_shares_add_up(r: &Report) {
    let ok: u64 = r.per_url.iter().map(|u| u.ok).sum();
    let errors: u64 = r.per_url.iter().map(|u| u.errors).sum();
    let requests: u64 = r.per_url.iter().map(|u| u.requests).sum();
    assert_eq!((ok, errors, requests), (r.successes, r.errors, r.total_requests), "{:?}", r.per_url);
    for u in &r.per_url {
        assert_eq!(u.ok + u.errors, u.requests, "{u:?}");
        assert_eq!(u.errors_by_class.values().sum::<u64>(), u.errors, "{u:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_instances_share_the_load_and_each_has_its_own_figures() {
    let _shared = TIMING.read().await;
    let good = sim("instant", |_| {}).await;
    let failing = sim("instant", |c| c.faults = Faults { fail_rate: 1.0, ..Default::default() }).await;
    let dead = dead_url();
    // The open loop does not back off from refused requests: the run is short.
    let r = bench(json!({
        "target": {"url": [good.url(), failing.url(), dead.clone()], "timeout_s": 5},
        "workload": {"pattern": "open-loop", "rate": 300, "arrival": "constant", "total_requests": 60},
        "dataset": {"prompt_tokens": 4, "output_tokens": 4},
    }))
    .await;
    assert_eq!(r.balance, "round_robin");
    assert_eq!(r.total_requests, 60);
    let urls: Vec<&str> = r.per_url.iter().map(|u| u.url.as_str()).collect();
    assert_eq!(urls, [good.url(), failing.url(), dead.clone()], "in target.urls order");
    assert_shares_add_up(&r);
    for u in &r.per_url {
        assert_eq!(u.requests, 20, "round robin: equal shares: {u:?}");
    }
    let (g, f, d) = (share(&r, &good.url()), share(&r, &failing.url()), share(&r, &dead));
    assert_eq!((g.ok, g.errors), (20, 0));
    assert_eq!(f.errors_by_class.get("http_5xx"), Some(&20), "{f:?}");
    assert_eq!(d.errors_by_class.get("connect"), Some(&20), "{d:?}");
    assert_eq!(total(&metrics(&good).await, "vllm:request_success_total"), 20.0, "the server saw its share");
    assert_eq!(g.ttft_ms.as_ref().unwrap().count, 20);
    assert_eq!(g.ttft_ms, r.ttft_ms, "only the good instance answered: its TTFT is the run's");
    assert!(f.ttft_ms.is_none() && d.ttft_ms.is_none() && d.latency_ms.is_none());

    // One URL: its share is the totals, so every result has the same shape.
    let one = bench(json!({
        "target": {"url": good.url()},
        "workload": {"pattern": "closed-loop", "users": 2, "requests_per_user": 5},
        "dataset": {"prompt_tokens": 4, "output_tokens": 4},
    }))
    .await;
    assert_eq!(one.per_url.len(), 1);
    assert_eq!((one.per_url[0].requests, one.per_url[0].ok), (10, 10));
    assert_eq!(one.per_url[0].ttft_ms, one.ttft_ms);
    assert_eq!(one.per_url[0].latency_ms, one.latency_ms);

    // Merged parts (client nodes) add up by URL; the histograms too.
    let partial = aibench::loadgen::report::MergeOpts { allow_partial: true, ..Default::default() };
    let m = Report::merge_with(&[r.clone(), r.clone(), one.clone()], partial).unwrap();
    assert_shares_add_up(&m);
    assert_eq!(m.per_url.len(), 3, "{:?}", m.per_url);
    let mg = share(&m, &good.url());
    assert_eq!((mg.requests, mg.ok), (20 + 20 + 10, 50));
    assert_eq!(share(&m, &dead).errors_by_class.get("connect"), Some(&40));
    // The good URL's TTFT over all three parts is the merged run's (the only answers).
    assert_eq!(mg.ttft_ms, m.ttft_ms);
    assert_eq!(mg.latency_ms, m.latency_ms);
    let back: Report = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m, "per_url round-trips through JSON");
    // A result from before per_url and balance were kept still reads (round
    // robin, the only way there was); merged with it, no share is claimed
    // that would not add up to the totals.
    let mut old = serde_json::to_value(&one).unwrap();
    let o = old.as_object_mut().unwrap();
    o.remove("per_url");
    o.remove("balance");
    let old: Report = serde_json::from_value(old).unwrap();
    assert!(old.per_url.is_empty() && old.balance == "round_robin");
    let m = Report::merge_with(&[one.clone(), old], partial).unwrap();
    assert!(m.per_url.is_empty(), "{:?}", m.per_url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_outstanding_sends_fewer_to_a_slow_instance_and_round_robin_does_not() {
    let _shared = TIMING.read().await;
    let fast = sim("instant", |_| {}).await;
    // The same model, 5 ms per engine step: about 45 ms a request.
    let slow = sim("instant", |c| c.profile.step_base_ms = 5.0).await;
    let run = |balance: &str| {
        bench(json!({
            "target": {"url": [fast.url(), slow.url()], "balance": balance},
            "workload": {"pattern": "closed-loop", "users": 4, "total_requests": 200},
            "dataset": {"prompt_tokens": 4, "output_tokens": 8},
        }))
    };
    let rr = run("round_robin").await;
    assert_eq!(rr.balance, "round_robin");
    assert_eq!(rr.errors, 0);
    assert_shares_add_up(&rr);
    let (f, s) = (share(&rr, &fast.url()).requests, share(&rr, &slow.url()).requests);
    assert!(f.abs_diff(s) <= 1 && f + s == 200, "round robin: equal counts ±1, got {f} and {s}");
    let lo = run("least_outstanding").await;
    assert_eq!(lo.balance, "least_outstanding");
    assert_eq!(lo.errors, 0);
    assert_shares_add_up(&lo);
    let (f, s) = (share(&lo, &fast.url()).requests, share(&lo, &slow.url()).requests);
    assert_eq!(f + s, 200);
    assert!(s > 0 && s * 3 < f, "least outstanding: the slow instance should get far fewer, got fast {f}, slow {s}");
    assert!(
        share(&lo, &slow.url()).ttft_ms.as_ref().unwrap().p50 > share(&lo, &fast.url()).ttft_ms.as_ref().unwrap().p50,
        "each instance's TTFT is its own"
    );
    // A value that is neither is refused, naming the field and the choices.
    let e = loadgen::ValidSpec::from_json(json!({"target": {"url": fast.url(), "balance": "fastest"},
        "workload": {"pattern": "closed-loop", "users": 1}}))
    .unwrap_err()
    .to_string();
    assert_eq!(e, "target.balance: unknown variant 'fastest'; expected one of: round_robin, least_outstanding");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_its_instance_for_every_turn() {
    let _shared = TIMING.read().await;
    let a = sim("instant", |_| {}).await;
    let b = sim("instant", |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    for balance in ["round_robin", "least_outstanding"] {
        let log = dir.path().join(format!("{balance}.jsonl"));
        let r = bench(json!({
            "target": {"url": [a.url(), b.url()], "api": "openai-chat", "balance": balance},
            "workload": {"pattern": "sessions", "users": 1, "total_sessions": 4, "turns": 3},
            "dataset": {"prompt_tokens": 8, "output_tokens": 4},
            "per_request_log": log.to_str().unwrap(),
        }))
        .await;
        assert_eq!(r.sessions.as_ref().unwrap().completed, 4);
        assert_shares_add_up(&r);
        // One user: the log is in send order, session after session.
        let lines: Vec<Value> =
            std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 12);
        let sessions: Vec<Vec<u64>> =
            lines.chunks(3).map(|c| c.iter().map(|l| l["target"].as_u64().unwrap()).collect()).collect();
        for (i, s) in sessions.iter().enumerate() {
            assert_eq!(lines[i * 3]["turn"], 1, "{balance}: {lines:?}");
            assert!(s.iter().all(|t| *t == s[0]), "{balance}: session {} moved between instances: {s:?}", i + 1);
        }
        // Sessions one at a time: both ways, each starts on the next instance.
        let firsts: Vec<u64> = sessions.iter().map(|s| s[0]).collect();
        assert_eq!(firsts, [0, 1, 0, 1], "{balance}");
        assert_eq!((share(&r, &a.url()).requests, share(&r, &b.url()).requests), (6, 6));
    }
}
