//! Jobs: the one script both executors run ([`script`]), and the executor
//! interface that SLURM ([`slurm`]) and the local machine ([`local`])
//! implement: submit, status (batched), cancel, wait, logs. Job states use
//! the MeluXina report's vocabulary (PENDING ... CANCELED) plus TIMEOUT.

pub mod local;
pub mod script;
pub mod slurm;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::Serialize;

pub use script::{JobSpec, Resources};

/// The job states of the MeluXina report's framework, plus TIMEOUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobState {
    Pending,
    Starting,
    Running,
    Completed,
    Failed,
    Canceled,
    Timeout,
    Unknown,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Starting => "STARTING",
            JobState::Running => "RUNNING",
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Canceled => "CANCELED",
            JobState::Timeout => "TIMEOUT",
            JobState::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s.to_ascii_uppercase().as_str() {
            "PENDING" | "SUBMITTED" => JobState::Pending,
            "STARTING" => JobState::Starting,
            "RUNNING" => JobState::Running,
            "COMPLETED" => JobState::Completed,
            "FAILED" => JobState::Failed,
            "CANCELED" | "CANCELLED" => JobState::Canceled,
            "TIMEOUT" => JobState::Timeout,
            "UNKNOWN" => JobState::Unknown,
            _ => return None,
        })
    }

    /// The job will not run any more.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed | JobState::Canceled | JobState::Timeout)
    }

    /// Orders states along a job's life, for `wait{until_state = ...}`.
    pub fn rank(self) -> u8 {
        match self {
            JobState::Pending | JobState::Unknown => 0,
            JobState::Starting => 1,
            JobState::Running => 2,
            _ => 3,
        }
    }
}

/// A job as an executor sees it now.
#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    pub id: String,
    pub state: JobState,
    pub node: Option<String>,
    pub exit_code: Option<i32>,
    /// The scheduler's reason (why pending, why failed).
    pub reason: Option<String>,
    /// A pending job's expected start, as the scheduler estimates it
    /// (ISO-8601 local time), when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_start: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The scheduler cannot be used at all (not installed, controller down).
    #[error("{0}")]
    Unavailable(String),
    /// The scheduler refused the job (sbatch's own message).
    #[error("{0}")]
    Rejected(String),
    /// The spec is wrong (raised in Lua).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Io(String),
}

impl ExecError {
    pub fn kind(&self) -> &'static str {
        match self {
            ExecError::Unavailable(_) => "unavailable",
            ExecError::Rejected(_) => "rejected",
            ExecError::Invalid(_) => "invalid",
            ExecError::NotFound(_) => "not_found",
            ExecError::Io(_) => "io",
        }
    }
}

/// Opens (creating it 0600) a job's log for appending. SLURM opens an
/// existing `--output` file without changing its mode, so creating the log
/// before submitting keeps it private there too: job logs can hold tokens
/// and keys from the job's environment.
pub fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// What runs jobs: SLURM or this machine. Futures are boxed so that the
/// executor can be chosen by name at run time.
pub trait Executor: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether jobs can be submitted at all (SLURM's controller answers).
    fn available(&self) -> BoxFuture<'_, Result<(), ExecError>>;
    /// Renders and submits the job script; returns the job id.
    fn submit<'a>(&'a self, spec: &'a JobSpec) -> BoxFuture<'a, Result<String, ExecError>>;
    /// The states of many jobs at once; ids it has never heard of are absent.
    fn statuses<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<HashMap<String, JobInfo>, ExecError>>;
    /// Cancels a job: SIGTERM to its processes, SIGKILL after `grace`.
    fn cancel<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), ExecError>>;
    /// The job's folder, when the executor remembers it (the local one does).
    fn job_dir(&self, _id: &str) -> Option<String> {
        None
    }
}

/// The executor called `name` (`local` or `slurm`).
pub fn executor(name: &str) -> Option<Box<dyn Executor>> {
    match name {
        "slurm" => Some(Box::new(slurm::Slurm)),
        "local" => Some(Box::new(local::Local::new(&crate::util::aibench_home()))),
        _ => None,
    }
}

/// How long [`wait`] waits for what.
pub struct Wait {
    /// A state to reach (along a job's life); `None`: any final state.
    pub until: Option<JobState>,
    pub timeout: Duration,
    pub poll: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{0}")]
    Exec(#[from] ExecError),
    #[error("job {id} still {} after {} s", state.name(), timeout.as_secs_f64())]
    Timeout { id: String, state: JobState, timeout: Duration },
}

impl dyn Executor + '_ {
    /// One job's state (UNKNOWN when the executor does not know it).
    pub async fn info(&self, id: &str) -> Result<JobInfo, ExecError> {
        let ids = vec![id.to_string()];
        let mut m = self.statuses(&ids).await?;
        Ok(m.remove(id).unwrap_or(JobInfo {
            id: id.into(),
            state: JobState::Unknown,
            node: None,
            exit_code: None,
            reason: None,
            expected_start: None,
        }))
    }

    /// Polls until the job reaches `w.until` (or ends), or `w.timeout` passes.
    pub async fn wait(&self, id: &str, w: &Wait) -> Result<JobState, WaitError> {
        let deadline = Instant::now() + w.timeout;
        loop {
            let info = self.info(id).await?;
            let reached = match w.until {
                Some(t) if !t.is_final() => info.state.rank() >= t.rank(),
                _ => info.state.is_final(),
            };
            if reached {
                return Ok(info.state);
            }
            if Instant::now() >= deadline {
                return Err(WaitError::Timeout { id: id.to_string(), state: info.state, timeout: w.timeout });
            }
            tokio::time::sleep(w.poll).await;
        }
    }
}

/// A job's log (`<dir>/job.log`, empty while it does not exist), or its
/// last `tail` lines.
pub fn logs(dir: &str, tail: Option<usize>) -> std::io::Result<String> {
    let path = script::log_path_in(dir);
    let text = match std::fs::read(&path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(std::io::Error::new(e.kind(), format!("{path}: {e}"))),
    };
    Ok(match tail {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        None => text,
    })
}

/// Whether a state name is final (the job will not run any more).
pub fn is_final_name(state: &str) -> bool {
    JobState::parse(state).is_some_and(JobState::is_final)
}
