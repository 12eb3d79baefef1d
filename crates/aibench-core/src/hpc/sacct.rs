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

// What a job's numbers may be. Beyond these a value is a fault in the
// output (a broken plugin, a corrupt database row), not a job: it is left
// out with a warning rather than summed into node-hours and cost.

/// Nodes, CPUs or GPUs of one job.
const MAX_COUNT: u64 = 10_000_000;
/// SLURM's billing weight of one job.
const MAX_BILLING: f64 = 1e9;
/// Memory (allocated, or a step's MaxRSS), in MiB: an exbibyte.
const MAX_MEM_MB: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;
/// Wall time of one job, in seconds: a hundred years.
const MAX_ELAPSED_S: u64 = 100 * 365 * 86_400;
/// CPU time of one job, in seconds (MAX_COUNT CPUs for MAX_ELAPSED_S).
const MAX_CPU_S: f64 = 3.2e16;
/// Energy of one job, in joules.
const MAX_ENERGY_J: f64 = 1e18;
/// Warnings kept from one sacct answer (a garbled answer would give one
/// per line).
const MAX_WARNINGS: usize = 20;

/// `v` when it is a number a sum can use: finite, not negative, at most `max`.
fn usable(v: f64, max: f64) -> Option<f64> {
    (v.is_finite() && v >= 0.0 && v <= max).then_some(v)
}

/// The value as shown in a warning (garbage can be long).
fn shown(v: &str) -> String {
    let v = v.trim();
    match v.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &v[..i]),
        None => v.to_string(),
    }
}

fn unusable(job: &str, key: &str, v: &str) -> String {
    format!("sacct: job {job}: {key}={} is not a usable value; left out", shown(v))
}

/// A count (nodes, CPUs, GPUs); 0 with a warning when it is not one.
fn count(job: &str, key: &str, v: &str, warnings: &mut Vec<String>) -> u64 {
    match v.trim().parse::<u64>() {
        Ok(n) if n <= MAX_COUNT => n,
        _ => {
            warnings.push(unusable(job, key, v));
            0
        }
    }
}

/// An amount read by `read`, range-checked; `None` for an empty field, and
/// with a warning for one that is not a usable amount.
fn amount(
    job: &str,
    key: &str,
    v: &str,
    max: f64,
    read: impl Fn(&str) -> Option<f64>,
    warnings: &mut Vec<String>,
) -> Option<f64> {
    if v.trim().is_empty() {
        return None;
    }
    let got = read(v).and_then(|x| usable(x, max));
    if got.is_none() {
        warnings.push(unusable(job, key, v));
    }
    got
}

/// AllocTRES (`billing=2,cpu=2,gres/gpu=1,mem=4G,node=1`) into `u`.
fn apply_tres(u: &mut JobUsage, tres: &str, warnings: &mut Vec<String>) {
    let job = u.job_id.clone();
    for kv in tres.split(',') {
        let Some((k, v)) = kv.split_once('=') else { continue };
        match k {
            "cpu" => u.cpus = count(&job, k, v, warnings),
            "node" => u.nodes = count(&job, k, v, warnings),
            "mem" => u.mem_mb = amount(&job, k, v, MAX_MEM_MB, |v| parse_size_mb(v, 1.0), warnings).unwrap_or(0.0),
            "billing" => {
                u.billing = amount(&job, k, v, MAX_BILLING, |v| v.trim().parse().ok(), warnings).unwrap_or(0.0)
            }
            // gres/gpu, or gres/gpu:a100 on sites that type their GPUs.
            "gres/gpu" => u.gpus = count(&job, k, v, warnings),
            k if k.starts_with("gres/gpu:") && u.gpus == 0 => u.gpus = count(&job, k, v, warnings),
            _ => {}
        }
    }
}

/// Parses `sacct -n -P -o FIELDS` output: one entry per job, its steps
/// (`123.batch`, `123.0`, `123.extern`) folded into it. What cannot be
/// read is left out silently; [`parse_checked`] says what.
pub fn parse(text: &str) -> Vec<JobUsage> {
    parse_checked(text).0
}

/// Like [`parse`], with a warning for each thing left out: lines that are
/// not sacct's (too few fields, no job id) and values that are not usable
/// numbers (NaN, infinite, negative, absurdly large), which count as
/// nothing rather than poison the totals.
pub fn parse_checked(text: &str) -> (Vec<JobUsage>, Vec<String>) {
    let mut out: Vec<JobUsage> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let (mut bad_lines, mut first_bad) = (0usize, None::<String>);
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('|').collect();
        let id = f[0].trim();
        if f.len() < 13 || !id.starts_with(|c: char| c.is_ascii_digit()) {
            bad_lines += 1;
            if first_bad.is_none() {
                first_bad = Some(shown(line));
            }
            continue;
        }
        let (job, step) = match id.split_once('.') {
            Some((j, s)) => (j, Some(s)),
            None => (id, None),
        };
        let idx = match out.iter().position(|u| u.job_id == job) {
            Some(i) => i,
            None => {
                out.push(JobUsage { job_id: job.to_string(), ..Default::default() });
                out.len() - 1
            }
        };
        let u = &mut out[idx];
        let rss_in_bytes = |v: &str| parse_size_mb(v, 1.0 / (1024.0 * 1024.0));
        if let Some(rss) = amount(id, "MaxRSS", f[10], MAX_MEM_MB, rss_in_bytes, &mut warnings) {
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
        u.elapsed_s = match f[7].trim() {
            "" => 0,
            v => match v.parse::<u64>() {
                Ok(n) if n <= MAX_ELAPSED_S => n,
                _ => {
                    warnings.push(unusable(job, "ElapsedRaw", v));
                    0
                }
            },
        };
        apply_tres(u, f[8], &mut warnings);
        u.total_cpu_s = amount(job, "TotalCPU", f[9], MAX_CPU_S, parse_duration, &mut warnings).unwrap_or(0.0);
        // 0 (or nothing) is how sacct says the site does not measure energy.
        u.energy_j = match f[11].trim() {
            "" | "0" => None,
            v => amount(job, "ConsumedEnergyRaw", v, MAX_ENERGY_J, |v| v.trim().parse().ok(), &mut warnings)
                .filter(|e| *e > 0.0),
        };
        u.node_list = f[12].to_string();
    }
    if bad_lines > 0 {
        warnings.insert(
            0,
            format!(
                "sacct: {bad_lines} line{} of its output could not be read (expected {} '|'-separated fields \
                 starting with a job id), e.g. \"{}\"",
                if bad_lines == 1 { "" } else { "s" },
                FIELDS.split(',').count(),
                first_bad.unwrap_or_default()
            ),
        );
    }
    (out, trim_warnings(warnings))
}

/// Without repeats, and at most MAX_WARNINGS of them (saying how many more).
fn trim_warnings(all: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = all.into_iter().filter(|w| seen.insert(w.clone())).collect();
    if out.len() > MAX_WARNINGS {
        let more = out.len() - (MAX_WARNINGS - 1);
        out.truncate(MAX_WARNINGS - 1);
        out.push(format!("sacct: {more} more warnings like these"));
    }
    out
}

/// The ids of `asked` that `jobs` has no record of (an array job's
/// `123_4` counts for `123`).
pub fn missing(asked: &[String], jobs: &[JobUsage]) -> Vec<String> {
    asked
        .iter()
        .filter(|id| !jobs.iter().any(|j| j.job_id == **id || j.job_id.starts_with(&format!("{id}_"))))
        .cloned()
        .collect()
}

/// Asks sacct for `ids` (within [`super::tool_timeout`]): the jobs, with a
/// warning for whatever in its answer could not be used and for jobs it
/// has no record of. An error says why accounting cannot be read (not
/// installed, no slurmdbd, no answer in time), which the caller reports
/// rather than raises.
pub async fn query(ids: &[String]) -> Result<(Vec<JobUsage>, Vec<String>), String> {
    if ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let list = ids.join(",");
    let text = super::run_tool("sacct", &["-n", "-P", "-j", &list, "-o", FIELDS]).await?;
    let (jobs, mut warnings) = parse_checked(&text);
    let gone = missing(ids, &jobs);
    if !gone.is_empty() {
        warnings.push(format!(
            "sacct has no record of job{} {} (not yet in the accounting database, or accounting is off)",
            if gone.len() == 1 { "" } else { "s" },
            gone.join(", ")
        ));
    }
    Ok((jobs, warnings))
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
        // Good output gives no warnings.
        assert!(parse_checked(text).1.is_empty());
    }

    const GOOD: &str = "2026-12-01T10:00:00|2026-12-01T10:00:00|2026-12-01T10:00:03|Unknown";

    #[test]
    fn unusable_numbers_are_left_out_with_a_warning() {
        let text = format!(
            "41|srv|RUNNING|{GOOD}|125|billing=NaN,cpu=4,gres/gpu=inf,mem=8G,node=1|00:12.250||-5|node1\n\
             41.batch|batch|RUNNING|{GOOD}|125|cpu=4|00:12.000|NaNK||node1\n\
             42|cli|COMPLETED|{GOOD}|99999999999999|billing=-3,cpu=99999999999,mem=1e400G,node=1|garbage|0|inf|node1\n"
        );
        let (j, w) = parse_checked(&text);
        assert_eq!(j.len(), 2);
        let (a, b) = (&j[0], &j[1]);
        assert_eq!((a.billing, a.gpus, a.cpus, a.nodes, a.mem_mb), (0.0, 0, 4, 1, 8192.0));
        assert_eq!((a.energy_j, a.max_rss_mb, a.total_cpu_s), (None, 0.0, 12.25));
        assert_eq!((b.elapsed_s, b.billing, b.cpus, b.mem_mb, b.total_cpu_s, b.energy_j), (0, 0.0, 0, 0.0, 0.0, None));
        let all = w.join("\n");
        for part in [
            "sacct: job 41: billing=NaN is not a usable value; left out",
            "job 41: gres/gpu=inf",
            "job 41: ConsumedEnergyRaw=-5",
            "job 41.batch: MaxRSS=NaNK",
            "job 42: ElapsedRaw=99999999999999",
            "job 42: billing=-3",
            "job 42: cpu=99999999999",
            "job 42: mem=1e400G",
            "job 42: TotalCPU=garbage",
            "job 42: ConsumedEnergyRaw=inf",
        ] {
            assert!(all.contains(part), "{part} not in:\n{all}");
        }
        // Every number handed on is one a sum can use.
        for u in &j {
            for v in [u.billing, u.mem_mb, u.total_cpu_s, u.max_rss_mb] {
                assert!(v.is_finite() && v >= 0.0);
            }
        }
    }

    #[test]
    fn garbage_output_is_a_warning_not_zero_jobs_in_silence() {
        let (j, w) = parse_checked("sacct: error: slurmdbd is thinking\nhello|world\n\n|x|y|z|a|b|c|d|e|f|g|h|i\n");
        assert!(j.is_empty());
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("sacct: 3 lines of its output could not be read (expected 13 '|'-separated fields"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("e.g. \"sacct: error: slurmdbd is thinking\""), "{}", w[0]);
        // A long line is cut in the warning.
        let (_, w) = parse_checked(&"x".repeat(500));
        assert!(w[0].len() < 300 && w[0].contains("..."), "{}", w[0]);
        // Many bad values: a bounded list.
        let many: String = (0..100).map(|i| format!("{i}|n|RUNNING|{GOOD}|1|billing=NaN{i}|0:01||0|n1\n")).collect();
        let (j, w) = parse_checked(&many);
        assert_eq!(j.len(), 100);
        assert_eq!(w.len(), MAX_WARNINGS);
        assert_eq!(w.last().unwrap(), "sacct: 81 more warnings like these");
    }

    #[test]
    fn jobs_sacct_does_not_know_are_named() {
        let jobs =
            parse(&format!("41|a|RUNNING|{GOOD}|1|node=1|0:01||0|n1\n43_2|b|RUNNING|{GOOD}|1|node=1|0:01||0|n1\n"));
        assert_eq!(missing(&["41".into(), "42".into(), "43".into()], &jobs), vec!["42".to_string()]);
    }
}
