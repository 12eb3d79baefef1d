//! The SLURM executor: `sbatch --parsable` to submit, one `squeue` call for
//! the states of all jobs, `sacct` (when accounting exists) or `scontrol` for
//! final states and exit codes, `scancel` to cancel.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};

use super::{ExecError, Executor, JobInfo, JobSpec, JobState};

/// The SLURM executor (its state is SLURM's: nothing to hold here).
pub struct Slurm;

impl Executor for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn available(&self) -> BoxFuture<'_, Result<(), ExecError>> {
        available().boxed()
    }

    fn submit<'a>(&'a self, spec: &'a JobSpec) -> BoxFuture<'a, Result<String, ExecError>> {
        submit(spec).boxed()
    }

    fn statuses<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<HashMap<String, JobInfo>, ExecError>> {
        statuses(ids).boxed()
    }

    fn cancel<'a>(&'a self, id: &'a str, _grace: Duration) -> BoxFuture<'a, Result<(), ExecError>> {
        // SLURM's own KillWait is the grace period.
        cancel(id).boxed()
    }
}

async fn run(prog: &str, args: &[&str]) -> Result<(i32, String, String), ExecError> {
    let out = tokio::time::timeout(Duration::from_secs(60), tokio::process::Command::new(prog).args(args).output())
        .await
        .map_err(|_| ExecError::Unavailable(format!("{prog} did not answer within 60 s (is slurmctld up?)")))?
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ExecError::Unavailable(format!(
                    "{prog} not found: SLURM's client tools are not installed here (Debian: apt-get install slurm-client), or use --executor local"
                ))
            } else {
                ExecError::Io(format!("{prog}: {e}"))
            }
        })?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn controller_down(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("unable to contact slurm controller")
        || s.contains("connection refused")
        || s.contains("zero bytes were transmitted")
}

/// Checks that a SLURM controller answers.
pub async fn available() -> Result<(), ExecError> {
    let (code, _, err) = run("sinfo", &["-h", "-o", "%P"]).await?;
    if code != 0 {
        return Err(ExecError::Unavailable(format!(
            "SLURM is not reachable (sinfo: {}); start it (scripts/slurm-dev-cluster.sh up) or use --executor local",
            err.trim()
        )));
    }
    Ok(())
}

/// Renders, writes `<dir>/job.sbatch` and submits it. Returns the job id.
pub async fn submit(spec: &JobSpec) -> Result<String, ExecError> {
    let text = spec.render().map_err(ExecError::Invalid)?;
    // `#SBATCH --output=` takes the path as one word, and '%' is a SLURM pattern.
    if let Some(c) = spec.dir.chars().find(|c| c.is_whitespace() || *c == '%' || *c == '"' || *c == '\'') {
        return Err(ExecError::Invalid(format!(
            "the job folder '{}' contains {c:?}, which an #SBATCH --output path cannot hold; set AIBENCH_HOME to a path without it",
            spec.dir
        )));
    }
    crate::util::create_dirs(std::path::Path::new(&spec.dir))
        .map_err(|e| ExecError::Io(format!("{}: {e}", spec.dir)))?;
    let path = format!("{}/job.sbatch", spec.dir.trim_end_matches('/'));
    crate::util::atomic_write(std::path::Path::new(&path), text.as_bytes(), None)
        .map_err(|e| ExecError::Io(format!("{path}: {e}")))?;
    let log = spec.log_path();
    super::open_log(std::path::Path::new(&log)).map_err(|e| ExecError::Io(format!("{log}: {e}")))?;
    let (code, out, err) = run("sbatch", &["--parsable", &path]).await?;
    if code != 0 {
        let msg = err.trim().to_string();
        if controller_down(&msg) {
            return Err(ExecError::Unavailable(format!("sbatch could not reach slurmctld: {msg}")));
        }
        return Err(ExecError::Rejected(format!("sbatch rejected {path}: {msg}")));
    }
    // `--parsable` prints "jobid" or "jobid;cluster".
    let id = out.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return Err(ExecError::Rejected(format!("sbatch printed no job id: {}", out.trim())));
    }
    Ok(id)
}

/// Maps SLURM's job states to the MeluXina report's.
pub fn map_state(s: &str) -> JobState {
    let s = s.split_whitespace().next().unwrap_or("").trim_end_matches('+');
    match s {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "SUSPENDED" | "RESV_DEL_HOLD" => JobState::Pending,
        "CONFIGURING" | "RESIZING" => JobState::Starting,
        "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" | "STOPPED" => JobState::Running,
        "COMPLETED" => JobState::Completed,
        "CANCELLED" | "REVOKED" => JobState::Canceled,
        "TIMEOUT" | "DEADLINE" => JobState::Timeout,
        "FAILED" | "NODE_FAIL" | "OUT_OF_MEMORY" | "BOOT_FAIL" | "PREEMPTED" | "SPECIAL_EXIT" => JobState::Failed,
        _ => JobState::Unknown,
    }
}

fn parse_exit(s: &str) -> Option<i32> {
    s.split(':').next().and_then(|c| c.trim().parse().ok())
}

/// States of many jobs with one `squeue` call; jobs it no longer knows are
/// looked up with `sacct` (accounting) or `scontrol` (recently finished).
pub async fn statuses(ids: &[String]) -> Result<HashMap<String, JobInfo>, ExecError> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let list = ids.join(",");
    let (code, text, err) = run("squeue", &["-h", "-t", "all", "-j", &list, "-o", "%i|%T|%N|%r|%S"]).await?;
    if code != 0 && controller_down(&err) {
        return Err(ExecError::Unavailable(format!("squeue could not reach slurmctld: {}", err.trim())));
    }
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 4 || !ids.iter().any(|i| i == f[0]) {
            continue;
        }
        let state = map_state(f[1]);
        let node = Some(f[2].to_string()).filter(|n| !n.is_empty() && !n.starts_with('('));
        let reason = Some(f[3].to_string()).filter(|r| !r.is_empty() && r != "None");
        // %S: the expected start of a pending job ("N/A" when SLURM has none).
        let expected_start = f
            .get(4)
            .filter(|s| state == JobState::Pending && crate::hpc::sacct::parse_time(s).is_some())
            .map(|s| s.to_string());
        out.insert(
            f[0].to_string(),
            JobInfo { id: f[0].to_string(), state, node, exit_code: None, reason, expected_start },
        );
    }
    // Final states: exit codes from sacct, else scontrol; jobs squeue forgot.
    let need: Vec<String> = ids
        .iter()
        .filter(|i| out.get(*i).is_none_or(|j| j.state.is_final() && j.exit_code.is_none()))
        .cloned()
        .collect();
    if need.is_empty() {
        return Ok(out);
    }
    let (code, text, _) =
        run("sacct", &["-n", "-P", "-X", "-j", &need.join(","), "-o", "JobID,State,ExitCode,NodeList"]).await?;
    if code == 0 {
        for line in text.lines() {
            let f: Vec<&str> = line.split('|').collect();
            if f.len() < 4 {
                continue;
            }
            let e = out.entry(f[0].to_string()).or_insert(JobInfo {
                id: f[0].to_string(),
                state: map_state(f[1]),
                node: Some(f[3].to_string()).filter(|n| !n.is_empty() && n != "None assigned"),
                exit_code: None,
                reason: None,
                expected_start: None,
            });
            e.exit_code = parse_exit(f[2]);
        }
    } else {
        for id in &need {
            let (code, text, _) = run("scontrol", &["-o", "show", "job", id]).await?;
            if code != 0 {
                continue;
            }
            let field = |k: &str| text.split_whitespace().find_map(|w| w.strip_prefix(k)).map(str::to_string);
            let e = out.entry(id.clone()).or_insert(JobInfo {
                id: id.clone(),
                state: field("JobState=").map(|s| map_state(&s)).unwrap_or(JobState::Unknown),
                node: field("NodeList=").filter(|n| n != "(null)"),
                exit_code: None,
                reason: None,
                expected_start: None,
            });
            e.exit_code = field("ExitCode=").and_then(|s| parse_exit(&s));
        }
    }
    Ok(out)
}

/// Cancels a job (SIGTERM to its processes, then SIGKILL after KillWait).
pub async fn cancel(id: &str) -> Result<(), ExecError> {
    let (code, _, err) = run("scancel", &[id]).await?;
    if code != 0 {
        if controller_down(&err) {
            return Err(ExecError::Unavailable(format!("scancel could not reach slurmctld: {}", err.trim())));
        }
        return Err(ExecError::Rejected(format!("scancel {id}: {}", err.trim())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(map_state("RUNNING"), JobState::Running);
        assert_eq!(map_state("CANCELLED by 0"), JobState::Canceled);
        assert_eq!(map_state("COMPLETING"), JobState::Running);
        assert_eq!(map_state("OUT_OF_MEMORY"), JobState::Failed);
        assert_eq!(map_state("TIMEOUT"), JobState::Timeout);
        assert_eq!(map_state("PENDING"), JobState::Pending);
        assert_eq!(parse_exit("1:0"), Some(1));
    }
}
