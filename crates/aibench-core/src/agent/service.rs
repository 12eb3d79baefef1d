//! The supervised service: its process group, health probe and stopping.

use std::time::{Duration, Instant};

use super::say;
use crate::procs::signal_group;

/// How supervision ended.
pub enum Ended {
    Exited(i32),
    Signalled,
    TimeLimit,
    Unhealthy(String),
}

/// An exit status as a shell gives it: the code, or 128 + the signal that
/// killed it (1 when unknown).
fn code_of(st: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.ok().and_then(|s| s.code().or_else(|| s.signal().map(|sig| 128 + sig))).unwrap_or(1)
}

/// The service's leader process and its process group.
pub struct Service {
    pub child: tokio::process::Child,
    pub pgid: i32,
}

impl Service {
    pub fn spawn(mut command: tokio::process::Command, program: &str) -> Result<Service, String> {
        let child = command.spawn().map_err(|e| format!("cannot start {program}: {e}"))?;
        let pgid = child.id().unwrap_or(0) as i32;
        Ok(Service { child, pgid })
    }

    /// Polls `url` until it answers 2xx, the service exits, `stop` fires or
    /// `timeout` passes; `None` when it became healthy.
    pub async fn wait_healthy(
        &mut self,
        url: &str,
        timeout: Duration,
        started: Instant,
        stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = Ended>>,
    ) -> Option<Ended> {
        let deadline = started + timeout;
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(2)).build() {
            Ok(c) => c,
            Err(e) => return Some(Ended::Unhealthy(format!("cannot make an HTTP client: {e}"))),
        };
        loop {
            if let Ok(r) = client.get(url).send().await
                && r.status().is_success()
            {
                say(format!("healthy after {:.1} s ({url})", started.elapsed().as_secs_f64()));
                return None;
            }
            if Instant::now() >= deadline {
                return Some(Ended::Unhealthy(format!(
                    "{url} did not answer 2xx within {:.0} s",
                    timeout.as_secs_f64()
                )));
            }
            tokio::select! {
                st = self.child.wait() => {
                    let code = code_of(st);
                    say(format!("the service exited with code {code} before it became healthy"));
                    return Some(Ended::Exited(if code == 0 { 1 } else { code }));
                }
                e = stop.as_mut() => return Some(e),
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }

    /// Waits for the service to exit (its status, 128 + signal when killed)
    /// or for `stop`.
    pub async fn run(&mut self, stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = Ended>>) -> Ended {
        tokio::select! {
            st = self.child.wait() => Ended::Exited(code_of(st)),
            e = stop.as_mut() => e,
        }
    }

    /// SIGTERM to the group, SIGKILL after `grace_s`, then whatever is left.
    pub async fn terminate(&mut self, grace_s: f64) {
        signal_group(self.pgid, libc::SIGTERM);
        if tokio::time::timeout(Duration::from_secs_f64(grace_s.max(0.1)), self.child.wait()).await.is_err() {
            say(format!("the service ignored SIGTERM for {grace_s} s: SIGKILL"));
            signal_group(self.pgid, libc::SIGKILL);
            let _ = self.child.wait().await;
        }
        self.cleanup_group().await;
    }

    /// Stops whatever is left in the service's group after its leader ended.
    pub async fn cleanup_group(&self) {
        signal_group(self.pgid, libc::SIGTERM);
        tokio::time::sleep(Duration::from_millis(200)).await;
        signal_group(self.pgid, libc::SIGKILL);
    }
}
