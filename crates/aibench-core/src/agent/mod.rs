//! The job agent: the process a job script runs (`aibench job-agent SPEC --
//! CMD...`), on the compute node or locally. It chooses the ports, starts the
//! service in its own process group, waits for its health probe, registers it
//! in the discovery registry with the node's real host name, forwards
//! SIGTERM/SIGINT to the whole group (so nothing outlives the job, whatever
//! SLURM's process tracking sees), enforces the time limit, deregisters on
//! exit and exits with the service's status.

pub mod cluster;
mod service;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use service::{Ended, Service};
pub use spec::{AgentSpec, Health, PortSpec};

use crate::registry::{Instance, Registry};

fn say(msg: impl AsRef<str>) {
    let t = crate::clock::now_iso();
    eprintln!("[aibench-agent {t}] {}", msg.as_ref());
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

/// Where this instance runs: its job, node, the host name clients use, ports.
struct Placement {
    job_id: String,
    node: String,
    host: String,
    ports: Vec<u16>,
    /// A free port for a launcher's rendezvous on the head (`{head_port}`).
    head_port: u16,
}

impl Placement {
    fn here(spec: &AgentSpec) -> Result<Placement, String> {
        let job_id = std::env::var("SLURM_JOB_ID")
            .or_else(|_| std::env::var("AIBENCH_JOB_ID"))
            .unwrap_or_else(|_| "unknown".into());
        let node = crate::util::hostname();
        // Clients and Prometheus reach the instance by this name; where the
        // node's name does not resolve (a bare VM), register its loopback
        // address instead.
        let host = if crate::util::host_resolves(&node) {
            node.clone()
        } else {
            say(format!("the host name '{node}' does not resolve here: registering 127.0.0.1"));
            "127.0.0.1".to_string()
        };
        // One more free port, chosen with the others so that it differs.
        let mut wanted = spec.ports.clone();
        wanted.push(PortSpec::Auto("auto".into()));
        let mut ports = choose_ports(&wanted)?;
        let head_port = ports.pop().unwrap_or(0);
        Ok(Placement { job_id, node, host, ports, head_port })
    }

    /// `{port}`, `{port0}`..., `{host}`, `{node}`, `{instance_id}`, `{job_id}`, `{aibench}`.
    fn placeholders(&self, spec: &AgentSpec) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        vars.insert("host".to_string(), self.host.clone());
        vars.insert("node".to_string(), self.node.clone());
        vars.insert("instance_id".to_string(), spec.instance_id.clone());
        vars.insert("job_id".to_string(), self.job_id.clone());
        if let Some(a) = &spec.aibench {
            vars.insert("aibench".to_string(), crate::jobs::script::quote(a));
        }
        if let Some(p) = self.ports.first() {
            vars.insert("port".to_string(), p.to_string());
        }
        for (i, p) in self.ports.iter().enumerate() {
            vars.insert(format!("port{i}"), p.to_string());
        }
        vars
    }

    /// The service's command, with the environment it is told its place by.
    fn command(&self, argv: &[String], spec: &AgentSpec, part: &cluster::Part) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&argv[0]);
        command.args(&argv[1..]).process_group(0).stdin(std::process::Stdio::null());
        if let Some(p) = self.ports.first() {
            command.env("PORT", p.to_string());
        }
        command
            .env("PORTS", self.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(","))
            .env("AIBENCH_INSTANCE_ID", &spec.instance_id)
            .env("AIBENCH_NODE", &self.node)
            .env("AIBENCH_JOB_ID", &self.job_id)
            .env("AIBENCH_NODE_RANK", part.rank.to_string())
            .env("AIBENCH_NNODES", part.size.to_string());
        command
    }

    fn instance(
        &self,
        spec: &AgentSpec,
        timeline: &Timeline,
        more: &serde_json::Map<String, serde_json::Value>,
    ) -> Instance {
        let port = self.ports.first().copied();
        let mut extra = spec.extra.clone();
        extra.insert("timeline".into(), timeline.json());
        extra.extend(more.clone());
        Instance {
            job_id: self.job_id.clone(),
            recipe_name: spec.recipe_name.clone(),
            instance_id: spec.instance_id.clone(),
            node: self.node.clone(),
            host: self.host.clone(),
            ports: self.ports.clone(),
            url: port.map(|p| format!("http://{}:{p}", self.host)).unwrap_or_default(),
            executor: spec.executor.clone(),
            status: "RUNNING".into(),
            registered_at: crate::clock::now_iso(),
            extra,
        }
    }
}

/// When each step of a deployment happened (Unix seconds): SLURM's submit,
/// eligible and start times (from `scontrol`, inside a SLURM job), then the
/// agent's own: its start, the service's start, healthy, registered.
#[derive(Default)]
struct Timeline {
    submit: Option<f64>,
    eligible: Option<f64>,
    start: Option<f64>,
    agent_start: f64,
    service_start: Option<f64>,
    healthy: Option<f64>,
    registered: Option<f64>,
}

impl Timeline {
    fn begin(job_id: &str) -> Timeline {
        let mut t = Timeline { agent_start: crate::clock::now(), ..Default::default() };
        if std::env::var("SLURM_JOB_ID").is_ok_and(|j| j == job_id) {
            let out = std::process::Command::new("scontrol")
                .args(["-o", "show", "job", job_id])
                .stdin(std::process::Stdio::null())
                .output();
            if let Ok(o) = out
                && o.status.success()
            {
                let text = String::from_utf8_lossy(&o.stdout);
                let field = |k: &str| {
                    text.split_whitespace().find_map(|w| w.strip_prefix(k)).and_then(crate::hpc::sacct::parse_time)
                };
                t.submit = field("SubmitTime=");
                t.eligible = field("EligibleTime=");
                t.start = field("StartTime=");
            }
        }
        t
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "submit_unix": self.submit,
            "eligible_unix": self.eligible,
            "start_unix": self.start,
            "agent_start_unix": self.agent_start,
            "service_start_unix": self.service_start,
            "healthy_unix": self.healthy,
            "registered_unix": self.registered,
        })
    }
}

/// Fills `{name}` placeholders; `${name}` is the shell's own and stays.
fn fill(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let (before, from) = rest.split_at(i);
        out.push_str(before);
        let name = from[1..].find('}').map(|j| &from[1..1 + j]);
        match name.and_then(|n| vars.get(n).map(|v| (n, v))) {
            Some((n, v)) if !before.ends_with('$') => {
                out.push_str(v);
                rest = &from[n.len() + 2..];
            }
            _ => {
                out.push('{');
                rest = &from[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The stop signals, listened to from the agent's start: one that arrives
/// while it sets up is kept, not lost.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> Result<Signals, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let s = |k| signal(k).map_err(|e| format!("cannot listen for signals: {e}"));
        Ok(Signals {
            term: s(SignalKind::terminate())?,
            int: s(SignalKind::interrupt())?,
            hup: s(SignalKind::hangup())?,
        })
    }

    /// SIGTERM, SIGINT, SIGHUP or the time limit, whichever comes first.
    async fn stop_request(mut self, deadline: Option<Instant>) -> Ended {
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = self.term.recv() => Ended::Signalled,
            _ = self.int.recv() => Ended::Signalled,
            _ = self.hup.recv() => Ended::Signalled,
            _ = until_deadline => Ended::TimeLimit,
        }
    }
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
    let spec = AgentSpec::load(spec_path)?;
    if cmd.is_empty() {
        return Err("no command to run (expected: job-agent SPEC -- PROGRAM ARGS...)".into());
    }
    let signals = Signals::listen()?;
    let part = cluster::Part::here(spec.cluster.as_ref())?;
    let place = match Placement::here(&spec) {
        Ok(p) => p,
        Err(e) => return Err(part_failed(&part, &crate::util::hostname(), None, e)),
    };
    let started = Instant::now();
    let stop = signals.stop_request(spec.time_limit_s.map(|s| started + Duration::from_secs(s)));
    tokio::pin!(stop);
    let mut timeline = Timeline::begin(&place.job_id);
    let mut vars = place.placeholders(&spec);
    // The head says where it is before anything starts; the others wait
    // for it, so every node's command knows {head_host}:{head_port}.
    let node_addr = match cluster::address_of(&place.host) {
        Ok(a) => a,
        Err(e) if part.spans_nodes() => return Err(part_failed(&part, &place.node, None, e)),
        Err(_) => place.host.clone(),
    };
    let head = if part.is_head() {
        let head = cluster::Head {
            node: place.node.clone(),
            host: place.host.clone(),
            addr: node_addr.clone(),
            port: place.head_port,
        };
        if part.spans_nodes() {
            part.publish_head(&head).map_err(|e| part_failed(&part, &place.node, None, e))?;
        }
        head
    } else {
        tokio::select! {
            h = part.wait_head() => match h {
                Ok(h) => h,
                // A head that failed has said so: this part only echoes it.
                Err(e) if part.failed_other().is_some() => return Err(e),
                Err(e) => return Err(part_failed(&part, &place.node, None, e)),
            },
            _ = stop.as_mut() => {
                say("stop requested while waiting for the head");
                return Ok(143);
            }
        }
    };
    vars.extend(part.placeholders(&node_addr, &head));
    // Each node fills its own copy of the script (the folder is shared).
    let mut script_copy = None;
    if let Some(s) = &spec.script {
        let body =
            std::fs::read_to_string(s).map_err(|e| part_failed(&part, &place.node, None, format!("{s}: {e}")))?;
        let target = if part.spans_nodes() { format!("{s}.node{}", part.rank) } else { s.clone() };
        crate::util::atomic_write(Path::new(&target), fill(&body, &vars).as_bytes(), Some(0o600))
            .map_err(|e| part_failed(&part, &place.node, None, format!("{target}: {e}")))?;
        if target != *s {
            script_copy = Some((s.clone(), target));
        }
    }
    let argv: Vec<String> = cmd
        .iter()
        .map(|a| match &script_copy {
            Some((from, to)) if a == from => to.clone(),
            _ => crate::util::expand_env(&fill(a, &vars)),
        })
        .collect();
    let whose = if part.spans_nodes() { format!(" (node {} of {})", part.rank, part.size) } else { String::new() };
    say(format!(
        "job {} on {}{whose}: instance {} ports {:?}; starting: {}",
        place.job_id,
        place.node,
        spec.instance_id,
        place.ports,
        argv.iter().map(|a| crate::jobs::script::quote(a)).collect::<Vec<_>>().join(" ")
    ));
    // Everything that can fail is checked before the service starts, so an
    // error never leaves it running without a supervisor.
    let registry =
        Registry::open(Path::new(&spec.home)).map_err(|e| part_failed(&part, &place.node, None, e.to_string()))?;
    let mut svc = Service::spawn(place.command(&argv, &spec, &part), &argv[0])
        .map_err(|e| part_failed(&part, &place.node, None, e))?;
    timeline.service_start = Some(crate::clock::now());
    // The agent's metrics endpoint (and a site's dcgm-exporter) beside it.
    let (mut metrics_extra, _metrics) = match &spec.metrics {
        Some(m) => start_metrics(m, &place, &spec, svc.pgid).await,
        None => (serde_json::Map::new(), None),
    };
    if let Some(d) = std::env::var("AIBENCH_JOB_DIR").ok().map(PathBuf::from) {
        let name = if part.spans_nodes() { format!("service.pgid.node{}", part.rank) } else { "service.pgid".into() };
        let _ = crate::util::atomic_write(&d.join(name), format!("{}\n", svc.pgid).as_bytes(), Some(0o600));
    }
    if part.spans_nodes() {
        let mut info = serde_json::json!({
            "rank": part.rank, "node": place.node, "host": place.host, "addr": node_addr, "ports": place.ports,
        });
        for k in ["agent_metrics_url", "gpu_exporter_url", "gpu_metrics"] {
            info[k] = metrics_extra.get(k).cloned().unwrap_or(serde_json::Value::Null);
        }
        if let Err(e) = part.publish_node(&info) {
            svc.terminate(spec.grace_s).await;
            return Err(part_failed(&part, &place.node, None, e));
        }
    }

    let mut ended = match (&spec.health, part.is_head()) {
        (Some(h), true) => {
            let url = format!("http://127.0.0.1:{}{}", place.ports[0], h.path);
            svc.wait_healthy(&url, Duration::from_secs_f64(h.timeout_s), started, &mut stop).await
        }
        _ => None,
    };
    timeline.healthy = Some(crate::clock::now());
    // The head registers once every part runs, with every node's endpoints.
    if ended.is_none() && part.spans_nodes() && part.is_head() {
        let wait = spec.cluster.as_ref().map(|c| c.timeout_s).unwrap_or(600.0);
        tokio::select! {
            nodes = part.wait_nodes(Instant::now() + Duration::from_secs_f64(wait)) => match nodes {
                Ok(nodes) => {
                    metrics_extra.insert("nnodes".into(), part.size.into());
                    metrics_extra.insert("launcher".into(), serde_json::to_value(part.launcher).unwrap_or_default());
                    metrics_extra.insert("nodes".into(), nodes.into());
                }
                Err(e) => ended = Some(Ended::Unhealthy(e)),
            },
            e = stop.as_mut() => ended = Some(e),
        }
    }
    // The service this instance is registered under (to deregister on exit).
    let mut registered = None;
    if ended.is_none()
        && part.is_head()
        && let Some(service) = &spec.service
    {
        timeline.registered = Some(crate::clock::now());
        let instance = place.instance(&spec, &timeline, &metrics_extra);
        match registry.register(service, instance.clone()) {
            Ok(()) => {
                say(format!("registered as {service} at {}", instance.url));
                registered = Some(service);
            }
            Err(e) => {
                say(format!("error: cannot register: {e}"));
                svc.terminate(spec.grace_s).await;
                part_failed(&part, &place.node, None, format!("cannot register: {e}"));
                return Ok(1);
            }
        }
    }
    if ended.is_none() {
        ended = Some(if part.spans_nodes() {
            // A part also stops when another has failed (srun ends it too;
            // this is quicker and says why).
            tokio::select! {
                e = svc.run(&mut stop) => e,
                why = watch_others(&part) => Ended::Unhealthy(why),
            }
        } else {
            svc.run(&mut stop).await
        });
    }
    let mut ended = ended.unwrap_or(Ended::Signalled);
    if part.spans_nodes() {
        // When srun ends a step (another part failed, a node died, scancel)
        // it signals every process of it at once: the command may be seen
        // to exit just before the agent's own SIGTERM is, and a command
        // whose peer on another node failed exits too. Give both a moment
        // to show, then record a failure only if it is this part's own, at
        // once (before the grace of stopping), so that it comes first.
        if matches!(ended, Ended::Exited(_))
            && let Ok(e) = tokio::time::timeout(Duration::from_millis(300), stop.as_mut()).await
        {
            ended = e;
        }
        let own = match &ended {
            _ if part.failed_other().is_some() => None,
            Ended::Exited(c) => Some((Some(*c), format!("the command exited with code {c}"))),
            Ended::Unhealthy(why) => Some((None, why.clone())),
            _ => None,
        };
        if let Some((exit, why)) = own {
            part.fail(&place.node, exit, &why);
        }
    }
    let crashed = matches!(ended, Ended::Exited(c) if c != 0);
    let mut code = stop_service(&mut svc, ended, &spec).await;
    if crashed && let Some(g) = &spec.gang {
        gang_task_failed(g, &place.node, code);
    }
    if let Some(service) = registered {
        match registry.deregister(service, &spec.instance_id) {
            Ok(_) => say(format!("deregistered from {service}")),
            Err(e) => say(format!("error: cannot deregister: {e}")),
        }
    } else if part.spans_nodes()
        && let Some(service) = &spec.service
    {
        // The head registers; should its node die with it, any part that
        // is still here removes the entry (removing an absent one is fine).
        let _ = registry.deregister(service, &spec.instance_id);
    }
    if part.spans_nodes() && code == 0 {
        // Any part ending ends the whole deployment: exit with an error so
        // that srun stops the other parts.
        code = 1;
    }
    Ok(code)
}

/// A gang's client task ended in error: if the common start has not been
/// set and the task has not said why itself, tell the others at the barrier
/// (a task killed outright, by the OOM killer say, could not), so that they
/// stop waiting for it at once instead of after the barrier's timeout.
fn gang_task_failed(g: &spec::GangSpec, node: &str, code: i32) {
    let rank = g.rank.or_else(|| std::env::var("SLURM_PROCID").ok().and_then(|v| v.trim().parse().ok()));
    let Some(rank) = rank else { return };
    let dir = Path::new(&g.dir);
    let failed = dir.join(format!("failed-{rank}"));
    // After the start nobody waits; and a task that stopped because another
    // failed (or said why itself) has nothing to add.
    let any_failed = std::fs::read_dir(dir)
        .map(|it| it.flatten().any(|e| e.file_name().to_string_lossy().starts_with("failed-")))
        .unwrap_or(false);
    if dir.join("start").exists() || any_failed {
        return;
    }
    let why = format!("the task on {node} ended with exit status {code} before the start");
    let _ = std::fs::create_dir_all(dir);
    match crate::util::atomic_write(&failed, why.as_bytes(), Some(0o600)) {
        Ok(()) => say(format!("told the gang: rank {rank} {why}")),
        Err(e) => say(format!("error: cannot tell the gang that rank {rank} failed: {e}")),
    }
}

/// Records a part's failure (when it spans nodes) and gives the message back.
fn part_failed(part: &cluster::Part, node: &str, exit: Option<i32>, why: String) -> String {
    if part.spans_nodes() {
        part.fail(node, exit, &why);
    }
    why
}

/// Resolves when another part of the deployment has recorded a failure.
async fn watch_others(part: &cluster::Part) -> String {
    loop {
        if let Some(why) = part.failed_other() {
            return why;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What runs beside the service for metrics: the agent's endpoint task and
/// a dcgm-exporter child, both ended when the agent ends.
struct Sidecars {
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    dcgm: Option<tokio::process::Child>,
}

impl Drop for Sidecars {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(c) = &mut self.dcgm {
            let _ = c.start_kill();
        }
    }
}

/// Starts the agent's metrics endpoint: the service's process group always,
/// the GPUs by `m.gpu` (dcgm-exporter where asked and installed, else NVML;
/// a node without either says so once). Returns what the registry entry
/// records: `agent_metrics_url`, `gpu_exporter_url`, `gpu_metrics`.
async fn start_metrics(
    m: &spec::MetricsSpec,
    place: &Placement,
    spec: &AgentSpec,
    pgid: i32,
) -> (serde_json::Map<String, serde_json::Value>, Option<Sidecars>) {
    use crate::gpu::exporter::{Exporter, Source};
    use spec::GpuMode;
    let mut extra = serde_json::Map::new();
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", 0)).await {
        Ok(l) => l,
        Err(e) => {
            say(format!("warning: no metrics endpoint ({e})"));
            return (extra, None);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let url = format!("http://{}:{port}", place.host);
    let dcgm_bin = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("dcgm-exporter")).find(|f| f.is_file()));
    let mut dcgm = None;
    let mut gpu_url = None;
    let source = match m.gpu {
        // A recorded scrape: a regular file within its cap (a device or a
        // growing file would otherwise be read until memory runs out).
        _ if m.gpu_from_file.is_some() => {
            let file = m.gpu_from_file.as_deref().unwrap_or_default();
            match crate::inputs::read_to_string(file, crate::inputs::Kind::GpuScrape) {
                Ok(text) => {
                    gpu_url = Some(url.clone());
                    Source::File(text)
                }
                Err(e) => Source::Off(format!("monitoring.gpu_from_file: {e}")),
            }
        }
        GpuMode::Off => Source::Off("monitoring.gpu = off".into()),
        GpuMode::Dcgm | GpuMode::Auto if dcgm_bin.is_some() => {
            let free = std::net::TcpListener::bind(("0.0.0.0", 0)).and_then(|l| l.local_addr()).map(|a| a.port());
            match (dcgm_bin, free) {
                (Some(bin), Ok(p)) => {
                    let child = tokio::process::Command::new(&bin)
                        .args(["--address", &format!(":{p}")])
                        .process_group(0)
                        .stdin(std::process::Stdio::null())
                        .kill_on_drop(true)
                        .spawn();
                    match child {
                        Ok(c) => {
                            say(format!("GPU metrics: dcgm-exporter ({}) on port {p}", bin.display()));
                            dcgm = Some(c);
                            gpu_url = Some(format!("http://{}:{p}", place.host));
                            Source::Off("dcgm-exporter serves the GPUs".into())
                        }
                        Err(e) => Source::Off(format!("dcgm-exporter could not start: {e}")),
                    }
                }
                _ => Source::Off("no free port for dcgm-exporter".into()),
            }
        }
        mode => {
            if mode == GpuMode::Dcgm {
                say("monitoring.gpu = dcgm, but dcgm-exporter is not installed on this node: reading NVML instead");
            }
            match Source::open(None) {
                Ok(s) => s,
                Err(e) => Source::Off(e),
            }
        }
    };
    match &source {
        Source::Off(why) if dcgm.is_none() && (m.gpu != GpuMode::Off || m.gpu_from_file.is_some()) => {
            say(format!("GPU metrics: {why}"))
        }
        Source::Nvml(_) => {
            say("GPU metrics: NVML");
            gpu_url = Some(url.clone());
        }
        _ => {}
    }
    extra.insert("agent_metrics_url".into(), url.clone().into());
    extra.insert("gpu_exporter_url".into(), gpu_url.clone().map(Into::into).unwrap_or(serde_json::Value::Null));
    extra.insert(
        "gpu_metrics".into(),
        match (&gpu_url, &dcgm, &source) {
            (Some(_), Some(_), _) => "dcgm-exporter".into(),
            (Some(_), None, Source::File(_)) => "recorded scrape".into(),
            (Some(_), None, _) => "nvml".into(),
            _ => source.describe().into(),
        },
    );
    let labels = format!("instance_id=\"{}\",job_id=\"{}\"", spec.instance_id, place.job_id);
    let ex = std::sync::Arc::new(Exporter { source, hostname: place.node.clone(), service: Some((pgid, labels)) });
    let task = tokio::spawn(crate::gpu::exporter::serve(listener, ex));
    (extra, Some(Sidecars { task, dcgm }))
}

/// Stops what is left of the service and gives the agent's exit code.
async fn stop_service(svc: &mut Service, ended: Ended, spec: &AgentSpec) -> i32 {
    match ended {
        Ended::Exited(c) => {
            say(format!("the service exited with code {c}"));
            // Anything it left running in its group goes too.
            svc.cleanup_group().await;
            c
        }
        Ended::Signalled => {
            say("stop requested: stopping the service");
            svc.terminate(spec.grace_s).await;
            143
        }
        Ended::TimeLimit => {
            say(format!("time limit of {} s reached: stopping the service", spec.time_limit_s.unwrap_or(0)));
            svc.terminate(spec.grace_s).await;
            124
        }
        Ended::Unhealthy(why) => {
            say(format!("error: {why}; stopping the service"));
            svc.terminate(spec.grace_s).await;
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_but_the_shells_own_braces_stay() {
        let vars = BTreeMap::from([("port".to_string(), "8000".to_string()), ("node".to_string(), "n1".to_string())]);
        assert_eq!(
            fill("--port {port} on {node}; ${port:-1} ${node} {other} {port}{port}", &vars),
            "--port 8000 on n1; ${port:-1} ${node} {other} 80008000"
        );
        assert_eq!(fill("{ unclosed {port", &vars), "{ unclosed {port");
        assert_eq!(fill("x$ {port}", &vars), "x$ 8000");
    }
}
