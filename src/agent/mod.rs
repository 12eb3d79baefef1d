//! The job agent: the process a job script runs (`aibench job-agent SPEC --
//! CMD...`), on the compute node or locally. It chooses the ports, starts the
//! service in its own process group, waits for its health probe, registers it
//! in the discovery registry with the node's real host name, forwards
//! SIGTERM/SIGINT to the whole group (so nothing outlives the job, whatever
//! SLURM's process tracking sees), enforces the time limit, deregisters on
//! exit and exits with the service's status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::procs::signal_group;
use crate::registry::{Instance, Registry};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortSpec {
    Fixed(u16),
    Auto(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    #[serde(default = "default_health_path")]
    pub path: String,
    #[serde(default = "default_health_timeout")]
    pub timeout_s: f64,
}

fn default_health_path() -> String {
    "/health".into()
}
fn default_health_timeout() -> f64 {
    300.0
}
fn default_grace() -> f64 {
    10.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Register under this service (none: just supervise, e.g. a client job).
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub recipe_name: String,
    pub instance_id: String,
    pub executor: String,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    #[serde(default)]
    pub health: Option<Health>,
    #[serde(default)]
    pub time_limit_s: Option<u64>,
    #[serde(default = "default_grace")]
    pub grace_s: f64,
    /// `$AIBENCH_HOME` to register in.
    pub home: String,
    /// A file whose `{port}`-style placeholders are filled in before start.
    #[serde(default)]
    pub script: Option<String>,
    /// The aibench binary, for `{aibench}`.
    #[serde(default)]
    pub aibench: Option<String>,
    /// Recorded with the registry entry.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn say(msg: impl AsRef<str>) {
    let t = crate::api::time::now_iso();
    eprintln!("[aibench-agent {t}] {}", msg.as_ref());
}

fn resolves(host: &str) -> bool {
    use std::net::ToSocketAddrs;
    (host, 80).to_socket_addrs().is_ok_and(|mut a| a.next().is_some())
}

fn choose_ports(specs: &[PortSpec]) -> Result<Vec<u16>, String> {
    // Bind all first (so two `auto` ports differ), then release.
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for p in specs {
        let want = match p {
            PortSpec::Fixed(n) => *n,
            PortSpec::Auto(s) if s == "auto" => 0,
            PortSpec::Auto(s) => return Err(format!("ports: expected a number or \"auto\", got \"{s}\"")),
        };
        match std::net::TcpListener::bind(("0.0.0.0", want)) {
            Ok(l) => {
                ports.push(l.local_addr().map_err(|e| e.to_string())?.port());
                held.push(l);
            }
            Err(e) => {
                return Err(format!(
                    "port {want} is not free on {} ({e}): choose another port, or auto to let aibench pick a free one",
                    crate::util::hostname()
                ));
            }
        }
    }
    drop(held);
    Ok(ports)
}

fn fill(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Expands `${NAME}` and `${NAME:-default}` from the job's environment (no
/// shell involved): lets a container image path say `${SCRATCH}/vllm.sif`.
pub fn expand_env(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            out.push_str(&rest[i..i + 3 + end]);
        } else {
            match std::env::var(name).ok().filter(|v| !v.is_empty()) {
                Some(v) => out.push_str(&v),
                None => out.push_str(default.unwrap_or("")),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

enum Ended {
    Exited(i32),
    Signalled,
    TimeLimit,
    Unhealthy(String),
}

/// Runs the agent; returns the process exit code.
pub async fn run(spec_path: &Path, cmd: Vec<String>) -> i32 {
    match run_inner(spec_path, cmd).await {
        Ok(code) => code,
        Err(e) => {
            say(format!("error: {e}"));
            1
        }
    }
}

async fn run_inner(spec_path: &Path, cmd: Vec<String>) -> Result<i32, String> {
    let text = std::fs::read_to_string(spec_path).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    let spec: AgentSpec = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    if cmd.is_empty() {
        return Err("no command to run (expected: job-agent SPEC -- PROGRAM ARGS...)".into());
    }
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;

    let job_id =
        std::env::var("SLURM_JOB_ID").or_else(|_| std::env::var("AIBENCH_JOB_ID")).unwrap_or_else(|_| "unknown".into());
    let node = crate::util::hostname();
    // Clients and Prometheus reach the instance by this name; where the node's
    // name does not resolve (a bare VM), register its loopback address instead.
    let host = if resolves(&node) {
        node.clone()
    } else {
        say(format!("the host name '{node}' does not resolve here: registering 127.0.0.1"));
        "127.0.0.1".to_string()
    };
    let ports = choose_ports(&spec.ports)?;
    let mut vars = BTreeMap::new();
    vars.insert("host".to_string(), host.clone());
    vars.insert("node".to_string(), node.clone());
    vars.insert("instance_id".to_string(), spec.instance_id.clone());
    vars.insert("job_id".to_string(), job_id.clone());
    if let Some(a) = &spec.aibench {
        vars.insert("aibench".to_string(), crate::slurm::script::quote(a));
    }
    if let Some(p) = ports.first() {
        vars.insert("port".to_string(), p.to_string());
    }
    for (i, p) in ports.iter().enumerate() {
        vars.insert(format!("port{i}"), p.to_string());
    }
    if let Some(s) = &spec.script {
        let body = std::fs::read_to_string(s).map_err(|e| format!("{s}: {e}"))?;
        crate::util::atomic_write(Path::new(s), fill(&body, &vars).as_bytes(), Some(0o600))
            .map_err(|e| format!("{s}: {e}"))?;
    }
    let argv: Vec<String> = cmd.iter().map(|a| expand_env(&fill(a, &vars))).collect();
    let job_dir = std::env::var("AIBENCH_JOB_DIR").ok().map(PathBuf::from);
    let mut command = tokio::process::Command::new(&argv[0]);
    command.args(&argv[1..]).process_group(0).stdin(std::process::Stdio::null());
    if let Some(p) = ports.first() {
        command.env("PORT", p.to_string());
    }
    command
        .env("PORTS", ports.iter().map(u16::to_string).collect::<Vec<_>>().join(","))
        .env("AIBENCH_INSTANCE_ID", &spec.instance_id)
        .env("AIBENCH_NODE", &node)
        .env("AIBENCH_JOB_ID", &job_id);
    say(format!(
        "job {job_id} on {node}: instance {} ports {:?}; starting: {}",
        spec.instance_id,
        ports,
        argv.iter().map(|a| crate::slurm::script::quote(a)).collect::<Vec<_>>().join(" ")
    ));
    // Everything that can fail is checked before the service starts, so an
    // error never leaves it running without a supervisor.
    if spec.health.is_some() && ports.is_empty() {
        return Err("health: a health probe needs a port (ports: [auto])".into());
    }
    let registry = Registry::open(Path::new(&spec.home)).map_err(|e| e.to_string())?;
    let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    let pgid = child.id().unwrap_or(0) as i32;
    if let Some(d) = &job_dir {
        let _ = crate::util::atomic_write(&d.join("service.pgid"), format!("{pgid}\n").as_bytes(), Some(0o600));
    }
    let started = Instant::now();
    let deadline = spec.time_limit_s.map(|s| started + Duration::from_secs(s));
    // A stop request or the time limit, whichever comes first; polled while
    // waiting for health and then while the service runs.
    let stop = async {
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = term.recv() => Ended::Signalled,
            _ = int.recv() => Ended::Signalled,
            _ = hup.recv() => Ended::Signalled,
            _ = until_deadline => Ended::TimeLimit,
        }
    };
    tokio::pin!(stop);

    // Health, then registration.
    let ended: Option<Ended> = if let Some(h) = &spec.health {
        let port = ports[0];
        let url = format!("http://127.0.0.1:{port}{}", h.path);
        let probe_deadline = started + Duration::from_secs_f64(h.timeout_s);
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().map_err(|e| e.to_string())?;
        let mut ended = None;
        loop {
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                say(format!("healthy after {:.1} s ({url})", started.elapsed().as_secs_f64()));
                break;
            }
            if Instant::now() >= probe_deadline {
                ended = Some(Ended::Unhealthy(format!("{url} did not answer 2xx within {:.0} s", h.timeout_s)));
                break;
            }
            tokio::select! {
                st = child.wait() => {
                    let code = st.ok().and_then(|s| s.code()).unwrap_or(1);
                    say(format!("the service exited with code {code} before it became healthy"));
                    ended = Some(Ended::Exited(if code == 0 { 1 } else { code }));
                    break;
                }
                e = &mut stop => { ended = Some(e); break; }
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        ended
    } else {
        None
    };
    // The service this instance is registered under (to deregister on exit).
    let registered = if ended.is_none()
        && let Some(service) = &spec.service
    {
        let port = ports.first().copied();
        let inst = Instance {
            job_id: job_id.clone(),
            recipe_name: spec.recipe_name.clone(),
            instance_id: spec.instance_id.clone(),
            node: node.clone(),
            host: host.clone(),
            ports: ports.clone(),
            url: port.map(|p| format!("http://{host}:{p}")).unwrap_or_default(),
            executor: spec.executor.clone(),
            status: "RUNNING".into(),
            registered_at: crate::api::time::now_iso(),
            extra: spec.extra.clone(),
        };
        match registry.register(service, inst) {
            Ok(()) => say(format!("registered as {service} at http://{host}:{}", port.unwrap_or(0))),
            Err(e) => {
                say(format!("error: cannot register: {e}"));
                terminate(&mut child, pgid, spec.grace_s).await;
                return Ok(1);
            }
        }
        Some(service)
    } else {
        None
    };

    let ended = match ended {
        Some(e) => e,
        None => tokio::select! {
            st = child.wait() => Ended::Exited(st.ok().and_then(|s| s.code().or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                s.signal().map(|sig| 128 + sig)
            })).unwrap_or(1)),
            e = &mut stop => e,
        },
    };
    let code = match ended {
        Ended::Exited(c) => {
            say(format!("the service exited with code {c}"));
            // Anything it left running in its group goes too.
            cleanup_group(pgid).await;
            c
        }
        Ended::Signalled => {
            say("stop requested: stopping the service");
            terminate(&mut child, pgid, spec.grace_s).await;
            143
        }
        Ended::TimeLimit => {
            say(format!("time limit of {} s reached: stopping the service", spec.time_limit_s.unwrap_or(0)));
            terminate(&mut child, pgid, spec.grace_s).await;
            124
        }
        Ended::Unhealthy(why) => {
            say(format!("error: {why}; stopping the service"));
            terminate(&mut child, pgid, spec.grace_s).await;
            1
        }
    };
    if let Some(service) = registered {
        match registry.deregister(service, &spec.instance_id) {
            Ok(_) => say(format!("deregistered from {service}")),
            Err(e) => say(format!("error: cannot deregister: {e}")),
        }
    }
    Ok(code)
}

async fn terminate(child: &mut tokio::process::Child, pgid: i32, grace_s: f64) {
    signal_group(pgid, libc::SIGTERM);
    if tokio::time::timeout(Duration::from_secs_f64(grace_s.max(0.1)), child.wait()).await.is_err() {
        say(format!("the service ignored SIGTERM for {grace_s} s: SIGKILL"));
        signal_group(pgid, libc::SIGKILL);
        let _ = child.wait().await;
    }
    cleanup_group(pgid).await;
}

/// Stops whatever is left in the service's group after its leader ended.
async fn cleanup_group(pgid: i32) {
    signal_group(pgid, libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal_group(pgid, libc::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_resolution() {
        assert!(resolves("localhost"));
        assert!(!resolves("no-such-host.invalid"));
    }

    #[test]
    fn env_expansion() {
        // SAFETY: test-only variable.
        unsafe { std::env::set_var("AIBENCH_T_X", "/scratch") };
        assert_eq!(expand_env("${AIBENCH_T_X}/a.sif"), "/scratch/a.sif");
        assert_eq!(expand_env("${AIBENCH_T_NOPE:-.}/a.sif"), "./a.sif");
        assert_eq!(expand_env("${AIBENCH_T_NOPE}/a"), "/a");
        assert_eq!(expand_env("$HOME ${ bad} ${unterminated"), "$HOME ${ bad} ${unterminated");
    }
}
