//! The result of a run (schema `aibench.bench/2`; `/1` still loads), and exact merging of
//! results from several client nodes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::http1::ErrorClass;
use super::stats::{self, AskedServedSums, LATENCY, METRICS, Second, Shard, Summary, TTFT, TargetSums};
use super::validity::{self, Validity};

pub const SCHEMA: &str = "aibench.bench/2";
/// Older results that still load (`/2` only added fields).
pub const OLDER_SCHEMAS: [&str; 1] = ["aibench.bench/1"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetInfo {
    pub urls: Vec<String>,
    pub api: String,
    pub model: Option<String>,
    pub stream: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenTotals {
    pub input_total: u64,
    pub output_total: u64,
    pub input_per_s: f64,
    pub output_per_s: f64,
    pub total_per_s: f64,
    /// Where output counts came from: "usage" (server), "counted" (chunks), "mixed", "none".
    pub output_source: String,
    /// Where input counts came from: "usage" or "estimated" (words) or "mixed".
    pub input_source: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Goodput {
    pub good: u64,
    pub goodput_req_per_sec: f64,
    /// Share of successful requests that met every SLO.
    pub attainment: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Rate {
    pub requested_req_per_sec: f64,
    /// Requests sent per second over the sending window (first to last send).
    pub achieved_req_per_sec: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LittlesLaw {
    pub users: u64,
    pub think_time_ms: f64,
    pub mean_latency_ms: f64,
    /// users / (think + mean latency)
    pub expected_req_per_sec: f64,
    /// Sum over users of each user's own cycle rate (requests / (its span
    /// from first send to last response plus think)): edge effects of the
    /// run's start and end do not enter it.
    pub measured_req_per_sec: f64,
    /// measured / expected: near 1 when the client keeps up.
    pub ratio: f64,
    /// Mean delay the client added between a response and the next send,
    /// beyond the think time (timer overshoot and bookkeeping).
    pub client_gap_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimeSeries {
    /// Unix time of second 0 (the measurement origin).
    #[serde(default)]
    pub origin_unix: f64,
    /// Start of each one-second interval, seconds since the origin.
    pub t_s: Vec<f64>,
    pub completed: Vec<u64>,
    pub errors: Vec<u64>,
    pub output_tokens: Vec<u64>,
    /// Mean number of requests in flight during each second.
    pub in_flight: Vec<f64>,
    pub mean_ttft_ms: Vec<Option<f64>>,
    pub mean_latency_ms: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClientInfo {
    pub host: String,
    pub aibench_version: String,
    /// Process CPU time during the run (includes anything else in the process).
    pub cpu_s: f64,
    /// cpu_s / (duration × cores): near 1 means the client may be the bottleneck.
    pub cpu_util: f64,
    pub cores: u64,
    pub peak_rss_mb: f64,
    /// The open loop's pacer thread: its scheduling class, and how often it
    /// left real-time priority because it had fallen behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacer: Option<PacerInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PacerInfo {
    /// "sched_fifo" (real-time, where the system allows it) or "normal".
    pub priority: String,
    /// Times it fell behind schedule for longer than 10 ms and ran at
    /// normal priority until it caught up (so it never starves the
    /// threads that read the responses).
    pub demotions: u64,
}

/// Why a run ended before its workload did (other than a signal).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoppedEarly {
    /// "unreachable": nothing succeeded and no request got an answer.
    pub reason: String,
    /// When the failures began (ISO-8601 and Unix seconds).
    pub since: String,
    pub since_unix: f64,
    pub message: String,
}

/// Closed loop: the pauses users took after requests the server refused
/// (no answer, or HTTP 5xx) before sending again.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Backoff {
    pub count: u64,
    pub total_s: f64,
}

/// Asked against served, for prompt or output tokens, over the successes
/// whose usage the server reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Deviation {
    pub requests: u64,
    pub asked_total: u64,
    pub served_total: u64,
    pub asked_mean: f64,
    pub served_mean: f64,
    /// (served - asked) / asked of the means, in percent.
    pub mean_deviation_pct: f64,
    /// The one request furthest from what it asked: |served - asked|, and
    /// what it asked.
    pub worst_abs: u64,
    pub worst_asked: u64,
    pub worst_pct: f64,
}

impl Deviation {
    fn new(requests: u64, asked: u64, served: u64, (worst_abs, worst_asked): (u64, u64)) -> Deviation {
        let mean = |t: u64| if requests > 0 { t as f64 / requests as f64 } else { 0.0 };
        let pct = |d: f64, of: f64| if of > 0.0 { d / of * 100.0 } else { 0.0 };
        Deviation {
            requests,
            asked_total: asked,
            served_total: served,
            asked_mean: mean(asked),
            served_mean: mean(served),
            mean_deviation_pct: pct(served as f64 - asked as f64, asked as f64),
            worst_abs,
            worst_asked,
            worst_pct: pct(worst_abs as f64, worst_asked as f64),
        }
    }

    fn merge(all: &[&Deviation]) -> Deviation {
        let worst = all.iter().max_by_key(|d| d.worst_abs).map(|d| (d.worst_abs, d.worst_asked)).unwrap_or_default();
        let sum = |f: &dyn Fn(&Deviation) -> u64| all.iter().map(|d| f(d)).sum::<u64>();
        Deviation::new(sum(&|d| d.requests), sum(&|d| d.asked_total), sum(&|d| d.served_total), worst)
    }
}

/// Mean served prompt tokens further than this from asked: a warning.
pub const PROMPT_DEVIATION_WARN_PCT: f64 = 2.0;

/// What the requests asked against what the server says it served.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AskedVsServed {
    pub prompt: Deviation,
    /// Output tokens, over requests that asked a number (`max_tokens`).
    pub output: Deviation,
    /// The served prompt lengths, in tokens.
    pub served_prompt_tokens: Option<Summary>,
    /// Their exact distribution: [length, requests], by length.
    #[serde(default)]
    pub served_prompt_token_counts: Vec<(u64, u64)>,
}

impl AskedVsServed {
    fn of(s: &AskedServedSums) -> Option<AskedVsServed> {
        (s.n > 0).then(|| AskedVsServed {
            prompt: Deviation::new(s.n, s.asked_prompt, s.served_prompt, s.worst_prompt),
            output: Deviation::new(s.output_n, s.asked_output, s.served_output, s.worst_output),
            served_prompt_tokens: Summary::of_counts(&s.prompt_lengths),
            served_prompt_token_counts: s.prompt_lengths.iter().map(|(l, n)| (*l, *n)).collect(),
        })
    }

    fn merge(all: &[&AskedVsServed]) -> Option<AskedVsServed> {
        if all.is_empty() {
            return None;
        }
        let mut lengths: BTreeMap<u64, u64> = BTreeMap::new();
        for a in all {
            for (l, n) in &a.served_prompt_token_counts {
                *lengths.entry(*l).or_default() += n;
            }
        }
        Some(AskedVsServed {
            prompt: Deviation::merge(&all.iter().map(|a| &a.prompt).collect::<Vec<_>>()),
            output: Deviation::merge(&all.iter().map(|a| &a.output).collect::<Vec<_>>()),
            served_prompt_tokens: Summary::of_counts(&lengths),
            served_prompt_token_counts: lengths.into_iter().collect(),
        })
    }
}

/// The result's warnings, from its own fields: approximate prompt lengths,
/// prompts served at another length than asked, a client-limited run.
fn warnings(llm: bool, source: &str, asked: Option<&AskedVsServed>, validity: &Validity) -> Vec<String> {
    let mut w = Vec::new();
    if llm && source.starts_with("words") {
        w.push(
            "prompt lengths are approximate: counted in words, not by the model's tokenizer (set \
             target.tokenizer or --tokenizer to the model folder, or use a server that answers /tokenize)"
                .to_string(),
        );
    }
    if let Some(a) = asked
        && a.prompt.mean_deviation_pct.abs() > PROMPT_DEVIATION_WARN_PCT
    {
        w.push(format!(
            "the server counted {:.1} prompt tokens per request on average, {:.1} were asked ({:+.1}%): the load \
             sent is not the load asked",
            a.prompt.served_mean, a.prompt.asked_mean, a.prompt.mean_deviation_pct
        ));
    }
    if validity.client_limited {
        w.push(format!("the client may have been the bottleneck, not the server: {}", validity.reasons.join("; ")));
    }
    w
}

/// One target URL's share of a run (a service's instance): its requests,
/// how they ended, and its TTFT and E2E. Its successes and errors add up,
/// over the URLs, to the run's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UrlReport {
    pub url: String,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// The classes that occurred (no zeros).
    #[serde(default)]
    pub errors_by_class: BTreeMap<String, u64>,
    pub ttft_ms: Option<Summary>,
    pub latency_ms: Option<Summary>,
    /// HdrHistogram V2 (base64, microseconds), for exact merging.
    #[serde(default)]
    pub ttft_hist: Option<String>,
    #[serde(default)]
    pub latency_hist: Option<String>,
}

/// How requests were spread over the URLs, in results written before it
/// was recorded: round robin, the only way there was.
fn default_balance() -> String {
    "round_robin".into()
}

impl UrlReport {
    fn of(url: &str, t: &TargetSums) -> UrlReport {
        let enc = |h: &Option<hdrhistogram::Histogram<u64>>| h.as_ref().filter(|h| !h.is_empty()).map(stats::encode);
        let sum = |h: &Option<hdrhistogram::Histogram<u64>>| h.as_ref().and_then(Summary::of);
        UrlReport {
            url: url.to_string(),
            requests: t.requests,
            ok: t.requests.saturating_sub(t.errors),
            errors: t.errors,
            errors_by_class: t
                .errors_by_class
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(c, n)| (c.name().to_string(), *n))
                .collect(),
            ttft_ms: sum(&t.ttft),
            latency_ms: sum(&t.latency),
            ttft_hist: enc(&t.ttft),
            latency_hist: enc(&t.latency),
        }
    }

    /// Each URL's share: from `per_target` (several URLs), or the totals
    /// (one URL, whose share they are).
    fn list(urls: &[String], per_target: &[TargetSums], total: &Shard) -> Vec<UrlReport> {
        if let [url] = urls {
            let t = TargetSums {
                requests: total.successes + total.failures,
                errors: total.failures,
                errors_by_class: total.errors.clone(),
                ttft: Some(total.h.by_name[TTFT].clone()),
                latency: Some(total.h.by_name[LATENCY].clone()),
            };
            return vec![UrlReport::of(url, &t)];
        }
        let none = TargetSums::default();
        urls.iter().enumerate().map(|(i, u)| UrlReport::of(u, per_target.get(i).unwrap_or(&none))).collect()
    }

    /// Several runs' shares added up by URL (histograms added), in URL
    /// order; none when a run lacks them (a result from before they were
    /// kept), as the rest would not add up to the totals.
    fn merge(reports: &[Report]) -> Result<Vec<UrlReport>, String> {
        if reports.iter().any(|r| r.per_url.is_empty()) {
            return Ok(Vec::new());
        }
        let mut by_url: BTreeMap<&str, (TargetSums, BTreeMap<String, u64>)> = BTreeMap::new();
        for (i, r) in reports.iter().enumerate() {
            for u in &r.per_url {
                let (t, classes) = by_url.entry(&u.url).or_default();
                t.requests += u.requests;
                t.errors += u.errors;
                for (name, n) in &u.errors_by_class {
                    *classes.entry(name.clone()).or_default() += n;
                }
                for (enc, into, what) in
                    [(&u.ttft_hist, &mut t.ttft, "ttft_hist"), (&u.latency_hist, &mut t.latency, "latency_hist")]
                {
                    if let Some(enc) = enc {
                        let h = stats::decode(enc)
                            .map_err(|e| format!("bench.merge: result {}: per_url '{}': {what}: {e}", i + 1, u.url))?;
                        stats::add_into(into, &h);
                    }
                }
            }
        }
        Ok(by_url
            .into_iter()
            .map(|(u, (t, classes))| UrlReport { errors_by_class: classes, ..UrlReport::of(u, &t) })
            .collect())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema: String,
    pub label: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    /// Measurement window (Unix seconds): first measured send to last completion.
    pub window_start_unix: f64,
    pub window_end_unix: f64,
    pub interrupted: bool,
    /// The signal that interrupted the run ("SIGINT", "SIGTERM").
    #[serde(default)]
    pub interrupted_by: Option<String>,
    #[serde(default)]
    pub stopped_early: Option<StoppedEarly>,
    pub target: TargetInfo,
    pub workload: serde_json::Value,
    pub dataset: serde_json::Value,
    pub slo: serde_json::Value,
    pub duration_s: f64,
    pub warmup_excluded: u64,
    // The MeluXina report's metric names, unchanged.
    pub total_requests: u64,
    pub successes: u64,
    pub errors: u64,
    pub avg_latency_ms: f64,
    pub min_latency_ms: f64,
    pub max_latency_ms: f64,
    pub throughput_req_per_sec: f64,
    pub errors_by_class: BTreeMap<String, u64>,
    pub error_samples: BTreeMap<String, Vec<String>>,
    /// How requests were spread over the target's URLs: "round_robin" or
    /// "least_outstanding" (a session keeps its first URL either way).
    #[serde(default = "default_balance")]
    pub balance: String,
    /// Each URL's share, in the order of `target.urls` (one entry for one URL).
    #[serde(default)]
    pub per_url: Vec<UrlReport>,
    /// Successes with fewer output tokens than asked although `ignore_eos`
    /// was sent; counted as successes (as vLLM's client does), not in TPOT.
    #[serde(default)]
    pub short_outputs: u64,
    #[serde(default)]
    pub backoff: Backoff,
    /// Requests the schedule asked for that were never sent because the
    /// client could not keep up (the open loop's backlog cap): not in
    /// `total_requests`, so successes + errors = total still holds.
    #[serde(default)]
    pub not_sent: u64,
    /// Requests sent but cut when the run stopped (after a signal or an
    /// unreachable server, once the grace period ran out): not in
    /// `total_requests`; sent = total_requests + unfinished.
    #[serde(default)]
    pub unfinished: u64,
    /// The per-request log this run wrote (its path, lines, and what cut it short).
    #[serde(default)]
    pub per_request_log: Option<LogInfo>,
    pub latency_ms: Option<Summary>,
    pub ttft_ms: Option<Summary>,
    pub tpot_ms: Option<Summary>,
    pub itl_ms: Option<Summary>,
    pub queue_ms: Option<Summary>,
    pub send_lag_ms: Option<Summary>,
    pub latency_from_intended_ms: Option<Summary>,
    /// Opening new connections (requests that found none free).
    #[serde(default)]
    pub connect_ms: Option<Summary>,
    pub tokens: TokenTotals,
    /// How prompt lengths were made: "tokenizer PATH", "server /tokenize",
    /// "words (approximate)", or "none" (generic HTTP).
    #[serde(default)]
    pub prompt_tokens_source: String,
    #[serde(default)]
    pub asked_vs_served: Option<AskedVsServed>,
    /// Whether the client may have been the bottleneck, and why.
    #[serde(default)]
    pub validity: Validity,
    /// What a reader must know before trusting the numbers.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What reading a dataset file found (records read, used, skipped by reason).
    #[serde(default)]
    pub dataset_stats: Option<crate::datasets::DatasetStats>,
    /// Multi-turn sessions: per turn index, and the sessions.
    #[serde(default)]
    pub sessions: Option<super::shape::SessionsReport>,
    /// Trace replay: how closely the schedule was kept.
    #[serde(default)]
    pub trace: Option<super::shape::TraceReport>,
    pub goodput: Option<Goodput>,
    pub rate: Option<Rate>,
    pub littles_law: Option<LittlesLaw>,
    pub timeseries: TimeSeries,
    /// HdrHistogram V2 (base64) per metric, values in microseconds.
    pub histograms: BTreeMap<String, String>,
    pub client: ClientInfo,
    /// This client's place in a gang-started job (one task of K): its start
    /// instant and clock offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gang: Option<super::gang::GangInfo>,
    /// A merge of several clients: how far apart they started and the
    /// common window every one of them was sending in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Overlap>,
    /// Why parts of the run are missing (a lost node's client task): the
    /// figures cover only the parts that reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

/// How several merged clients' windows line up (on the coordinator's clock
/// where they were gang-started). Rates of a merge come from `common_s`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Overlap {
    pub parts: u32,
    /// Latest minus earliest start (the gang's real starts where known,
    /// else the windows' starts).
    pub start_spread_s: f64,
    /// The largest clock-offset bound among the parts (None: not measured,
    /// the parts were not gang-started).
    pub clock_offset_bound_s: Option<f64>,
    /// Every part was sending between these instants.
    pub common_start_unix: f64,
    pub common_end_unix: f64,
    pub common_s: f64,
    /// From the first start to the last end.
    pub union_s: f64,
    #[serde(default)]
    pub union_start_unix: f64,
    #[serde(default)]
    pub union_end_unix: f64,
    /// common_s / union_s.
    pub share: f64,
    /// The share below which a merge is refused unless allowed.
    pub min_share: f64,
    /// Below min_share and merged because the caller allowed it.
    pub partial: bool,
    /// Whether the parts were started together by a barrier.
    pub gang_started: bool,
}

/// The share of the union that the parts' common window must cover.
pub const MIN_OVERLAP_SHARE: f64 = 0.9;

/// How a merge treats windows that do not line up.
#[derive(Debug, Clone, Copy)]
pub struct MergeOpts {
    pub min_share: f64,
    /// Merge (flagged) even when the common window is below `min_share`.
    pub allow_partial: bool,
}

impl Default for MergeOpts {
    fn default() -> Self {
        MergeOpts { min_share: MIN_OVERLAP_SHARE, allow_partial: false }
    }
}

/// The per-request log a run wrote.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LogInfo {
    pub path: String,
    pub lines: u64,
    /// Why the log is incomplete (a full disk), when it is.
    #[serde(default)]
    pub error: Option<String>,
}

/// Everything needed to turn merged shards into a report.
pub struct Facts {
    pub label: Option<String>,
    pub started_unix: f64,
    pub finished_unix: f64,
    /// The measurement origin (time-series second 0), as an instant and in Unix time.
    pub origin: std::time::Instant,
    pub origin_unix: f64,
    pub interrupted_by: Option<String>,
    pub stopped_early: Option<StoppedEarly>,
    pub backoff: Backoff,
    pub target: TargetInfo,
    pub workload: serde_json::Value,
    pub dataset: serde_json::Value,
    pub slo: serde_json::Value,
    pub slo_set: bool,
    pub warmup_excluded: u64,
    pub requested_rate: Option<f64>,
    pub closed_loop: Option<(u64, f64)>,
    pub in_flight: Vec<f64>,
    pub client: ClientInfo,
    /// Added to the end of the window (closed loop: the think time, so the
    /// window holds whole user cycles).
    pub window_tail_s: f64,
    pub prompt_tokens_source: String,
    pub validity: Validity,
    /// How requests picked a URL ("round_robin", "least_outstanding").
    pub balance: String,
    /// Each URL's share, by target index (several URLs; empty for one).
    pub per_target: Vec<TargetSums>,
}

fn source(from_usage: u64, total: u64, yes: &str, no: &str) -> String {
    match (from_usage, total) {
        (_, 0) => "none".into(),
        (u, t) if u == t => yes.into(),
        (0, _) => no.into(),
        _ => "mixed".into(),
    }
}

/// The per-second series from second totals and in-flight means (either may
/// be the shorter: the missing seconds count as empty).
fn timeseries(origin_unix: f64, secs: &[Second], in_flight: &[f64]) -> TimeSeries {
    let mut ts = TimeSeries { origin_unix, ..Default::default() };
    let empty = Second::default();
    for i in 0..secs.len().max(in_flight.len()) {
        let s = secs.get(i).unwrap_or(&empty);
        ts.t_s.push(i as f64);
        ts.completed.push(s.completed);
        ts.errors.push(s.errors);
        ts.output_tokens.push(s.output_tokens);
        ts.in_flight.push(in_flight.get(i).copied().unwrap_or(0.0));
        ts.mean_ttft_ms.push((s.ttft_n > 0).then(|| s.ttft_sum_ms / s.ttft_n as f64));
        ts.mean_latency_ms.push((s.completed > 0).then(|| s.latency_sum_ms / s.completed as f64));
    }
    ts
}

impl Report {
    pub fn build(total: &Shard, f: Facts) -> Report {
        let (window_start_unix, window_end_unix, duration_s) = match (total.first_sent, total.last_done) {
            (Some(a), Some(b)) => {
                let d = b.saturating_duration_since(a).as_secs_f64() + f.window_tail_s;
                // Unix times of the window, anchored on the origin.
                let start = f.origin_unix + a.saturating_duration_since(f.origin).as_secs_f64();
                (start, start + d, d)
            }
            _ => (f.started_unix, f.finished_unix, 0.0),
        };
        let per_s = |n: f64| if duration_s > 0.0 { n / duration_s } else { 0.0 };
        let lat = Summary::of(total.h.get("latency"));
        let llm = f.target.api != "http";
        let histograms = METRICS
            .iter()
            .filter(|m| !total.h.get(m).is_empty())
            .map(|m| (m.to_string(), stats::encode(total.h.get(m))))
            .collect();
        let successes = total.successes;
        let requests = total.successes + total.failures;
        let mut errors_by_class: BTreeMap<String, u64> =
            ErrorClass::ALL.iter().map(|c| (c.name().to_string(), 0)).collect();
        for (c, n) in &total.errors {
            errors_by_class.insert(c.name().to_string(), *n);
        }
        let throughput = per_s(successes as f64);
        let littles_law = f.closed_loop.filter(|_| lat.is_some()).map(|(users, think_ms)| {
            let mean = lat.as_ref().map(|l| l.mean).unwrap_or(0.0);
            let expected = users as f64 / ((think_ms + mean) / 1000.0).max(1e-9);
            let measured = total.user_rate_sum;
            LittlesLaw {
                users,
                think_time_ms: think_ms,
                mean_latency_ms: mean,
                expected_req_per_sec: expected,
                measured_req_per_sec: measured,
                ratio: if expected > 0.0 { measured / expected } else { 0.0 },
                client_gap_ms: if total.gap_n > 0 { total.gap_sum_us / total.gap_n as f64 / 1000.0 } else { 0.0 },
            }
        });
        let ts = timeseries(f.origin_unix, &total.seconds, &f.in_flight);
        let asked_vs_served = AskedVsServed::of(&total.asked);
        let warnings = warnings(llm, &f.prompt_tokens_source, asked_vs_served.as_ref(), &f.validity);
        let per_url = UrlReport::list(&f.target.urls, &f.per_target, total);
        Report {
            schema: SCHEMA.into(),
            label: f.label,
            started_at: crate::clock::format_iso(f.started_unix).unwrap_or_default(),
            finished_at: crate::clock::format_iso(f.finished_unix).unwrap_or_default(),
            window_start_unix,
            window_end_unix,
            interrupted: f.interrupted_by.is_some(),
            interrupted_by: f.interrupted_by,
            stopped_early: f.stopped_early,
            target: f.target,
            workload: f.workload,
            dataset: f.dataset,
            slo: f.slo,
            duration_s,
            warmup_excluded: f.warmup_excluded,
            total_requests: requests,
            successes,
            errors: total.failures,
            avg_latency_ms: lat.as_ref().map(|l| l.mean).unwrap_or(0.0),
            min_latency_ms: lat.as_ref().map(|l| l.min).unwrap_or(0.0),
            max_latency_ms: lat.as_ref().map(|l| l.max).unwrap_or(0.0),
            throughput_req_per_sec: throughput,
            errors_by_class,
            error_samples: total.samples.iter().map(|(c, v)| (c.name().to_string(), v.clone())).collect(),
            per_url,
            balance: f.balance,
            short_outputs: total.short_outputs,
            backoff: f.backoff,
            not_sent: 0,
            unfinished: 0,
            per_request_log: None,
            latency_ms: lat,
            ttft_ms: Summary::of(total.h.get("ttft")),
            tpot_ms: Summary::of(total.h.get("tpot")),
            itl_ms: Summary::of(total.h.get("itl")),
            queue_ms: Summary::of(total.h.get("queue")),
            send_lag_ms: Summary::of(total.h.get("send_lag")),
            latency_from_intended_ms: Summary::of(total.h.get("latency_from_intended")),
            connect_ms: Summary::of(total.h.get("connect")),
            prompt_tokens_source: f.prompt_tokens_source,
            asked_vs_served,
            validity: f.validity,
            warnings,
            dataset_stats: None,
            sessions: None,
            trace: None,
            tokens: TokenTotals {
                input_total: total.input_tokens,
                output_total: total.output_tokens,
                input_per_s: per_s(total.input_tokens as f64),
                output_per_s: per_s(total.output_tokens as f64),
                total_per_s: per_s((total.input_tokens + total.output_tokens) as f64),
                output_source: if llm {
                    source(total.output_from_usage, successes, "usage", "counted")
                } else {
                    "none".into()
                },
                input_source: if llm {
                    source(total.input_from_usage, successes, "usage", "estimated")
                } else {
                    "none".into()
                },
            },
            goodput: f.slo_set.then(|| Goodput {
                good: total.good,
                goodput_req_per_sec: per_s(total.good as f64),
                attainment: if successes > 0 { total.good as f64 / successes as f64 } else { 0.0 },
            }),
            rate: f.requested_rate.map(|r| {
                let window = match (total.first_sent, total.last_sent) {
                    (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
                    _ => 0.0,
                };
                // n sends span n - 1 gaps.
                let achieved = if window > 0.0 && requests > 1 { (requests - 1) as f64 / window } else { 0.0 };
                Rate { requested_req_per_sec: r, achieved_req_per_sec: achieved }
            }),
            littles_law,
            timeseries: ts,
            histograms,
            client: f.client,
            gang: None,
            overlap: None,
            incomplete: None,
        }
    }

    /// Merges runs (e.g. one per client node) with the default overlap rule
    /// (see [`Report::merge_with`]).
    pub fn merge(reports: &[Report]) -> Result<Report, String> {
        Self::merge_with(reports, MergeOpts::default())
    }

    /// Merges runs exactly: histograms are added, counts summed. Several
    /// runs are one experiment only where they ran together: rates come from
    /// the common window in which every run was sending (on the gang's
    /// clock where the runs were gang-started), and runs whose common window
    /// is below `min_share` of their union are refused unless
    /// `allow_partial`, which flags the result.
    pub fn merge_with(reports: &[Report], opts: MergeOpts) -> Result<Report, String> {
        let first = reports.first().ok_or("bench.merge: no results to merge")?;
        for (i, r) in reports.iter().enumerate() {
            if r.schema != SCHEMA && !OLDER_SCHEMAS.contains(&r.schema.as_str()) {
                return Err(format!("bench.merge: result {} has schema '{}', expected '{SCHEMA}'", i + 1, r.schema));
            }
        }
        for (i, r) in reports.iter().enumerate() {
            let ts = &r.timeseries;
            let n = ts.t_s.len();
            let lens = [
                ts.completed.len(),
                ts.errors.len(),
                ts.output_tokens.len(),
                ts.in_flight.len(),
                ts.mean_ttft_ms.len(),
                ts.mean_latency_ms.len(),
            ];
            if lens.iter().any(|l| *l != n) {
                return Err(format!(
                    "bench.merge: result {}: its timeseries arrays differ in length (damaged result?)",
                    i + 1
                ));
            }
            let sane = |t: f64| t.is_finite() && t > 1e9 && t < 1e11;
            if !(sane(r.window_start_unix) && sane(r.window_end_unix) && r.window_end_unix >= r.window_start_unix) {
                return Err(format!(
                    "bench.merge: result {}: window_start_unix/window_end_unix ({}, {}) are not a plausible time window",
                    i + 1,
                    r.window_start_unix,
                    r.window_end_unix
                ));
            }
        }
        let mut hists = stats::Hists::new();
        for (i, r) in reports.iter().enumerate() {
            for (name, enc) in &r.histograms {
                let Some(idx) = METRICS.iter().position(|m| m == name) else { continue };
                let h = stats::decode(enc)
                    .map_err(|e| format!("bench.merge: result {}: histogram '{name}': {e}", i + 1))?;
                let _ = hists.by_name[idx].add(&h);
            }
        }
        let overlap = overlap_of(reports, opts)?;
        let (start, end) = match &overlap {
            Some(o) if o.common_s > 0.0 => (o.common_start_unix, o.common_end_unix),
            _ => (
                reports.iter().map(|r| r.window_start_unix).fold(f64::INFINITY, f64::min),
                reports.iter().map(|r| r.window_end_unix).fold(f64::NEG_INFINITY, f64::max),
            ),
        };
        let duration_s = (end - start).max(0.0);
        let per_s = |n: f64| if duration_s > 0.0 { n / duration_s } else { 0.0 };
        // What each run did inside the rate window, as a share of its series
        // (one run alone: all of it).
        let shares: Vec<f64> =
            reports.iter().map(|r| if overlap.is_some() { share_in_window(r, start, end) } else { 1.0 }).collect();
        let in_window = |f: &dyn Fn(&Report) -> u64| -> f64 {
            reports.iter().zip(&shares).map(|(r, k)| f(r) as f64 * k).sum::<f64>()
        };
        let sum = |f: &dyn Fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
        let successes = sum(&|r| r.successes);
        let failures = sum(&|r| r.errors);
        let good = reports.iter().filter_map(|r| r.goodput.as_ref()).map(|g| g.good).sum::<u64>();
        let mut errors_by_class: BTreeMap<String, u64> = BTreeMap::new();
        let mut error_samples: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in reports {
            for (k, v) in &r.errors_by_class {
                *errors_by_class.entry(k.clone()).or_default() += v;
            }
            for (k, v) in &r.error_samples {
                let s = error_samples.entry(k.clone()).or_default();
                for m in v {
                    stats::add_sample(s, m);
                }
            }
        }
        // Time series aligned on each run's own origin (second 0), on the
        // gang's clock (each part's measured offset to rank 0) when there is one.
        let origin_of = |r: &Report| {
            (if r.timeseries.origin_unix > 0.0 { r.timeseries.origin_unix } else { r.window_start_unix })
                + clock_shift(r)
        };
        let origin = reports.iter().map(origin_of).fold(f64::INFINITY, f64::min);
        let mut secs: Vec<Second> = Vec::new();
        let mut in_flight: Vec<f64> = Vec::new();
        for r in reports {
            let off = (origin_of(r) - origin).max(0.0).round() as usize;
            let ts = &r.timeseries;
            for i in 0..ts.t_s.len() {
                let j = off + i;
                if secs.len() <= j {
                    secs.resize(j + 1, Second::default());
                    in_flight.resize(j + 1, 0.0);
                }
                let s = &mut secs[j];
                s.completed += ts.completed[i];
                s.errors += ts.errors[i];
                s.output_tokens += ts.output_tokens[i];
                if let Some(m) = ts.mean_ttft_ms[i] {
                    // Recover sums from means to combine them.
                    let n = ts.completed[i].max(1);
                    s.ttft_sum_ms += m * n as f64;
                    s.ttft_n += n;
                }
                if let Some(m) = ts.mean_latency_ms[i] {
                    s.latency_sum_ms += m * ts.completed[i] as f64;
                }
                in_flight[j] += ts.in_flight[i];
            }
        }
        // `secs` and `in_flight` grow together: the series has their length.
        let ts = timeseries(origin, &secs, &in_flight);
        let lat = Summary::of(hists.get("latency"));
        let input_total = sum(&|r| r.tokens.input_total);
        let output_total = sum(&|r| r.tokens.output_total);
        let same = |f: &dyn Fn(&Report) -> String| {
            let v = f(first);
            if reports.iter().all(|r| f(r) == v) { v } else { "mixed".to_string() }
        };
        let throughput = per_s(in_window(&|r| r.successes));
        // Only when every run has one.
        let laws: Option<Vec<&LittlesLaw>> = reports.iter().map(|r| r.littles_law.as_ref()).collect();
        let littles_law = laws.map(|laws| {
            let users = laws.iter().map(|l| l.users).sum::<u64>();
            let expected = laws.iter().map(|l| l.expected_req_per_sec).sum::<f64>();
            let think = first.littles_law.as_ref().map(|l| l.think_time_ms).unwrap_or(0.0);
            let measured = laws.iter().map(|l| l.measured_req_per_sec).sum::<f64>();
            let gap = laws.iter().map(|l| l.client_gap_ms * l.users as f64).sum::<f64>() / users.max(1) as f64;
            LittlesLaw {
                users,
                think_time_ms: think,
                mean_latency_ms: lat.as_ref().map(|l| l.mean).unwrap_or(0.0),
                expected_req_per_sec: expected,
                measured_req_per_sec: measured,
                ratio: if expected > 0.0 { measured / expected } else { 0.0 },
                client_gap_ms: gap,
            }
        });
        let asked: Vec<&AskedVsServed> = reports.iter().filter_map(|r| r.asked_vs_served.as_ref()).collect();
        let asked_vs_served = AskedVsServed::merge(&asked);
        let hosts: Vec<&str> = reports.iter().map(|r| r.client.host.as_str()).collect();
        let validity = validity::merge(&reports.iter().map(|r| &r.validity).collect::<Vec<_>>(), &hosts);
        let prompt_tokens_source = same(&|r| r.prompt_tokens_source.clone());
        let mut warnings =
            warnings(first.target.api != "http", &prompt_tokens_source, asked_vs_served.as_ref(), &validity);
        if let Some(o) = overlap.as_ref().filter(|o| o.partial) {
            warnings.push(format!(
                "partial overlap: the {} merged clients were all sending for only {:.0}% of their span ({:.1} s of {:.1} s, starts {:.2} s apart); rates are over that common window and the load outside it was lighter",
                o.parts,
                o.share * 100.0,
                o.common_s,
                o.union_s,
                o.start_spread_s
            ));
        }
        // What only a part knows (requests not sent, a log cut short) stays.
        for w in reports.iter().flat_map(|r| &r.warnings) {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
        Ok(Report {
            schema: SCHEMA.into(),
            label: first.label.clone(),
            started_at: reports.iter().map(|r| r.started_at.clone()).min().unwrap_or_default(),
            finished_at: reports.iter().map(|r| r.finished_at.clone()).max().unwrap_or_default(),
            window_start_unix: start,
            window_end_unix: end,
            interrupted: reports.iter().any(|r| r.interrupted),
            interrupted_by: reports.iter().find_map(|r| r.interrupted_by.clone()),
            stopped_early: reports.iter().find_map(|r| r.stopped_early.clone()),
            target: TargetInfo {
                urls: {
                    let mut u: Vec<String> = reports.iter().flat_map(|r| r.target.urls.clone()).collect();
                    u.sort();
                    u.dedup();
                    u
                },
                ..first.target.clone()
            },
            workload: first.workload.clone(),
            dataset: first.dataset.clone(),
            slo: first.slo.clone(),
            duration_s,
            warmup_excluded: sum(&|r| r.warmup_excluded),
            total_requests: successes + failures,
            successes,
            errors: failures,
            avg_latency_ms: lat.as_ref().map(|l| l.mean).unwrap_or(0.0),
            min_latency_ms: lat.as_ref().map(|l| l.min).unwrap_or(0.0),
            max_latency_ms: lat.as_ref().map(|l| l.max).unwrap_or(0.0),
            throughput_req_per_sec: throughput,
            errors_by_class,
            error_samples,
            balance: same(&|r| r.balance.clone()),
            per_url: UrlReport::merge(reports)?,
            short_outputs: sum(&|r| r.short_outputs),
            backoff: Backoff {
                count: sum(&|r| r.backoff.count),
                total_s: reports.iter().map(|r| r.backoff.total_s).sum(),
            },
            not_sent: sum(&|r| r.not_sent),
            unfinished: sum(&|r| r.unfinished),
            per_request_log: None,
            latency_ms: lat,
            ttft_ms: Summary::of(hists.get("ttft")),
            tpot_ms: Summary::of(hists.get("tpot")),
            itl_ms: Summary::of(hists.get("itl")),
            queue_ms: Summary::of(hists.get("queue")),
            send_lag_ms: Summary::of(hists.get("send_lag")),
            latency_from_intended_ms: Summary::of(hists.get("latency_from_intended")),
            connect_ms: Summary::of(hists.get("connect")),
            prompt_tokens_source,
            asked_vs_served,
            validity,
            warnings,
            dataset_stats: first.dataset_stats.clone(),
            sessions: super::shape::SessionsReport::merge(
                &reports.iter().filter_map(|r| r.sessions.as_ref()).collect::<Vec<_>>(),
            )?,
            // One client's replay keeps its own schedule; several are not one schedule.
            trace: if reports.len() == 1 { first.trace.clone() } else { None },
            tokens: TokenTotals {
                input_total,
                output_total,
                input_per_s: per_s(in_window(&|r| r.tokens.input_total)),
                output_per_s: per_s(in_window(&|r| r.tokens.output_total)),
                total_per_s: per_s(in_window(&|r| r.tokens.input_total + r.tokens.output_total)),
                output_source: same(&|r| r.tokens.output_source.clone()),
                input_source: same(&|r| r.tokens.input_source.clone()),
            },
            goodput: first.goodput.as_ref().map(|_| Goodput {
                good,
                goodput_req_per_sec: per_s(in_window(&|r| r.goodput.as_ref().map_or(0, |g| g.good))),
                attainment: if successes > 0 { good as f64 / successes as f64 } else { 0.0 },
            }),
            rate: first.rate.as_ref().map(|_| Rate {
                requested_req_per_sec: reports
                    .iter()
                    .filter_map(|r| r.rate.as_ref())
                    .map(|r| r.requested_req_per_sec)
                    .sum(),
                // Clients run side by side: their sending rates add up.
                achieved_req_per_sec: reports
                    .iter()
                    .filter_map(|r| r.rate.as_ref())
                    .map(|r| r.achieved_req_per_sec)
                    .sum(),
            }),
            littles_law,
            timeseries: ts,
            histograms: METRICS
                .iter()
                .filter(|m| !hists.get(m).is_empty())
                .map(|m| (m.to_string(), stats::encode(hists.get(m))))
                .collect(),
            client: ClientInfo {
                host: same(&|r| r.client.host.clone()),
                aibench_version: same(&|r| r.client.aibench_version.clone()),
                cpu_s: reports.iter().map(|r| r.client.cpu_s).sum(),
                cpu_util: reports.iter().map(|r| r.client.cpu_util).fold(0.0, f64::max),
                cores: reports.iter().map(|r| r.client.cores).sum(),
                peak_rss_mb: reports.iter().map(|r| r.client.peak_rss_mb).fold(0.0, f64::max),
                pacer: first.client.pacer.as_ref().map(|_| PacerInfo {
                    priority: same(&|r| r.client.pacer.as_ref().map_or(String::new(), |p| p.priority.clone())),
                    demotions: reports.iter().filter_map(|r| r.client.pacer.as_ref()).map(|p| p.demotions).sum(),
                }),
            },
            gang: None,
            overlap,
            incomplete: reports.iter().find_map(|r| r.incomplete.clone()),
        })
    }
}

/// A run's clock offset to its gang's coordinator (0 when not gang-started).
fn clock_shift(r: &Report) -> f64 {
    r.gang.as_ref().map_or(0.0, |g| g.clock_offset_s)
}

/// The overlap of several runs' windows (None for one run), or the refusal.
fn overlap_of(reports: &[Report], opts: MergeOpts) -> Result<Option<Overlap>, String> {
    if reports.len() < 2 {
        return Ok(None);
    }
    let starts: Vec<f64> = reports.iter().map(|r| r.window_start_unix + clock_shift(r)).collect();
    let ends: Vec<f64> = reports.iter().map(|r| r.window_end_unix + clock_shift(r)).collect();
    let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (common_start, common_end) = (max(&starts), min(&ends));
    let common_s = (common_end - common_start).max(0.0);
    let union_s = (max(&ends) - min(&starts)).max(0.0);
    let share = if union_s > 0.0 { common_s / union_s } else { 1.0 };
    let gang_started = reports.iter().all(|r| r.gang.is_some());
    let real_starts: Vec<f64> = if gang_started {
        reports.iter().filter_map(|r| r.gang.as_ref()).map(|g| g.started_unix).collect()
    } else {
        starts.clone()
    };
    let start_spread_s = max(&real_starts) - min(&real_starts);
    let bound = gang_started
        .then(|| reports.iter().filter_map(|r| r.gang.as_ref()).map(|g| g.clock_offset_bound_s).fold(0.0, f64::max));
    if share < opts.min_share && !opts.allow_partial {
        return Err(format!(
            "bench.merge: the {} runs were all sending for only {:.0}% of their span ({:.1} s of {:.1} s; starts {:.1} s apart), below the {:.0}% that makes them one experiment: outside the common window the load was not theirs together. Start them together (one client job with orchestration.instances, which starts its tasks at a barrier), or allow a partial overlap (bench.merge(parts, {{allow_partial_overlap = true}})) to merge them flagged",
            reports.len(),
            share * 100.0,
            common_s,
            union_s,
            start_spread_s,
            opts.min_share * 100.0
        ));
    }
    Ok(Some(Overlap {
        parts: reports.len() as u32,
        start_spread_s,
        clock_offset_bound_s: bound,
        common_start_unix: common_start,
        common_end_unix: common_end,
        common_s,
        union_s,
        union_start_unix: min(&starts),
        union_end_unix: max(&ends),
        share,
        min_share: opts.min_share,
        partial: share < opts.min_share,
        gang_started,
    }))
}

/// The share of a run's completions (by its per-second series) that fall
/// in [t0, t1] on the common clock. Within a second, completions are taken
/// as spread evenly over the part of it the run was measuring, so a run
/// wholly inside the window counts whole.
fn share_in_window(r: &Report, t0: f64, t1: f64) -> f64 {
    let ts = &r.timeseries;
    let shift = clock_shift(r);
    let (w0, w1) = (r.window_start_unix + shift, r.window_end_unix + shift);
    let origin = if ts.origin_unix > 0.0 { ts.origin_unix } else { r.window_start_unix } + shift;
    let total: u64 = ts.completed.iter().sum();
    if total == 0 {
        // Nothing to place in time: the share of its window inside.
        return if w1 > w0 { ((w1.min(t1) - w0.max(t0)) / (w1 - w0)).clamp(0.0, 1.0) } else { 1.0 };
    }
    let inside: f64 = ts
        .completed
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let (a, b) = ((origin + i as f64).max(w0), (origin + i as f64 + 1.0).min(w1));
            if b <= a {
                // A second outside the run's own window (rounding): whole or nothing.
                return if a >= t0 && a <= t1 { n as f64 } else { 0.0 };
            }
            n as f64 * ((b.min(t1) - a.max(t0)).max(0.0) / (b - a))
        })
        .sum();
    inside / total as f64
}
