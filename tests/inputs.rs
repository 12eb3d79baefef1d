//! Files the user names, through the binary: a device, a FIFO, a huge or
//! over-the-cap file as a dataset or tokenizer is refused at once by name
//! (each of these read until the OOM killer came, or waited for ever,
//! before `aibench_core::inputs`).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::sim::Sim;

/// The command's address space is capped, so that a regression that reads
/// a device into memory fails this test instead of the machine.
fn aibench(home: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(env!("CARGO_BIN_EXE_aibench"));
    c.env("AIBENCH_HOME", home).env_remove("AIBENCH_MAX_INPUT_MB").current_dir(home);
    // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
    unsafe {
        c.pre_exec(|| {
            let cap: libc::rlim_t = 8 << 30;
            let lim = libc::rlimit { rlim_cur: cap, rlim_max: cap };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    c
}

/// Runs `c` for `limit` at the most (then kills it): its exit code (None
/// when killed), its stderr and how long it ran.
fn run_within(mut c: Command, limit: Duration) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("run aibench");
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    (status.and_then(|s| s.code()), reader.join().unwrap(), took)
}

/// `bench.run` against `url` with the dataset `{type = kind, path = path}`.
fn bench_with(home: &Path, url: &str, kind: &str, path: &Path) -> Command {
    let code = format!(
        "require('aibench.bench').run({{target = {{url = [==[{url}]==]}}, \
         workload = {{pattern = 'closed-loop', users = 1, requests_per_user = 1}}, \
         dataset = {{type = '{kind}', path = [==[{}]==]}}, progress = false}})",
        path.display()
    );
    let mut c = aibench(home);
    c.args(["eval", &code]);
    c
}

const QUICK: Duration = Duration::from_secs(3);
const GIVE_UP: Duration = Duration::from_secs(20);

#[test]
fn dev_zero_as_a_dataset_is_refused_at_once_by_name() {
    let home = tempfile::tempdir().unwrap();
    let sim = Sim::start(&["--profile", "instant"]);
    for kind in ["jsonl", "csv", "sharegpt", "trace"] {
        let (code, err, took) = run_within(bench_with(home.path(), &sim.url, kind, Path::new("/dev/zero")), GIVE_UP);
        assert_eq!(code, Some(1), "{kind}: {err}");
        assert!(
            err.contains("dataset.path: '/dev/zero' is a character device; expected a regular file"),
            "{kind}: {err}"
        );
        assert!(took < QUICK, "{kind}: refused after {took:?}");
    }
}

#[test]
fn a_fifo_as_a_dataset_is_refused_not_waited_on() {
    let home = tempfile::tempdir().unwrap();
    let sim = Sim::start(&["--profile", "instant"]);
    let fifo = home.path().join("prompts.jsonl");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (code, err, took) = run_within(bench_with(home.path(), &sim.url, "jsonl", &fifo), GIVE_UP);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("prompts.jsonl' is a FIFO (named pipe); expected a regular file"), "{err}");
    assert!(took < QUICK, "refused after {took:?}");
}

#[test]
fn a_huge_sparse_dataset_is_refused_naming_the_limit() {
    let home = tempfile::tempdir().unwrap();
    let sim = Sim::start(&["--profile", "instant"]);
    let p = home.path().join("huge.jsonl");
    // 5 GiB that take no disk.
    std::fs::File::create(&p).unwrap().set_len(5 << 30).unwrap();
    for kind in ["jsonl", "trace"] {
        let (code, err, took) = run_within(bench_with(home.path(), &sim.url, kind, &p), GIVE_UP);
        assert_eq!(code, Some(1), "{kind}: {err}");
        assert!(err.contains("huge.jsonl' is 5120 MiB"), "{kind}: {err}");
        assert!(err.contains("the limit for datasets is 4096 MiB; set AIBENCH_MAX_INPUT_MB"), "{kind}: {err}");
        assert!(took < QUICK, "{kind}: refused after {took:?}");
    }
}

#[test]
fn aibench_max_input_mb_sets_the_cap() {
    let home = tempfile::tempdir().unwrap();
    let sim = Sim::start(&["--profile", "instant"]);
    let p = home.path().join("prompts.jsonl");
    std::fs::write(&p, "\"a prompt of a few words\"\n".repeat(100_000)).unwrap();
    let mut c = bench_with(home.path(), &sim.url, "jsonl", &p);
    c.env("AIBENCH_MAX_INPUT_MB", "1");
    let (code, err, _) = run_within(c, GIVE_UP);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("prompts.jsonl' is 2."), "{err}");
    assert!(err.contains("the limit for datasets is 1 MiB; set AIBENCH_MAX_INPUT_MB"), "{err}");
    // A value that is not a size is an error, not the default.
    let mut c = bench_with(home.path(), &sim.url, "jsonl", &p);
    c.env("AIBENCH_MAX_INPUT_MB", "lots");
    let (code, err, _) = run_within(c, GIVE_UP);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("AIBENCH_MAX_INPUT_MB: expected a positive number of MiB, got \"lots\""), "{err}");
}

#[test]
fn a_tokenizer_over_the_cap_stops_the_simulator_from_starting() {
    let home = tempfile::tempdir().unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer-en-bpe-8k");
    let mut c = aibench(home.path());
    c.args(["sim", "--port", "0", "--tokenizer", model.to_str().unwrap()]).env("AIBENCH_MAX_INPUT_MB", "0.1");
    let (code, err, _) = run_within(c, GIVE_UP);
    assert!(code.is_some_and(|c| c != 0), "the simulator started with a tokenizer over the cap: {err}");
    assert!(err.contains("tokenizer.json' is 0.52 MiB"), "{err}");
    assert!(err.contains("the limit for tokenizer files is 0.10 MiB"), "{err}");
    let mut c = aibench(home.path());
    c.args(["sim", "--port", "0", "--tokenizer", "/dev/zero"]);
    let (code, err, took) = run_within(c, GIVE_UP);
    assert!(code.is_some_and(|c| c != 0), "{err}");
    assert!(err.contains("'/dev/zero' is a character device; expected a regular file"), "{err}");
    assert!(took < QUICK, "refused after {took:?}");
}
