//! The local executor: the same job script as SLURM, run with bash in its own
//! process group on this machine. A job is remembered in
//! `$AIBENCH_HOME/jobs/.local/<id>.json` by PID *and* the process start time
//! (from /proc), so a reused PID is never mistaken for the job; the script
//! writes its exit code to `<dir>/exit_code`. Cancel = SIGTERM to the group
//! (the job agent forwards it to the service's own group), then SIGKILL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use futures_util::future::{BoxFuture, FutureExt};

use super::{ExecError, Executor, JobInfo, JobSpec, JobState};
use crate::procs::signal_group;

/// The local executor, keeping its index under an aibench home.
pub struct Local {
    home: PathBuf,
}

impl Local {
    pub fn new(home: &Path) -> Local {
        Local { home: home.to_path_buf() }
    }
}

impl Executor for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn available(&self) -> BoxFuture<'_, Result<(), ExecError>> {
        async { Ok(()) }.boxed()
    }

    fn submit<'a>(&'a self, spec: &'a JobSpec) -> BoxFuture<'a, Result<String, ExecError>> {
        async move { submit(spec, &self.home) }.boxed()
    }

    fn statuses<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<HashMap<String, JobInfo>, ExecError>> {
        async move { Ok(statuses(ids, &self.home)) }.boxed()
    }

    fn cancel<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), ExecError>> {
        cancel(id, &self.home, grace).boxed()
    }

    fn job_dir(&self, id: &str) -> Option<String> {
        job_dir(id, &self.home).ok()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    dir: String,
    pid: u32,
    /// Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22).
    starttime: u64,
    submitted_at: String,
}

fn index_dir(home: &Path) -> PathBuf {
    home.join("jobs").join(".local")
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ExecError {
    move |e| ExecError::Io(format!("{what}: {e}"))
}

/// The fields of /proc/<pid>/stat this executor reads.
struct ProcStat {
    /// State letter (`R`, `S`, `Z`, ...).
    state: char,
    /// Process group.
    pgrp: i32,
    /// Start time in clock ticks since boot.
    start: u64,
}

/// A process's state, group and start time, from /proc.
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and ')'; fields resume after the last
    // ')': state(0) ppid(1) pgrp(2) ... starttime(19).
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some(ProcStat { state, pgrp, start })
}

/// True while the job's own process runs (a zombie has ended).
fn alive(r: &Record) -> bool {
    matches!(proc_stat(r.pid), Some(p) if p.start == r.starttime && p.state != 'Z' && p.state != 'X')
}

fn read_record(home: &Path, id: &str) -> Result<Record, ExecError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ExecError::NotFound(format!("'{id}' is not a local job id")));
    }
    let p = index_dir(home).join(format!("{id}.json"));
    let text = std::fs::read_to_string(&p).map_err(|_| ExecError::NotFound(format!("no local job '{id}'")))?;
    serde_json::from_str(&text).map_err(|e| ExecError::Io(format!("{}: {e}", p.display())))
}

pub fn submit(spec: &JobSpec, home: &Path) -> Result<String, ExecError> {
    if let Some(t) = spec.tasks.filter(|t| *t > 1) {
        return Err(ExecError::Invalid(format!(
            "tasks: the local executor runs one task per job, got {t} (submit one job per task)"
        )));
    }
    let text = spec.render().map_err(ExecError::Invalid)?;
    let dir = PathBuf::from(&spec.dir);
    crate::util::create_dirs(&dir).map_err(io(dir.display()))?;
    let script = dir.join("job.sh");
    crate::util::atomic_write(&script, text.as_bytes(), None).map_err(io(script.display()))?;
    let id = format!("local-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let log_path = spec.log_path();
    let log = super::open_log(Path::new(&log_path)).map_err(io(&log_path))?;
    let log2 = log.try_clone().map_err(io(&log_path))?;
    let exit_file = dir.join("exit_code");
    let _ = std::fs::remove_file(&exit_file);
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new("bash")
        .arg(&script)
        .env("AIBENCH_JOB_ID", &id)
        .env("AIBENCH_EXECUTOR", "local")
        .env("AIBENCH_EXIT_FILE", &exit_file)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .current_dir(&dir)
        .process_group(0)
        .spawn()
        .map_err(|e| ExecError::Unavailable(format!("cannot start bash: {e}")))?;
    let pid = child.id();
    let starttime = proc_stat(pid).map(|p| p.start).unwrap_or(0);
    // Reap it if this process outlives it; otherwise init adopts it.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    let rec = Record { id: id.clone(), dir: spec.dir.clone(), pid, starttime, submitted_at: crate::clock::now_iso() };
    let idx = index_dir(home);
    crate::util::create_dirs_in(home, &idx).map_err(io(idx.display()))?;
    let p = idx.join(format!("{id}.json"));
    crate::util::atomic_write(&p, serde_json::to_string_pretty(&rec).unwrap_or_default().as_bytes(), Some(0o600))
        .map_err(io(p.display()))?;
    Ok(id)
}

fn status_of(r: &Record) -> JobInfo {
    let dir = Path::new(&r.dir);
    let canceled = dir.join("cancel_requested").exists();
    let exit = std::fs::read_to_string(dir.join("exit_code")).ok().and_then(|s| s.trim().parse::<i32>().ok());
    let running = alive(r);
    let (state, reason) = match (exit, running) {
        (_, true) if canceled => (JobState::Running, Some("cancel requested".to_string())),
        (_, true) => (JobState::Running, None),
        (Some(_), false) if canceled => (JobState::Canceled, None),
        (Some(0), false) => (JobState::Completed, None),
        (Some(124), false) => (JobState::Timeout, Some("time limit reached".into())),
        (Some(c), false) => (JobState::Failed, Some(format!("exit code {c}"))),
        (None, false) if canceled => (JobState::Canceled, None),
        (None, false) => (JobState::Failed, Some("the job's process ended without an exit code (killed?)".into())),
    };
    JobInfo {
        id: r.id.clone(),
        state,
        node: Some(crate::util::hostname()),
        exit_code: exit,
        reason,
        expected_start: None,
    }
}

pub fn statuses(ids: &[String], home: &Path) -> HashMap<String, JobInfo> {
    ids.iter()
        .map(|id| {
            let info = match read_record(home, id) {
                Ok(r) => status_of(&r),
                Err(_) => JobInfo {
                    id: id.clone(),
                    state: JobState::Unknown,
                    node: None,
                    exit_code: None,
                    reason: Some("no such local job".into()),
                    expected_start: None,
                },
            };
            (id.clone(), info)
        })
        .collect()
}

/// The job's folder (for its log).
pub fn job_dir(id: &str, home: &Path) -> Result<String, ExecError> {
    read_record(home, id).map(|r| r.dir)
}

/// True while a process of group `pgid` that started no earlier than `since`
/// (clock ticks since boot) exists: a later, unrelated group that reused the
/// number is not the job's.
fn group_alive(pgid: i32, since: u64) -> bool {
    if pgid <= 1 {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    // A zombie still counts, as it does for kill(-pgid, 0): the group is
    // gone once its members are reaped.
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(proc_stat)
        .any(|p| p.pgrp == pgid && p.start >= since)
}

async fn wait_group_gone(pgid: i32, since: u64, limit: Duration) -> bool {
    let start = Instant::now();
    while group_alive(pgid, since) {
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// SIGTERM to the job's group (the agent then stops the service's own group
/// and deregisters), SIGKILL to both groups if anything is left after `grace`.
/// Also for a job that has ended: an agent killed outright (SIGKILL) leaves
/// its service's group behind, and that group is recorded.
pub async fn cancel(id: &str, home: &Path, grace: Duration) -> Result<(), ExecError> {
    let r = read_record(home, id)?;
    let dir = Path::new(&r.dir);
    let job = r.pid as i32;
    let since = r.starttime;
    let service = std::fs::read_to_string(dir.join("service.pgid")).ok().and_then(|s| s.trim().parse::<i32>().ok());
    if group_alive(job, since) {
        let _ = crate::util::atomic_write(&dir.join("cancel_requested"), b"1\n", Some(0o600));
        signal_group(job, libc::SIGTERM);
        if !wait_group_gone(job, since, grace).await {
            signal_group(job, libc::SIGKILL);
            wait_group_gone(job, since, Duration::from_secs(2)).await;
        }
    }
    if let Some(g) = service
        && group_alive(g, since)
    {
        signal_group(g, libc::SIGKILL);
        wait_group_gone(g, since, Duration::from_secs(2)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_reads_this_process() {
        let ProcStat { state, start, .. } = proc_stat(std::process::id()).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(start > 0);
        assert!(proc_stat(u32::MAX - 1).is_none());
        // SAFETY: reads this process's group id.
        let pgid = unsafe { libc::getpgrp() };
        assert!(group_alive(pgid, 0));
        assert!(!group_alive(pgid, u64::MAX), "a group older than `since` is not ours");
    }
}
