//! SLURM accounting: `sacct --parsable2` for the jobs of a run, read into
//! what each job was given (AllocTRES: nodes, CPUs, GPUs, memory, billing),
//! how long it ran, what it used (TotalCPU, MaxRSS over its steps) and the
//! energy the site's plugin measured (ConsumedEnergyRaw), with its
//! scheduler times (Submit, Eligible, Start, End).

use serde::{Deserialize, Serialize};

/// The fields asked of sacct, in order.
pub const FIELDS: &str =
    "JobID,JobName,State,Submit,Eligible,Start,End,ElapsedRaw,AllocTRES,TotalCPU,MaxRSS,ConsumedEnergyRaw,NodeList";

/// One job's accounting (its allocation line, with its steps folded in).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobUsage {
    pub job_id: String,
    pub name: String,
    pub state: String,
    pub submit_unix: Option<f64>,
    pub eligible_unix: Option<f64>,
    pub start_unix: Option<f64>,
    pub end_unix: Option<f64>,
    /// Wall time so far (running jobs) or in all, in whole seconds.
    pub elapsed_s: u64,
    pub nodes: u64,
    pub cpus: u64,
    pub gpus: u64,
    pub mem_mb: f64,
    /// The `billing` TRES (SLURM's own charge weight per hour).
    pub billing: f64,
    /// CPU time used by all steps (user + system), in seconds.
    pub total_cpu_s: f64,
    /// The largest MaxRSS of its steps, in MiB.
    pub max_rss_mb: f64,
    /// Joules, where the site's energy plugin fills ConsumedEnergyRaw.
    pub energy_j: Option<f64>,
    pub node_list: String,
}

/// `[DD-][HH:]MM:SS[.fff]` (TotalCPU, Elapsed) in seconds.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<f64>().ok()?, r),
        None => (0.0, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let nums: Vec<f64> = parts.iter().map(|p| p.parse::<f64>()).collect::<Result<_, _>>().ok()?;
    let secs = match nums.as_slice() {
        [s] => *s,
        [m, s] => m * 60.0 + s,
        [h, m, s] => h * 3600.0 + m * 60.0 + s,
        _ => return None,
    };
    Some(days * 86400.0 + secs)
}

/// A size with SLURM's unit suffix (K, M, G, T; bare numbers are MiB for
/// `mem` and bytes for MaxRSS, so the caller gives the unit of a bare one).
pub fn parse_size_mb(s: &str, bare_mb: f64) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let n: f64 = num.parse().ok()?;
    Some(match unit.chars().next().map(|c| c.to_ascii_uppercase()) {
        None => n * bare_mb,
        Some('K') => n / 1024.0,
        Some('M') => n,
        Some('G') => n * 1024.0,
        Some('T') => n * 1024.0 * 1024.0,
        Some('P') => n * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    })
}

/// SLURM's local time (`2026-12-01T23:20:01`) as Unix seconds; `None` for
/// `Unknown`, `None` and empty fields.
pub fn parse_time(s: &str) -> Option<f64> {
    use chrono::{Local, NaiveDateTime, TimeZone};
    let t = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S").ok()?;
    Local.from_local_datetime(&t).earliest().map(|d| d.timestamp() as f64)
}

/// AllocTRES (`billing=2,cpu=2,gres/gpu=1,mem=4G,node=1`) into `u`.
fn apply_tres(u: &mut JobUsage, tres: &str) {
    for kv in tres.split(',') {
        let Some((k, v)) = kv.split_once('=') else { continue };
        match k {
            "cpu" => u.cpus = v.parse().unwrap_or(0),
            "node" => u.nodes = v.parse().unwrap_or(0),
            "mem" => u.mem_mb = parse_size_mb(v, 1.0).unwrap_or(0.0),
            "billing" => u.billing = v.parse().unwrap_or(0.0),
            // gres/gpu, or gres/gpu:a100 on sites that type their GPUs.
            "gres/gpu" => u.gpus = v.parse().unwrap_or(0),
            k if k.starts_with("gres/gpu:") && u.gpus == 0 => u.gpus = v.parse().unwrap_or(0),
            _ => {}
        }
    }
}

/// Parses `sacct -n -P -o FIELDS` output: one entry per job, its steps
/// (`123.batch`, `123.0`, `123.extern`) folded into it.
pub fn parse(text: &str) -> Vec<JobUsage> {
    let mut out: Vec<JobUsage> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 13 {
            continue;
        }
        let (job, step) = match f[0].split_once('.') {
            Some((j, s)) => (j, Some(s)),
            None => (f[0], None),
        };
        let idx = match out.iter().position(|u| u.job_id == job) {
            Some(i) => i,
            None => {
                out.push(JobUsage { job_id: job.to_string(), ..Default::default() });
                out.len() - 1
            }
        };
        let u = &mut out[idx];
        if let Some(rss) = parse_size_mb(f[10], 1.0 / (1024.0 * 1024.0)) {
            u.max_rss_mb = u.max_rss_mb.max(rss);
        }
        if step.is_some() {
            continue;
        }
        u.name = f[1].to_string();
        u.state = f[2].split_whitespace().next().unwrap_or("").to_string();
        u.submit_unix = parse_time(f[3]);
        u.eligible_unix = parse_time(f[4]);
        u.start_unix = parse_time(f[5]);
        u.end_unix = parse_time(f[6]);
        u.elapsed_s = f[7].trim().parse().unwrap_or(0);
        apply_tres(u, f[8]);
        u.total_cpu_s = parse_duration(f[9]).unwrap_or(0.0);
        u.energy_j = f[11].trim().parse::<f64>().ok().filter(|e| *e > 0.0);
        u.node_list = f[12].to_string();
    }
    out
}

/// Asks sacct for `ids`: an error says why accounting cannot be read (not
/// installed, no slurmdbd), which the caller reports rather than raises.
pub async fn query(ids: &[String]) -> Result<Vec<JobUsage>, String> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = ids.join(",");
    let out = tokio::process::Command::new("sacct")
        .args(["-n", "-P", "-j", &list, "-o", FIELDS])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("sacct could not be run: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("sacct failed: {}", err.trim()));
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_and_times() {
        assert_eq!(parse_duration("00:01.500"), Some(1.5));
        assert_eq!(parse_duration("02:03:04"), Some(7384.0));
        assert_eq!(parse_duration("1-00:00:10"), Some(86410.0));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_size_mb("4G", 1.0), Some(4096.0));
        assert_eq!(parse_size_mb("2048", 1.0), Some(2048.0));
        assert_eq!(parse_size_mb("1024K", 1.0), Some(1.0));
        assert_eq!(parse_size_mb("", 1.0), None);
        assert!(parse_time("Unknown").is_none());
        let a = parse_time("2026-12-01T10:00:00").unwrap();
        let b = parse_time("2026-12-01T10:00:05").unwrap();
        assert_eq!(b - a, 5.0);
    }

    #[test]
    fn steps_fold_into_their_job() {
        let text = "\
41|vllm-sim|RUNNING|2026-12-01T10:00:00|2026-12-01T10:00:00|2026-12-01T10:00:03|Unknown|125|billing=4,cpu=4,gres/gpu=1,mem=8G,node=1|00:12.250||0|node1
41.batch|batch|RUNNING|2026-12-01T10:00:03|2026-12-01T10:00:03|2026-12-01T10:00:03|Unknown|125|cpu=4,gres/gpu=1,mem=8G,node=1|00:12.000|524288K||node1
41.extern|extern|RUNNING|2026-12-01T10:00:03|2026-12-01T10:00:03|2026-12-01T10:00:03|Unknown|125|billing=4,cpu=4,gres/gpu=1,mem=8G,node=1|00:00.250|1024K||node1
42|client|COMPLETED|2026-12-01T10:01:00|2026-12-01T10:01:00|2026-12-01T10:01:01|2026-12-01T10:01:31|30|billing=1,cpu=1,mem=1G,node=1|00:05.000||900|node1
";
        let j = parse(text);
        assert_eq!(j.len(), 2);
        let s = &j[0];
        assert_eq!((s.job_id.as_str(), s.state.as_str(), s.elapsed_s), ("41", "RUNNING", 125));
        assert_eq!((s.nodes, s.cpus, s.gpus, s.mem_mb, s.billing), (1, 4, 1, 8192.0, 4.0));
        assert_eq!(s.max_rss_mb, 512.0);
        assert_eq!(s.total_cpu_s, 12.25);
        assert_eq!(s.energy_j, None);
        assert_eq!(s.start_unix.unwrap() - s.submit_unix.unwrap(), 3.0);
        assert!(s.end_unix.is_none());
        assert_eq!(j[1].energy_j, Some(900.0));
        assert_eq!(j[1].gpus, 0);
    }
}
