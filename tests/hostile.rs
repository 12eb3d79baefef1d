//! The second hostile probe (issue 21): output paths that are devices,
//! FIFOs or symlinks; streams that never end an event; impossible rates;
//! results lost after the measurement; truncated and clashing request logs;
//! sessions against a dead server; runaway chat templates; signals during
//! preparation; a killed agent's orphan. Each test here failed before its fix.

use std::io::{BufRead, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::sim::Sim;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cmd(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aibench"));
    c.args(args).env("AIBENCH_HOME", home.join(".aibench")).current_dir(home);
    c
}

fn run(home: &Path, args: &[&str]) -> Output {
    cmd(home, args).output().expect("run aibench")
}

fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signals a child this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn accounted(r: &serde_json::Value) {
    let (t, s, e) =
        (r["total_requests"].as_u64().unwrap(), r["successes"].as_u64().unwrap(), r["errors"].as_u64().unwrap());
    assert_eq!(s + e, t, "successes + errors = total");
    let by_class: u64 = r["errors_by_class"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(by_class, e, "errors by class add up");
}

fn quick(url: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["bench", "--url", url, "--prompt-tokens", "16", "--output-tokens", "4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn http(base: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let r = rt.block_on(support::http::request(base, method, path, body));
    (r.status, r.text())
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
}

fn file_type(p: &Path) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::symlink_metadata(p).unwrap().file_type();
    if t.is_fifo() {
        "fifo"
    } else if t.is_char_device() {
        "char"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_file() {
        "file"
    } else {
        "other"
    }
}

// 1. Output paths that are not regular files.

#[test]
fn a_result_written_to_a_fifo_goes_into_it_and_the_fifo_stays() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    let fifo = h.join("out.fifo");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            std::fs::File::open(&fifo).unwrap().read_to_string(&mut s).unwrap();
            s
        })
    };
    let a = quick(&sim.url, &["--requests", "5", "--json", fifo.to_str().unwrap()]);
    let o = run(h, &args(&a));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let got = reader.join().unwrap();
    let v: serde_json::Value = serde_json::from_str(&got).expect("the FIFO's reader got the JSON");
    assert_eq!(v["total_requests"], 5);
    assert_eq!(file_type(&fifo), "fifo", "the FIFO was not replaced by a file");
    assert_eq!(
        std::fs::read_dir(h)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".aibench-tmp"))
            .count(),
        0
    );
}

#[test]
fn a_character_device_output_is_written_into_never_replaced() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    // A private null device (root), or the machine's through a symlink:
    // either way the device node must still be a device afterwards.
    let dev = h.join("null");
    let c = std::ffi::CString::new(dev.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: creates a device node in a private folder (needs root).
    let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0;
    let target = if made { dev.clone() } else { PathBuf::from("/dev/null") };
    let link = h.join("result.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for out in [dev.to_str().unwrap(), "result.json"] {
        if !made && out != "result.json" {
            continue;
        }
        let a = quick(&sim.url, &["--requests", "2", "--json", out, "--log", out]);
        let o = run(h, &args(&a));
        assert_eq!(o.status.code(), Some(0), "{out}: {}", text(&o.stderr));
        assert_eq!(file_type(&target), "char", "{out}: the device is still a device");
    }
    assert_eq!(file_type(&link), "symlink", "a symlinked output is followed, not replaced");
    // `report --out` and `--html` follow the same rules.
    let a = quick(&sim.url, &["--requests", "2", "--json", "r.json"]);
    assert!(run(h, &args(&a)).status.success());
    let o = run(h, &["report", "r.json", "--out", "result.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(file_type(&target), "char");
    let o = run(h, &["report", "r.json", "--html", "result.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(file_type(&target), "char");
}

#[test]
fn symlinked_outputs_are_followed_and_dash_is_standard_output() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    std::fs::create_dir(h.join("real")).unwrap();
    std::os::unix::fs::symlink("real/r.json", h.join("r.json")).unwrap();
    std::os::unix::fs::symlink("real/log.jsonl", h.join("log.jsonl")).unwrap();
    let a = quick(&sim.url, &["--requests", "3", "--json", "r.json", "--log", "log.jsonl"]);
    let o = run(h, &args(&a));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(file_type(&h.join("r.json")), "symlink");
    assert_eq!(json_file(&h.join("real/r.json"))["total_requests"], 3);
    assert_eq!(std::fs::read_to_string(h.join("real/log.jsonl")).unwrap().lines().count(), 3);
    // `-`: the JSON alone on standard output, the summary on standard error.
    let a = quick(&sim.url, &["--requests", "2", "--json", "-"]);
    let o = run(h, &args(&a));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is the JSON");
    assert_eq!(v["total_requests"], 2);
    assert!(!Path::new(&h.join("-")).exists(), "no file named '-'");
    // A folder or a socket is refused before the run, naming the flag.
    let a = quick(&sim.url, &["--requests", "2", "--json", "real"]);
    let o = run(h, &args(&a));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--json"), "{}", text(&o.stderr));
    let sock = std::os::unix::net::UnixListener::bind(h.join("s.sock")).unwrap();
    let a = quick(&sim.url, &["--requests", "2", "--json", "s.sock"]);
    let o = run(h, &args(&a));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("socket"), "{}", text(&o.stderr));
    drop(sock);
}

#[test]
fn a_report_cannot_overwrite_one_of_its_inputs() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    let a = quick(&sim.url, &["--requests", "2", "--json", "r.json"]);
    assert!(run(h, &args(&a)).status.success());
    let before = std::fs::read(h.join("r.json")).unwrap();
    std::os::unix::fs::symlink("r.json", h.join("alias.json")).unwrap();
    for flag in ["--out", "--html"] {
        for out in ["r.json", "./r.json", "alias.json"] {
            let o = run(h, &["report", "r.json", flag, out]);
            assert_eq!(o.status.code(), Some(2), "{flag} {out}: {}", text(&o.stderr));
            assert!(text(&o.stderr).contains("is one of the inputs"), "{}", text(&o.stderr));
        }
    }
    assert_eq!(std::fs::read(h.join("r.json")).unwrap(), before, "the input is untouched");
}

// 3. One SSE event that never ends.

/// A test server on 127.0.0.1: each connection handled by `f` on a thread of its own.
fn serve(f: impl Fn(std::net::TcpStream) + Send + Sync + Clone + 'static) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let f = f.clone();
            std::thread::spawn(move || f(s));
        }
    });
    url
}

/// Reads one HTTP/1.1 request (head and Content-Length body); None at the
/// end of the connection.
fn read_request(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(body)
}

/// A server that answers every request with a stream head, the start of an
/// event, and then bytes without a newline (64 KiB pieces as fast as it can,
/// or one byte every 50 ms with `trickle`) until the client goes away (at
/// most 2 GiB in all, 30 s each). Returns its URL and the bytes it sent.
fn endless_event_server(trickle: bool) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::Ordering::Relaxed;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = sent.clone();
    let url = serve(move |mut s| {
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        if read_request(&mut r).is_none() {
            return;
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: {\"choices\":[{\"text\":\"";
        if s.write_all(head.as_bytes()).is_err() {
            return;
        }
        let chunk = vec![b'a'; if trickle { 1 } else { 64 * 1024 }];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) && total.load(Relaxed) < (2u64 << 30) {
            if s.write_all(&chunk).is_err() {
                return;
            }
            total.fetch_add(chunk.len() as u64, Relaxed);
            if trickle {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    (url, sent)
}

#[test]
fn an_event_without_end_is_cut_at_its_cap_and_counted_stream_broken() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (url, sent) = endless_event_server(false);
    let started = Instant::now();
    let a = quick(&url, &["--requests", "3", "--json", "r.json", "--tokenizer", "words", "--model", "m"]);
    let o = run(h, &args(&a));
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(1), "no request succeeded: {}", text(&o.stderr));
    assert!(took < Duration::from_secs(20), "{took:?}");
    let r = json_file(&h.join("r.json"));
    accounted(&r);
    assert_eq!(r["total_requests"], 3);
    assert_eq!(r["errors_by_class"]["stream_broken"], 3, "{}", r["error_samples"]);
    assert!(r["error_samples"]["stream_broken"][0].as_str().unwrap().contains("max_event_bytes"));
    let rss = r["client"]["peak_rss_mb"].as_f64().unwrap();
    assert!(rss < 200.0, "the client stayed small: {rss} MB");
    assert!(sent.load(std::sync::atomic::Ordering::Relaxed) < (1 << 30), "cut long before a GiB");
}

#[test]
fn the_timeout_covers_a_response_that_trickles_without_end() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (url, _) = endless_event_server(true);
    let started = Instant::now();
    let a =
        quick(&url, &["--requests", "1", "--timeout", "1", "--json", "r.json", "--tokenizer", "words", "--model", "m"]);
    let o = run(h, &args(&a));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    let r = json_file(&h.join("r.json"));
    accounted(&r);
    assert_eq!(r["errors_by_class"]["timeout"], 1);
}

// 4. Impossible open-loop rates.

#[test]
fn an_impossible_rate_is_bounded_stops_on_time_and_says_what_was_not_sent() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    let started = Instant::now();
    let a = quick(&sim.url, &["--rate", "1000000", "--duration", "2", "--json", "r.json"]);
    let o = run(h, &args(&a));
    let took = started.elapsed();
    assert!(o.status.code().is_some(), "{}", text(&o.stderr));
    assert!(took < Duration::from_secs(8), "ran {took:?} for a 2 s run");
    let r = json_file(&h.join("r.json"));
    accounted(&r);
    let not_sent = r["not_sent"].as_u64().unwrap();
    assert!(not_sent > 0, "{}", r["not_sent"]);
    assert_eq!(r["validity"]["client_limited"], true);
    assert!(
        r["validity"]["reasons"].to_string().contains("not sent (client overloaded)")
            || r["validity"]["reasons"].to_string().contains("were not sent")
    );
    assert!(text(&o.stderr).contains("not sent"), "{}", text(&o.stderr));
    let rss = r["client"]["peak_rss_mb"].as_f64().unwrap();
    assert!(rss < 1024.0, "memory stayed bounded: {rss} MB");
}

#[test]
fn sigterm_under_an_impossible_rate_is_answered_and_the_result_saved() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    let a = quick(&sim.url, &["--rate", "1000000", "--duration", "60", "--json", "r.json"]);
    let mut child = cmd(h, &args(&a)).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    signal(&child, libc::SIGTERM);
    let st = wait_timeout(&mut child, Duration::from_secs(10)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("SIGTERM was not answered within 10 s")
    });
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert_eq!(st.code(), Some(143));
    let r = json_file(&h.join("r.json"));
    accounted(&r);
    assert_eq!(r["interrupted_by"], "SIGTERM");
}

#[test]
fn sessions_at_an_impossible_rate_are_bounded_too() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    std::fs::write(
        h.join("s.yaml"),
        "name: s\ntarget: {api: openai-chat, stream: true}\nworkload: {pattern: sessions, session_rate: 1000000, turns: 2, duration_s: 2, max_in_flight: 500}\ndataset: {type: synthetic, prompt_tokens: 16, output_tokens: 4}\noutput: {dir: res}\n",
    )
    .unwrap();
    let started = Instant::now();
    let o = run(h, &["client", "run", "--recipe", "s.yaml", "--url", &sim.url]);
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(o.status.code().is_some(), "{}", text(&o.stderr));
    let f = std::fs::read_dir(h.join("res")).unwrap().next().unwrap().unwrap().path();
    let r = &json_file(&f)["bench"];
    accounted(r);
    assert!(r["not_sent"].as_u64().unwrap() > 0);
    assert_eq!(r["validity"]["client_limited"], true);
}

// 5. A finished measurement is never lost.

#[test]
fn a_full_disk_at_the_end_sends_the_result_to_a_rescue_place() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    // Through a symlink: were the output rules ever broken again, the link
    // would be replaced, never the machine's /dev/full.
    std::os::unix::fs::symlink("/dev/full", h.join("full")).unwrap();
    let a = quick(&sim.url, &["--requests", "3", "--json", "full"]);
    let o = run(h, &args(&a));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("written to") && err.contains("rescued"), "{err}");
    let dir = h.join(".aibench/rescued");
    let f = std::fs::read_dir(&dir).unwrap().next().expect("a rescued result").unwrap().path();
    assert_eq!(json_file(&f)["total_requests"], 3);
    assert_eq!(file_type(&h.join("full")), "symlink", "the link was followed, not replaced");
    assert_eq!(
        std::fs::metadata(&f).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777).unwrap(),
        0o600
    );
}

/// A server whose every completion reports `usage` of 2^64 - 1 tokens.
fn lying_usage_server() -> String {
    serve(|mut s| {
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        while read_request(&mut r).is_some() {
            let chunks = "data: {\"choices\":[{\"text\":\" hi\",\"finish_reason\":null}]}\n\ndata: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":18446744073709551615,\"completion_tokens\":18446744073709551615}}\n\ndata: [DONE]\n\n";
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{chunks}",
                chunks.len()
            );
            if s.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    })
}

#[test]
fn out_of_range_usage_from_a_server_is_an_error_and_the_result_is_written() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let url = lying_usage_server();
    let a = quick(&url, &["--requests", "3", "--json", "r.json", "--tokenizer", "words", "--model", "m"]);
    let o = run(h, &args(&a));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let r = json_file(&h.join("r.json"));
    accounted(&r);
    assert_eq!(r["errors_by_class"]["other"], 3);
    assert!(r["error_samples"]["other"][0].as_str().unwrap().contains("usage out of range"));
    let o = run(h, &["report", "r.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

// 6. A truncated request log.

#[test]
fn a_request_log_cut_short_by_a_full_disk_is_reported_and_exits_1() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    std::os::unix::fs::symlink("/dev/full", h.join("full")).unwrap();
    let a = quick(&sim.url, &["--requests", "50", "--json", "r.json", "--log", "full"]);
    let o = run(h, &args(&a));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("per_request_log") && err.contains("incomplete"), "{err}");
    let r = json_file(&h.join("r.json"));
    assert!(r["per_request_log"]["error"].as_str().unwrap().contains("No space left"), "{}", r["per_request_log"]);
    assert!(r["warnings"].to_string().contains("incomplete"));
    assert_eq!(r["successes"], 50, "the run itself is whole");
    assert_eq!(file_type(&h.join("full")), "symlink");
}

// 7. Request logs of runs in the same second.

#[test]
fn each_run_has_its_own_request_log_and_names_it() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    std::fs::write(
        h.join("c.yaml"),
        "name: c\ntarget: {api: openai-completions, stream: true}\nworkload: {pattern: closed-loop, users: 2, total_requests: 6}\ndataset: {type: synthetic, prompt_tokens: 16, output_tokens: 4}\noutput: {dir: res, per_request_log: true}\n",
    )
    .unwrap();
    let o = run(h, &["client", "run", "--recipe", "c.yaml", "--url", &sim.url, "--runs", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mut results = Vec::new();
    let mut logs = Vec::new();
    for e in std::fs::read_dir(h.join("res")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with("-requests.jsonl") {
            logs.push(p);
        } else if name.ends_with(".json") {
            results.push(p);
        }
    }
    assert_eq!(results.len(), 3);
    assert_eq!(logs.len(), 3, "{logs:?}");
    for f in &results {
        let r = json_file(f);
        let log = r["bench"]["per_request_log"]["path"].as_str().expect("the result names its log");
        assert!(log.contains(r["id"].as_str().unwrap()), "{log} carries the result's id");
        let lines = std::fs::read_to_string(h.join(log)).unwrap();
        assert_eq!(lines.lines().count(), 6, "{log}");
        for l in lines.lines() {
            serde_json::from_str::<serde_json::Value>(l).expect("whole lines");
        }
    }
}

// 8. Sessions against a dead or failing server.

#[test]
fn sessions_back_off_from_a_dead_server_and_stop() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    std::fs::write(
        h.join("s.yaml"),
        "name: s\ntarget: {api: openai-chat, stream: true, model: m, tokenizer: words}\nworkload: {pattern: sessions, users: 4, turns: 2, duration_s: 30, unreachable_s: 3}\ndataset: {type: synthetic, prompt_tokens: 16, output_tokens: 4}\noutput: {dir: res}\n",
    )
    .unwrap();
    let started = Instant::now();
    let o = run(h, &["client", "run", "--recipe", "s.yaml", "--url", &dead]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(started.elapsed() < Duration::from_secs(15), "stopped as unreachable: {:?}", started.elapsed());
    let f = std::fs::read_dir(h.join("res")).unwrap().next().unwrap().unwrap().path();
    let r = &json_file(&f)["bench"];
    accounted(r);
    let n = r["total_requests"].as_u64().unwrap();
    assert!(n < 200, "backed off instead of spinning: {n} requests in ~3 s");
    assert!(r["backoff"]["count"].as_u64().unwrap() > 0, "{}", r["backoff"]);
}

#[test]
fn sessions_back_off_from_a_server_that_fails_every_request() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant", "--fail-rate", "1"]);
    std::fs::write(
        h.join("s.yaml"),
        "name: s\ntarget: {api: openai-chat, stream: true}\nworkload: {pattern: sessions, users: 4, turns: 2, duration_s: 3}\ndataset: {type: synthetic, prompt_tokens: 16, output_tokens: 4}\noutput: {dir: res}\n",
    )
    .unwrap();
    let o = run(h, &["client", "run", "--recipe", "s.yaml", "--url", &sim.url]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let f = std::fs::read_dir(h.join("res")).unwrap().next().unwrap().unwrap().path();
    let r = &json_file(&f)["bench"];
    accounted(r);
    let n = r["total_requests"].as_u64().unwrap();
    assert!(n < 200, "backed off: {n} requests in 3 s (the closed loop sends ~50)");
    assert!(r["backoff"]["count"].as_u64().unwrap() > 0);
}

// 9. A chat template that would run for ever.

#[test]
fn a_runaway_chat_template_is_stopped_with_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let tok = h.join("tok");
    std::fs::create_dir(&tok).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer-en-bpe-8k/tokenizer.json");
    std::fs::copy(fixture, tok.join("tokenizer.json")).unwrap();
    std::fs::write(
        tok.join("chat_template.jinja"),
        "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}",
    )
    .unwrap();
    // The simulator with that template: it answers with an error and stays healthy.
    let sim = Sim::start(&["--profile", "instant", "--model", "m", "--tokenizer", tok.to_str().unwrap()]);
    let started = Instant::now();
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#;
    let (status, text_) = http(&sim.url, "POST", "/v1/chat/completions", Some(body));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(status >= 400, "{status} {text_}");
    assert!(text_.contains("too much work"), "{text_}");
    let (status, _) = http(&sim.url, "GET", "/health", None);
    assert_eq!(status, 200, "the simulator still answers");
    // The client counting chat prompts with that template: a clear error, at once.
    let a =
        ["bench", "--url", &sim.url, "--api", "openai-chat", "--requests", "1", "--tokenizer", tok.to_str().unwrap()];
    let started = Instant::now();
    let o = run(h, &a);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o.stderr).contains("too much work"), "{}", text(&o.stderr));
}

// 10. Preparation stops at a signal and prepares only what the run sends.

fn big_dataset(h: &Path, n: usize) -> PathBuf {
    let p = h.join("prompts.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    for i in 0..n {
        writeln!(
            f,
            "{{\"prompt\": \"question number {i} about the weather in a town far away\", \"output_tokens\": 4}}"
        )
        .unwrap();
    }
    f.flush().unwrap();
    p
}

fn recipe_with_dataset(h: &Path, data: &Path, workload: &str) -> PathBuf {
    recipe_counting_with(h, data, workload, "server")
}

fn recipe_counting_with(h: &Path, data: &Path, workload: &str, tokenizer: &str) -> PathBuf {
    let p = h.join("d.yaml");
    std::fs::write(
        &p,
        format!(
            "name: d\ntarget: {{api: openai-completions, stream: true, tokenizer: {tokenizer}}}\nworkload: {workload}\ndataset: {{type: jsonl, path: {}, field: prompt, output_field: output_tokens}}\noutput: {{dir: res}}\n",
            data.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn only_the_prompts_a_run_sends_are_prepared() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    let data = big_dataset(h, 50_000);
    let recipe = recipe_with_dataset(h, &data, "{pattern: closed-loop, users: 2, total_requests: 10}");
    let o = run(h, &["client", "run", "--recipe", recipe.to_str().unwrap(), "--url", &sim.url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let f = std::fs::read_dir(h.join("res")).unwrap().next().unwrap().unwrap().path();
    let r = &json_file(&f)["bench"];
    assert_eq!(r["dataset_stats"]["used"], 10, "{}", r["dataset_stats"]);
}

#[test]
fn sigint_during_preparation_stops_it_at_once_and_sends_nothing() {
    sigint_during_preparation(200_000, None);
}

#[test]
fn sigint_while_a_local_tokenizer_counts_prompts_stops_at_once() {
    let tok = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer-en-bpe-8k/tokenizer.json");
    sigint_during_preparation(1_000_000, Some(tok.to_str().unwrap()));
}

fn sigint_during_preparation(lines: usize, tokenizer: Option<&str>) {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    let data = big_dataset(h, lines);
    let recipe = recipe_counting_with(
        h,
        &data,
        "{pattern: closed-loop, users: 2, duration_s: 5}",
        tokenizer.unwrap_or("server"),
    );
    let mut child = cmd(h, &["client", "run", "--recipe", recipe.to_str().unwrap(), "--url", &sim.url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    signal(&child, libc::SIGINT);
    let st = wait_timeout(&mut child, Duration::from_secs(10)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("SIGINT during preparation was not answered within 10 s")
    });
    assert!(t.elapsed() < Duration::from_secs(2), "stopped at once: {:?}", t.elapsed());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(st.code(), Some(130), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    let metrics = http(&sim.url, "GET", "/metrics", None).1;
    let done: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("vllm:request_success_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(done, 0.0, "no completion was sent after the signal");
}

// 12. A killed agent's service does not outlive `server stop`.

#[test]
fn server_stop_kills_the_service_of_an_agent_killed_outright() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(
        h.join("srv.yaml"),
        "name: srv\nservice_name: orphan\ndescription: test\nservice:\n  command: exec {aibench} sim --host 127.0.0.1 --port {port} --profile instant\n  ports: [auto]\n  health: {path: /health, timeout_s: 30}\norchestration:\n  executor: local\n",
    )
    .unwrap();
    let o = run(h, &["server", "run", "--recipe", "srv.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    let jobs = h.join(".aibench/jobs");
    let dir = std::fs::read_dir(&jobs).unwrap().find_map(|e| {
        let p = e.unwrap().path();
        p.join("service.pgid").exists().then_some(p)
    });
    let dir = dir.expect("a job folder with the service's group");
    let pgid: i32 = std::fs::read_to_string(dir.join("service.pgid")).unwrap().trim().parse().unwrap();
    let meta = json_file(&dir.join("meta.json"));
    let job = meta["job_id"].as_str().unwrap();
    let job_pid = json_file(&jobs.join(".local").join(format!("{job}.json")))["pid"].as_i64().unwrap() as i32;
    // SAFETY: signals the agent this test started.
    unsafe { libc::kill(job_pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: probes a process group.
    assert_eq!(unsafe { libc::kill(-pgid, 0) }, 0, "the service outlived its agent");
    let id = meta["instance_id"].as_str().unwrap();
    let o = run(h, &["server", "stop", id]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: probes a process group.
        let alive = unsafe { libc::kill(-pgid, 0) } == 0;
        !alive
    });
    assert!(gone, "server stop killed the orphaned service group {pgid}");
}

// Smaller items.

#[test]
fn eval_into_a_closed_pipe_exits_quietly() {
    let home = tempfile::tempdir().unwrap();
    let mut child = cmd(home.path(), &["eval", "return string.rep('x\\n', 2000000)"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 16];
    out.read_exact(&mut buf).unwrap();
    drop(out);
    let st = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(st.code(), Some(101), "{err}");
}

#[test]
fn cancel_requested_is_private() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(
        h.join("srv.yaml"),
        "name: srv\nservice_name: priv\ndescription: test\nservice:\n  command: exec {aibench} sim --host 127.0.0.1 --port {port} --profile instant\n  ports: [auto]\n  health: {path: /health, timeout_s: 30}\norchestration:\n  executor: local\n",
    )
    .unwrap();
    let o = run(h, &["server", "run", "--recipe", "srv.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = run(h, &["server", "stop-all"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let jobs = h.join(".aibench/jobs");
    let mut seen = 0;
    for e in std::fs::read_dir(&jobs).unwrap() {
        let p = e.unwrap().path().join("cancel_requested");
        if p.exists() {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
            seen += 1;
        }
    }
    assert!(seen > 0);
}

// The review's cases: open-file paths, FIFOs without a reader, `--log -`,
// links planted in shared folders, a queue that outlives its schedule.

#[test]
fn dev_stdout_is_written_through_the_shells_descriptor() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    // A pipe: the JSON arrives on it.
    let a = quick(&sim.url, &["--requests", "2", "--json", "/dev/stdout"]);
    let o = run(h, &args(&a));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("\"total_requests\": 2"), "{}", text(&o.stdout));
    // A regular file opened for appending (`>> out.txt`): what was there stays.
    let out = h.join("out.txt");
    std::fs::write(&out, "earlier line\n").unwrap();
    let f = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    let a = quick(&sim.url, &["--requests", "2", "--json", "/dev/stdout"]);
    let o = cmd(h, &args(&a)).stdout(f).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let t = std::fs::read_to_string(&out).unwrap();
    assert!(t.starts_with("earlier line\n"), "{t}");
    assert!(t.contains("\"total_requests\": 2"), "{t}");
}

#[test]
fn a_fifo_without_a_reader_is_an_error_at_once_and_log_dash_is_stdout() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    let fifo = h.join("nobody.fifo");
    mkfifo(&fifo);
    let started = Instant::now();
    let a = quick(&sim.url, &["--requests", "2", "--log", fifo.to_str().unwrap()]);
    let mut child = cmd(h, &args(&a)).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(10)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("waited on a FIFO with no reader")
    });
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_ne!(st.code(), Some(0), "{err}");
    assert!(err.contains("no reader"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let a = quick(&sim.url, &["--requests", "3", "--log", "-", "--json", "r.json"]);
    let o = run(h, &args(&a));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let lines = text(&o.stdout).lines().filter(|l| l.starts_with("{\"seq\"")).count();
    assert_eq!(lines, 3, "{}", text(&o.stdout));
    assert!(!h.join("-").exists());
}

#[test]
fn another_users_symlink_in_a_shared_folder_is_not_followed() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Not a pass where it must run: CI (as root) sets this.
        assert!(!support::required(), "needs root to plant a link owned by another user");
        eprintln!("needs root to plant a link owned by another user: not run");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let shared = h.join("shared");
    std::fs::create_dir(&shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = h.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let link = shared.join("r.json");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let c = std::ffi::CString::new(link.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: changes the owner of a link this test made.
    assert_eq!(unsafe { libc::lchown(c.as_ptr(), 65534, 65534) }, 0);
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // The shared folder must not belong to root for the rule to bite.
    let d = std::ffi::CString::new(shared.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: changes the owner of a folder this test made.
    assert_eq!(unsafe { libc::chown(d.as_ptr(), 65533, 65533) }, 0);
    let sim = Sim::start(&["--profile", "instant"]);
    let a = quick(&sim.url, &["--requests", "2", "--json", link.to_str().unwrap()]);
    let o = run(h, &args(&a));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("another user's symlink"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn an_open_loop_with_a_slot_limit_stops_sending_at_its_duration() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    let started = Instant::now();
    let a = quick(&sim.url, &["--rate", "200000", "--max-concurrency", "2", "--duration", "2", "--json", "r.json"]);
    let o = run(h, &args(&a));
    let took = started.elapsed();
    assert!(o.status.code().is_some(), "{}", text(&o.stderr));
    assert!(took < Duration::from_secs(15), "a 2 s run took {took:?}");
    let r = json_file(&h.join("r.json"));
    accounted(&r);
    // Nothing was sent after the schedule's end: the measured window (first
    // send to last completion) is the run's 2 s, not a queue drained after it.
    let window = r["duration_s"].as_f64().unwrap();
    assert!(window < 2.5, "sent past the duration: a window of {window} s");
    assert!(r["not_sent"].as_u64().unwrap() > 0);
    assert_eq!(r["unfinished"], 0, "nothing sent was cut");
    assert_eq!(r["validity"]["client_limited"], true);
}
