//! The binary under faults and hostile input: dead servers, signals, bad
//! flags and recipes, a damaged registry, file permissions, exit codes.
//! Each test here failed before the fix it guards.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::sim::Sim;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cmd(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aibench"));
    c.args(args).env("AIBENCH_HOME", home).current_dir(home);
    c
}

fn run(home: &Path, args: &[&str]) -> Output {
    cmd(home, args).output().expect("run aibench")
}

/// A TCP port nothing listens on.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signals a child this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

// 1. A closed loop against a dead server backs off and stops early.

#[test]
fn a_dead_server_gets_backoff_not_a_flood_and_the_run_stops_early() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let started = Instant::now();
    let o = run(
        h,
        &[
            "bench",
            "--url",
            &dead_url(),
            "--model",
            "m",
            "--users",
            "4",
            "--duration",
            "60",
            "--log",
            "d.jsonl",
            "--json",
            "r.json",
        ],
    );
    let took = started.elapsed();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(20), "stopped after the default 10 s, not at 60 s: {took:?}");
    assert!(took >= Duration::from_secs(9), "{took:?}");
    assert!(err.contains("server unreachable since 20"), "{err}");
    let r = json_file(&h.join("r.json"));
    assert_eq!(r["stopped_early"]["reason"], "unreachable");
    assert_eq!(r["successes"], 0);
    let total = r["total_requests"].as_u64().unwrap();
    // Without backoff 4 users made hundreds of thousands of attempts here;
    // with 10 ms .. 1 s pauses each makes about 17 in 10 s.
    assert!(total < 4 * 40, "{total} attempts in 10 s");
    assert_eq!(r["errors_by_class"]["connect"].as_u64().unwrap(), total);
    assert!(r["backoff"]["count"].as_u64().unwrap() >= total - 4, "{}", r["backoff"]);
    assert!(r["backoff"]["total_s"].as_f64().unwrap() > 4.0 * 5.0, "{}", r["backoff"]);
    let lines = std::fs::read_to_string(h.join("d.jsonl")).unwrap().lines().count() as u64;
    assert_eq!(lines, total, "one log line per request, and no more");
    // One line says what failed, with the first error of each class.
    let line = err.lines().find(|l| l.contains("no request succeeded (")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&format!("({total} sent)")), "{line}");
    assert!(line.contains("connect") && line.contains("Connection refused"), "{line}");
}

#[test]
fn a_server_killed_mid_run_is_not_hammered() {
    let home = tempfile::tempdir().unwrap();
    let mut sim = Sim::start(&["--profile", "instant"]);
    let child = cmd(
        home.path(),
        &["bench", "--url", &sim.url, "--users", "16", "--duration", "6", "--output-tokens", "8", "--json", "r.json"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    sim.kill9();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "the run finished and requests succeeded: {}", text(&o.stderr));
    let r = json_file(&home.path().join("r.json"));
    let (ok, errors) = (r["successes"].as_u64().unwrap(), r["errors"].as_u64().unwrap());
    assert!(ok > 100, "{ok}");
    assert_eq!(r["total_requests"].as_u64().unwrap(), ok + errors);
    // 16 users for the 4 s after the kill: about 14 attempts each with
    // backoff, against 346,844 errors in 6 s before.
    assert!(errors < 16 * 30, "{errors} errors after the kill");
    assert!(errors > 16, "{errors}");
    assert!(r["stopped_early"].is_null(), "4 s without an answer is below the 10 s limit");
}

#[test]
fn keep_going_runs_to_the_end_against_a_dead_server() {
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let o = run(
        home.path(),
        &[
            "bench",
            "--url",
            &dead_url(),
            "--model",
            "m",
            "--users",
            "2",
            "--duration",
            "12",
            "--keep-going",
            "--json",
            "r.json",
        ],
    );
    // Users stop before a pause that would end past the deadline.
    assert!(started.elapsed() >= Duration::from_secs(11), "ran past the 10 s unreachable limit");
    assert_eq!(o.status.code(), Some(1), "nothing succeeded: {}", text(&o.stderr));
    let r = json_file(&home.path().join("r.json"));
    assert!(r["stopped_early"].is_null());
    assert!(!text(&o.stderr).contains("unreachable since"));
}

// 2. Open files.

#[test]
fn too_many_users_for_the_open_file_limit_are_refused_before_the_run() {
    let home = tempfile::tempdir().unwrap();
    let sh = format!(
        "ulimit -n 256 && exec {} bench --url {} --model m --users 2000 --duration 5",
        env!("CARGO_BIN_EXE_aibench"),
        dead_url()
    );
    let o = Command::new("bash").args(["-c", &sh]).env("AIBENCH_HOME", home.path()).output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--users: 2000 connections need about 2064 open files"), "{err}");
    assert!(err.contains("may open only 256 (hard limit 256)"), "{err}");
    assert!(err.contains("ulimit -n"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let home = tempfile::tempdir().unwrap();
    let sim = Sim::start(&["--profile", "instant"]);
    // Soft 256, hard 4096: 600 users only fit once the soft limit is raised.
    let sh = format!(
        "ulimit -Sn 256 && ulimit -Hn 4096 && exec {} bench --url {} --users 600 --duration 1 --output-tokens 4 --json r.json",
        env!("CARGO_BIN_EXE_aibench"),
        sim.url
    );
    let o = Command::new("bash")
        .args(["-c", &sh])
        .env("AIBENCH_HOME", home.path())
        .current_dir(home.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let r = json_file(&home.path().join("r.json"));
    assert_eq!(r["errors"], 0, "{}", r["error_samples"]);
    assert!(r["successes"].as_u64().unwrap() >= 600);
}

// 3. Names that become paths.

#[test]
fn a_recipe_name_cannot_put_files_outside_aibench_home() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let outside = tempfile::tempdir().unwrap();
    let evil = format!("../../../../../..{}/evilname", outside.path().display());
    let recipes = [
        ("server", format!("name: \"{evil}\"\nservice_name: vllm\nservice:\n  command: sleep 100\n")),
        ("server", "name: ok\nservice_name: \"a/b\"\nservice:\n  command: sleep 100\n".to_string()),
        (
            "client",
            format!(
                "name: \"{evil}\"\nservice_name: vllm\nworkload: {{pattern: closed-loop, users: 1, duration_s: 1}}\n"
            ),
        ),
        ("monitor", format!("name: \"{evil}\"\ntargets: [{{service: vllm}}]\n")),
    ];
    for (i, (kind, yaml)) in recipes.iter().enumerate() {
        let file = h.join(format!("evil{i}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        let action = match *kind {
            "server" => "run",
            "client" => "run",
            _ => "start",
        };
        for executor in ["local", "slurm"] {
            let o = run(h, &[kind, action, "--recipe", file.to_str().unwrap(), "--executor", executor]);
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{kind} {executor}: {err}");
            assert!(err.contains(&format!("{}: ", file.display())), "names the file: {err}");
            assert!(err.contains("name: "), "names the field: {err}");
            assert!(err.contains("a name cannot start with '.'") || err.contains("invalid character '/'"), "{err}");
            assert_eq!(err.lines().count(), 1, "one line, no traceback: {err}");
        }
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing was written outside");
    assert!(!h.join("jobs").exists() || std::fs::read_dir(h.join("jobs")).unwrap().count() == 0);
}

// 4. Ctrl-C while `server run` waits.

#[test]
fn ctrl_c_during_server_run_cancels_the_job_and_nothing_registers() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(
        h.join("slow.yaml"),
        "name: slow\nservice_name: slow\nservice:\n  command: exec {aibench} sim --host 127.0.0.1 --port {port} --profile instant --startup-delay 4\n  health: {path: /health, timeout_s: 100}\n",
    )
    .unwrap();
    let child = cmd(h, &["server", "run", "--recipe", "slow.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted (SIGINT): cancelled server slow instance"), "{err}");
    // The simulator would have become healthy after 4 s and registered.
    std::thread::sleep(Duration::from_secs(5));
    let list = run(h, &["server", "list", "--all"]);
    assert!(text(&list.stdout).contains("CANCELED"), "{}", text(&list.stdout));
    let services = run(h, &["services", "list"]);
    assert!(text(&services.stdout).contains("no service is registered"), "{}", text(&services.stdout));
    let ps = Command::new("pgrep").args(["-f", &format!("{}/jobs/slow-", h.display())]).output().unwrap();
    assert!(ps.stdout.is_empty(), "a process of the job survived: {}", text(&ps.stdout));
}

#[test]
fn detach_submits_and_returns_at_once() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(
        h.join("slow.yaml"),
        "name: slow\nservice_name: slow\nservice:\n  command: exec {aibench} sim --host 127.0.0.1 --port {port} --profile instant --startup-delay 30\n  health: {path: /health, timeout_s: 100}\n",
    )
    .unwrap();
    let started = Instant::now();
    let o = run(h, &["server", "run", "--recipe", "slow.yaml", "--detach"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(started.elapsed() < Duration::from_secs(10), "did not wait for the 30 s start-up");
    assert!(text(&o.stdout).contains("RUNNING") || text(&o.stdout).contains("PENDING"), "{}", text(&o.stdout));
    let stopped = run(h, &["server", "stop-all"]);
    assert!(text(&stopped.stdout).contains("stopped 1 server deployment(s)"), "{}", text(&stopped.stdout));
}

// 5. Signals keep the partial result, with the signal's exit code.

#[test]
fn sigterm_saves_the_partial_result_and_exits_143() {
    let home = tempfile::tempdir().unwrap();
    let sim = Sim::start(&["--profile", "instant"]);
    let child = cmd(home.path(), &["bench", "--url", &sim.url, "--users", "4", "--duration", "60", "--json", "r.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(6));
    assert_eq!(o.status.code(), Some(143), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("INTERRUPTED by SIGTERM"), "{}", text(&o.stdout));
    let r = json_file(&home.path().join("r.json"));
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["interrupted_by"], "SIGTERM");
    assert!(r["successes"].as_u64().unwrap() > 0);
}

#[test]
fn sigterm_during_client_run_saves_an_interrupted_result() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    let child = cmd(
        h,
        &[
            "client",
            "run",
            "--recipe",
            "vllm-simple-test",
            "--url",
            &sim.url,
            "--set",
            "workload.duration_seconds=60",
            "--out-dir",
            "res",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", text(&o.stderr));
    let files: Vec<_> = std::fs::read_dir(h.join("res")).unwrap().filter_map(|e| e.ok()).collect();
    assert_eq!(files.len(), 1, "one result saved");
    let rec = json_file(&files[0].path());
    assert_eq!(rec["bench"]["interrupted"], true);
    assert_eq!(rec["bench"]["interrupted_by"], "SIGTERM");
    assert!(rec["bench"]["successes"].as_u64().unwrap() > 0);
}

// 6. Exit codes when everything failed.

#[test]
fn client_run_with_no_success_exits_1_and_a_dead_instance_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant", "--fail-rate", "1"]);
    let o = run(
        h,
        &[
            "client",
            "run",
            "--recipe",
            "vllm-simple-test",
            "--url",
            &sim.url,
            "--set",
            "workload.duration_seconds=2",
            "--out-dir",
            "res",
        ],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no request succeeded") && err.contains("http_5xx"), "{err}");
    assert!(err.contains("Simulated internal server error"), "{err}");
    assert_eq!(std::fs::read_dir(h.join("res")).unwrap().count(), 1, "the result is still saved");

    // A registry entry whose server is gone: refused before the run.
    let reg = format!(
        "return require('aibench.registry').register('vllm', {{job_id = 'local-0000000000', recipe_name = 'vllm-sim', instance_id = 'dead0001', node = 'n1', host = '127.0.0.1', ports = {{1}}, url = '{}', executor = 'local'}})",
        dead_url()
    );
    assert!(run(h, &["eval", &reg]).status.success());
    let o = run(h, &["client", "run", "--recipe", "vllm-simple-test"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("instance dead0001") && err.contains("is not alive"), "{err}");
    assert!(err.contains("aibench services prune"), "{err}");
}

// 7. Bad input: one line, the field or flag, exit 2 for flags.

#[test]
fn bad_flags_get_one_line_naming_the_flag_and_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let url = dead_url();
    let cases: [(&[&str], &str); 5] = [
        (&["--users", "0"], "--users: expected a positive integer, got 0"),
        (&["--rate", "0"], "--rate: expected a positive number"),
        (&["--duration", "0"], "--duration: expected a positive number"),
        (&["--requests", "0"], "--requests: expected a positive integer, got 0"),
        (&["--prompt-tokens", "0"], "--prompt-tokens: expected a positive integer, got 0"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["bench", "--url", &url, "--model", "m"];
        args.extend_from_slice(extra);
        let o = run(home.path(), &args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.starts_with(&format!("aibench bench: {want}")), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra:?}: {err}");
        assert!(!err.contains("traceback") && !err.contains("runtime error"), "{err}");
    }
    let o = run(home.path(), &["bench", "--url", "ftp://example.org/x", "--model", "m"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end(), "aibench bench: --url: 'ftp://example.org/x': expected an http:// URL");
}

#[test]
fn recipe_mistakes_name_the_file_and_field_without_a_traceback() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // A --set typo is a bad flag value (exit 2) and names the --set, not the
    // stock file it did not come from (issue 23).
    let o = run(h, &["client", "run", "--recipe", "vllm-simple-test", "--set", "workload.concurent_users=3"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("aibench client: --set workload.concurent_users=3: workload.concurent_users: unknown field 'concurent_users' (did you mean 'concurrent_users'?)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // The same mistake in the recipe file names the file and the field.
    std::fs::write(
        h.join("typo.yaml"),
        "name: typo\nservice_name: vllm\nworkload: {pattern: closed-loop, concurent_users: 3, duration_seconds: 1}\n",
    )
    .unwrap();
    let o = run(h, &["client", "run", "--recipe", h.join("typo.yaml").to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("typo.yaml: workload.concurent_users: unknown field 'concurent_users'"), "{err}");
    // Values only the job-script renderer checks name the recipe's field too.
    std::fs::write(
        h.join("bad.yaml"),
        "name: bad\nservice_name: bad\nservice:\n  command: sleep 1\norchestration:\n  resources: {partition: \"cpu;reboot\"}\n",
    )
    .unwrap();
    let o = run(h, &["server", "run", "--recipe", "bad.yaml", "--dry-run"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.yaml: orchestration.resources.partition: invalid character ';'"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // sbatch options aibench controls, refused with the field to use.
    let o = run(
        h,
        &[
            "server",
            "run",
            "--recipe",
            "vllm-sim",
            "--dry-run",
            "--set",
            "orchestration.sbatch_args=[--output=/tmp/x.log]",
        ],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("stock:servers/vllm-sim.yaml: orchestration.sbatch_args: \"--output=/tmp/x.log\" sets --output"),
        "{err}"
    );
    let o = run(
        h,
        &["server", "run", "--recipe", "vllm-sim", "--dry-run", "--set", "orchestration.sbatch_args=[--chdir=/]"],
    );
    assert!(text(&o.stderr).contains("use service.working_dir"), "{}", text(&o.stderr));
}

// 9. A damaged registry file.

#[test]
fn a_corrupt_registry_file_does_not_block_the_others() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let sim = Sim::start(&["--profile", "instant"]);
    let port = sim.url.rsplit(':').next().unwrap().to_string();
    let reg = format!(
        "return require('aibench.registry').register('vllm', {{job_id = 'ext', recipe_name = 'x', instance_id = 'good0001', node = 'n1', host = '127.0.0.1', ports = {{{port}}}, url = '{}', executor = 'external'}})",
        sim.url
    );
    assert!(run(h, &["eval", &reg]).status.success());
    std::fs::write(h.join("discover/broken.json"), "{broken").unwrap();
    let o = run(h, &["services", "list"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(text(&o.stdout).contains("good0001"), "{}", text(&o.stdout));
    assert_eq!(err.matches("broken.json").count(), 1, "warned once: {err}");
    assert!(err.contains("not a registry file (key must be a string"), "{err}");
    let o = run(h, &["services", "prune"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(out.contains("moved") && out.contains("broken.json.corrupt-"), "{out}");
    let moved: Vec<_> = std::fs::read_dir(h.join("discover"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("broken.json.corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(std::fs::read_to_string(moved[0].path()).unwrap(), "{broken");
    // clear reports the file it removed, also a damaged one.
    std::fs::write(h.join("discover/broken.json"), "{broken").unwrap();
    let o = run(h, &["services", "clear", "broken"]);
    let out = text(&o.stdout);
    assert!(out.contains("broken.json (it was not a registry file)"), "{out}");
}

// 10. Permissions.

#[test]
fn what_aibench_writes_under_its_home_is_private() {
    let top = tempfile::tempdir().unwrap();
    let h = top.path().join("home");
    std::fs::create_dir(&h).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&h, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = run(
        &h,
        &[
            "server",
            "run",
            "--recipe",
            "vllm-sim",
            "--set",
            "service.command=exec {aibench} sim --port {port} --profile instant",
        ],
    );
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("is accessible to other users (mode 0755)"), "{err}");
    assert_eq!(mode(&h), 0o755, "the home itself is the user's to change");
    assert_eq!(mode(&h.join("jobs")), 0o700);
    let job = std::fs::read_dir(h.join("jobs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .unwrap()
        .path();
    assert_eq!(mode(&job), 0o700);
    for f in ["job.log", "job.sh", "agent.json", "service.sh", "meta.json", "service.pgid"] {
        assert_eq!(mode(&job.join(f)), 0o600, "{f}");
    }
    run(&h, &["server", "stop-all"]);
    assert_eq!(mode(&job.join("exit_code")), 0o600);
    // Results and request logs follow the umask, but never group-writable.
    let sim = Sim::start(&["--profile", "instant"]);
    let sh = format!(
        "umask 002 && exec {} bench --url {} --requests 4 --json out/r.json --log out/req.jsonl",
        env!("CARGO_BIN_EXE_aibench"),
        sim.url
    );
    let o = Command::new("bash").args(["-c", &sh]).env("AIBENCH_HOME", &h).current_dir(top.path()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(mode(&top.path().join("out/r.json")), 0o644);
    assert_eq!(mode(&top.path().join("out/req.jsonl")), 0o644);
}

// 12. Smaller points.

#[test]
fn an_unwritable_output_path_is_found_before_the_first_request() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("afile"), "x").unwrap();
    let url = dead_url();
    for flag in ["--json", "--log"] {
        let started = Instant::now();
        let o = run(h, &["bench", "--url", &url, "--model", "m", "--duration", "30", flag, "afile/r.json"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag}: {err}");
        assert!(err.contains(&format!("{flag}: cannot write 'afile/r.json'")), "{err}");
        assert!(err.contains("afile is not a folder"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "refused before running");
    }
    let sim = Sim::start(&["--profile", "instant"]);
    let o = run(h, &["client", "run", "--recipe", "vllm-simple-test", "--url", &sim.url, "--out-dir", "afile/res"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("results folder 'afile/res' cannot be written"), "{err}");
    let metrics = support_get(&sim.url, "/metrics");
    let finished: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("vllm:request_success_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(finished, 0.0, "no request was sent");
}

fn support_get(url: &str, path: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { support::http::get(url, path).await.text() })
}
