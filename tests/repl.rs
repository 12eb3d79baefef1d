//! `aibench repl`: help(), how values print, tracebacks, misuse messages and
//! multi-line chunks, driven through a pipe; Tab completion and multi-line
//! typing on a real terminal (tmux).

use std::io::Write;
use std::process::{Command, Output, Stdio};

mod support;

/// Runs the REPL with `input` on stdin, in its own `AIBENCH_HOME`.
fn repl(input: &str) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aibench"))
        .arg("repl")
        .env("AIBENCH_HOME", home.path())
        .current_dir(home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    // Whatever a case deployed is stopped, also when it failed.
    for kind in ["server", "monitor", "client"] {
        let _ = Command::new(env!("CARGO_BIN_EXE_aibench"))
            .args([kind, "stop-all"])
            .env("AIBENCH_HOME", home.path())
            .output();
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_lists_modules_then_functions_then_one_in_full() {
    let o = repl("help()\nhelp(bench)\nhelp(\"bench\")\nhelp(bench.run)\n");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    // help(): every module a user calls, with a line each, and how to go on.
    for m in ["bench", "server", "client", "monitor", "report", "results", "json", "sim"] {
        assert!(out.lines().any(|l| l.starts_with(&format!("  {m} "))), "module {m} missing:\n{out}");
    }
    assert!(out.contains("help(bench.run)"), "{out}");
    // help(bench) and help("bench") give the same listing, from the stub.
    let listing = out.split("aibench.bench\n").nth(1).expect("help(bench)");
    assert!(listing.contains("  bench.run(spec, opts?) -> Result?, Error?"), "{listing}");
    assert!(listing.contains("      Runs a benchmark."), "{listing}");
    assert_eq!(out.matches("aibench.bench\n").count(), 2, "{out}");
    // help(bench.run): the signature and the whole description.
    let full = out.split("\nbench.run(spec, opts?)").nth(1).expect("help(bench.run)");
    assert!(full.contains("A target that cannot be used at all (model discovery"), "{full}");
    assert!(full.contains("parameters:") && full.contains("returns:"), "{full}");
}

#[test]
fn help_knows_the_lua_modules_and_says_what_it_does_not_know() {
    let o = repl("help(server.run)\nhelp(\"report.summary\")\nhelp(\"bnech\")\n");
    let out = text(&o.stdout);
    assert!(out.contains("server.run(o) -> "), "{out}");
    assert!(out.contains("report.summary(r, opts?) -> string"), "{out}");
    assert!(out.contains("nothing is documented as 'bnech' (did you mean 'bench'?)"), "{out}");
}

#[test]
fn functions_print_with_their_signature() {
    let o = repl("bench.run\njson.encode\nlocal function f(a, b) return a end; return f\nprint\n");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bench.run(spec, opts?) -> Result?, Error?");
    assert_eq!(lines[1], "json.encode(value, opts?) -> string");
    assert!(lines[2].starts_with("function(a, b)  -- stdin:"), "{out}");
    assert_eq!(lines[3], "print(...)  -- built in");
    assert!(!out.contains("function: 0x"), "{out}");
}

#[test]
fn a_bench_result_prints_as_its_summary() {
    let input = r#"s = sim.start{profile = "instant"}
r = bench.run({target = {url = s.url, model = s.model}, workload = {pattern = "closed-loop", users = 2, total_requests = 10}}, {progress = false})
r
s:stop()
"#;
    let o = repl(input);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("bench result: 10 requests, 10 ok, 0 errors in "), "{out}");
    assert!(out.contains(" req/s, ") && out.contains(" output tok/s"), "{out}");
    assert!(out.contains("TTFT p50 ") && out.contains("TPOT p50 ") && out.contains(", p99 "), "{out}");
    assert!(out.lines().count() <= 5, "a few lines, not the whole result:\n{out}");
}

#[test]
fn tracebacks_hide_the_async_wrapper() {
    let o = repl("time.sleep(\"x\")\nfunction g() time.sleep(-1) end\ng()\n");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("bad argument #1"), "{err}");
    assert!(!err.contains("__mlua_async_poll"), "{err}");
    assert!(!err.contains("get_future"), "{err}");
    // The user's own frames stay, and the call keeps its name.
    assert!(err.contains("in function 'aibench.time.sleep'"), "{err}");
    assert!(err.contains("stdin:1: in function 'g'"), "{err}");
}

#[test]
fn a_method_called_with_a_dot_says_use_a_colon() {
    // A native handle (the simulator) and a deployment from server.run.
    let input = r#"s = sim.start{profile = "instant"}
s.stop()
s:stop()
d = server.run("vllm-sim")[1]
d.stop()
return #d:stop()
"#;
    let o = repl(input);
    let err = text(&o.stderr);
    assert_eq!(err.matches("stop: call it as s:stop() (with a colon), not s.stop()").count(), 2, "{err}");
    assert!(!err.contains("error converting"), "{err}");
    assert!(!err.contains("__mlua_async_poll"), "{err}");
    // The colon calls worked: the deployment's stop returned what it stopped.
    assert_eq!(text(&o.stdout).trim(), "1", "stderr:\n{err}");
}

#[test]
fn multi_line_chunks_continue_while_incomplete() {
    let o = repl("function f(a)\n  local t = {\n    a,\n  }\n  return t[1] * 2\nend\nf(21)\n");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "42\n");
}

/// Tab completion and a function typed line by line, on a real terminal.
#[test]
fn on_a_terminal_tab_completes_and_lines_continue() {
    use std::time::{Duration, Instant};
    if !support::on_path("tmux") {
        assert!(!support::required(), "tmux is needed for the terminal test (AIBENCH_REQUIRE_SLURM=1)");
        eprintln!("skipped: tmux is not installed");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let session = format!("aibench-repl-{}", std::process::id());
    let tmux = |args: &[&str]| Command::new("tmux").args(["-L", &session]).args(args).output().unwrap();
    let cmd =
        format!("AIBENCH_HOME='{}' TERM=xterm exec '{}' repl", home.path().display(), env!("CARGO_BIN_EXE_aibench"));
    let o = tmux(&["new-session", "-d", "-s", &session, "-x", "120", "-y", "40", &cmd]);
    assert!(o.status.success(), "tmux: {}", text(&o.stderr));
    let pane = || text(&tmux(&["capture-pane", "-p", "-t", &session]).stdout);
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pane().contains(needle) {
            assert!(Instant::now() < deadline, "waited for {needle:?}; the pane:\n{}", pane());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let keys = |k: &[&str]| assert!(tmux(&[&["send-keys", "-t", &session][..], k].concat()).status.success());
    let literal = |s: &str| assert!(tmux(&["send-keys", "-t", &session, "-l", s]).status.success());
    // The pane drops trailing blanks: the prompt reads ">".
    wait_for("exits\n>");
    literal("bench.ru");
    keys(&["Tab"]);
    wait_for("> bench.run");
    literal("\x15"); // Ctrl-U: clear the line.
    literal("bench.r");
    keys(&["Tab", "Tab"]);
    wait_for("result  run");
    literal("\x15");
    // A function typed line by line (no bracketed paste): each Enter on an
    // incomplete chunk continues it.
    for line in ["function twice(a)", "  return a * 2", "end"] {
        literal(line);
        keys(&["Enter"]);
        std::thread::sleep(Duration::from_millis(150));
    }
    literal("twice(21)");
    keys(&["Enter"]);
    wait_for("\n42\n");
    // Lines that arrive together (a paste without bracketed paste) are all read.
    literal("x = 1\ry = 2\rreturn x + y + 100\r");
    wait_for("\n103\n");
    let screen = pane();
    let _ = tmux(&["kill-server"]);
    assert!(!screen.contains("error"), "{screen}");
}

/// `aibench types` writes the stubs help() reads, the Lua modules' included.
#[test]
fn types_writes_every_stub() {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_aibench"))
        .args(["types", "--out"])
        .arg(out.path())
        .env("AIBENCH_HOME", out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    for m in ["bench", "server", "client", "monitor", "report", "results", "services", "scenario", "recipe"] {
        let f = out.path().join("types").join(format!("aibench.{m}.lua"));
        let stub = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(stub.starts_with(&format!("---@meta aibench.{m}\n")), "{}", f.display());
    }
}
