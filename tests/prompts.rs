//! The load sent is the load asked, from the command line: bad tokenizer
//! inputs get errors that name them, a server without `/tokenize`, words
//! flagged as approximate, and the client-limited check on one core.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};

mod support;

use support::sim::Sim;

/// The one-core test runs alone: the others would share its core.
static ALONE: std::sync::RwLock<()> = std::sync::RwLock::new(());

const TOK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tokenizer-en-bpe-8k");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A short bench of 64-token prompts (unless `extra` asks another length).
fn bench(home: &Path, url: &str, extra: &[&str]) -> Output {
    let _shared = ALONE.read().unwrap_or_else(|e| e.into_inner());
    let mut c = Command::new(env!("CARGO_BIN_EXE_aibench"));
    c.args(["bench", "--url", url, "--users", "2", "--requests", "6", "--output-tokens", "4"]).args(extra);
    if !extra.contains(&"--prompt-tokens") {
        c.args(["--prompt-tokens", "64"]);
    }
    c.env("AIBENCH_HOME", home).current_dir(home).output().expect("run aibench")
}

/// Exits non-zero and says `want` on stderr.
fn refused(o: &Output, want: &str) {
    assert!(!o.status.success(), "expected a failure, got success:\n{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains(want), "expected {want:?} in stderr:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_tokenizer_inputs_name_what_was_wrong() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    refused(&bench(h, &sim.url, &["--tokenizer", "/no/such/model"]), "'/no/such/model': no such file or folder");
    refused(
        &bench(h, &sim.url, &["--tokenizer", "meta-llama/Llama-3.1-8B-Instruct"]),
        "looks like a Hugging Face hub name, and aibench never downloads",
    );
    let empty = h.join("empty-model");
    std::fs::create_dir(&empty).unwrap();
    refused(&bench(h, &sim.url, &["--tokenizer", empty.to_str().unwrap()]), "is a folder without tokenizer.json");
    let broken = h.join("broken-model");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("tokenizer.json"), "{\"version\": \"1.0\", \"model\": ").unwrap();
    refused(
        &bench(h, &sim.url, &["--tokenizer", broken.to_str().unwrap()]),
        "broken-model/tokenizer.json: not a tokenizer.json that can be loaded",
    );
    // A template that does not parse is named too.
    let bad_template = h.join("bad-template");
    std::fs::create_dir(&bad_template).unwrap();
    std::fs::copy(format!("{TOK}/tokenizer.json"), bad_template.join("tokenizer.json")).unwrap();
    std::fs::write(bad_template.join("chat_template.jinja"), "{% for m in messages %}{{ m.content }").unwrap();
    refused(
        &bench(h, &sim.url, &["--api", "openai-chat", "--tokenizer", bad_template.to_str().unwrap()]),
        "chat_template.jinja",
    );
}

/// A server that lists a model and answers 404 to everything else.
fn no_tokenize_server() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (status, body) = if head.starts_with("GET /v1/models") {
                ("200 OK", r#"{"object":"list","data":[{"id":"m","object":"model","max_model_len":2048}]}"#)
            } else {
                ("404 Not Found", r#"{"detail":"Not Found"}"#)
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn tokenizer_server_against_a_server_without_tokenize_says_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let url = no_tokenize_server();
    let o = bench(home.path(), &url, &["--tokenizer", "server"]);
    refused(&o, &format!("{url}/tokenize is not served there (HTTP 404)"));
    assert!(text(&o.stderr).contains("give target.tokenizer the local model folder"), "{}", text(&o.stderr));
}

#[test]
fn a_prompt_longer_than_max_model_len_is_refused_before_the_run() {
    let home = tempfile::tempdir().unwrap();
    let sim = Sim::start(&["--profile", "instant", "--tokenizer", TOK, "--max-model-len", "256"]);
    let o = bench(home.path(), &sim.url, &["--prompt-tokens", "300"]);
    refused(&o, "a prompt of 300 tokens with 4 output tokens does not fit the server's max_model_len of 256");
    // Asking below the tokenizer's own BOS is refused too.
    let o = bench(home.path(), &sim.url, &["--prompt-tokens", "1"]);
    refused(&o, "1 tokens is too few");
}

#[test]
fn words_are_said_to_be_approximate() {
    let home = tempfile::tempdir().unwrap();
    let sim = Sim::start(&["--profile", "instant", "--tokenizer", TOK]);
    // Ollama has no /tokenize: words, and the summary says so.
    let o = bench(home.path(), &sim.url, &["--api", "ollama-generate", "--json", "r.json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("prompt lengths  words (approximate)"), "{out}");
    assert!(out.contains("warning: prompt lengths are approximate"), "{out}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(r["prompt_tokens_source"], "words (approximate)");
    // The same server through /tokenize: exact, no warning.
    let o = bench(home.path(), &sim.url, &["--json", "r2.json"]);
    let out = text(&o.stdout);
    assert!(out.contains("prompt tokens   mean asked 64.0, served 64.0 (+0.0%), every request exact"), "{out}");
    assert!(!out.contains("warning:"), "{out}");
}

const CLIENT_LIMITED: &str = r#"
local bench = require("aibench.bench")
local sim = require("aibench.sim")
local json = require("aibench.json")
local s = assert(sim.start({ profile = arg[1] }))
local r = assert(bench.run({
  target = { url = s.url },
  workload = { pattern = "closed-loop", users = tonumber(arg[2]), think_time_ms = tonumber(arg[3]), duration_s = 4 },
  dataset = { prompt_tokens = 16, output_tokens = 4 },
  progress = false,
}))
s:stop()
print(require("aibench.report").summary(r, { definitions = false }))
print("RESULT " .. json.encode(r.validity))
"#;

/// Runs the script above on one core alone: the client and the in-process
/// simulator share it. The last core: the system's own work (interrupts,
/// the cluster's daemons) tends to land on core 0.
fn on_one_core(profile: &str, users: u32, think_ms: u32) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("limited.lua");
    std::fs::write(&script, CLIENT_LIMITED).unwrap();
    let last = std::thread::available_parallelism().map(|n| n.get() - 1).unwrap_or(0).to_string();
    let o = Command::new("taskset")
        .args(["-c", &last, env!("CARGO_BIN_EXE_aibench"), "run"])
        .arg(&script)
        .args([profile, &users.to_string(), &think_ms.to_string()])
        .env("AIBENCH_HOME", dir.path())
        .output()
        .expect("taskset (util-linux) runs aibench");
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    let line = out.lines().find_map(|l| l.strip_prefix("RESULT ")).unwrap_or_else(|| panic!("{out}"));
    (serde_json::from_str(line).unwrap(), out)
}

#[test]
fn three_thousand_users_on_one_core_are_flagged_and_a_calm_run_is_not() {
    let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
    let (v, out) = on_one_core("instant", 3000, 0);
    assert_eq!(v["client_limited"], true, "{out}");
    assert_eq!(v["cores"], 1, "taskset gives the process one core: {v}");
    let reasons: Vec<String> = serde_json::from_value(v["reasons"].clone()).unwrap();
    assert!(!reasons.is_empty());
    assert!(out.contains("-> CLIENT-LIMITED"), "{out}");
    assert!(out.contains("warning: the client may have been the bottleneck, not the server: "), "{out}");
    // A realistic server, few users who think between requests: the client idles.
    let (v, out) = on_one_core("opt-125m-cpu", 4, 50);
    assert_eq!(v["client_limited"], false, "{out}");
    assert!(v["cpu_util"].as_f64().unwrap() < 0.5, "{v}");
    assert!(v["loop_delay_p99_ms"].as_f64().unwrap() < 5.0, "{v}");
    assert!(out.contains("-> not limiting"), "{out}");
    assert!(!out.contains("bottleneck"), "{out}");
}
