//! Who else is on a server's node: the other jobs SLURM runs there (users
//! anonymised unless they are the current user) and the node's CPU load
//! as SLURM sees it (`scontrol show node`: CPULoad, CPUAlloc, CPUTot).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OtherJob {
    pub job_id: String,
    /// The user's name if it is the current user, else `user-<6 hex>`
    /// (the same for the same user within a result).
    pub user: String,
    pub name: String,
    pub state: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeShare {
    pub node: String,
    pub other_jobs: Vec<OtherJob>,
    /// SLURM's CPULoad of the node (its load average), and CPUs allocated
    /// of the CPUs it has.
    pub cpu_load: Option<f64>,
    pub cpus_allocated: Option<u64>,
    pub cpus_total: Option<u64>,
    /// Why the load is missing (`scontrol` failed or did not answer in time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A stable pseudonym for a user name.
pub fn anonymise(user: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("user-{:06x}", h & 0xff_ffff)
}

/// `squeue -h -w NODE -o %i|%u|%j|%T` lines, leaving out `own` jobs.
pub fn parse_squeue(text: &str, own: &[String], me: &str) -> Vec<OtherJob> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f.len() >= 4).then_some(f)
        })
        .filter(|f| !own.iter().any(|o| o == f[0] || f[0].starts_with(&format!("{o}_"))))
        .map(|f| OtherJob {
            job_id: f[0].to_string(),
            user: if f[1] == me { f[1].to_string() } else { anonymise(f[1]) },
            name: f[2].to_string(),
            state: f[3].to_string(),
        })
        .collect()
}

/// CPULoad, CPUAlloc and CPUTot from `scontrol -o show node NODE`.
pub fn parse_node(text: &str) -> (Option<f64>, Option<u64>, Option<u64>) {
    let field = |k: &str| text.split_whitespace().find_map(|w| w.strip_prefix(k)).map(str::to_string);
    (
        field("CPULoad=").and_then(|v| v.parse().ok()),
        field("CPUAlloc=").and_then(|v| v.parse().ok()),
        field("CPUTot=").and_then(|v| v.parse().ok()),
    )
}

/// The node's other jobs and load, now. `squeue` and `scontrol` each get
/// [`super::tool_timeout`]: without `squeue` there is no answer (an error);
/// without `scontrol` the load is missing, with a warning saying why.
pub async fn share(node: &str, own: &[String], me: &str) -> Result<NodeShare, String> {
    let jobs = super::run_tool("squeue", &["-h", "-w", node, "-o", "%i|%u|%j|%T"]).await?;
    let mut warnings = Vec::new();
    let (cpu_load, cpus_allocated, cpus_total) = match super::run_tool("scontrol", &["-o", "show", "node", node]).await
    {
        Ok(t) => parse_node(&t),
        Err(e) => {
            warnings.push(format!("{node}: no CPU load: {e}"));
            (None, None, None)
        }
    };
    Ok(NodeShare {
        node: node.to_string(),
        other_jobs: parse_squeue(&jobs, own, me),
        cpu_load,
        cpus_allocated,
        cpus_total,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_jobs_are_listed_and_other_users_anonymised() {
        let text =
            "41|alice|vllm-sim|RUNNING\n42|bob|train|RUNNING\n43|alice|mine-too|PENDING\n44_1|alice|array|RUNNING\n";
        let j = parse_squeue(text, &["41".into(), "44".into()], "alice");
        assert_eq!(j.len(), 2);
        assert_eq!(j[0].job_id, "42");
        assert!(j[0].user.starts_with("user-") && j[0].user != "bob");
        assert_eq!(j[0].user, anonymise("bob"));
        assert_eq!(j[1].user, "alice");
        let (load, alloc, tot) =
            parse_node("NodeName=n1 Arch=x86_64 CPUAlloc=6 CPUTot=16 CPULoad=3.25 AvailableFeatures=(null)");
        assert_eq!((load, alloc, tot), (Some(3.25), Some(6), Some(16)));
    }
}
