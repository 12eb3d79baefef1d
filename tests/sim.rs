//! The simulator against a plain HTTP client and the real vLLM fixtures.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aibench::prom::expfmt;
use aibench::sim::{Faults, Profile, SimConfig, SimServer};
use serde_json::{Value, json};

mod support;
use support::http;

/// Timing assertions run one at a time so they do not disturb each other.
static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn sim(profile: &str, tweak: impl FnOnce(&mut SimConfig)) -> SimServer {
    let mut cfg = SimConfig::new(Profile::load(profile).unwrap());
    tweak(&mut cfg);
    aibench::sim::start(cfg).await.unwrap()
}

fn words(n: usize) -> String {
    (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")
}

fn completion(prompt_words: usize, max_tokens: u32, stream: bool, usage: bool) -> String {
    serde_json::json!({
        "prompt": words(prompt_words), "max_tokens": max_tokens, "ignore_eos": true, "stream": stream,
        "stream_options": {"include_usage": usage}
    })
    .to_string()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Data events (without `[DONE]`) parsed as JSON.
fn chunks(events: &[(Instant, String)]) -> Vec<(Instant, Value)> {
    events.iter().filter(|(_, d)| d != "[DONE]").map(|(t, d)| (*t, serde_json::from_str(d).unwrap())).collect()
}

fn content_of(v: &Value) -> Option<String> {
    let c = v.get("choices")?.get(0)?;
    let s = c.get("text").or_else(|| c.get("delta").and_then(|d| d.get("content")))?.as_str()?;
    (!s.is_empty()).then(|| s.to_string())
}

fn key_shape(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    fn walk(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = format!("{prefix}.{k}");
                    out.insert(p.clone());
                    walk(&p, x, out);
                }
            }
            Value::Array(a) => {
                if let Some(first) = a.first() {
                    walk(&format!("{prefix}[]"), first, out);
                }
            }
            _ => {}
        }
    }
    walk("", v, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_families_labels_and_buckets_match_vllm() {
    let s = sim("opt-125m-cpu", |c| {
        c.profile.max_model_len = 2048; // the fixture's model
        c.model = "tiny-model".into();
    })
    .await;
    let r = http::post(&s.url(), "/v1/completions", &completion(10, 5, false, false)).await;
    assert_eq!(r.status, 200);
    let ours = expfmt::parse(&http::get(&s.url(), "/metrics").await.text()).unwrap();
    let real = expfmt::parse(&fixture("vllm-0.32-cpu-metrics.txt")).unwrap();
    let required = [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:request_success_total",
        "vllm:num_preemptions_total",
        "vllm:time_to_first_token_seconds",
        "vllm:inter_token_latency_seconds",
        "vllm:e2e_request_latency_seconds",
        "vllm:request_queue_time_seconds",
        "vllm:request_prefill_time_seconds",
        "vllm:request_decode_time_seconds",
        "vllm:request_prompt_tokens",
        "vllm:request_generation_tokens",
    ];
    for name in required {
        assert!(expfmt::family(&ours, name).is_some(), "simulator lacks {name}");
    }
    let mut compared = 0;
    for f in ours.iter().filter(|f| f.name.starts_with("vllm:")) {
        let r = expfmt::family(&real, &f.name).unwrap_or_else(|| panic!("{} is not a vLLM 0.32 family", f.name));
        assert_eq!(f.kind, r.kind, "{}: type", f.name);
        let label_keys = |fam: &expfmt::Family| -> BTreeSet<Vec<String>> {
            fam.samples
                .iter()
                .filter(|s| !s.name.ends_with("_created"))
                .map(|s| s.labels.keys().cloned().collect())
                .collect()
        };
        assert_eq!(label_keys(f), label_keys(r), "{}: label sets", f.name);
        if f.kind == expfmt::Kind::Histogram {
            let bounds = |fam: &expfmt::Family| fam.histograms()[0].buckets.iter().map(|b| b.0).collect::<Vec<_>>();
            assert_eq!(bounds(f), bounds(r), "{}: bucket bounds", f.name);
        }
        if f.name == "vllm:request_success_total" {
            let reasons = |fam: &expfmt::Family| -> BTreeSet<String> {
                fam.samples.iter().filter_map(|s| s.labels.get("finished_reason").cloned()).collect()
            };
            assert_eq!(reasons(f), reasons(r), "finished_reason values");
        }
        compared += 1;
    }
    assert!(compared >= 15, "compared only {compared} families");
    assert_eq!(
        expfmt::family(&ours, "vllm:request_success_total").unwrap().samples[0].labels["model_name"],
        "tiny-model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_chunk_shapes_match_vllm() {
    let s = sim("instant", |_| {}).await;
    let real = |name: &str| {
        let r = http::Response { pieces: vec![(Instant::now(), fixture(name).into_bytes())], ..Default::default() };
        chunks(&r.sse_events()).into_iter().map(|(_, v)| v).collect::<Vec<_>>()
    };
    // completions: token chunks, last token chunk, usage chunk
    let fx = real("vllm-0.32-cpu-completions-stream.txt");
    let r = http::post(&s.url(), "/v1/completions", &completion(5, 6, true, true)).await;
    let ours: Vec<Value> = chunks(&r.sse_events()).into_iter().map(|(_, v)| v).collect();
    assert_eq!(ours.len(), fx.len());
    for (i, (a, b)) in ours.iter().zip(&fx).enumerate() {
        assert_eq!(key_shape(a), key_shape(b), "completions chunk {i}");
    }
    assert_eq!(ours[5]["choices"][0]["finish_reason"], "length");
    assert_eq!(ours[6]["usage"]["completion_tokens"], 6);
    // chat: role chunk first, then content, last content, usage
    let fx = real("vllm-0.32-cpu-chat-stream.txt");
    let body = serde_json::json!({"messages": [{"role": "user", "content": words(20)}], "max_tokens": 6,
        "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}})
    .to_string();
    let r = http::post(&s.url(), "/v1/chat/completions", &body).await;
    let ours: Vec<Value> = chunks(&r.sse_events()).into_iter().map(|(_, v)| v).collect();
    assert_eq!(ours.len(), fx.len());
    for (i, (a, b)) in ours.iter().zip(&fx).enumerate() {
        assert_eq!(key_shape(a), key_shape(b), "chat chunk {i}");
    }
    assert_eq!(ours[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(ours.last().unwrap()["usage"]["prompt_tokens"], 20);
    // non-streamed completion
    let fx: Value = serde_json::from_str(&fixture("vllm-0.32-cpu-completions.json")).unwrap();
    let r = http::post(&s.url(), "/v1/completions", &completion(10, 5, false, false)).await;
    assert_eq!(key_shape(&r.json()), key_shape(&fx));
    assert_eq!(r.json()["usage"]["completion_tokens"], 5);
    assert_eq!(r.json()["usage"]["prompt_tokens"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_framing_done_last_usage_only_when_asked() {
    let s = sim("instant", |_| {}).await;
    for usage in [false, true] {
        let r = http::post(&s.url(), "/v1/completions", &completion(3, 8, true, usage)).await;
        assert!(r.complete);
        assert!(r.header("content-type").unwrap().starts_with("text/event-stream"));
        let ev = r.sse_events();
        assert_eq!(ev.last().unwrap().1, "[DONE]");
        assert_eq!(ev.iter().filter(|(_, d)| d == "[DONE]").count(), 1);
        let with_usage = chunks(&ev).iter().filter(|(_, v)| v.get("usage").is_some()).count();
        assert_eq!(with_usage, usize::from(usage));
        assert_eq!(chunks(&ev).iter().filter(|(_, v)| content_of(v).is_some()).count(), 8);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_load_timing_matches_the_profile() {
    let _g = TIMING.lock().await;
    let p = Profile::load("opt-125m-cpu").unwrap();
    let s = sim("opt-125m-cpu", |_| {}).await;
    let prompt = 50;
    let want_ttft = p.step_seconds(1, prompt as u64);
    let want_itl = p.step_seconds(1, 0);
    let mut ttfts = Vec::new();
    let mut itls = Vec::new();
    for _ in 0..5 {
        let r = http::post(&s.url(), "/v1/completions", &completion(prompt, 20, true, false)).await;
        let toks: Vec<Instant> =
            chunks(&r.sse_events()).into_iter().filter(|(_, v)| content_of(v).is_some()).map(|(t, _)| t).collect();
        assert_eq!(toks.len(), 20);
        ttfts.push(toks[0].duration_since(r.sent_at.unwrap()).as_secs_f64());
        itls.extend(toks.windows(2).map(|w| w[1].duration_since(w[0]).as_secs_f64()));
    }
    ttfts.sort_by(f64::total_cmp);
    let ttft = ttfts[2];
    let itl = itls.iter().sum::<f64>() / itls.len() as f64;
    // Tolerance: TTFT within 1.5 ms of the model (HTTP and scheduling on top);
    // mean ITL within 5% + 0.1 ms (absolute deadlines keep the clock exact).
    assert!((ttft - want_ttft).abs() < 0.0015, "TTFT {ttft:.4} s, profile says {want_ttft:.4} s");
    assert!((itl - want_itl).abs() < want_itl * 0.05 + 0.0001, "ITL {itl:.5} s, profile says {want_itl:.5} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queueing_beyond_max_num_seqs() {
    let _g = TIMING.lock().await;
    let s = sim("opt-125m-cpu", |c| c.profile.max_num_seqs = 2).await;
    let url = s.url();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let u = url.clone();
        tasks.push(tokio::spawn(
            async move { http::post(&u, "/v1/completions", &completion(10, 30, true, false)).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let m = expfmt::parse(&http::get(&url, "/metrics").await.text()).unwrap();
    let waiting = expfmt::family(&m, "vllm:num_requests_waiting").unwrap().total();
    let running = expfmt::family(&m, "vllm:num_requests_running").unwrap().total();
    assert_eq!(running, 2.0);
    assert!(waiting >= 3.0, "waiting = {waiting}");
    let mut ttfts = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        let first = chunks(&r.sse_events()).into_iter().find(|(_, v)| content_of(v).is_some()).unwrap().0;
        ttfts.push(first.duration_since(r.sent_at.unwrap()).as_secs_f64());
    }
    ttfts.sort_by(f64::total_cmp);
    // Two run at once; the rest wait for whole 30-token generations.
    let step = Profile::load("opt-125m-cpu").unwrap().step_seconds(2, 0);
    assert!(ttfts[5] > 2.0 * 29.0 * step, "last TTFT {:.3} s should include two queued generations", ttfts[5]);
    assert!(ttfts[2] > 25.0 * step, "third TTFT {:.3} s should include one queued generation", ttfts[2]);
    let m = expfmt::parse(&http::get(&url, "/metrics").await.text()).unwrap();
    let queue = &expfmt::family(&m, "vllm:request_queue_time_seconds").unwrap().histograms()[0];
    assert_eq!(queue.count, 6.0);
    assert!(queue.sum > 4.0 * 25.0 * step, "queue time sum {}", queue.sum);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_equal_what_was_served() {
    let s = sim("instant", |c| c.seed = 42).await;
    let n = 20;
    let (mut streamed, mut prompt_total) = (0usize, 0usize);
    for i in 0..n {
        // No ignore_eos: the simulator picks each output length itself.
        let body = serde_json::json!({"prompt": words(3 + i), "max_tokens": 40, "stream": true}).to_string();
        let r = http::post(&s.url(), "/v1/completions", &body).await;
        streamed += chunks(&r.sse_events()).iter().filter(|(_, v)| content_of(v).is_some()).count();
        prompt_total += 3 + i;
    }
    let m = expfmt::parse(&http::get(&s.url(), "/metrics").await.text()).unwrap();
    let total = |name: &str| expfmt::family(&m, name).unwrap().total();
    assert_eq!(total("vllm:request_success_total"), n as f64);
    assert_eq!(total("vllm:generation_tokens_total"), streamed as f64);
    assert_eq!(total("vllm:prompt_tokens_total"), prompt_total as f64);
    let h = |name: &str| expfmt::family(&m, name).unwrap().histograms()[0].clone();
    assert_eq!(h("vllm:e2e_request_latency_seconds").count, n as f64);
    assert_eq!(h("vllm:request_generation_tokens").sum, streamed as f64);
    assert_eq!(h("vllm:inter_token_latency_seconds").count, (streamed - n) as f64);
    let stops = expfmt::family(&m, "vllm:request_success_total")
        .unwrap()
        .samples
        .iter()
        .find(|s| s.labels["finished_reason"] == "stop")
        .unwrap()
        .value;
    assert!(stops > 0.0, "some requests should stop before max_tokens without ignore_eos");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_produce_exactly_their_failure() {
    let s = sim("instant", |c| c.faults = Faults { fail_rate: 1.0, ..Default::default() }).await;
    let r = http::post(&s.url(), "/v1/completions", &completion(3, 5, true, false)).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["code"], 500);

    let s = sim("instant", |c| c.faults = Faults { disconnect_rate: 1.0, ..Default::default() }).await;
    let r = http::post(&s.url(), "/v1/completions", &completion(3, 10, true, false)).await;
    assert_eq!(r.status, 200);
    assert!(!r.complete, "the connection should drop before the body ends");
    let ev = r.sse_events();
    assert_eq!(ev.len(), 5, "half of the tokens arrive before the drop");
    assert!(ev.iter().all(|(_, d)| d != "[DONE]"));

    let s = sim("instant", |c| {
        c.faults = Faults { stall_rate: 1.0, stall: Duration::from_millis(300), ..Default::default() }
    })
    .await;
    let r = http::post(&s.url(), "/v1/completions", &completion(3, 10, true, false)).await;
    assert!(r.complete);
    let toks: Vec<Instant> =
        chunks(&r.sse_events()).into_iter().filter(|(_, v)| content_of(v).is_some()).map(|(t, _)| t).collect();
    assert_eq!(toks.len(), 10);
    let gaps: Vec<f64> = toks.windows(2).map(|w| w[1].duration_since(w[0]).as_secs_f64()).collect();
    assert_eq!(gaps.iter().filter(|g| **g >= 0.29).count(), 1, "exactly one stall: {gaps:?}");

    let s = sim("instant", |c| c.startup_delay = Duration::from_millis(400)).await;
    assert_eq!(http::get(&s.url(), "/health").await.status, 503);
    assert_eq!(http::post(&s.url(), "/v1/completions", &completion(3, 2, false, false)).await.status, 503);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(http::get(&s.url(), "/health").await.status, 200);
    assert_eq!(http::post(&s.url(), "/v1/completions", &completion(3, 2, false, false)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_vllm_errors_and_the_server_keeps_serving() {
    let s = sim("opt-125m-cpu", |c| c.profile.step_base_ms = 0.1).await;
    let u = s.url();
    let cases: Vec<(String, u16, &str, &str)> = vec![
        ("{\"prompt\": ".into(), 400, "Bad Request", "JSON decode error"),
        (
            r#"{"prompt": "x", "max_tokens": -5}"#.into(),
            400,
            "BadRequestError",
            "max_tokens must be at least 1, got -5.",
        ),
        (r#"{"prompt": "x", "model": "nope"}"#.into(), 404, "NotFoundError", "The model `nope` does not exist."),
        (
            format!(r#"{{"prompt": "{}", "max_tokens": 10}}"#, words(5000)),
            400,
            "BadRequestError",
            "maximum context length is 4096",
        ),
        (
            format!(r#"{{"prompt": "{}", "max_tokens": 200}}"#, words(4000)),
            400,
            "BadRequestError",
            "you requested 4200 tokens",
        ),
        (r#"{"prompt": "x", "n": 2}"#.into(), 400, "BadRequestError", "n must be 1"),
        (
            r#"{"max_tokens": 3}"#.into(),
            400,
            "Bad Request",
            "Either prompt or prompt_embeds must be provided and non-empty.",
        ),
    ];
    for (body, status, kind, msg) in cases {
        let r = http::post(&u, "/v1/completions", &body).await;
        assert_eq!(r.status, status, "{body:.60}");
        let e = r.json();
        assert_eq!(e["error"]["type"], kind);
        assert_eq!(e["error"]["code"], status);
        assert!(e["error"]["message"].as_str().unwrap().contains(msg), "{}", e["error"]["message"]);
    }
    let small = sim("opt-125m-cpu", |c| c.profile.kv_cache_tokens = 100).await;
    let r = http::post(&small.url(), "/v1/completions", &completion(80, 50, false, false)).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("KV-cache"));
    let r = http::post(&u, "/v1/completions", &completion(5, 3, false, false)).await;
    assert_eq!(r.status, 200, "still serving after bad requests");
    let r = http::post(&u, "/api/generate", r#"{"model": "nope", "prompt": "x"}"#).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_endpoints() {
    let s = sim("instant", |_| {}).await;
    let r =
        http::post(&s.url(), "/api/generate", r#"{"prompt": "why is the sky blue", "options": {"num_predict": 7}}"#)
            .await;
    assert!(r.header("content-type").unwrap().contains("ndjson"));
    let lines = r.ndjson();
    assert_eq!(lines.len(), 8);
    let last = &lines.last().unwrap().1;
    assert_eq!(last["done"], true);
    assert_eq!(last["eval_count"], 7);
    assert_eq!(last["prompt_eval_count"], 5);
    assert!(last["total_duration"].as_u64().unwrap() >= last["eval_duration"].as_u64().unwrap());
    assert!(lines[..7].iter().all(|(_, l)| l["done"] == false && !l["response"].as_str().unwrap().is_empty()));
    let r = http::post(
        &s.url(),
        "/api/chat",
        r#"{"messages": [{"role": "user", "content": "hi there"}], "stream": false, "options": {"num_predict": 4}}"#,
    )
    .await;
    let v = r.json();
    assert_eq!(v["message"]["role"], "assistant");
    assert_eq!(v["eval_count"], 4);
    assert_eq!(v["message"]["content"].as_str().unwrap().split_whitespace().count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_in_flight_streams_cleanly() {
    let mut s = sim("opt-125m-cpu", |_| {}).await;
    let u = s.url();
    let t = tokio::spawn(async move { http::post(&u, "/v1/completions", &completion(5, 2000, true, false)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.stop(Duration::from_secs(5)).await;
    let r = t.await.unwrap();
    assert!(r.complete, "the stream should end properly");
    let ev = r.sse_events();
    assert_eq!(ev.last().unwrap().1, "[DONE]");
    let last = chunks(&ev).pop().unwrap().1;
    assert_eq!(last["choices"][0]["finish_reason"], "abort");
}

#[test]
fn cli_prints_url_first_and_exits_0_on_sigterm() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aibench"))
        .args(["sim", "--port", "0", "--profile", "instant"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(http::get(&url, "/health")).status, 200);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));

    let o =
        std::process::Command::new(env!("CARGO_BIN_EXE_aibench")).args(["sim", "--fail-rate", "2"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("fail-rate: expected a probability"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_aibench"))
        .args(["sim", "--profile", "opt-125m"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean 'opt-125m-cpu'"));
}

/// One raw HTTP/1.1 exchange (the test client always sends JSON).
async fn raw(base: &str, request: String) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hostport = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(hostport).await.unwrap();
    sock.write_all(request.replace("HOST", hostport).as_bytes()).await.unwrap();
    let mut out = Vec::new();
    sock.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ct = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    (status, ct, body.to_string())
}

fn post_with(ct: Option<&str>, body: &str) -> String {
    let ct = ct.map(|c| format!("Content-Type: {c}\r\n")).unwrap_or_default();
    format!(
        "POST /v1/completions HTTP/1.1\r\nHost: HOST\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The cases of vLLM 0.32's `errors-2` fixture, answered the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_match_vllm_for_media_types_paths_methods_and_huge_prompts() {
    let s = sim("instant", |c| c.profile.max_model_len = 2048).await;
    let u = s.url();
    let fixture = fixture("vllm-0.32-cpu-errors-2.txt");
    let media = r#"{"error":{"message":"1 validation error:\n  Unsupported Media Type: Only 'application/json' is allowed","type":"Bad Request","param":null,"code":400}}"#;
    assert!(fixture.contains(media));
    let body = r#"{"model":"sim-instant","prompt":"hi","max_tokens":3}"#;
    for ct in [Some("text/plain"), None, Some("application/x-www-form-urlencoded")] {
        let (status, got_ct, got) = raw(&u, post_with(ct, body)).await;
        assert_eq!((status, got_ct.as_str()), (400, "application/json"), "{ct:?}");
        let (a, b): (Value, Value) = (serde_json::from_str(&got).unwrap(), serde_json::from_str(media).unwrap());
        assert_eq!(a, b, "{ct:?}");
    }
    let (status, _, got) = raw(&u, post_with(Some("application/json; charset=utf-8"), body)).await;
    assert_eq!(status, 200, "{got}");
    let (status, ct, got) = raw(&u, "GET /v1/nope HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n".into()).await;
    assert_eq!((status, ct.as_str(), got.as_str()), (404, "application/json", r#"{"detail":"Not Found"}"#));
    assert!(fixture.contains(r#"{"detail":"Not Found"}"#));
    let (status, ct, got) =
        raw(&u, "GET /v1/completions HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n".into()).await;
    assert_eq!((status, ct.as_str(), got.as_str()), (405, "application/json", r#"{"detail":"Method Not Allowed"}"#));
    assert!(fixture.contains(r#"{"detail":"Method Not Allowed"}"#));
    // A 12 MB prompt: vLLM's character bound, before tokenizing.
    let huge = format!(r#"{{"model":"sim-instant","prompt":"{}","max_tokens":2}}"#, "x".repeat(12_000_000));
    let r = http::post(&u, "/v1/completions", &huge).await;
    assert_eq!(r.status, 400);
    let e = r.json();
    assert_eq!(e["error"]["param"], "input_text");
    assert_eq!(
        e["error"]["message"],
        "This model's maximum context length is 2048 tokens. However, your prompt contains 12000000 characters (more than 131072 characters, which is the upper bound for 2048 input tokens). Please reduce the length of the input prompt. (parameter=input_text, value=12000000)"
    );
    // Beyond the simulator's body limit: still vLLM's JSON error shape (the
    // client waits for 100 Continue, which never comes: the answer is final).
    let head = "POST /v1/completions HTTP/1.1\r\nHost: HOST\r\nContent-Type: application/json\r\nContent-Length: 70000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";
    let (status, ct, got) = raw(&u, head.into()).await;
    assert_eq!((status, ct.as_str()), (413, "application/json"), "{got}");
    let e: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(e["error"]["code"], 413);
}

/// `/tokenize` and `/detokenize` in vLLM 0.32's shapes (the fixture), with a
/// real byte-level BPE tokenizer; the count is what a request is charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenize_and_detokenize_answer_as_vllm_does() {
    let tok = format!("{}/tests/fixtures/tokenizer-en-bpe-8k", env!("CARGO_MANIFEST_DIR"));
    let s = sim("instant", |c| {
        c.tokenizer = aibench::sim::tokens::SimTokenizer::load(&tok).unwrap();
        c.model = "tiny".into();
    })
    .await;
    let base = s.url();
    let m = "tiny";
    let fx = fixture("vllm-0.32-cpu-tokenize.txt");
    // The fixture's answers, by request line.
    let answer = |req: &str| -> Value {
        let mut lines = fx.lines().skip_while(|l| !l.starts_with(req));
        lines.next().unwrap_or_else(|| panic!("fixture has {req}"));
        serde_json::from_str(lines.next().unwrap()).unwrap()
    };
    let post = |body: Value| {
        let base = base.clone();
        async move { http::post(&base, "/tokenize", &body.to_string()).await }
    };
    let want = answer("POST /tokenize {\"model\":\"tiny\",\"prompt\":\"the of");
    let r = post(serde_json::json!({"model": m, "prompt": "the of and to in is that for it"})).await;
    assert_eq!(r.status, 200);
    let v: Value = r.json();
    assert_eq!(key_shape(&v), key_shape(&want));
    let ids: Vec<u64> = serde_json::from_value(v["tokens"].clone()).unwrap();
    assert_eq!(v["count"], ids.len());
    assert_eq!(ids[0], 1, "BOS first, as vLLM's usage counts it");
    // Without special tokens: no BOS.
    let r =
        post(serde_json::json!({"model": m, "prompt": "the of and to in is that for it", "add_special_tokens": false}))
            .await;
    let bare: Vec<u64> = serde_json::from_value(r.json()["tokens"].clone()).unwrap();
    assert_eq!(bare, ids[1..]);
    // Chat: the template's tokens count.
    let r = post(serde_json::json!({"model": m, "messages": [{"role": "user", "content": "hello there"}]})).await;
    let chat: Value = r.json();
    let plain =
        post(serde_json::json!({"model": m, "prompt": "hello there", "add_special_tokens": false})).await.json();
    assert!(chat["count"].as_u64().unwrap() > plain["count"].as_u64().unwrap() + 4, "{chat} vs {plain}");
    // The count is what a completion with that prompt is charged.
    let body = serde_json::json!({"model": m, "prompt": "the of and to in is that for it", "max_tokens": 2});
    let usage = http::post(&base, "/v1/completions", &body.to_string()).await.json()["usage"].clone();
    assert_eq!(usage["prompt_tokens"], v["count"]);
    // Token-id prompts are accepted and charged their length.
    let body = serde_json::json!({"model": m, "prompt": ids, "max_tokens": 3});
    let r = http::post(&base, "/v1/completions", &body.to_string()).await;
    assert_eq!(r.status, 200);
    let c: Value = r.json();
    assert_eq!(key_shape(&c["usage"]), key_shape(&answer("POST /v1/completions")["usage"]));
    assert_eq!(c["usage"]["prompt_tokens"], ids.len());
    // Errors: an unknown model, a body with neither prompt nor messages.
    let r = post(serde_json::json!({"model": "nope", "prompt": "x"})).await;
    assert_eq!(r.status, 404);
    let want = answer("POST /tokenize {\"model\":\"nope\"");
    let got: Value = r.json();
    assert_eq!(got["error"]["message"], format!("The model `nope` does not exist. Valid aliases: {m}."));
    assert_eq!(key_shape(&got), key_shape(&want));
    let r = post(serde_json::json!({"model": m})).await;
    assert_eq!(r.status, 400);
    let want = answer("POST /tokenize {\"model\":\"tiny\"}");
    assert_eq!(r.json(), want);
    // Detokenize: the text with special tokens; unknown ids left out.
    let back = http::post(&base, "/detokenize", &serde_json::json!({"model": m, "tokens": ids}).to_string()).await;
    assert_eq!(back.json(), serde_json::json!({"prompt": "<s>the of and to in is that for it"}));
    let none = http::post(&base, "/detokenize", &serde_json::json!({"model": m, "tokens": [999999]}).to_string()).await;
    assert_eq!(none.json(), answer("POST /detokenize {\"model\":\"tiny\",\"tokens\":[999999]}"));
}

/// Words the fixture tokenizer encodes as one token each, after a space.
fn one_token_words(t: &aibench::tokenize::LocalTokenizer) -> Vec<&'static str> {
    aibench::tokenize::prompts::VOCAB
        .iter()
        .copied()
        .filter(|w| t.encode(w, false).len() == 1 && t.encode(&format!(" {w}"), false).len() == 1)
        .collect()
}

/// vLLM's prefix caching: three completions sharing a 1,792-token prefix
/// (block size 128) move `prefix_cache_hits_total` by 3,584 and
/// `queries_total` by 5,406 on the real server; the simulator too, and the
/// cached requests' TTFT drops. Off, nothing is reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_caching_reuses_shared_blocks_as_vllm_counts_them() {
    let _t = TIMING.lock().await;
    let dir = format!("{}/tests/fixtures/tokenizer-en-bpe-8k", env!("CARGO_MANIFEST_DIR"));
    let tok = aibench::tokenize::LocalTokenizer::load(&dir).unwrap();
    let ones = one_token_words(&tok);
    assert!(ones.len() > 50);
    // BOS + 1,791 one-token words = 1,792 tokens: 14 blocks of 128.
    let prefix: Vec<&str> = (0..1791).map(|i| ones[i % ones.len()]).collect();
    let prompt = |k: usize| {
        let suffix: Vec<&str> = (0..10).map(|i| ones[(k * 13 + i * 7 + 1) % ones.len()]).collect();
        format!("{} {}", prefix.join(" "), suffix.join(" "))
    };
    for k in 0..3 {
        assert_eq!(tok.count(&prompt(k), true), 1802);
    }
    for caching in [true, false] {
        let s = sim("opt-125m-cpu", |c| {
            c.tokenizer = aibench::sim::tokens::SimTokenizer::load(&dir).unwrap();
            c.profile.enable_prefix_caching = caching;
        })
        .await;
        let mut ttft = Vec::new();
        for k in 0..3 {
            let body = serde_json::json!({"prompt": prompt(k), "max_tokens": 2, "stream": true}).to_string();
            let t0 = Instant::now();
            let r = http::post(&s.url(), "/v1/completions", &body).await;
            let first = chunks(&r.sse_events()).into_iter().find(|(_, v)| content_of(v).is_some()).unwrap().0;
            ttft.push(first.duration_since(t0).as_secs_f64());
        }
        let m = expfmt::parse(&http::get(&s.url(), "/metrics").await.text()).unwrap();
        let total = |name: &str| expfmt::family(&m, name).unwrap().total();
        let by_source = |src: &str| {
            expfmt::family(&m, "vllm:prompt_tokens_by_source_total")
                .unwrap()
                .samples
                .iter()
                .find(|s| s.labels["source"] == src)
                .unwrap()
                .value
        };
        assert_eq!(total("vllm:prompt_tokens_total"), 5406.0);
        if caching {
            assert_eq!(total("vllm:prefix_cache_queries_total"), 5406.0);
            assert_eq!(total("vllm:prefix_cache_hits_total"), 3584.0);
            assert_eq!(total("vllm:prompt_tokens_cached_total"), 3584.0);
            assert_eq!(by_source("local_cache_hit"), 3584.0);
            assert_eq!(by_source("local_compute"), 5406.0 - 3584.0);
            // 1,802 tokens to prefill, then 10: the profile's per-token cost shows.
            assert!(ttft[1] < ttft[0] * 0.5 && ttft[2] < ttft[0] * 0.5, "TTFT {ttft:?}");
        } else {
            assert_eq!(total("vllm:prefix_cache_hits_total"), 0.0);
            assert_eq!(total("vllm:prompt_tokens_cached_total"), 0.0);
            assert_eq!(by_source("local_compute"), 5406.0);
            assert!(ttft[1] > ttft[0] * 0.7 && ttft[2] > ttft[0] * 0.7, "TTFT {ttft:?}");
        }
    }
}

/// A reply sent back in the next prompt counts as many tokens as were
/// generated (the output is made of single-token words), and the next
/// turn reuses the blocks of the whole previous exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_fed_back_is_as_long_as_generated_and_cached() {
    let dir = format!("{}/tests/fixtures/tokenizer-en-bpe-8k", env!("CARGO_MANIFEST_DIR"));
    let tok = aibench::tokenize::LocalTokenizer::load(&dir).unwrap();
    let s = sim("instant", |c| {
        c.tokenizer = aibench::sim::tokens::SimTokenizer::load(&dir).unwrap();
        c.profile.block_size = 16;
    })
    .await;
    let first = one_token_words(&tok)[..100].join(" ");
    let body = serde_json::json!({"prompt": first, "max_tokens": 60, "ignore_eos": true}).to_string();
    let r: Value = http::post(&s.url(), "/v1/completions", &body).await.json();
    let reply = r["choices"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(r["usage"]["completion_tokens"], 60);
    assert_eq!(tok.count(&reply, false), 60, "{reply}");
    let second = format!("{first}{reply} next");
    let body = serde_json::json!({"prompt": second, "max_tokens": 1}).to_string();
    let r: Value = http::post(&s.url(), "/v1/completions", &body).await.json();
    assert_eq!(r["usage"]["prompt_tokens"], 101 + 60 + 1);
    let m = expfmt::parse(&http::get(&s.url(), "/metrics").await.text()).unwrap();
    let hits = expfmt::family(&m, "vllm:prefix_cache_hits_total").unwrap().total();
    // 161 tokens of the first exchange: 10 whole blocks of 16 reused.
    assert_eq!(hits, 160.0);
}

/// The answer the fixture records under `heading` (`## ...`): the final
/// status and the JSON body.
fn fixture_case(fx: &str, heading: &str) -> (u16, Value) {
    let mut status = 0;
    for l in fx.lines().skip_while(|l| *l != heading).skip(1) {
        if let Some(rest) = l.strip_prefix("HTTP/1.1 ") {
            status = rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        if l.starts_with('{') {
            return (status, serde_json::from_str(l).unwrap());
        }
    }
    panic!("the fixture has no case {heading}");
}

/// Prompts vLLM 0.32 answers with a 400 (not a 413, and not a completion):
/// token ids outside the vocabulary (2^64 - 1 too), empty prompts, prompts
/// past `max_model_len` as text or as ids; in the fixtures' error shapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_prompts_get_vllm_400s() {
    let dir = format!("{}/tests/fixtures/tokenizer-en-bpe-8k", env!("CARGO_MANIFEST_DIR"));
    let vocab = aibench::tokenize::LocalTokenizer::load(&dir).unwrap().vocab_size() as u64;
    let s = sim("instant", |c| {
        c.tokenizer = aibench::sim::tokens::SimTokenizer::load(&dir).unwrap();
        c.model = "tiny".into();
        c.profile.max_model_len = 2048; // the fixture's server
    })
    .await;
    let u = s.url();
    let post = |body: Value| {
        let u = u.clone();
        async move { http::post(&u, "/v1/completions", &body.to_string()).await }
    };
    let (status, too_long) =
        fixture_case(&fixture("vllm-0.32-cpu-errors-2.txt"), "## prompt longer than max_model_len");
    assert_eq!(status, 400);
    let validation: Value = fixture("vllm-0.32-cpu-errors.txt")
        .lines()
        .skip_while(|l| !l.starts_with("# malformed JSON"))
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap();
    assert_eq!(validation["error"]["code"], 400);

    // Past max_model_len, as text and as ids (in the vocabulary or not: the
    // length is checked first): the fixture's answer, word for word.
    for prompt in [json!("the ".repeat(3000)), json!(vec![1u64; 3000]), json!(vec![vocab + 7; 3000])] {
        let r = post(json!({"model": "tiny", "prompt": prompt, "max_tokens": 2})).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json(), too_long);
    }

    // Ids outside the vocabulary: vLLM names the largest.
    let max = u64::MAX;
    for (prompt, named) in [
        (json!([max]), max.to_string()),
        (json!([1, max, 5]), max.to_string()),
        (json!([1, vocab, 5]), vocab.to_string()),
        (json!([1, 5, -1]), "-1".to_string()),
    ] {
        let r = post(json!({"model": "tiny", "prompt": prompt, "max_tokens": 2})).await;
        assert_eq!(r.status, 400, "{prompt}");
        let want = json!({"error": {"message": format!("Token id {named} is out of vocabulary"),
            "type": "BadRequestError", "param": null, "code": 400}});
        assert_eq!(r.json(), want, "{prompt}");
        assert_eq!(key_shape(&r.json()), key_shape(&too_long));
    }
    // The vocabulary's last id is in it.
    let r = post(json!({"model": "tiny", "prompt": [1, vocab - 1], "max_tokens": 2})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["usage"]["prompt_tokens"], 2);

    // No prompt, `null` or "": pydantic's validator, a validation error as in
    // the fixture, raised before the model is even looked at.
    for body in [
        json!({"model": "tiny", "prompt": "", "max_tokens": 2}),
        json!({"model": "nope", "prompt": null}),
        json!({"max_tokens": 2}),
    ] {
        let r = post(body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        let e = r.json();
        assert_eq!(e["error"]["type"], validation["error"]["type"], "{body}");
        assert_eq!(e["error"]["code"], 400);
        assert_eq!(e["error"]["param"], "body");
        let m = e["error"]["message"].as_str().unwrap();
        let n = body.as_object().unwrap().len();
        assert_eq!(
            m,
            format!(
                "1 validation error:\n  {{'type': 'value_error', 'loc': 'body', 'msg': 'Value error, Either prompt or prompt_embeds must be provided and non-empty.', 'input': '<dict of {n} items>', 'ctx': {{'error': 'Either prompt or prompt_embeds must be provided and non-empty.'}}}}"
            )
        );
        assert_eq!(key_shape(&e), key_shape(&validation));
    }
    // An empty list of ids.
    let r = post(json!({"model": "tiny", "prompt": [], "max_tokens": 2})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": {"message": "please provide at least one prompt", "type": "BadRequestError", "param": null, "code": 400}})
    );
    // A prompt that tokenizes to nothing (words: blanks) reaches vLLM's engine check.
    let w = sim("instant", |_| {}).await;
    let r = http::post(&w.url(), "/v1/completions", r#"{"prompt": "   ", "max_tokens": 2}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["message"], "The decoder prompt cannot be empty");
    assert_eq!(r.json()["error"]["type"], "BadRequestError");
    // Still serving.
    let r = post(json!({"model": "tiny", "prompt": "the of and", "max_tokens": 2})).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Resident memory of a process in bytes (`VmRSS` of /proc/PID/status).
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Sends a completion body of `size` bytes (one long prompt) in 1 MiB pieces
/// `pace` apart while another thread reads the answer. Returns the status
/// (0: none), the answer's body, when the connection ended, and the bytes
/// of the body sent before the answer cut it short.
fn slow_upload(hostport: &str, size: usize, pace: Duration) -> (u16, String, Duration, usize) {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(hostport).unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let (open, close) = (br#"{"prompt":""#.as_slice(), br#"","max_tokens":2}"#.as_slice());
    let t0 = Instant::now();
    let mut reader = sock.try_clone().unwrap();
    let answer = std::thread::spawn(move || {
        let mut out = Vec::new();
        // A reset after the answer leaves what was read in `out`.
        let _ = reader.read_to_end(&mut out);
        (out, t0.elapsed())
    });
    let piece = vec![b'x'; 1 << 20];
    let mut sent = 0;
    if sock.write_all(head.as_bytes()).is_ok() && sock.write_all(open).is_ok() {
        sent += open.len();
        let mut left = size - open.len() - close.len();
        while left > 0 {
            let n = left.min(piece.len());
            if sock.write_all(&piece[..n]).is_err() {
                break;
            }
            left -= n;
            sent += n;
            std::thread::sleep(pace);
        }
        if left == 0 && sock.write_all(close).is_ok() {
            sent += close.len();
        }
    }
    let (out, at) = answer.join().unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body, at, sent)
}

/// The probe's attack: 20 connections each sending a 60 MB body slowly. The
/// simulator holds at most its body budget (256 MiB by default) of them,
/// answers the rest at once with a JSON 503, and gives the memory back.
#[test]
fn request_bodies_share_one_budget_and_their_memory_comes_back() {
    let _t = TIMING.blocking_lock();
    const BODY: usize = 60_000_000;
    const MB: u64 = 1_000_000;
    let budget = aibench::sim::DEFAULT_BODY_BUDGET as u64;
    let sim = support::sim::Sim::start(&[]); // opt-125m-cpu: a 60 MB prompt is past its length
    let pid = sim.child.id();
    let hostport = sim.url.trim_start_matches("http://").to_string();
    assert!(rss_of(pid) > 0, "no VmRSS for the simulator");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_of(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    let t0 = Instant::now();
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let hp = hostport.clone();
            std::thread::spawn(move || slow_upload(&hp, BODY, Duration::from_millis(50)))
        })
        .collect();
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let mut after = rss_of(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while after >= 200 * MB && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = rss_of(pid);
    }
    let (mut admitted, mut refused, mut cut) = (0, 0, 0);
    for (status, body, at, sent) in &results {
        match status {
            // Received whole, then vLLM's character bound.
            400 => {
                admitted += 1;
                assert_eq!(*sent, BODY);
                let e: Value = serde_json::from_str(body).unwrap();
                assert_eq!(e["error"]["param"], "input_text", "{body}");
            }
            503 => {
                refused += 1;
                assert!(*at < Duration::from_millis(1500), "refused only after {at:?}");
                assert!(*sent < BODY);
                let e: Value = serde_json::from_str(body).unwrap();
                assert_eq!(e["error"]["code"], 503);
                assert_eq!(e["error"]["type"], "ServiceUnavailableError");
                assert!(e["error"]["message"].as_str().unwrap().contains("budget"), "{body}");
            }
            // The answer lost to a reset: still cut short, early.
            0 => {
                cut += 1;
                assert!(*sent < BODY && *at < Duration::from_secs(3), "{sent} bytes sent, ended after {at:?}");
            }
            s => panic!("status {s}: {body}"),
        }
    }
    assert!((1..=4).contains(&admitted), "{admitted} bodies received whole; the budget holds 4 of 60 MB");
    assert!(refused >= 10, "{refused} answered 503, {cut} cut without an answer");
    assert_eq!(admitted + refused + cut, 20);
    assert!(peak < budget + 150 * MB, "peak RSS {} MB with a {} MB budget", peak / MB, budget / MB);
    assert!(after < 200 * MB, "RSS {} MB after the bodies were answered (peak {} MB)", after / MB, peak / MB);
    assert!(t0.elapsed() < Duration::from_secs(20), "took {:?}", t0.elapsed());
    // Still serving.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(http::post(&sim.url, "/v1/completions", &completion(5, 3, false, false)));
    assert_eq!(r.status, 200);
}
