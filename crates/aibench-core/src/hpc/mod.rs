//! The HPC side of a run's numbers: SLURM accounting of its jobs (`sacct`),
//! what the run cost and how efficiently it served (`cost`), and who else
//! was on its nodes (`node`). Engines only: the Lua managers decide which
//! jobs belong to a run.

pub mod cost;
pub mod node;
pub mod sacct;

use std::time::Duration;

/// The seconds a SLURM command may take when `AIBENCH_SLURM_TIMEOUT_S`
/// does not say.
pub const DEFAULT_TIMEOUT_S: f64 = 20.0;

/// How long a SLURM command run for a result (`sacct`, `squeue`,
/// `scontrol`) may take before it is stopped: `AIBENCH_SLURM_TIMEOUT_S`
/// seconds, 20 by default. A hung slurmdbd or slurmctld then costs a
/// warning in the result, never the result.
pub fn tool_timeout() -> Duration {
    timeout_from(std::env::var("AIBENCH_SLURM_TIMEOUT_S").ok().as_deref())
}

/// The timeout a setting of `AIBENCH_SLURM_TIMEOUT_S` gives (the default
/// when it is unset or not a number of seconds from 0.1 to a day).
pub fn timeout_from(v: Option<&str>) -> Duration {
    let s = v
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && (0.1..=86_400.0).contains(s))
        .unwrap_or(DEFAULT_TIMEOUT_S);
    Duration::from_secs_f64(s)
}

/// Runs a SLURM command (no shell) within [`tool_timeout`]: its standard
/// output, or why there is none. At the timeout the command is killed with
/// everything it started (it runs in its own process group), so a wrapper
/// script's children cannot keep it alive.
pub async fn run_tool(cmd: &str, args: &[&str]) -> Result<String, String> {
    use crate::procs::{ProcError, Spec, run};
    let timeout = tool_timeout();
    let mut argv = vec![cmd.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let spec = Spec { argv, timeout: Some(timeout), new_group: true, ..Default::default() };
    let done = run(&spec).await.map_err(|e| match e {
        ProcError::Spawn { source, .. } => format!("{cmd} could not be run: {source}"),
        other => format!("{cmd} could not be run: {other}"),
    })?;
    if done.timed_out {
        return Err(format!("{cmd} did not answer within {} s and was stopped", timeout.as_secs_f64()));
    }
    if done.code != Some(0) {
        let err = String::from_utf8_lossy(&done.stderr).trim().to_string();
        let why = match (done.code, done.signal) {
            (_, Some(sig)) => format!("killed by signal {sig}"),
            (Some(code), _) => format!("exit status {code}"),
            _ => "no exit status".to_string(),
        };
        return Err(if err.is_empty() { format!("{cmd} failed ({why})") } else { format!("{cmd} failed: {err}") });
    }
    Ok(String::from_utf8_lossy(&done.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_setting() {
        assert_eq!(timeout_from(None), Duration::from_secs(20));
        assert_eq!(timeout_from(Some("2")), Duration::from_secs(2));
        assert_eq!(timeout_from(Some(" 0.5 ")), Duration::from_millis(500));
        for bad in ["", "soon", "NaN", "inf", "-3", "0", "1e9"] {
            assert_eq!(timeout_from(Some(bad)), Duration::from_secs(20), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_hung_command_is_stopped_at_the_timeout() {
        // run_tool reads the environment; the engine under it is tested
        // directly here with a short timeout.
        use crate::procs::{Spec, run};
        let spec = Spec {
            argv: vec!["sh".into(), "-c".into(), "sleep 30; echo late".into()],
            timeout: Some(Duration::from_millis(300)),
            new_group: true,
            ..Default::default()
        };
        let t = std::time::Instant::now();
        let done = run(&spec).await.unwrap();
        assert!(done.timed_out);
        // The shell's child (sleep) went with it: the output pipe closed.
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(done.stdout.is_empty());
    }

    #[tokio::test]
    async fn a_missing_or_failing_command_is_an_error_not_a_panic() {
        let e = run_tool("aibench-no-such-sacct", &[]).await.unwrap_err();
        assert!(e.starts_with("aibench-no-such-sacct could not be run:"), "{e}");
        let e = run_tool("sh", &["-c", "echo 'slurmdbd down' >&2; exit 1"]).await.unwrap_err();
        assert_eq!(e, "sh failed: slurmdbd down");
        let e = run_tool("false", &[]).await.unwrap_err();
        assert_eq!(e, "false failed (exit status 1)");
        assert_eq!(run_tool("echo", &["hi"]).await.unwrap(), "hi\n");
    }
}
