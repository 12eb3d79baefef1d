//! A deployment that spans nodes (`service.nodes: N`): one job agent per
//! node, each started by the job's one `srun` step and told its rank by
//! SLURM. The agents meet through files in the job's folder on the shared
//! file system:
//!
//! - `head.json`: the head (rank 0) writes its host, address and the port it
//!   chose for the launcher (Ray's GCS, SGLang's `--dist-init-addr`, vLLM's
//!   master port) before anything starts; the other ranks wait for it, so
//!   `{head_host}`/`{head_port}` are known everywhere before a command runs.
//! - `node-<rank>.json`: each part, once its command runs: node, address
//!   and the agent's metrics endpoints. The head registers the deployment
//!   only when every part has written one, naming every node's endpoints.
//! - `failed-<rank>.json`: a part whose command ended on its own (or that
//!   could not start) says so (node, exit status, why) before its agent
//!   exits with an error, which makes srun end the other parts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How the parts of a multi-node deployment start their service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Launcher {
    /// A Ray cluster: the head, then workers joining it; the service runs
    /// on the head (the node script says how).
    #[serde(rename = "ray")]
    Ray,
    /// The service's own multi-node flags: the command runs on every node.
    #[serde(rename = "per-node")]
    PerNode,
}

fn default_timeout() -> f64 {
    600.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// How many nodes (parts); ranks are 0..nodes.
    pub nodes: u32,
    pub launcher: Launcher,
    /// The folder the parts meet in (on the shared file system).
    pub dir: String,
    /// How long a part waits for the others before it gives up.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
}

impl ClusterSpec {
    pub fn validate(&self) -> Result<(), String> {
        if !(2..=4096).contains(&self.nodes) {
            return Err(format!("agent.cluster.nodes: expected 2 to 4096, got {}", self.nodes));
        }
        if self.dir.is_empty() {
            return Err("agent.cluster.dir: expected a folder".into());
        }
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0) {
            return Err(format!("agent.cluster.timeout_s: expected a positive number, got {}", self.timeout_s));
        }
        Ok(())
    }
}

/// The head's address, as every part needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Head {
    pub node: String,
    pub host: String,
    pub addr: String,
    pub port: u16,
}

/// This agent's place in a deployment: rank `rank` of `size`.
pub struct Part {
    pub rank: u32,
    pub size: u32,
    pub launcher: Option<Launcher>,
    dir: Option<PathBuf>,
    timeout: Duration,
}

/// The address the other nodes reach this one by (what Ray and torch want
/// for `--node-ip-address`): the first IPv4 address the host name resolves
/// to that is not a loopback one. Debian-style `/etc/hosts` maps a host's
/// own name to 127.0.1.1, which other nodes cannot use: that is an error.
pub fn address_of(host: &str) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let all: Vec<std::net::IpAddr> =
        (host, 0).to_socket_addrs().map(|a| a.map(|a| a.ip()).filter(|ip| ip.is_ipv4()).collect()).unwrap_or_default();
    if let Some(ip) = all.iter().find(|ip| !ip.is_loopback()) {
        return Ok(ip.to_string());
    }
    Err(match all.first() {
        Some(ip) => format!(
            "'{host}' resolves only to the loopback address {ip}: the other nodes cannot reach it \
             (a server on several nodes needs each node's name to resolve to its network address)"
        ),
        None => format!("'{host}' does not resolve: a server on several nodes needs each node's address"),
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let text = crate::inputs::read_to_string(path, crate::inputs::Kind::Settings).ok()?;
    serde_json::from_str(&text).ok()
}

impl Part {
    /// A deployment of one node: rank 0 of 1, nothing to meet.
    pub fn single() -> Part {
        Part { rank: 0, size: 1, launcher: None, dir: None, timeout: Duration::ZERO }
    }

    /// This node's part: its rank from SLURM (`SLURM_PROCID`, one task per
    /// node), checked against the step's size.
    pub fn here(spec: Option<&ClusterSpec>) -> Result<Part, String> {
        let Some(c) = spec else { return Ok(Part::single()) };
        let env_u32 = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u32>().ok());
        let rank = env_u32("SLURM_PROCID").ok_or(
            "a deployment on several nodes runs as one srun step of one task per node \
             (SLURM_PROCID is not set: is this a SLURM job?)",
        )?;
        if let Some(n) = env_u32("SLURM_NTASKS").or_else(|| env_u32("SLURM_STEP_NUM_TASKS"))
            && n != c.nodes
        {
            return Err(format!("the step has {n} task(s), but the deployment has {} nodes", c.nodes));
        }
        if rank >= c.nodes {
            return Err(format!("rank {rank} is outside the deployment's {} nodes", c.nodes));
        }
        std::fs::create_dir_all(&c.dir).map_err(|e| format!("{}: {e}", c.dir))?;
        Ok(Part {
            rank,
            size: c.nodes,
            launcher: Some(c.launcher),
            dir: Some(PathBuf::from(&c.dir)),
            timeout: Duration::from_secs_f64(c.timeout_s),
        })
    }

    pub fn is_head(&self) -> bool {
        self.rank == 0
    }

    pub fn spans_nodes(&self) -> bool {
        self.size > 1
    }

    fn file(&self, name: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(name))
    }

    fn write(&self, name: &str, v: &impl Serialize) -> Result<(), String> {
        let Some(path) = self.file(name) else { return Ok(()) };
        let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())? + "\n";
        crate::util::atomic_write(&path, text.as_bytes(), Some(0o600)).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The head says where it is (before it starts anything).
    pub fn publish_head(&self, head: &Head) -> Result<(), String> {
        self.write("head.json", head)
    }

    /// A part that is not the head waits for the head's address; gives up
    /// when the head has failed or after the timeout.
    pub async fn wait_head(&self) -> Result<Head, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(h) = self.file("head.json").and_then(|p| read_json::<Head>(&p)) {
                return Ok(h);
            }
            if let Some(why) = self.failed_other() {
                return Err(format!("the head did not start: {why}"));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the head (rank 0) did not say where it is within {:.0} s ({} missing)",
                    self.timeout.as_secs_f64(),
                    self.file("head.json").map(|p| p.display().to_string()).unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// This part is running: what the head registers about it.
    pub fn publish_node(&self, info: &serde_json::Value) -> Result<(), String> {
        self.write(&format!("node-{}.json", self.rank), info)
    }

    /// The names in the meeting folder: one listing per poll, not one
    /// lookup per rank (at thousands of nodes, metadata load counts).
    fn listing(&self) -> std::collections::HashSet<String> {
        let Some(d) = &self.dir else { return Default::default() };
        std::fs::read_dir(d)
            .map(|it| it.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default()
    }

    /// The head waits (until `deadline`) for every part's `node-<rank>.json`,
    /// in rank order; the error names the ranks still missing.
    pub async fn wait_nodes(&self, deadline: Instant) -> Result<Vec<serde_json::Value>, String> {
        loop {
            let names = self.listing();
            let missing: Vec<u32> = (0..self.size).filter(|r| !names.contains(&format!("node-{r}.json"))).collect();
            if missing.is_empty() {
                return (0..self.size)
                    .map(|r| {
                        self.file(&format!("node-{r}.json"))
                            .and_then(|p| read_json::<serde_json::Value>(&p))
                            .ok_or(format!("rank {r}'s node-{r}.json cannot be read"))
                    })
                    .collect();
            }
            if let Some(why) = self.failed_other() {
                return Err(why);
            }
            if Instant::now() >= deadline {
                let list = missing.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
                return Err(format!(
                    "{} of {} node(s) did not start their part in time: rank(s) {list}",
                    missing.len(),
                    self.size
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Says that this part ended or could not start (before the agent exits
    /// with an error and srun ends the others).
    pub fn fail(&self, node: &str, exit_code: Option<i32>, why: &str) {
        let v = serde_json::json!({
            "rank": self.rank, "node": node, "exit_code": exit_code, "why": why, "at": crate::clock::now_iso(),
        });
        if let Err(e) = self.write(&format!("failed-{}.json", self.rank), &v) {
            super::say(format!("error: cannot record the failure: {e}"));
        }
    }

    /// Another part's failure, as one line, if one has been recorded.
    pub fn failed_other(&self) -> Option<String> {
        let names = self.listing();
        (0..self.size).filter(|r| *r != self.rank && names.contains(&format!("failed-{r}.json"))).find_map(|r| {
            let v: serde_json::Value = read_json(&self.file(&format!("failed-{r}.json"))?)?;
            Some(format!(
                "rank {r} on {} failed: {}",
                v["node"].as_str().unwrap_or("?"),
                v["why"].as_str().unwrap_or("(no reason given)")
            ))
        })
    }

    /// `{node_rank}`, `{nnodes}`, `{node_addr}`, `{head_host}`, `{head_addr}`, `{head_port}`.
    pub fn placeholders(&self, node_addr: &str, head: &Head) -> Vec<(String, String)> {
        vec![
            ("node_rank".into(), self.rank.to_string()),
            ("nnodes".into(), self.size.to_string()),
            ("node_addr".into(), node_addr.to_string()),
            ("head_host".into(), head.host.clone()),
            ("head_addr".into(), head.addr.clone()),
            ("head_port".into(), head.port.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(dir: &Path, rank: u32, size: u32) -> Part {
        Part {
            rank,
            size,
            launcher: Some(Launcher::PerNode),
            dir: Some(dir.to_path_buf()),
            timeout: Duration::from_millis(600),
        }
    }

    #[tokio::test]
    async fn parts_meet_through_files_and_name_who_is_missing() {
        let d = tempfile::tempdir().unwrap();
        let (head, w1, w2) = (part(d.path(), 0, 3), part(d.path(), 1, 3), part(d.path(), 2, 3));
        let e = w1.wait_head().await.unwrap_err();
        assert!(e.contains("head (rank 0) did not say where it is"), "{e}");
        head.publish_head(&Head { node: "n1".into(), host: "n1".into(), addr: "10.0.0.1".into(), port: 6380 }).unwrap();
        let h = w2.wait_head().await.unwrap();
        assert_eq!((h.addr.as_str(), h.port), ("10.0.0.1", 6380));
        let vars = w2.placeholders("10.0.0.3", &h);
        assert!(
            vars.contains(&("node_rank".into(), "2".into())) && vars.contains(&("head_port".into(), "6380".into()))
        );
        head.publish_node(&serde_json::json!({"rank": 0})).unwrap();
        w2.publish_node(&serde_json::json!({"rank": 2})).unwrap();
        let e = head.wait_nodes(Instant::now() + Duration::from_millis(300)).await.unwrap_err();
        assert!(e.ends_with("1 of 3 node(s) did not start their part in time: rank(s) 1"), "{e}");
        w1.publish_node(&serde_json::json!({"rank": 1})).unwrap();
        let all = head.wait_nodes(Instant::now()).await.unwrap();
        assert_eq!(all.iter().map(|v| v["rank"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2]);
        // A part that fails is seen by the others at once.
        w2.fail("n3", Some(137), "the command exited with code 137");
        let e = head.wait_nodes(Instant::now() + Duration::from_secs(5)).await;
        assert!(e.is_ok(), "all parts had started: {e:?}");
        assert_eq!(head.failed_other().unwrap(), "rank 2 on n3 failed: the command exited with code 137");
        assert!(w2.failed_other().is_none(), "its own failure is not another's");
    }

    #[test]
    fn spec_is_checked() {
        let c = |nodes, t| ClusterSpec { nodes, launcher: Launcher::Ray, dir: "/x".into(), timeout_s: t };
        assert!(c(1, 10.0).validate().unwrap_err().contains("agent.cluster.nodes: expected 2 to 4096, got 1"));
        assert!(c(2, 0.0).validate().unwrap_err().contains("timeout_s"));
        assert!(c(2, 10.0).validate().is_ok());
        let e = serde_json::from_str::<ClusterSpec>(r#"{"nodes":2,"launcher":"mpi","dir":"/x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant `mpi`"), "{e}");
    }
}
