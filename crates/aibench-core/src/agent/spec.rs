//! `agent.json`: what the job agent is asked to supervise. Managers build it
//! through [`AgentSpec::encode`] at submit time, so a mistake shows then, not
//! when the job starts on a node.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortSpec {
    Fixed(u16),
    Auto(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// The agent's own metrics endpoint beside the service: the service's
    /// process group, and the GPUs (when the recipe asks for them).
    #[serde(default)]
    pub metrics: Option<MetricsSpec>,
    /// A deployment spanning nodes: this agent is one part of it.
    #[serde(default)]
    pub cluster: Option<super::cluster::ClusterSpec>,
    /// A client task of a gang: should its command end in error before the
    /// common start, the agent says so at the barrier (`failed-<rank>`), so
    /// the others stop waiting for it.
    #[serde(default)]
    pub gang: Option<GangSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GangSpec {
    /// The barrier's folder.
    pub dir: String,
    /// This task's rank (local jobs); absent, SLURM's task id.
    #[serde(default)]
    pub rank: Option<u32>,
}

/// Where GPU metrics come from (`monitoring.gpu` in a server recipe).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuMode {
    /// dcgm-exporter where it is installed, else NVML.
    #[default]
    Auto,
    /// The site's dcgm-exporter.
    Dcgm,
    /// The agent reads NVML itself.
    Nvml,
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    #[serde(default)]
    pub gpu: GpuMode,
    /// Serve this recorded dcgm-exporter scrape as the GPUs' (demos and
    /// tests on machines without a GPU).
    #[serde(default)]
    pub gpu_from_file: Option<String>,
}

impl AgentSpec {
    /// Reads `agent.json`.
    pub fn load(path: &std::path::Path) -> Result<AgentSpec, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let spec: AgentSpec = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        spec.validate().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(spec)
    }

    /// Parses and checks a spec (from a manager), returning the text of
    /// `agent.json`; errors name the field.
    pub fn encode(v: serde_json::Value) -> Result<String, String> {
        let spec: AgentSpec = crate::typed::from_json(v, "agent")?;
        spec.validate()?;
        serde_json::to_string_pretty(&spec).map(|t| t + "\n").map_err(|e| e.to_string())
    }

    /// What the types cannot check.
    pub fn validate(&self) -> Result<(), String> {
        crate::util::check_name(&self.instance_id).map_err(|e| format!("agent.instance_id: {e}"))?;
        if let Some(s) = &self.service
            && !crate::registry::valid_service_name(s)
        {
            return Err(format!("agent.service: '{s}' is not a valid service name"));
        }
        if crate::jobs::executor(&self.executor).is_none() {
            return Err(format!("agent.executor: expected \"local\" or \"slurm\", got \"{}\"", self.executor));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if let PortSpec::Auto(s) = p
                && s != "auto"
            {
                return Err(format!("agent.ports[{}]: expected a number or \"auto\", got \"{s}\"", i + 1));
            }
        }
        if let Some(h) = &self.health {
            if !h.path.starts_with('/') {
                return Err(format!("agent.health.path: expected a path starting with '/', got \"{}\"", h.path));
            }
            if !(h.timeout_s.is_finite() && h.timeout_s > 0.0) {
                return Err(format!("agent.health.timeout_s: expected a positive number, got {}", h.timeout_s));
            }
            if self.ports.is_empty() {
                return Err("agent.health: a health probe needs a port (ports: [auto])".into());
            }
        }
        if let Some(c) = &self.cluster {
            c.validate()?;
            if self.executor != "slurm" {
                return Err(format!(
                    "agent.cluster: a deployment on {} nodes needs the slurm executor, got \"{}\"",
                    c.nodes, self.executor
                ));
            }
        }
        if !(self.grace_s.is_finite() && self.grace_s >= 0.0) {
            return Err(format!("agent.grace_s: expected a non-negative number, got {}", self.grace_s));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encode_checks_what_the_job_would_find_on_the_node() {
        let ok = json!({"instance_id": "ab12", "executor": "local", "home": "/h", "ports": ["auto", 8000],
            "health": {"path": "/health"}, "service": "vllm"});
        let text = AgentSpec::encode(ok.clone()).unwrap();
        assert!(text.contains("\"timeout_s\": 300.0"), "{text}");
        let bad = |patch: serde_json::Value| {
            let mut v = ok.clone();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            AgentSpec::encode(v).unwrap_err()
        };
        assert!(bad(json!({"helth": {}})).contains("unknown field 'helth' (did you mean 'health'?)"));
        assert!(bad(json!({"ports": ["sometimes"]})).contains("agent.ports[1]: expected a number or \"auto\""));
        assert!(bad(json!({"executor": "pbs"})).contains("agent.executor"));
        assert!(bad(json!({"instance_id": "../x"})).contains("agent.instance_id"));
        assert!(bad(json!({"health": {"path": "health"}})).contains("agent.health.path"));
        assert!(bad(json!({"ports": []})).contains("needs a port"));
    }
}
