//! Job scripts: one rendering for both executors. SLURM reads the `#SBATCH`
//! lines; the local executor runs the same file with bash, where they are
//! comments. Every value that reaches the script is validated or quoted:
//! nothing from a recipe can add a line or a shell command.

use crate::typed::FieldError;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub partition: Option<String>,
    pub nodes: Option<u32>,
    pub cpu_cores: Option<u32>,
    pub memory_gb: Option<f64>,
    pub gpu_count: Option<u32>,
    /// SLURM time format: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
    pub time_limit: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Job name (letters, digits, `_ . -`).
    pub name: String,
    /// Folder for the script and the log (`job.log`).
    pub dir: String,
    /// The job's program and arguments (the one line that runs).
    pub command: Vec<String>,
    #[serde(default)]
    pub resources: Resources,
    /// Environment modules to `module load` first.
    #[serde(default)]
    pub modules: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub workdir: Option<String>,
    /// Extra `#SBATCH` options (`--constraint=a100`), each checked.
    #[serde(default)]
    pub sbatch_args: Vec<String>,
    /// One line saying where the job comes from (recipe file).
    #[serde(default)]
    pub comment: Option<String>,
    /// Ask SLURM for SIGTERM this many seconds before the time limit, so
    /// the job can save its work before it is killed (client jobs).
    #[serde(default)]
    pub warn_before_end_s: Option<u32>,
    /// Run the command as this many tasks of one `srun` step, started
    /// together (each told its rank by SLURM_PROCID): a gang, spread over
    /// `resources.nodes`. SLURM only; absent, the command runs once.
    #[serde(default)]
    pub tasks: Option<u32>,
    /// The tasks are the parts of one whole (a server spanning nodes), not
    /// independent ones: one task per node, each line of output labelled
    /// with its rank, and when one part exits with an error srun ends the
    /// others (SIGTERM, then SIGKILL after KillWait) and a lost node ends
    /// the job. Only with `tasks`.
    #[serde(default)]
    pub whole: bool,
}

/// Quotes a word for bash: single quotes, with `'` written as `'\''`.
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn word(field: &str, v: &str, extra: &[u8]) -> Result<(), FieldError> {
    if v.is_empty() {
        return Err(FieldError::new(field, "expected a non-empty value"));
    }
    if let Some(c) = v.chars().find(|c| !(c.is_ascii_alphanumeric() || (c.is_ascii() && extra.contains(&(*c as u8))))) {
        return Err(FieldError::new(
            field,
            format!(
                "invalid character {c:?} in \"{}\" (allowed: letters, digits and {})",
                v.escape_default(),
                String::from_utf8_lossy(extra)
            ),
        ));
    }
    Ok(())
}

fn no_newline(field: &str, v: &str) -> Result<(), FieldError> {
    if v.contains('\n') || v.contains('\r') || v.contains('\0') {
        return Err(FieldError::new(
            field,
            format!("line breaks and NUL are not allowed in \"{}\"", v.escape_default()),
        ));
    }
    Ok(())
}

/// Parses a SLURM time limit into seconds.
pub fn time_limit_seconds(s: &str) -> Result<u64, FieldError> {
    let bad = || {
        FieldError::new(
            "time_limit",
            format!("expected MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, got \"{}\"", s.escape_default()),
        )
    };
    let num = |p: &str| -> Result<u64, FieldError> {
        if p.is_empty() || p.len() > 6 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse::<u64>().map_err(|_| bad())
    };
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(num(d)?), r),
        None => (None, s),
    };
    let parts: Vec<u64> = rest.split(':').map(num).collect::<Result<_, _>>()?;
    let secs = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + s,
        (None, [h, m, s]) => h * 3600 + m * 60 + s,
        (Some(d), [h]) => d * 86400 + h * 3600,
        (Some(d), [h, m]) => d * 86400 + h * 3600 + m * 60,
        (Some(d), [h, m, s]) => d * 86400 + h * 3600 + m * 60 + s,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(FieldError::new("time_limit", format!("must be longer than zero, got \"{s}\"")));
    }
    Ok(secs)
}

/// `#SBATCH` options aibench writes itself, and the recipe field (or
/// reason) that stands for each. sbatch takes any unambiguous prefix of a
/// long option (`--out=` is `--output=`), so prefixes are refused too.
const OWNED_OPTIONS: &[(&str, &str)] = &[
    ("job-name", "the recipe's `name` names the job (aibench-<name>)"),
    ("output", "aibench writes the job's log to job.log in its job folder, where it reads it"),
    ("error", "aibench writes the job's log to job.log in its job folder, where it reads it"),
    ("chdir", "use service.working_dir"),
    ("partition", "use orchestration.resources.partition"),
    ("nodes", "use orchestration.resources.nodes"),
    ("ntasks", "a server job runs one task, the job agent; a client job one per instance (orchestration.instances)"),
    ("cpus-per-task", "use orchestration.resources.cpu_cores"),
    ("mem", "use orchestration.resources.memory_gb"),
    ("gres", "use orchestration.resources.gpu_count"),
    ("time", "use orchestration.resources.time_limit"),
    ("account", "use orchestration.resources.account"),
    ("qos", "use orchestration.resources.qos"),
    ("parsable", "aibench submits with --parsable itself"),
    ("wrap", "the job runs service.command"),
    ("array", "use --count (servers) or orchestration.instances (clients)"),
    ("signal", "aibench asks for its own early warning before the time limit"),
    ("uid", "it would change who runs the job"),
    ("gid", "it would change who runs the job"),
];

fn check_sbatch_arg(a: &str) -> Result<(), FieldError> {
    let ok = a.starts_with("--")
        && a.len() > 2
        && match a[2..].split_once('=') {
            Some((k, v)) => {
                k.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                    && !v.is_empty()
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.,:/@+=%[]".contains(&b))
            }
            None => a[2..].bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
        };
    if !ok {
        return Err(FieldError::new(
            "sbatch_args",
            format!("\"{}\" is not a plain --option or --option=value", a.escape_default()),
        ));
    }
    let key = a[2..].split('=').next().unwrap_or("");
    if let Some((name, why)) = OWNED_OPTIONS.iter().find(|(name, _)| name.starts_with(key)) {
        return Err(FieldError::new("sbatch_args", format!("\"{a}\" sets --{name}, which aibench controls: {why}")));
    }
    Ok(())
}

/// The log in a job folder (`<dir>/job.log`), as `#SBATCH --output` names it.
pub fn log_path_in(dir: &str) -> String {
    format!("{}/job.log", dir.trim_end_matches('/'))
}

impl JobSpec {
    pub fn validate(&self) -> Result<(), String> {
        self.check().map_err(|e| e.to_string())
    }

    /// [`JobSpec::validate`] with the failing field as data (`resources.nodes`,
    /// `command[2]`, `env.X`): callers name it in their own terms.
    pub fn check(&self) -> Result<(), FieldError> {
        word("name", &self.name, b"_.-")?;
        if self.name.len() > 128 {
            return Err(FieldError::new("name", "at most 128 characters"));
        }
        no_newline("dir", &self.dir)?;
        if self.dir.is_empty() {
            return Err(FieldError::new("dir", "expected a folder"));
        }
        if self.command.is_empty() {
            return Err(FieldError::new("command", "expected a program and its arguments"));
        }
        for (i, a) in self.command.iter().enumerate() {
            if a.contains('\0') {
                return Err(FieldError::new(format!("command[{}]", i + 1), "NUL is not allowed"));
            }
        }
        let r = &self.resources;
        if let Some(p) = &r.partition {
            word("resources.partition", p, b"_.-")?;
        }
        if let Some(a) = &r.account {
            word("resources.account", a, b"_.-")?;
        }
        if let Some(q) = &r.qos {
            word("resources.qos", q, b"_.-")?;
        }
        if r.nodes == Some(0) {
            return Err(FieldError::new("resources.nodes", "expected a positive integer, got 0"));
        }
        if self.whole && self.tasks.is_none() {
            return Err(FieldError::new("whole", "a whole of parts needs tasks (one per node)"));
        }
        if let Some(t) = self.tasks {
            if self.whole && r.nodes.is_some_and(|n| n != t) {
                return Err(FieldError::new(
                    "tasks",
                    format!("a whole runs one task per node: expected {} task(s), got {t}", r.nodes.unwrap_or(1)),
                ));
            }
            if !(1..=100_000).contains(&t) {
                return Err(FieldError::new("tasks", format!("expected a whole number from 1 to 100000, got {t}")));
            }
            if let Some(n) = r.nodes
                && t < n
            {
                return Err(FieldError::new(
                    "tasks",
                    format!("expected at least one task per node: {t} task(s) on {n} nodes"),
                ));
            }
        }
        if r.cpu_cores == Some(0) {
            return Err(FieldError::new("resources.cpu_cores", "expected a positive integer, got 0"));
        }
        if let Some(m) = r.memory_gb
            && !(m.is_finite() && (0.001..1e6).contains(&m))
        {
            // Below 1 MB, --mem would round to 0, which SLURM reads as "all the node's memory".
            return Err(FieldError::new(
                "resources.memory_gb",
                format!("expected a positive number of GB (at least 0.001), got {m}"),
            ));
        }
        if let Some(t) = &r.time_limit {
            time_limit_seconds(t).map_err(|e| e.under("resources"))?;
        }
        for (i, m) in self.modules.iter().enumerate() {
            word(&format!("modules[{}]", i + 1), m, b"_.+/-:")?;
        }
        for (k, v) in &self.env {
            let valid = !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !k.as_bytes()[0].is_ascii_digit();
            if !valid {
                return Err(FieldError::new("env", format!("invalid variable name \"{}\"", k.escape_default())));
            }
            if v.contains('\0') {
                return Err(FieldError::new(format!("env.{k}"), "NUL is not allowed"));
            }
        }
        if let Some(w) = &self.workdir {
            no_newline("working_dir", w)?;
        }
        for a in &self.sbatch_args {
            check_sbatch_arg(a)?;
        }
        if let Some(c) = &self.comment {
            no_newline("comment", c)?;
        }
        Ok(())
    }

    pub fn log_path(&self) -> String {
        log_path_in(&self.dir)
    }

    /// The job script. Validates first.
    pub fn render(&self) -> Result<String, String> {
        self.validate()?;
        let r = &self.resources;
        let mut s = String::from("#!/bin/bash\n");
        let mut sb = |line: String| {
            s.push_str("#SBATCH ");
            s.push_str(&line);
            s.push('\n');
        };
        sb(format!("--job-name={}", self.name));
        sb(format!("--output={}", self.log_path()));
        if let Some(p) = &r.partition {
            sb(format!("--partition={p}"));
        }
        sb(format!("--nodes={}", r.nodes.unwrap_or(1)));
        sb(format!("--ntasks={}", self.tasks.unwrap_or(1)));
        if let Some(c) = r.cpu_cores {
            sb(format!("--cpus-per-task={c}"));
        }
        if let Some(m) = r.memory_gb {
            sb(format!("--mem={}M", (m * 1024.0).round() as u64));
        }
        if let Some(g) = r.gpu_count.filter(|g| *g > 0) {
            sb(format!("--gres=gpu:{g}"));
        }
        if let Some(t) = &r.time_limit {
            sb(format!("--time={t}"));
        }
        if let Some(a) = &r.account {
            sb(format!("--account={a}"));
        }
        if let Some(q) = &r.qos {
            sb(format!("--qos={q}"));
        }
        if let Some(w) = self.warn_before_end_s {
            if self.tasks.is_some() {
                // To the step's tasks themselves: srun, told TERM, would
                // SIGKILL them before they save.
                sb(format!("--signal=TERM@{w}"));
            } else {
                // B: signals the batch shell, which passes it on (below).
                sb(format!("--signal=B:TERM@{w}"));
            }
        }
        if self.tasks.is_some() {
            // A lost node ends its task, not the job (the others' parts are
            // kept), and the job is not run again over its own files. A
            // whole (a server on many nodes) cannot go on without a part:
            // there SLURM's default, ending the job, is what is wanted.
            if !self.whole {
                sb("--no-kill".into());
            }
            sb("--no-requeue".into());
        }
        for a in &self.sbatch_args {
            sb(a.clone());
        }
        s.push_str(&format!("# Generated by aibench {}", env!("CARGO_PKG_VERSION")));
        if let Some(c) = &self.comment {
            s.push_str(": ");
            s.push_str(c);
        }
        s.push('\n');
        s.push_str("set -u\n");
        s.push_str(&format!("export AIBENCH_JOB_DIR={}\n", quote(&self.dir)));
        for m in &self.modules {
            s.push_str(&format!("module load {}\n", quote(m)));
        }
        for (k, v) in &self.env {
            s.push_str(&format!("export {k}={}\n", quote(v)));
        }
        if let Some(w) = &self.workdir {
            s.push_str(&format!("cd {} || exit 1\n", quote(w)));
        }
        let mut cmd: Vec<String> = self.command.iter().map(|a| quote(a)).collect();
        if let Some(t) = self.tasks {
            // One step of `t` tasks; a task that fails (a node lost) does not
            // take the others down: each saves its own part.
            // srun does not pass the job's CPUs per task on by itself (22.05).
            // A whole's parts are one per node, labelled in the log, and a
            // part that fails ends the others.
            let mut srun = vec![
                "srun".to_string(),
                format!("--ntasks={t}"),
                "--cpus-per-task=\"${SLURM_CPUS_PER_TASK:-1}\"".into(),
            ];
            if self.whole {
                srun.extend(["--ntasks-per-node=1".into(), "--kill-on-bad-exit=1".into(), "--label".into()]);
            } else {
                // --no-kill here too: without it srun kills the whole step
                // (every node's task) when one node fails.
                srun.extend(["--no-kill".into(), "--kill-on-bad-exit=0".into()]);
            }
            cmd.splice(0..0, srun);
        }
        // The command runs in the background so that this shell can pass
        // SIGTERM/SIGINT on to it: bash defers traps while a foreground
        // command runs, and SLURM's early warning reaches only this shell.
        s.push_str("trap '[ -n \"${child:-}\" ] && kill -TERM \"$child\" 2>/dev/null' TERM\n");
        s.push_str("trap '[ -n \"${child:-}\" ] && kill -INT \"$child\" 2>/dev/null' INT\n");
        s.push_str(&cmd.join(" "));
        s.push_str(" &\n");
        s.push_str("child=$!\n");
        s.push_str("wait \"$child\"\n");
        s.push_str("rc=$?\n");
        // `wait` returns early when a trap runs; wait again for the real status.
        s.push_str("while [ \"$rc\" -gt 128 ] && kill -0 \"$child\" 2>/dev/null; do wait \"$child\"; rc=$?; done\n");
        // The local executor reads the exit code from here; under SLURM, sacct/squeue do.
        s.push_str(
            "if [ -n \"${AIBENCH_EXIT_FILE:-}\" ]; then (umask 077; echo \"$rc\" > \"$AIBENCH_EXIT_FILE\"); fi\n",
        );
        s.push_str("exit \"$rc\"\n");
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("plain-word_1.2"), "plain-word_1.2");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's; rm -rf /"), r"'it'\''s; rm -rf /'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote("line1\nline2"), "'line1\nline2'");
    }

    #[test]
    fn time_limits() {
        assert_eq!(time_limit_seconds("30").unwrap(), 1800);
        assert_eq!(time_limit_seconds("30:15").unwrap(), 1815);
        assert_eq!(time_limit_seconds("04:00:00").unwrap(), 14400);
        assert_eq!(time_limit_seconds("1-12").unwrap(), 129600);
        assert_eq!(time_limit_seconds("2-00:30:00").unwrap(), 174600);
        for bad in ["", "4h", "1:2:3:4", "-1", "00:00:00", "1-", "12:xx"] {
            assert!(time_limit_seconds(bad).is_err(), "{bad}");
        }
    }
}
