//! Job scripts: golden files for rendered batch scripts, and hostile values
//! that must be rejected or quoted so they stay data.
//! `UPDATE_GOLDEN=1 cargo test --test scripts` rewrites the golden files.

use std::collections::BTreeMap;

use aibench::jobs::script::{JobSpec, Resources};

fn golden(name: &str, text: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path} missing: run with UPDATE_GOLDEN=1"));
    assert_eq!(text, want, "{name} differs from its golden file");
}

fn base() -> JobSpec {
    JobSpec {
        name: "aibench-vllm-sim".into(),
        dir: "/home/u/.aibenchmark/jobs/vllm-sim-0001".into(),
        command: vec![
            "/opt/aibench/bin/aibench".into(),
            "job-agent".into(),
            "/home/u/.aibenchmark/jobs/vllm-sim-0001/agent.json".into(),
            "--".into(),
            "bash".into(),
            "/home/u/.aibenchmark/jobs/vllm-sim-0001/service.sh".into(),
        ],
        ..Default::default()
    }
}

#[test]
fn minimal_script() {
    golden("minimal.sbatch", &base().render().unwrap());
}

#[test]
fn gpu_container_modules_env() {
    let mut s = base();
    s.name = "aibench-vllm-server".into();
    s.resources = Resources {
        partition: Some("gpu".into()),
        nodes: Some(1),
        cpu_cores: Some(8),
        memory_gb: Some(64.0),
        gpu_count: Some(1),
        time_limit: Some("04:00:00".into()),
        account: Some("p200981".into()),
        qos: Some("default".into()),
    };
    s.modules = vec!["Apptainer/1.3.6-GCCcore-13.3.0".into()];
    s.env =
        BTreeMap::from([("HF_HOME".into(), "/scratch/hf cache".into()), ("VLLM_LOGGING_LEVEL".into(), "INFO".into())]);
    s.workdir = Some("/project/p200981/run".into());
    s.sbatch_args = vec!["--constraint=a100".into(), "--exclusive".into()];
    s.comment = Some("server recipe vllm-server (recipes/servers/vllm-server.yaml)".into());
    s.command = vec![
        "/opt/aibench/bin/aibench".into(),
        "job-agent".into(),
        "/home/u/.aibenchmark/jobs/x/agent.json".into(),
        "--".into(),
        "apptainer".into(),
        "exec".into(),
        "--nv".into(),
        "--bind".into(),
        "/scratch:/scratch".into(),
        "${CONTAINER_DIR:-.}/vllm-openai_v0.5.4.sif".into(),
        "bash".into(),
        "/home/u/.aibenchmark/jobs/x/service.sh".into(),
    ];
    golden("gpu-container.sbatch", &s.render().unwrap());
}

/// A gang: one job, one `srun` step of K tasks over N nodes (a multi-node client).
#[test]
fn gang_of_tasks() {
    let mut s = base();
    s.name = "aibench-vllm-simple-test".into();
    s.resources.nodes = Some(2);
    s.tasks = Some(4);
    s.warn_before_end_s = Some(60);
    s.command = vec![
        "/opt/aibench/bin/aibench".into(),
        "job-client".into(),
        "--gang".into(),
        "/home/u/.aibenchmark/jobs/c-0001/gang".into(),
        "/home/u/.aibenchmark/jobs/c-0001/spec-{rank}.json".into(),
        "/home/u/.aibenchmark/jobs/c-0001/result-{rank}.json".into(),
    ];
    golden("gang.sbatch", &s.render().unwrap());
    s.tasks = Some(1);
    s.resources.nodes = Some(3);
    let e = s.render().unwrap_err();
    assert!(e.contains("tasks") && e.contains("1 task(s) on 3 nodes"), "{e}");
    s.tasks = Some(0);
    assert!(s.render().unwrap_err().contains("tasks: expected a whole number from 1 to 100000, got 0"));
}

/// A whole: a server on N nodes, one task per node; a part that fails ends the others.
#[test]
fn whole_of_parts_one_per_node() {
    let mut s = base();
    s.name = "aibench-vllm-ray".into();
    s.resources.nodes = Some(2);
    s.tasks = Some(2);
    s.whole = true;
    let text = s.render().unwrap();
    golden("whole.sbatch", &text);
    assert!(!text.contains("--no-kill"), "a lost node must end a whole: {text}");
    s.tasks = Some(4);
    let e = s.render().unwrap_err();
    assert!(e.contains("tasks: a whole runs one task per node: expected 2 task(s), got 4"), "{e}");
    s.tasks = None;
    assert!(s.render().unwrap_err().contains("whole: a whole of parts needs tasks"));
}

#[test]
fn hostile_values_are_rejected() {
    type Change = Box<dyn Fn(&mut JobSpec)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "partition",
            Box::new(|s| s.resources.partition = Some("cpu\n#SBATCH --uid=0".into())),
            "resources.partition: invalid character '\\n'",
        ),
        (
            "account",
            Box::new(|s| s.resources.account = Some("p1;reboot".into())),
            "resources.account: invalid character ';'",
        ),
        ("qos", Box::new(|s| s.resources.qos = Some("a b".into())), "resources.qos: invalid character ' '"),
        (
            "time",
            Box::new(|s| s.resources.time_limit = Some("1:00:00; reboot".into())),
            "resources.time_limit: expected MM",
        ),
        ("module", Box::new(|s| s.modules = vec!["vllm; rm -rf ~".into()]), "modules[1]: invalid character ';'"),
        (
            "env key",
            Box::new(|s| {
                s.env.insert("A B".into(), "x".into());
            }),
            "env: invalid variable name \"A B\"",
        ),
        (
            "env key with $",
            Box::new(|s| {
                s.env.insert("$(x)".into(), "x".into());
            }),
            "env: invalid variable name",
        ),
        (
            "sbatch arg",
            Box::new(|s| s.sbatch_args = vec!["--wrap=rm -rf /".into()]),
            "sbatch_args: \"--wrap=rm -rf /\" is not a plain",
        ),
        ("sbatch arg newline", Box::new(|s| s.sbatch_args = vec!["--x\n#SBATCH --y".into()]), "sbatch_args:"),
        ("job name", Box::new(|s| s.name = "x\ny".into()), "name: invalid character"),
        ("workdir", Box::new(|s| s.workdir = Some("/tmp\nreboot".into())), "working_dir: line breaks"),
        ("dir", Box::new(|s| s.dir = "/tmp/x\n#SBATCH --uid=0".into()), "dir: line breaks"),
        ("memory", Box::new(|s| s.resources.memory_gb = Some(-1.0)), "resources.memory_gb: expected a positive number"),
        ("cores", Box::new(|s| s.resources.cpu_cores = Some(0)), "resources.cpu_cores: expected a positive integer"),
        ("comment", Box::new(|s| s.comment = Some("x\nreboot".into())), "comment: line breaks"),
    ];
    for (what, change, want) in cases {
        let mut s = base();
        change(&mut s);
        let e = s.render().expect_err(what);
        assert!(e.contains(want), "{what}: {e}");
    }
}

/// Quoted values stay data: bash sees exactly the original strings.
#[test]
fn hostile_values_are_quoted_and_stay_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let nasty = [
        "a b",
        "it's",
        "x; touch PWNED",
        "$(touch PWNED)",
        "`touch PWNED`",
        "\"quoted\"",
        "line1\nline2",
        "back\\slash",
        "*",
        "",
    ];
    let mut s = base();
    s.dir = dir.path().join("job dir 'quoted'").display().to_string();
    s.workdir = Some(dir.path().display().to_string());
    s.env = BTreeMap::from([("NASTY".into(), "v; touch PWNED $(touch PWNED) 'q' \"d\"\nl2".into())]);
    let mut cmd = vec![
        "bash".to_string(),
        "-c".into(),
        r#"for a in "$@"; do printf '%s\0' "$a"; done > "$OUT"; printf '%s' "$NASTY" > "$OUT.env""#.into(),
        "sh".into(),
    ];
    cmd.extend(nasty.iter().map(|x| x.to_string()));
    s.command = cmd;
    let script = s.render().unwrap();
    let path = dir.path().join("job.sh");
    std::fs::write(&path, &script).unwrap();
    let st = std::process::Command::new("bash").arg(&path).env("OUT", &out).current_dir(dir.path()).status().unwrap();
    assert!(st.success());
    let got = std::fs::read(&out).unwrap();
    let args: Vec<String> =
        got.split(|b| *b == 0).filter(|_| true).map(|b| String::from_utf8_lossy(b).into_owned()).collect();
    assert_eq!(&args[..nasty.len()], &nasty.map(String::from)[..]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.env")).unwrap(),
        "v; touch PWNED $(touch PWNED) 'q' \"d\"\nl2"
    );
    assert!(!dir.path().join("PWNED").exists(), "a value ran as a command");
    assert_eq!(script.lines().filter(|l| l.starts_with("#SBATCH")).count(), 4, "{script}");
}

#[test]
fn time_limit_formats() {
    for (t, ok) in [("30", true), ("04:00:00", true), ("2-12:00", true), ("4h", false), ("", false)] {
        let mut s = base();
        s.resources.time_limit = Some(t.into());
        assert_eq!(s.render().is_ok(), ok, "{t}");
    }
}

/// Options aibench writes itself cannot be overridden through sbatch_args,
/// also not by an abbreviation sbatch would accept; the error names the
/// recipe field to use instead.
#[test]
fn owned_sbatch_options_are_refused() {
    let cases = [
        ("--output=/tmp/x.log", "sets --output, which aibench controls"),
        ("--out=/tmp/x.log", "sets --output"),
        ("--error=/tmp/e.log", "sets --error"),
        ("--chdir=/", "use service.working_dir"),
        ("--job-name=other", "sets --job-name"),
        ("--parsable", "sets --parsable"),
        ("--partition=gpu", "use orchestration.resources.partition"),
        ("--time=10", "use orchestration.resources.time_limit"),
        ("--mem=4G", "use orchestration.resources.memory_gb"),
        ("--signal=B:USR1@60", "sets --signal"),
        ("--uid=0", "change who runs the job"),
        ("--gid=0", "change who runs the job"),
    ];
    for (arg, want) in cases {
        let mut s = base();
        s.sbatch_args = vec![arg.into()];
        let e = s.render().expect_err(arg);
        assert!(e.contains(want), "{arg}: {e}");
        assert!(e.starts_with("sbatch_args: "), "{arg}: {e}");
    }
    for ok in ["--constraint=a100", "--exclusive", "--mem-per-cpu=2G", "--gres-flags=enforce-binding", "--nodelist=n1"]
    {
        let mut s = base();
        s.sbatch_args = vec![ok.into()];
        assert!(s.render().is_ok(), "{ok} passes through");
    }
}

#[test]
fn early_warning_before_the_time_limit() {
    let mut s = base();
    s.warn_before_end_s = Some(30);
    let script = s.render().unwrap();
    assert!(script.lines().any(|l| l == "#SBATCH --signal=B:TERM@30"), "{script}");
    assert!(!base().render().unwrap().contains("--signal"));
}

/// SLURM's early warning (`--signal=B:TERM`) reaches only the batch shell:
/// the script passes SIGTERM on to its command and exits with its status.
#[test]
fn the_script_passes_sigterm_to_its_command() {
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("got-term");
    let mut s = base();
    s.dir = dir.path().display().to_string();
    s.command = vec![
        "bash".into(),
        "-c".into(),
        format!("trap 'echo term > {}; exit 7' TERM; while :; do sleep 0.05; done", mark.display()),
    ];
    let path = dir.path().join("job.sh");
    std::fs::write(&path, s.render().unwrap()).unwrap();
    let exit_file = dir.path().join("exit_code");
    let mut child = std::process::Command::new("bash").arg(&path).env("AIBENCH_EXIT_FILE", &exit_file).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: signals the child just started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(std::fs::read_to_string(&mark).unwrap_or_default(), "term\n", "the command got SIGTERM");
    assert_eq!(st.code(), Some(7), "the script exits with the command's status");
    assert_eq!(std::fs::read_to_string(&exit_file).unwrap().trim(), "7");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&exit_file).unwrap().permissions().mode() & 0o777, 0o600);
}
