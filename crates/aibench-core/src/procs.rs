//! Child processes: run-and-capture with a timeout, or spawn in the
//! background with a handle. No shell unless asked for.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub argv: Vec<String>,
    /// Run `argv[0]` through `/bin/sh -c`.
    pub shell: bool,
    pub env: BTreeMap<String, String>,
    pub clear_env: bool,
    pub cwd: Option<PathBuf>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
    /// Put the child in its own process group (so a kill reaches its children).
    pub new_group: bool,
    pub stdout: Output,
    pub stderr: Output,
}

#[derive(Debug, Clone, Default)]
pub enum Output {
    #[default]
    Capture,
    Inherit,
    Null,
    /// Append to this file.
    File(PathBuf),
}

#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot start '{program}': {source}")]
    Spawn { program: String, kind: &'static str, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("empty argument list")]
    Empty,
}

impl ProcError {
    pub fn kind(&self) -> &'static str {
        match self {
            ProcError::Spawn { kind, .. } => kind,
            _ => "io",
        }
    }
}

fn stdio_for(o: &Output) -> std::io::Result<Stdio> {
    Ok(match o {
        Output::Capture => Stdio::piped(),
        Output::Inherit => Stdio::inherit(),
        Output::Null => Stdio::null(),
        Output::File(p) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
    })
}

fn command(spec: &Spec) -> Result<tokio::process::Command, ProcError> {
    let (prog, args): (&str, Vec<&str>) = if spec.shell {
        let script = spec.argv.first().ok_or(ProcError::Empty)?;
        ("/bin/sh", {
            let mut a = vec!["-c", script.as_str(), "sh"];
            a.extend(spec.argv.iter().skip(1).map(String::as_str));
            a
        })
    } else {
        let prog = spec.argv.first().ok_or(ProcError::Empty)?;
        (prog.as_str(), spec.argv.iter().skip(1).map(String::as_str).collect())
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args);
    if spec.clear_env {
        cmd.env_clear();
    }
    cmd.envs(&spec.env);
    if let Some(d) = &spec.cwd {
        cmd.current_dir(d);
    }
    cmd.stdin(if spec.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(stdio_for(&spec.stdout)?);
    cmd.stderr(stdio_for(&spec.stderr)?);
    if spec.new_group {
        cmd.process_group(0);
    }
    cmd.kill_on_drop(false);
    Ok(cmd)
}

fn spawn_err(prog: &str, e: std::io::Error) -> ProcError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => "not_found",
        std::io::ErrorKind::PermissionDenied => "permission",
        _ => "spawn",
    };
    ProcError::Spawn { program: prog.to_string(), kind, source: e }
}

/// A background child with its output being collected.
pub struct Running {
    child: Mutex<Option<tokio::process::Child>>,
    pub pid: u32,
    group: bool,
    started: Instant,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    result: Mutex<Option<Finished>>,
}

fn collect<R: AsyncRead + Unpin + Send + 'static>(
    r: Option<R>,
    buf: Arc<Mutex<Vec<u8>>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut r = r?;
    Some(tokio::spawn(async move {
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.lock().await.extend_from_slice(&chunk[..n]),
            }
        }
    }))
}

pub fn spawn(spec: &Spec) -> Result<Running, ProcError> {
    let mut cmd = command(spec)?;
    let prog = spec.argv.first().cloned().unwrap_or_default();
    let mut child = cmd.spawn().map_err(|e| spawn_err(&prog, e))?;
    let pid = child.id().unwrap_or(0);
    if let Some(input) = spec.stdin.clone()
        && let Some(mut w) = child.stdin.take()
    {
        tokio::spawn(async move {
            let _ = w.write_all(&input).await;
        });
    }
    let out = Arc::new(Mutex::new(Vec::new()));
    let err = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = [collect(child.stdout.take(), out.clone()), collect(child.stderr.take(), err.clone())]
        .into_iter()
        .flatten()
        .collect();
    Ok(Running {
        child: Mutex::new(Some(child)),
        pid,
        group: spec.new_group,
        started: Instant::now(),
        stdout: out,
        stderr: err,
        readers: Mutex::new(readers),
        result: Mutex::new(None),
    })
}

impl Running {
    /// Waits for exit (or until `timeout`, then kills it and reports `timed_out`).
    pub async fn wait(&self, timeout: Option<Duration>) -> Result<Finished, ProcError> {
        if let Some(done) = self.result.lock().await.clone() {
            return Ok(done);
        }
        let mut guard = self.child.lock().await;
        let Some(child) = guard.as_mut() else {
            return Ok(self.result.lock().await.clone().unwrap_or_default());
        };
        let mut timed_out = false;
        let status = match timeout {
            None => child.wait().await?,
            Some(t) => match tokio::time::timeout(t, child.wait()).await {
                Ok(s) => s?,
                Err(_) => {
                    timed_out = true;
                    self.signal_now(libc::SIGKILL);
                    child.wait().await?
                }
            },
        };
        for r in self.readers.lock().await.drain(..) {
            let _ = r.await;
        }
        use std::os::unix::process::ExitStatusExt;
        let done = Finished {
            code: status.code(),
            signal: status.signal(),
            stdout: std::mem::take(&mut *self.stdout.lock().await),
            stderr: std::mem::take(&mut *self.stderr.lock().await),
            timed_out,
            duration: self.started.elapsed(),
        };
        *self.result.lock().await = Some(done.clone());
        guard.take();
        Ok(done)
    }

    /// Sends a signal to the child (to its whole group when it has one).
    pub fn signal_now(&self, sig: i32) -> bool {
        if self.pid == 0 {
            return false;
        }
        if self.group {
            return signal_group(self.pid as i32, sig);
        }
        // SAFETY: plain kill(2) on a pid we started.
        unsafe { libc::kill(self.pid as i32, sig) == 0 }
    }

    /// True while the process has not been reaped.
    pub async fn running(&self) -> bool {
        let mut g = self.child.lock().await;
        match g.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Output collected so far (for a live view of a background process).
    pub async fn output_so_far(&self) -> (Vec<u8>, Vec<u8>) {
        (self.stdout.lock().await.clone(), self.stderr.lock().await.clone())
    }
}

/// Runs to completion, capturing output.
pub async fn run(spec: &Spec) -> Result<Finished, ProcError> {
    let r = spawn(spec)?;
    r.wait(spec.timeout).await
}

/// Sends `sig` to process group `pgid` (one this program started); refuses
/// 0 and 1, which would reach our own group or every process. True when
/// kill(2) succeeded.
pub fn signal_group(pgid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) on a process group we created.
    pgid > 1 && unsafe { libc::kill(-pgid, sig) == 0 }
}

pub fn signal_number(name: &str) -> Option<i32> {
    let n = name.trim_start_matches("SIG").to_ascii_uppercase();
    Some(match n.as_str() {
        "TERM" => libc::SIGTERM,
        "KILL" => libc::SIGKILL,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "QUIT" => libc::SIGQUIT,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        _ => return None,
    })
}

/// Raises this process's soft limit on open files to its hard limit, as load
/// tools do (a login shell's soft limit is often 1024). Returns the limits
/// now in force: (soft, hard).
pub fn raise_open_files_limit() -> (u64, u64) {
    // SAFETY: getrlimit/setrlimit with a struct we own.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return (u64::MAX, u64::MAX);
        }
        if l.rlim_cur < l.rlim_max {
            let want = libc::rlimit { rlim_cur: l.rlim_max, rlim_max: l.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                l.rlim_cur = l.rlim_max;
            }
        }
        (l.rlim_cur as u64, l.rlim_max as u64)
    }
}
