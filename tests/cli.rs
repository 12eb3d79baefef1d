//! The binary's command line, end to end.

use std::io::Write;
use std::process::{Command, Output, Stdio};

mod support;

fn aibench(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_aibench"))
        .args(args)
        .env("AIBENCH_HOME", home.path())
        .output()
        .expect("run aibench")
}

fn with_stdin(args: &[&str], input: &str) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aibench"))
        .args(args)
        .env("AIBENCH_HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn eval_prints_returned_values() {
    let o = aibench(&["eval", "return 1+1"]);
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), "2\n");
    let o = aibench(&["eval", "return 'a', nil, {x = 1}"]);
    assert_eq!(text(&o.stdout), "a\tnil\t{\n  x = 1\n}\n");
    let o = aibench(&["eval", "x = 1"]);
    assert_eq!(text(&o.stdout), "");
    assert!(o.status.success());
}

#[test]
fn eval_error_exits_1() {
    let o = aibench(&["eval", "error('nope')"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("nope"), "{}", text(&o.stderr));
}

#[test]
fn repl_from_a_pipe_prints_tables() {
    let o = with_stdin(&["repl"], "return {a=1,b={2,3}}\n");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "{\n  a = 1,\n  b = { 2, 3 }\n}\n");
}

#[test]
fn repl_async_sleep() {
    let o = with_stdin(&["repl"], "local t=require\"aibench.time\"; t.sleep(0.2); return \"ok\"\n");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "ok\n");
}

#[test]
fn repl_multiline_globals_and_errors() {
    let input = "local s = 0\nfor i = 1, 3 do\n  s = s + i\nend\nerror('bad line')\nreturn json.encode({1, 2})\nfunction f(x)\n  return x * 2\nend\nreturn f(21)\n";
    let o = with_stdin(&["repl"], input);
    assert_eq!(text(&o.stdout), "[1,2]\n42\n");
    assert!(text(&o.stderr).contains("bad line"));
    assert_eq!(o.status.code(), Some(1), "an error in piped input is reported in the exit code");
}

#[test]
fn repl_unfinished_chunk_at_eof_is_an_error() {
    let o = with_stdin(&["repl"], "for i = 1, 2 do\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("<eof>"), "{}", text(&o.stderr));
}

#[test]
fn syntax_error_names_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("file.lua");
    std::fs::write(&p, "local a = 1\nlocal b = 2\nlocal c = = 3\n").unwrap();
    let o = aibench(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("file.lua:3:"), "{}", text(&o.stderr));
}

#[test]
fn missing_script_exits_2() {
    let o = aibench(&["run", "missing.lua"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("cannot open script 'missing.lua'"));
}

#[test]
fn os_exit_sets_code_and_flushes() {
    let o = aibench(&["eval", "io.write('partial'); os.exit(7)"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(text(&o.stdout), "partial");
    assert_eq!(aibench(&["eval", "os.exit(true)"]).status.code(), Some(0));
    assert_eq!(aibench(&["eval", "os.exit(false)"]).status.code(), Some(1));
}

#[test]
fn types_writes_stubs_and_luarc() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(".luarc.json"), r#"{"diagnostics.disable": ["lowercase-global"]}"#).unwrap();
    let o = aibench(&["types", "--out", d.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stub = std::fs::read_to_string(d.path().join("types/aibench.json.lua")).unwrap();
    assert!(stub.contains("---@meta aibench.json"));
    let rc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join(".luarc.json")).unwrap()).unwrap();
    assert_eq!(rc["runtime.version"], "Lua 5.4");
    assert_eq!(rc["workspace.library"][0], "types");
    assert_eq!(rc["diagnostics.disable"][0], "lowercase-global", "existing settings are kept");
}

#[test]
fn version_and_log_levels() {
    let o = aibench(&["--version"]);
    assert!(text(&o.stdout).starts_with("aibench "));
    let home = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_aibench"))
        .args(["eval", "require('aibench.log').debug('dbg-line')"])
        .env("AIBENCH_HOME", home.path())
        .env("AIBENCH_LOG", "debug")
        .output()
        .unwrap();
    assert!(text(&o.stderr).contains("dbg-line"));
    let o = aibench(&["-vv", "eval", "require('aibench.log').debug('dbg-line')"]);
    assert!(text(&o.stderr).contains("dbg-line"));
    let o = aibench(&["eval", "require('aibench.log').debug('dbg-line')"]);
    assert!(!text(&o.stderr).contains("dbg-line"));
}

/// A simulator in its own process, stopped on drop.
struct SimProcess {
    child: std::process::Child,
    url: String,
}

impl SimProcess {
    /// Requests the simulator has answered (its vllm:request_success_total).
    fn served(&self) -> f64 {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://").to_string();
        let Ok(mut s) = std::net::TcpStream::connect(&addr) else { return 0.0 };
        let _ = write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.lines()
            .filter(|l| l.starts_with("vllm:request_success_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn start(profile: &str) -> SimProcess {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_aibench"))
            .args(["sim", "--port", "0", "--profile", profile])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        SimProcess { child, url: line.trim().to_string() }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn bench_command_prints_a_summary_and_writes_json() {
    let sim = SimProcess::start("instant");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r.json");
    let o = aibench(&[
        "bench",
        "--url",
        &sim.url,
        "--users",
        "2",
        "--requests",
        "20",
        "--output-tokens",
        "4",
        "--json",
        out.to_str().unwrap(),
    ]);
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    assert!(stdout.contains("20 total"), "{stdout}");
    assert!(stdout.contains("Little's law"), "{stdout}");
    // Issue 23: the definitions are one line unless asked for (--explain).
    assert!(!stdout.contains("TTFT: request sent"), "{stdout}");
    assert!(stdout.contains("--explain prints the definitions"), "{stdout}");
    let explained = aibench(&["bench", "--url", &sim.url, "--users", "1", "--requests", "2", "--explain"]);
    assert!(text(&explained.stdout).contains("TTFT: request sent -> first streamed chunk with content"));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["schema"], "aibench.bench/2");
    assert_eq!(r["successes"], 20);
    assert_eq!(r["tokens"]["output_total"], 80);

    let o = aibench(&["bench", "--url", &sim.url, "--users", "2", "--rate", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--users (closed loop) or --rate (open loop), not both"));
    let o = aibench(&["bench", "--url", "http://127.0.0.1:9", "--requests", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("unreachable"), "{}", text(&o.stderr));
}

#[test]
fn server_and_services_commands() {
    let o = aibench(&["server", "recipes"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    for r in ["vllm-sim", "vllm-server", "ollama-server"] {
        assert!(out.contains(r), "{out}");
    }
    let o = aibench(&["server", "run", "--recipe", "vllm-sm"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr).trim(),
        "aibench server: unknown server recipe 'vllm-sm' (did you mean 'vllm-sim'?); available: ollama-server, sglang-2node, vllm-ray-2node, vllm-server, vllm-sim"
    );
    let o = aibench(&["server", "run", "--recipe", "vllm-server", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let script = text(&o.stdout);
    assert!(
        script.contains("#SBATCH --gres=gpu:1")
            && script.contains("apptainer exec --nv")
            && script.contains("module load Apptainer/1.3.6-GCCcore-13.3.0"),
        "{script}"
    );
    let o = aibench(&[
        "server",
        "run",
        "--recipe",
        "vllm-sim",
        "--set",
        "orchestration.resources.time_limit=4h",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("orchestration.resources.time_limit: expected MM, MM:SS, HH:MM:SS"),
        "{}",
        text(&o.stderr)
    );
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.yaml");
    std::fs::write(&bad, "name: x\nservice:\n  command: [oops\n").unwrap();
    let o = aibench(&["server", "run", "--recipe", bad.to_str().unwrap(), "--dry-run"]);
    let err = text(&o.stderr);
    assert!(err.contains("bad.yaml: line ") && err.contains(" column "), "{err}");
    assert!(!err.contains("stack traceback"), "user errors carry no traceback: {err}");
    let o = aibench(&["server", "template", "my-server"]);
    assert!(text(&o.stdout).contains("name: my-server"));
    let o = aibench(&["services", "list"]);
    assert!(text(&o.stdout).contains("no service is registered"));
    let o = aibench(&["services", "show", "vllm"]);
    assert_eq!(o.status.code(), Some(1));
    let o = aibench(&["server", "stop", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("no server with id 'nope'"));
    let o = aibench(&["client", "run", "--recipe", "vllm-simple-test", "--executor", "slrum"]);
    assert!(text(&o.stderr).contains("unknown executor 'slrum' (did you mean 'slurm'?)"), "{}", text(&o.stderr));
    // A bad flag value exits 2, as the README's table says (issue 23).
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = aibench(&["server", "run", "--recipe", "vllm-sim", "--set", "orchestration.resources.cpus=4"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("--set orchestration.resources.cpus=4: unknown field 'cpus'"),
        "{}",
        text(&o.stderr)
    );
    let o = aibench(&["server", "run", "--recipe", "vllm-sim", "--set", "nonsense"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

#[test]
fn ctrl_c_stops_a_benchmark_with_partial_results() {
    let sim = SimProcess::start("opt-125m-cpu");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r.json");
    let child = Command::new(env!("CARGO_BIN_EXE_aibench"))
        .args([
            "bench",
            "--url",
            &sim.url,
            "--users",
            "4",
            "--duration",
            "60",
            "--output-tokens",
            "16",
            "--json",
            out.to_str().unwrap(),
        ])
        .env("AIBENCH_HOME", d.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted while it is measuring, not while it prepares (a loaded
    // machine can take more than a second to start).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.served() < 1.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(6), "stops promptly");
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("INTERRUPTED by SIGINT: partial results"), "{}", text(&o.stdout));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["interrupted_by"], "SIGINT");
    assert!(r["successes"].as_u64().unwrap() > 0);
    assert_eq!(r["errors"], 0, "in-flight requests finish cleanly");
}

/// The interactive prompt on a real terminal (a pty from `script`): Ctrl-C
/// cancels a running evaluation and the prompt carries on; Ctrl-C at the
/// prompt drops the line; Ctrl-D exits. `TERM=dumb` has no line editing, so
/// Ctrl-C at the prompt is a signal and the tty drops the line.
#[test]
fn repl_on_a_terminal_ctrl_c_cancels_and_continues() {
    repl_terminal_session("dumb", "\n> ");
}

/// The same with rustyline's line editing (raw mode): Ctrl-C at the prompt is
/// a key, and during an evaluation (cooked mode again) a signal.
#[test]
fn repl_with_line_editing_ctrl_c_cancels_and_continues() {
    repl_terminal_session("xterm", "\x1b[K> ");
}

/// Calls `ready` every 20 ms until it gives a value; after 30 s, panics
/// naming what it waited for.
fn poll<T>(mut ready: impl FnMut() -> Option<T>, waiting_for: impl Fn() -> String) -> T {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited 30 s for {}", waiting_for());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each keystroke waits for the output it depends on (one short pause aside),
/// and stdin stays open until the REPL has exited, so `script` never sees its
/// own end of input while the REPL is still running.
fn repl_terminal_session(term: &str, prompt: &str) {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    if !support::on_path("script") {
        panic!("`script` (util-linux) is needed for the terminal test");
    }
    let home = tempfile::tempdir().unwrap();
    // `script` runs the command with `$SHELL -c`; `exec` makes the REPL the
    // terminal's only process. Without it a shell that stays in between (dash,
    // when CI leaves SHELL unset) also gets the Ctrl-C and exits with 130
    // after the REPL has exited cleanly.
    let cmd = format!("exec '{}' repl", env!("CARGO_BIN_EXE_aibench"));
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("AIBENCH_HOME", home.path())
        .env("TERM", term)
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let output = || seen.lock().unwrap().clone();
    // Waits until `needle` occurs `count` times in the output.
    let wait_for = |needle: &str, count: usize| {
        poll(
            || (output().matches(needle).count() >= count).then_some(()),
            || format!("{count}× {needle:?}; output so far:\n{}", output()),
        )
    };
    let mut stdin = child.stdin.take().unwrap();
    let mut send = |bytes: &[u8]| {
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    };
    wait_for(prompt, 1);
    send(b"while true do end\r");
    wait_for("while true do end", 1);
    // The echo comes before the line is evaluated; give the loop a moment to start.
    std::thread::sleep(Duration::from_millis(300));
    send(b"\x03");
    wait_for("interrupted", 1);
    wait_for(prompt, 2);
    send(b"return 6 * 7\r");
    wait_for("42", 1);
    wait_for(prompt, 3);
    // Ctrl-C at the prompt drops the half-typed line and keeps the session;
    // a second one neither exits nor cancels the next evaluation. Without
    // line editing the tty echoes "^C" (no new prompt); rustyline prompts again.
    let line_editing = term != "dumb";
    send(b"return 'lost'");
    wait_for("return 'lost'", 1);
    for n in 1..=2 {
        send(b"\x03");
        if line_editing { wait_for(prompt, 3 + n) } else { wait_for("^C", 1 + n) }
    }
    let prompts = if line_editing { 6 } else { 4 };
    send(b"return 'still' .. 'here'\r");
    wait_for("stillhere", 1);
    assert!(!output().contains("\nlost"), "{}", output());
    wait_for(prompt, prompts);
    send(b"\x04");
    let status = poll(|| child.try_wait().unwrap(), || format!("the REPL to exit on Ctrl-D; output:\n{}", output()));
    drop(stdin);
    reader.join().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let out = output();
    assert!(status.success(), "exit {status:?}; stderr: {err}\noutput:\n{out}");
    assert!(home.path().join("repl_history").exists(), "history is saved");
    let history = std::fs::read_to_string(home.path().join("repl_history")).unwrap();
    assert!(history.contains("return 6 * 7"), "{history}");
}

/// `aibench sim` with `flags`, which it must refuse before it binds: killed
/// (and the test failed) if it starts serving instead.
fn sim_refusing(flags: &[&str]) -> Output {
    use std::time::{Duration, Instant};
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aibench"))
        .args(["sim", "--port", "0"])
        .args(flags)
        .env("AIBENCH_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aibench sim {flags:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn sim_setting_errors_name_the_flag() {
    // Each setting's error names the flag that sets it, renamed ones
    // (startup_delay_s) and the profile overrides included.
    for (flags, want) in [
        (&["--startup-delay=-1"][..], "--startup-delay: expected a non-negative number of seconds, got -1"),
        (&["--stall-s=inf"], "--stall-s: expected a non-negative number of seconds, got inf"),
        (&["--max-num-seqs", "0"], "--max-num-seqs: expected a positive integer, got 0"),
        (&["--kv-cache-tokens", "1"], "--kv-cache-tokens: expected at least 2, got 1"),
        (&["--max-model-len", "1"], "--max-model-len: expected at least 2, got 1"),
        (&["--block-size", "0"], "--block-size: expected a positive integer, got 0"),
        (&["--body-budget-mib", "0"], "--body-budget-mib: expected a positive number of MiB, got 0"),
        (&["--model", ""], "--model: expected a non-empty name"),
        (&["--disconnect-rate", "2"], "--disconnect-rate: expected a probability between 0 and 1, got 2"),
    ] {
        let o = sim_refusing(flags);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stderr).trim(), format!("aibench sim: {want}"), "{flags:?}");
        assert!(o.stdout.is_empty(), "{flags:?}: {}", text(&o.stdout));
    }
    // A profile's errors are said as they are, without a field.
    let o = sim_refusing(&["--profile", "instnt"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.starts_with("aibench sim: unknown simulator profile 'instnt' (did you mean 'instant'?)"), "{err}");
    let o = sim_refusing(&["--profile", "/no/such/profile.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.starts_with("aibench sim: --profile: cannot read '/no/such/profile.yaml'"), "{err}");
}

#[test]
fn completions_for_each_shell_know_the_commands_and_flags() {
    let o = aibench(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let bash = text(&o.stdout);
    for word in ["aibench", "client", "monitor", "--recipe", "--executor", "completions"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    assert!(!bash.contains("job-agent"), "internal commands are not offered");
    // The script is valid bash.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aibench.bash");
    std::fs::write(&path, &o.stdout).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(check.status.success(), "bash -n: {}", text(&check.stderr));
    let fish = aibench(&["completions", "fish"]);
    assert!(text(&fish.stdout).contains("complete -c aibench"), "{}", text(&fish.stdout));
    let zsh = aibench(&["completions", "zsh"]);
    assert!(text(&zsh.stdout).starts_with("#compdef aibench"), "{}", text(&zsh.stdout));
    let bad = aibench(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("invalid value 'tcsh'"), "{}", text(&bad.stderr));
}

#[test]
fn client_recipes_show_how_long_each_runs_and_whole_first_sentences() {
    let o = aibench(&["client", "recipes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.lines().next().unwrap_or("").contains("LENGTH"), "{out}");
    let line = |name: &str| out.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string();
    assert!(line("vllm-simple-test ").contains("120 s"), "{out}");
    assert!(line("vllm-high-throughput-test").contains("5000 requests"), "{out}");
    assert!(line("vllm-trace-replay").contains("the trace"), "{out}");
    // The first sentence whole, not cut at 70 characters.
    assert!(
        line("vllm-simple-test ").contains("50-token prompts, 20-token outputs, 500 ms think time, 2 minutes."),
        "{out}"
    );
}

#[test]
fn client_run_points_to_the_definitions_once_and_prints_them_when_asked() {
    let sim = SimProcess::start("instant");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("results");
    let args = |explain: bool| {
        let mut a = vec![
            "client",
            "run",
            "--recipe",
            "vllm-simple-test",
            "--url",
            sim.url.as_str(),
            "--set",
            "workload.duration_seconds=1",
            "--set",
            "workload.think_time_ms=0",
            "--runs",
            "2",
            "--out-dir",
            out.to_str().unwrap(),
        ];
        if explain {
            a.push("--explain");
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |explain: bool| {
        let a = args(explain);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        aibench(&refs)
    };
    let o = run(false);
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    assert_eq!(stdout.matches("--explain prints the definitions").count(), 1, "{stdout}");
    assert!(!stdout.contains("TTFT: request sent"), "{stdout}");
    let o = run(true);
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
    assert_eq!(stdout.matches("TTFT: request sent").count(), 1, "{stdout}");
}

// Output for scripts (issue 23): `--json` on every listing and status
// command prints one JSON document, and nothing else, on stdout.

fn aibench_in(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aibench")).args(args).env("AIBENCH_HOME", home).output().expect("run aibench")
}

/// Stdout parsed as one JSON document (all of it: nothing else may be
/// there), after checking the exit status and the schema name.
fn json_doc(o: &Output, schema: &str) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "stdout: {}\nstderr: {}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.ends_with("}\n"), "one document and a newline: {out}");
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is not only JSON ({e}): {out}"));
    assert_eq!(v["schema"], schema, "{out}");
    v
}

/// The list under `key`, which must be an array.
fn list<'a>(v: &'a serde_json::Value, key: &str) -> &'a Vec<serde_json::Value> {
    v[key].as_array().unwrap_or_else(|| panic!("'{key}' is not an array: {v}"))
}

/// Every field of a deployment entry is there (null when unknown).
fn assert_deployment_fields(d: &serde_json::Value) {
    let fields = "instance_id recipe recipe_file service executor job_id state reason exit_code expected_start node url \
                  submitted_at dir registered";
    for k in fields.split_whitespace() {
        assert!(d.get(k).is_some(), "field '{k}' missing: {d}");
    }
}

#[test]
fn json_listings_with_nothing_running_are_empty_documents() {
    let home = tempfile::tempdir().unwrap();
    for (args, schema, key) in [
        (&["services", "list", "--json"][..], "aibench.services.v1", "services"),
        (&["server", "list", "--json"][..], "aibench.servers.v1", "servers"),
        (&["server", "list", "--all", "--json"][..], "aibench.servers.v1", "servers"),
        (&["server", "status", "--json"][..], "aibench.server_status.v1", "servers"),
        (&["client", "list", "--json"][..], "aibench.clients.v1", "clients"),
        (&["monitor", "list", "--json"][..], "aibench.monitors.v1", "monitors"),
        (&["monitor", "status", "--json"][..], "aibench.monitor_status.v1", "monitors"),
    ] {
        let v = json_doc(&aibench_in(home.path(), args), schema);
        assert!(list(&v, key).is_empty(), "{args:?}: {v}");
    }
    // The text forms say so in words (and are not JSON).
    let o = aibench_in(home.path(), &["monitor", "status"]);
    assert_eq!(text(&o.stdout).trim(), "no monitor is running");
    // An id that matches nothing is an error, not an empty answer.
    let o = aibench_in(home.path(), &["server", "status", "nope", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(text(&o.stderr).contains("no server with id 'nope'"), "{}", text(&o.stderr));
}

#[test]
fn recipes_json_lists_every_recipe_of_each_kind() {
    for (kind, name, service) in
        [("server", "vllm-sim", "vllm"), ("client", "vllm-simple-test", "vllm"), ("monitor", "vllm-monitor", "vllm")]
    {
        let v = json_doc(&aibench(&[kind, "recipes", "--json"]), "aibench.recipes.v1");
        assert_eq!(v["kind"], kind);
        let r =
            list(&v, "recipes").iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name} not listed: {v}"));
        assert_eq!(r["service_name"], service, "{r}");
        assert!(r["source"] == "stock" || r["source"] == "file", "{r}");
        assert!(r["error"].is_null(), "{r}");
        // The whole description, on one line.
        let desc = r["description"].as_str().unwrap();
        assert!(desc.len() > 40 && !desc.contains('\n'), "{r}");
    }
    let v = json_doc(&aibench(&["client", "recipes", "--json"]), "aibench.recipes.v1");
    let find = |n: &str| list(&v, "recipes").iter().find(|r| r["name"] == n).cloned().unwrap();
    let simple = find("vllm-simple-test");
    assert_eq!(simple["duration_s"], 120, "{simple}");
    assert_eq!(simple["pattern"], "closed-loop", "{simple}");
    assert!(simple["total_requests"].is_null(), "{simple}");
    assert_eq!(find("vllm-high-throughput-test")["total_requests"], 5000);
    // A server recipe has no length fields.
    let v = json_doc(&aibench(&["server", "recipes", "--json"]), "aibench.recipes.v1");
    assert!(list(&v, "recipes")[0].get("duration_s").is_none(), "{v}");
}

/// Stops what a test started under `home`, even when it fails half-way.
struct StopAll<'a>(&'a std::path::Path);

impl Drop for StopAll<'_> {
    fn drop(&mut self) {
        for kind in ["client", "monitor", "server"] {
            let _ = aibench_in(self.0, &[kind, "stop-all"]);
        }
    }
}

#[test]
fn json_listings_and_statuses_of_running_servers_clients_and_monitors() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let _stop = StopAll(h);
    let o = aibench_in(h, &["server", "run", "--recipe", "vllm-sim", "--executor", "local"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    let v = json_doc(&aibench_in(h, &["services", "list", "--json"]), "aibench.services.v1");
    let services = list(&v, "services");
    assert_eq!(services.len(), 1, "{v}");
    assert_eq!(services[0]["name"], "vllm");
    let inst = &list(&services[0], "instances")[0];
    let url = inst["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://"), "{inst}");
    assert_eq!(inst["executor"], "local");
    assert_eq!(inst["status"], "RUNNING");
    assert!(inst["ports"][0].is_u64(), "{inst}");
    assert!(inst["registered_at"].as_str().unwrap().ends_with('Z'), "RFC 3339, UTC: {inst}");
    assert!(list(&v, "skipped").is_empty());

    let v = json_doc(&aibench_in(h, &["server", "list", "--json"]), "aibench.servers.v1");
    let servers = list(&v, "servers");
    assert_eq!(servers.len(), 1, "{v}");
    let s = &servers[0];
    assert_deployment_fields(s);
    assert_eq!(s["state"], "RUNNING");
    assert_eq!(s["recipe"], "vllm-sim");
    assert_eq!(s["service"], "vllm");
    assert_eq!(s["url"], url.as_str());
    assert_eq!(s["registered"]["instance_id"], s["instance_id"]);
    let id = s["instance_id"].as_str().unwrap().to_string();

    let v = json_doc(&aibench_in(h, &["server", "status", &id[..6], "--json"]), "aibench.server_status.v1");
    let st = &list(&v, "servers")[0];
    assert_deployment_fields(st);
    assert_eq!(st["instance_id"], id.as_str());
    // Running: no log tail yet; the start-up timeline in seconds.
    assert!(st["log_tail"].is_null(), "{st}");
    assert!(st["timeline"].is_null() || st["timeline"]["total_s"].is_number(), "{st}");

    // A detached client job: listed while it runs, and with --all after.
    let out = tempfile::tempdir().unwrap();
    let o = aibench_in(
        h,
        &[
            "client",
            "run",
            "--recipe",
            "vllm-simple-test",
            "--set",
            "workload.duration_seconds=1",
            "--detach",
            "--out-dir",
            out.path().to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v = json_doc(&aibench_in(h, &["client", "list", "--all", "--json"]), "aibench.clients.v1");
    let clients = list(&v, "clients");
    assert_eq!(clients.len(), 1, "{v}");
    assert_deployment_fields(&clients[0]);
    assert_eq!(clients[0]["recipe"], "vllm-simple-test");
    assert_eq!(clients[0]["executor"], "local");

    if !support::on_path("prometheus") && !support::required() {
        eprintln!("prometheus is not installed: the monitor's --json is not checked");
        return;
    }
    let o = aibench_in(h, &["monitor", "start", "--recipe", "vllm-monitor", "--executor", "local"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v = json_doc(&aibench_in(h, &["monitor", "list", "--json"]), "aibench.monitors.v1");
    let monitors = list(&v, "monitors");
    assert_eq!(monitors.len(), 1, "{v}");
    assert_deployment_fields(&monitors[0]);
    assert_eq!(monitors[0]["recipe"], "vllm-monitor");
    assert_eq!(monitors[0]["state"], "RUNNING");
    // Its targets follow the registry: the server, once Prometheus has read it.
    let v = poll(
        || {
            let v = json_doc(&aibench_in(h, &["monitor", "status", "--json"]), "aibench.monitor_status.v1");
            let found = list(&v, "monitors")[0]["targets"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["scrape_url"].as_str().is_some_and(|u| u.starts_with(&url))));
            found.then_some(v)
        },
        || "the server among the monitor's targets".into(),
    );
    let m = &list(&v, "monitors")[0];
    assert_deployment_fields(m);
    assert!(m["url"].as_str().unwrap().starts_with("http://"), "{m}");
    assert!(m["firing"].is_u64(), "{m}");
    assert!(m["alerts"].is_array(), "{m}");
    for t in list(m, "targets") {
        for k in ["scrape_url", "job", "health", "last_scrape", "last_scrape_duration_s", "last_error", "labels"] {
            assert!(t.get(k).is_some(), "field '{k}' missing: {t}");
        }
        // Not scraped yet is null, never year 1.
        assert!(t["last_scrape"].is_null() || !t["last_scrape"].as_str().unwrap().starts_with("0001-"), "{t}");
    }
}

/// A result of `aibench bench` against `url`, written to `path`.
fn bench_result(url: &str, path: &std::path::Path, requests: &str) {
    let o = aibench(&[
        "bench",
        "--url",
        url,
        "--users",
        "2",
        "--requests",
        requests,
        "--output-tokens",
        "4",
        "--json",
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn report_json_gives_each_results_figures_and_the_comparison() {
    let sim = SimProcess::start("instant");
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.json"), d.path().join("b.json"));
    bench_result(&sim.url, &a, "20");
    bench_result(&sim.url, &b, "10");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let v = json_doc(&aibench(&["report", a, b, "--json"]), "aibench.report.v1");
    let rs = list(&v, "results");
    assert_eq!(rs.len(), 2, "{v}");
    assert_eq!(rs[0]["path"], a);
    let bench = &rs[0]["bench"];
    assert_eq!(bench["total_requests"], 20, "{bench}");
    assert_eq!(bench["successes"], 20);
    assert_eq!(bench["errors"], 0);
    assert_eq!(bench["tokens"]["output_total"], 80);
    assert!(bench["throughput_req_per_sec"].as_f64().unwrap() > 0.0);
    assert!(bench["ttft_ms"]["p50"].is_number() && bench["ttft_ms"]["p99"].is_number(), "{bench}");
    assert!(bench["latency_ms"]["count"].is_u64(), "{bench}");
    // The summary, not the bulk: no histograms or per-second series.
    assert!(bench.get("histograms").is_none() && bench.get("timeseries").is_none(), "{bench}");
    // Absent sections are null, not left out.
    assert!(bench["goodput"].is_null() && rs[0]["server"].is_null() && rs[0]["hpc"].is_null(), "{}", rs[0]);
    assert!(v["comparison"].is_null());
    assert!(list(&v, "skipped").is_empty());
    assert_eq!(rs[1]["bench"]["total_requests"], 10);

    // --compare: each metric's runs line up with the results.
    let v = json_doc(&aibench(&["report", a, b, "--json", "--compare", "--threshold", "5"]), "aibench.report.v1");
    let c = &v["comparison"];
    assert_eq!(c["baseline"], a);
    assert_eq!(c["threshold"], 5.0);
    assert!(c["regressions"].is_u64(), "{c}");
    let tput = list(c, "metrics").iter().find(|m| m["metric"] == "throughput").unwrap_or_else(|| panic!("{c}"));
    assert_eq!(tput["unit"], "req/s");
    let runs = list(tput, "runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["value"], rs[0]["bench"]["throughput_req_per_sec"]);
    assert!(runs[0]["delta_pct"].is_null() && runs[1]["delta_pct"].is_number(), "{tput}");

    // --json and --md are two formats: one at a time.
    let o = aibench(&["report", a, "--json", "--md"]);
    assert_eq!(o.status.code(), Some(2));
    // --out writes the same document to a file; stdout stays empty.
    let out = d.path().join("report.json");
    let o = aibench(&["report", a, "--json", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["schema"], "aibench.report.v1");

    // A client run's record: its recipe and id, and the server's side, every
    // field of it there (null when the run had none) but the time series.
    let runs = d.path().join("runs");
    let o = aibench(&[
        "client",
        "run",
        "--recipe",
        "vllm-simple-test",
        "--url",
        &sim.url,
        "--set",
        "workload.duration_seconds=1",
        "--out-dir",
        runs.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // A folder with a file that is not a result: skipped, named, on stderr and in the document.
    std::fs::write(runs.join("broken.json"), "{").unwrap();
    let o = aibench(&["report", runs.to_str().unwrap(), "--json"]);
    assert!(text(&o.stderr).contains("skipped"), "{}", text(&o.stderr));
    let v = json_doc(&o, "aibench.report.v1");
    let skipped = list(&v, "skipped");
    assert_eq!(skipped.len(), 1, "{v}");
    assert!(skipped[0]["path"].as_str().unwrap().ends_with("broken.json"), "{v}");
    let r = &list(&v, "results")[0];
    assert_eq!(r["recipe"], "vllm-simple-test");
    assert!(r["id"].as_str().is_some_and(|id| id.len() == 8), "{r}");
    assert!(r["created_at"].as_str().unwrap().ends_with('Z'), "{r}");
    let server = &r["server"];
    // (Counters as Prometheus gives them: 6.0.)
    assert_eq!(server["requests"].as_f64(), r["bench"]["successes"].as_f64(), "{server}");
    assert!(server.get("gpu").is_some_and(|g| g.is_null()), "a CPU server has no GPU section, as null: {server}");
    assert!(server.get("timeseries").is_none(), "{server}");
}

#[test]
fn results_list_shows_each_result_by_time_and_unreadable_files_with_a_reason() {
    let sim = SimProcess::start("instant");
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("results");
    std::fs::create_dir(&dir).unwrap();
    // Named so that name order is not time order: the list sorts by time.
    bench_result(&sim.url, &dir.join("zz-first.json"), "6");
    bench_result(&sim.url, &dir.join("aa-second.json"), "4");
    std::fs::write(dir.join("broken.json"), "{\"schema\": \"aibench.bench/2\", \"total_req").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a result").unwrap();
    let dir_s = dir.to_str().unwrap();

    let v = json_doc(&aibench(&["results", "list", dir_s, "--json"]), "aibench.results.v1");
    assert_eq!(v["dir"], dir_s);
    let rs = list(&v, "results");
    let ids: Vec<&str> = rs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["zz-first", "aa-second", "broken"], "{v}");
    let first = &rs[0];
    assert_eq!(first["total_requests"], 6);
    assert_eq!(first["errors"], 0);
    assert!(first["started_at"].as_str().unwrap().ends_with('Z'), "{first}");
    for k in ["throughput_req_per_sec", "tokens.output_per_s", "ttft_ms.p50", "ttft_ms.p99", "tpot_ms.p50"] {
        let mut x = first;
        for part in k.split('.') {
            x = &x[part];
        }
        assert!(x.is_number(), "{k}: {first}");
    }
    assert!(first["error"].is_null());
    let broken = &rs[2];
    assert!(broken["error"].as_str().unwrap().contains("not valid JSON"), "{broken}");
    assert!(broken["total_requests"].is_null() && broken["ttft_ms"]["p50"].is_null(), "{broken}");

    let o = aibench(&["results", "list", dir_s]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("TTFT P99"), "{out}");
    assert!(lines[1].starts_with("zz-first") && lines[2].starts_with("aa-second"), "{out}");
    assert!(out.contains("1 file could not be read:") && out.contains("broken.json: not valid JSON"), "{out}");

    let o = aibench(&["results", "list", d.path().join("nowhere").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("nowhere: no such folder"), "{}", text(&o.stderr));
}

#[test]
fn bench_usage_says_only_url_is_required_and_gives_the_defaults() {
    let o = aibench(&["bench", "--help"]);
    let help = text(&o.stdout);
    assert!(
        help.contains("Usage: aibench bench --url <URL> [--users <USERS> | --rate <RATE>] [--duration <DURATION> | --requests <REQUESTS>] [OPTIONS]"),
        "{help}"
    );
    assert!(help.contains("without --users or --rate, a closed loop of 1 user"), "{help}");
    assert!(help.contains("[default: 1]"), "{help}");
    let o = aibench(&["bench"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("Usage: aibench bench --url <URL> [--users"), "{}", text(&o.stderr));
}

/// The stock multi-node server recipes: `--dry-run` prints the one job (one
/// task per node, a failing part ends the others) and what each node's agent
/// runs, compared with golden files (job folder, binary and working folder
/// normalised). `UPDATE_GOLDEN=1` rewrites them.
#[test]
fn multinode_recipes_dry_run_goldens() {
    for recipe in ["vllm-ray-2node", "sglang-2node"] {
        let home = tempfile::tempdir().unwrap();
        let o = aibench_in(home.path(), &["server", "run", "--recipe", recipe, "--dry-run"]);
        assert!(o.status.success(), "{recipe}: {}", text(&o.stderr));
        let out = text(&o.stdout);
        // The job folder's random instance id, then the paths of this machine.
        let dir_re = format!("{}/jobs/{recipe}-", home.path().display());
        let mut norm = String::new();
        for line in out.lines() {
            let mut l = line.to_string();
            while let Some(i) = l.find(&dir_re) {
                let id_start = i + dir_re.len();
                let id_end =
                    id_start + l[id_start..].find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(l.len() - id_start);
                l.replace_range(i..id_end, &format!("$AIBENCH_HOME/jobs/{recipe}-ID"));
            }
            l = l.replace(env!("CARGO_BIN_EXE_aibench"), "/opt/aibench/bin/aibench");
            l = l.replace(&format!("cd {}", env!("CARGO_MANIFEST_DIR")), "cd /project/run");
            norm.push_str(&l);
            norm.push('\n');
        }
        let path = format!("{}/tests/golden/{recipe}.dry-run", env!("CARGO_MANIFEST_DIR"));
        if std::env::var("UPDATE_GOLDEN").is_ok() {
            std::fs::write(&path, &norm).unwrap();
        }
        let want =
            std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path} missing: run with UPDATE_GOLDEN=1"));
        assert_eq!(norm, want, "{recipe}: the dry run differs from {path}");
        assert!(
            norm.contains("#SBATCH --nodes=2") && norm.contains("--ntasks-per-node=1 --kill-on-bad-exit=1"),
            "{norm}"
        );
    }
    // A multi-node server needs a launcher and SLURM; the errors say so.
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("mn.yaml");
    std::fs::write(
        &r,
        "name: mn\nservice_name: mn\nservice:\n  command: sleep 1\n  nodes: 2\norchestration: {executor: slurm}\n",
    )
    .unwrap();
    let o = aibench(&["server", "run", "--recipe", r.to_str().unwrap(), "--dry-run"]);
    assert!(
        text(&o.stderr).contains("service.launcher: a server on 2 nodes needs a launcher: ray"),
        "{}",
        text(&o.stderr)
    );
    let o = aibench(&["server", "run", "--recipe", "vllm-ray-2node", "--executor", "local", "--dry-run"]);
    assert!(
        text(&o.stderr).contains("service.nodes: a server on 2 nodes runs as one SLURM job"),
        "{}",
        text(&o.stderr)
    );
    let o = aibench(&[
        "server",
        "run",
        "--recipe",
        "sglang-2node",
        "--set",
        "orchestration.resources.nodes=3",
        "--dry-run",
    ]);
    assert!(
        text(&o.stderr).contains("orchestration.resources.nodes: 3, but service.nodes is 2"),
        "{}",
        text(&o.stderr)
    );
    let o =
        aibench(&["server", "run", "--recipe", "vllm-ray-2node", "--set", "service.ray.timeout_s=3000", "--dry-run"]);
    assert!(
        text(&o.stderr).contains("service.ray.timeout_s: 3000 s is not less than service.health.timeout_s (2400 s)"),
        "{}",
        text(&o.stderr)
    );
    let o = aibench(&["server", "run", "--recipe", "sglang-2node", "--set", "service.ray.timeout_s=30", "--dry-run"]);
    assert!(text(&o.stderr).contains("service.ray: Ray's settings need launcher: ray"), "{}", text(&o.stderr));
}
