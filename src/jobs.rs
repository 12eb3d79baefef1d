//! What the two executors (SLURM and local) have in common: job states in the
//! seed's vocabulary, and their errors.

use serde::Serialize;

/// The seed's job states, plus TIMEOUT.
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
