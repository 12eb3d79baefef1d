//! Measurements: HdrHistograms (microseconds, 3 significant digits, up to an
//! hour) kept per shard and merged at the end, error counts by class with a
//! few sample messages, and a per-second time series.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use super::http1::ErrorClass;

pub const HIST_MAX_US: u64 = 3_600_000_000;
const SAMPLES_PER_CLASS: usize = 5;

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Adds `h` into an optional histogram, made on first use.
pub fn add_into(into: &mut Option<Histogram<u64>>, h: &Histogram<u64>) {
    let _ = into.get_or_insert_with(new_hist).add(h);
}

/// Adds an error message to a class's samples: at most `SAMPLES_PER_CLASS`, no repeats.
pub fn add_sample(samples: &mut Vec<String>, msg: &str) {
    if samples.len() < SAMPLES_PER_CLASS && !samples.iter().any(|s| s == msg) {
        samples.push(msg.to_string());
    }
}

/// The metrics kept as histograms, by name in results.
pub const METRICS: [&str; 8] =
    ["latency", "ttft", "tpot", "itl", "queue", "send_lag", "latency_from_intended", "connect"];

// Indices into `METRICS` and `Hists::by_name`.
pub const LATENCY: usize = 0;
pub const TTFT: usize = 1;
pub const TPOT: usize = 2;
pub const ITL: usize = 3;
pub const QUEUE: usize = 4;
pub const SEND_LAG: usize = 5;
pub const LATENCY_FROM_INTENDED: usize = 6;
/// Opening a new connection (when a request needed one).
pub const CONNECT: usize = 7;

#[derive(Clone)]
pub struct Hists {
    pub by_name: [Histogram<u64>; METRICS.len()],
}

impl Hists {
    pub fn new() -> Hists {
        Hists { by_name: std::array::from_fn(|_| new_hist()) }
    }

    pub fn get(&self, name: &str) -> &Histogram<u64> {
        self.get_opt(name).expect("known metric")
    }

    pub fn get_opt(&self, name: &str) -> Option<&Histogram<u64>> {
        METRICS.iter().position(|m| *m == name).map(|i| &self.by_name[i])
    }

    fn rec(&mut self, i: usize, us: u64) {
        self.by_name[i].saturating_record(us.max(1));
    }

    pub fn add(&mut self, other: &Hists) {
        for (a, b) in self.by_name.iter_mut().zip(&other.by_name) {
            let _ = a.add(b);
        }
    }
}

impl Default for Hists {
    fn default() -> Self {
        Hists::new()
    }
}

/// What the once-a-second progress shows, kept with atomics beside the
/// shards: the ticker reads these and never touches a shard, so recording a
/// request never waits for it.
#[derive(Default)]
pub struct Live {
    pub successes: AtomicU64,
    pub failures: AtomicU64,
    pub output_tokens: AtomicU64,
    pub ttft: LiveHist,
    pub latency: LiveHist,
}

impl Live {
    /// A measured (non-warmup) request.
    pub fn note(&self, r: &Record) {
        if r.failure.is_some() {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.successes.fetch_add(1, Ordering::Relaxed);
        self.output_tokens.fetch_add(r.output_tokens, Ordering::Relaxed);
        self.latency.record(us(r.e2e_end().saturating_duration_since(r.sent)));
        if let Some(f) = r.first {
            self.ttft.record(us(f.saturating_duration_since(r.sent)));
        }
    }
}

/// Sub-buckets per power of two in a `LiveHist` (about 3% wide).
const LIVE_SUB: u32 = 32;
const LIVE_BUCKETS: usize = (LIVE_SUB + (64 - LIVE_SUB.trailing_zeros()) * LIVE_SUB) as usize;

/// A lock-free log-linear histogram of microseconds for progress display
/// (p50 to about 3%); results use the exact HdrHistograms.
pub struct LiveHist {
    counts: Box<[AtomicU64]>,
}

impl Default for LiveHist {
    fn default() -> Self {
        LiveHist { counts: (0..LIVE_BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl LiveHist {
    fn index(v: u64) -> usize {
        if v < LIVE_SUB as u64 {
            return v as usize;
        }
        let top = 63 - v.leading_zeros();
        let shift = top - LIVE_SUB.trailing_zeros();
        (LIVE_SUB + shift * LIVE_SUB) as usize + ((v >> shift) as usize & (LIVE_SUB as usize - 1))
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> f64 {
        let sub = LIVE_SUB as usize;
        if i < sub {
            return i as f64;
        }
        let shift = (i - sub) / sub;
        let low = ((sub + (i - sub) % sub) as u64) << shift;
        low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
    }

    pub fn record(&self, v: u64) {
        self.counts[Self::index(v)].fetch_add(1, Ordering::Relaxed);
    }

    /// The value at quantile `q` (None when empty).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::value(i));
            }
        }
        None
    }
}

/// One second of the run (since the measurement started).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Second {
    pub completed: u64,
    pub errors: u64,
    pub output_tokens: u64,
    pub ttft_sum_ms: f64,
    pub ttft_n: u64,
    pub latency_sum_ms: f64,
}

/// What one finished request contributes.
pub struct Record {
    pub intended: Option<Instant>,
    pub ready: Instant,
    pub sent: Instant,
    pub done: Instant,
    pub first: Option<Instant>,
    /// Last content chunk (streams): where E2E ends, per vLLM's definition.
    pub last: Option<Instant>,
    pub failure: Option<(ErrorClass, String)>,
    pub output_tokens: u64,
    pub tokens_from_usage: bool,
    pub input_tokens: u64,
    pub input_from_usage: bool,
    /// All SLOs met (successes only).
    pub good: bool,
    pub llm: bool,
    /// A success with fewer output tokens than asked although `ignore_eos`
    /// was sent (the server cut the stream short): left out of TPOT.
    pub short: bool,
    /// Failed before the server answered, or answered 5xx: a closed-loop
    /// user backs off before its next request.
    pub refused: bool,
    /// What the request asked: prompt tokens (in the counter's tokens) and
    /// output tokens (`max_tokens`).
    pub asked_input: u64,
    pub asked_output: u64,
    /// Opening its connection, when it needed a new one.
    pub connect: Option<Duration>,
    /// Its turn in a session (0 for the first).
    pub turn: Option<u32>,
}

impl Record {
    /// Where E2E latency ends: the last content chunk for LLM APIs (when
    /// there was one), else the end of the response.
    pub fn e2e_end(&self) -> Instant {
        if self.llm { self.last.unwrap_or(self.done) } else { self.done }
    }
}

#[derive(Clone, Default)]
pub struct Shard {
    pub h: Hists,
    pub successes: u64,
    pub failures: u64,
    pub good: u64,
    pub errors: BTreeMap<ErrorClass, u64>,
    pub samples: BTreeMap<ErrorClass, Vec<String>>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub output_from_usage: u64,
    pub input_from_usage: u64,
    pub first_sent: Option<Instant>,
    pub last_sent: Option<Instant>,
    pub last_done: Option<Instant>,
    pub seconds: Vec<Second>,
    /// Closed loop: each user's own cycle rate, summed (requests per second).
    pub user_rate_sum: f64,
    /// Closed loop: time between a response and the next send beyond the think time.
    pub gap_sum_us: f64,
    pub gap_n: u64,
    pub short_outputs: u64,
    pub asked: AskedServedSums,
    /// Sessions: per turn index, and the sessions themselves.
    pub turns: Vec<TurnSums>,
    pub sessions: SessionSums,
    /// Trace replay: each request's (intended, sent) offsets in microseconds.
    pub sends: Vec<(u64, u64)>,
}

/// One turn index of the sessions: its requests' TTFT and E2E, and prompt tokens.
#[derive(Clone, Default)]
pub struct TurnSums {
    pub requests: u64,
    pub errors: u64,
    pub ttft: Option<Histogram<u64>>,
    pub e2e: Option<Histogram<u64>>,
    pub prompt_tokens: u64,
    pub asked_prompt_tokens: u64,
}

impl TurnSums {
    fn merge(&mut self, o: &TurnSums) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.prompt_tokens += o.prompt_tokens;
        self.asked_prompt_tokens += o.asked_prompt_tokens;
        for (a, b) in [(&mut self.ttft, &o.ttft), (&mut self.e2e, &o.e2e)] {
            if let Some(b) = b {
                add_into(a, b);
            }
        }
    }
}

/// Sessions started, completed (every turn answered), failed (a turn
/// failed) and cut short (the run ended first), with completed sessions'
/// durations in microseconds.
#[derive(Clone, Default)]
pub struct SessionSums {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    pub cut: u64,
    pub duration: Option<Histogram<u64>>,
}

impl SessionSums {
    fn merge(&mut self, o: &SessionSums) {
        self.started += o.started;
        self.completed += o.completed;
        self.failed += o.failed;
        self.cut += o.cut;
        if let Some(b) = &o.duration {
            add_into(&mut self.duration, b);
        }
    }

    pub fn record_duration(&mut self, d: Duration) {
        self.duration.get_or_insert_with(new_hist).saturating_record(us(d).max(1));
    }
}

/// Asked against served tokens, summed over successes whose usage the
/// server reported.
#[derive(Clone, Default)]
pub struct AskedServedSums {
    pub n: u64,
    /// Of those, the requests that asked a number of output tokens.
    pub output_n: u64,
    pub asked_prompt: u64,
    pub served_prompt: u64,
    pub asked_output: u64,
    pub served_output: u64,
    /// The largest |served - asked| of one request, and that request's asked.
    pub worst_prompt: (u64, u64),
    pub worst_output: (u64, u64),
    /// Served prompt lengths, in tokens: length -> requests (exact).
    pub prompt_lengths: BTreeMap<u64, u64>,
}

fn worse(cur: (u64, u64), asked: u64, served: u64) -> (u64, u64) {
    let d = asked.abs_diff(served);
    if d > cur.0 { (d, asked) } else { cur }
}

impl AskedServedSums {
    fn record(&mut self, r: &Record) {
        if !r.input_from_usage || !r.llm {
            return;
        }
        self.n += 1;
        self.asked_prompt += r.asked_input;
        self.served_prompt += r.input_tokens;
        self.worst_prompt = worse(self.worst_prompt, r.asked_input, r.input_tokens);
        if r.asked_output > 0 {
            self.output_n += 1;
            self.asked_output += r.asked_output;
            self.served_output += r.output_tokens;
            self.worst_output = worse(self.worst_output, r.asked_output, r.output_tokens);
        }
        *self.prompt_lengths.entry(r.input_tokens).or_default() += 1;
    }

    pub fn merge(&mut self, o: &AskedServedSums) {
        self.n += o.n;
        self.output_n += o.output_n;
        self.asked_prompt += o.asked_prompt;
        self.served_prompt += o.served_prompt;
        self.asked_output += o.asked_output;
        self.served_output += o.served_output;
        if o.worst_prompt.0 > self.worst_prompt.0 {
            self.worst_prompt = o.worst_prompt;
        }
        if o.worst_output.0 > self.worst_output.0 {
            self.worst_output = o.worst_output;
        }
        for (len, n) in &o.prompt_lengths {
            *self.prompt_lengths.entry(*len).or_default() += n;
        }
    }
}

fn us(d: Duration) -> u64 {
    d.as_micros().min(HIST_MAX_US as u128) as u64
}

impl Shard {
    fn record_turn(&mut self, t: usize, r: &Record) {
        if self.turns.len() <= t {
            self.turns.resize(t + 1, TurnSums::default());
        }
        let s = &mut self.turns[t];
        s.requests += 1;
        if r.failure.is_some() {
            s.errors += 1;
            return;
        }
        s.prompt_tokens += r.input_tokens;
        s.asked_prompt_tokens += r.asked_input;
        let e2e = r.e2e_end().saturating_duration_since(r.sent);
        s.e2e.get_or_insert_with(new_hist).saturating_record(us(e2e).max(1));
        if let Some(f) = r.first {
            s.ttft.get_or_insert_with(new_hist).saturating_record(us(f.saturating_duration_since(r.sent)).max(1));
        }
    }

    /// Adds a measured (non-warmup) request. `itl_us` are its inter-chunk gaps.
    pub fn record(&mut self, r: &Record, itl_us: &[u64], origin: Instant) {
        self.first_sent = Some(self.first_sent.map_or(r.sent, |t| t.min(r.sent)));
        self.last_sent = Some(self.last_sent.map_or(r.sent, |t| t.max(r.sent)));
        self.last_done = Some(self.last_done.map_or(r.done, |t| t.max(r.done)));
        let sec = r.done.saturating_duration_since(origin).as_secs() as usize;
        if self.seconds.len() <= sec {
            self.seconds.resize(sec + 1, Second::default());
        }
        let queue = r.sent.saturating_duration_since(r.intended.unwrap_or(r.ready));
        self.h.rec(QUEUE, us(queue));
        if let Some(i) = r.intended {
            // Scheduler precision: intended send time -> ready to send.
            self.h.rec(SEND_LAG, us(r.ready.saturating_duration_since(i)));
        }
        if let Some(c) = r.connect {
            self.h.rec(CONNECT, us(c));
        }
        if let Some(t) = r.turn {
            self.record_turn(t as usize, r);
        }
        if let Some((class, msg)) = &r.failure {
            self.failures += 1;
            self.seconds[sec].errors += 1;
            *self.errors.entry(*class).or_default() += 1;
            add_sample(self.samples.entry(*class).or_default(), msg);
            return;
        }
        self.successes += 1;
        let e2e_end = r.e2e_end();
        let e2e = e2e_end.saturating_duration_since(r.sent);
        self.h.rec(LATENCY, us(e2e));
        if let Some(i) = r.intended {
            self.h.rec(LATENCY_FROM_INTENDED, us(e2e_end.saturating_duration_since(i)));
        }
        let s = &mut self.seconds[sec];
        s.completed += 1;
        s.output_tokens += r.output_tokens;
        s.latency_sum_ms += e2e.as_secs_f64() * 1e3;
        if let Some(f) = r.first {
            let ttft = f.saturating_duration_since(r.sent);
            self.h.rec(TTFT, us(ttft));
            s.ttft_sum_ms += ttft.as_secs_f64() * 1e3;
            s.ttft_n += 1;
            if r.output_tokens > 1 && !r.short {
                let tpot = (e2e_end.saturating_duration_since(f).as_secs_f64() * 1e6) / (r.output_tokens - 1) as f64;
                self.h.rec(TPOT, tpot.round() as u64);
            }
        }
        for &g in itl_us {
            self.h.rec(ITL, g);
        }
        if r.good {
            self.good += 1;
        }
        if r.short {
            self.short_outputs += 1;
        }
        self.asked.record(r);
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        if r.tokens_from_usage {
            self.output_from_usage += 1;
        }
        if r.input_from_usage {
            self.input_from_usage += 1;
        }
    }

    pub fn merge(&mut self, o: &Shard) {
        self.h.add(&o.h);
        self.successes += o.successes;
        self.failures += o.failures;
        self.good += o.good;
        for (k, v) in &o.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        for (k, v) in &o.samples {
            let s = self.samples.entry(*k).or_default();
            for m in v {
                add_sample(s, m);
            }
        }
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.output_from_usage += o.output_from_usage;
        self.input_from_usage += o.input_from_usage;
        self.first_sent = match (self.first_sent, o.first_sent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_sent = match (self.last_sent, o.last_sent) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.last_done = match (self.last_done, o.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.user_rate_sum += o.user_rate_sum;
        if self.turns.len() < o.turns.len() {
            self.turns.resize(o.turns.len(), TurnSums::default());
        }
        for (a, b) in self.turns.iter_mut().zip(&o.turns) {
            a.merge(b);
        }
        self.sessions.merge(&o.sessions);
        self.sends.extend_from_slice(&o.sends);
        self.gap_sum_us += o.gap_sum_us;
        self.gap_n += o.gap_n;
        self.short_outputs += o.short_outputs;
        self.asked.merge(&o.asked);
        if self.seconds.len() < o.seconds.len() {
            self.seconds.resize(o.seconds.len(), Second::default());
        }
        for (a, b) in self.seconds.iter_mut().zip(&o.seconds) {
            a.completed += b.completed;
            a.errors += b.errors;
            a.output_tokens += b.output_tokens;
            a.ttft_sum_ms += b.ttft_sum_ms;
            a.ttft_n += b.ttft_n;
            a.latency_sum_ms += b.latency_sum_ms;
        }
    }
}

/// Distribution summary in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub stdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Summary {
    /// A histogram of microseconds, in milliseconds.
    pub fn of(h: &Histogram<u64>) -> Option<Summary> {
        if h.is_empty() {
            return None;
        }
        let ms = |v: u64| v as f64 / 1000.0;
        // Quantiles report the highest value equivalent to the bucket, like HdrHistogram's tools.
        let q = |p: f64| ms(h.highest_equivalent(h.value_at_quantile(p)));
        Some(Summary {
            count: h.len(),
            mean: h.mean() / 1000.0,
            min: ms(h.min()),
            max: ms(h.highest_equivalent(h.max())),
            stdev: h.stdev() / 1000.0,
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
        })
    }
}

impl Summary {
    /// Exact, from value -> count (token lengths); quantiles are the lowest
    /// value with at least that share of the counts at or below it.
    pub fn of_counts(counts: &BTreeMap<u64, u64>) -> Option<Summary> {
        let n: u64 = counts.values().sum();
        if n == 0 {
            return None;
        }
        let mean = counts.iter().map(|(v, c)| *v as f64 * *c as f64).sum::<f64>() / n as f64;
        let var = counts.iter().map(|(v, c)| (*v as f64 - mean).powi(2) * *c as f64).sum::<f64>() / n as f64;
        let q = |p: f64| {
            let rank = ((p * n as f64).ceil() as u64).clamp(1, n);
            let mut seen = 0;
            for (v, c) in counts {
                seen += c;
                if seen >= rank {
                    return *v as f64;
                }
            }
            0.0
        };
        Some(Summary {
            count: n,
            mean,
            min: *counts.keys().next().unwrap_or(&0) as f64,
            max: *counts.keys().next_back().unwrap_or(&0) as f64,
            stdev: var.sqrt(),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
        })
    }
}

/// The percentiles of a latency curve (reports plot these).
pub const CURVE_PERCENTILES: [f64; 13] =
    [0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0];

/// (percentile, value in ms) for each of `ps`, as HdrHistogram's tools
/// report them (the highest value equivalent to the bucket).
pub fn percentile_curve(h: &Histogram<u64>, ps: &[f64]) -> Result<Vec<(f64, f64)>, String> {
    ps.iter()
        .map(|p| {
            if !(0.0..=100.0).contains(p) {
                return Err(format!("{p} is not a percentile (0-100)"));
            }
            Ok((*p, h.highest_equivalent(h.value_at_percentile(*p)) as f64 / 1000.0))
        })
        .collect()
}

/// HdrHistogram V2 encoding, base64: exact and mergeable across machines.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    let _ = V2Serializer::new().serialize(h, &mut buf);
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn decode(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|e| format!("not base64: {e}"))?;
    let h: Histogram<u64> =
        Deserializer::new().deserialize(&mut &bytes[..]).map_err(|e| format!("not an HdrHistogram: {e:?}"))?;
    // Re-home into our bounds so histograms from any source add up.
    let mut out = new_hist();
    out.add(&h).map_err(|e| format!("histogram out of range: {e:?}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_indices_match_names() {
        let named = [
            (LATENCY, "latency"),
            (TTFT, "ttft"),
            (TPOT, "tpot"),
            (ITL, "itl"),
            (QUEUE, "queue"),
            (SEND_LAG, "send_lag"),
            (LATENCY_FROM_INTENDED, "latency_from_intended"),
            (CONNECT, "connect"),
        ];
        for (i, name) in named {
            assert_eq!(METRICS[i], name);
        }
    }

    #[test]
    fn encode_decode_exact() {
        let mut h = new_hist();
        for v in [1u64, 10, 100, 1000, 123_456, 9_999_999] {
            h.record(v).unwrap();
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back, h);
        assert!(decode("!!").is_err());
    }

    #[test]
    fn summary_of_counts_is_exact() {
        let counts: BTreeMap<u64, u64> = [(100, 50), (4000, 49), (4001, 1)].into_iter().collect();
        let s = Summary::of_counts(&counts).unwrap();
        assert_eq!((s.count, s.min, s.max, s.p50, s.p99), (100, 100.0, 4001.0, 100.0, 4000.0));
        assert_eq!(s.p999, 4001.0);
        assert!((s.mean - (5000.0 + 196_000.0 + 4001.0) / 100.0).abs() < 1e-9);
        assert!(Summary::of_counts(&BTreeMap::new()).is_none());
    }

    #[test]
    fn summary_in_ms() {
        let mut h = new_hist();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let s = Summary::of(&h).unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.mean - 500.5).abs() < 0.5);
        assert!((s.p50 - 500.0).abs() < 1.0, "{}", s.p50);
        assert!((s.p99 - 990.0).abs() < 1.0, "{}", s.p99);
        assert_eq!(s.min, 1.0);
    }

    #[test]
    fn live_hist_quantiles_within_its_bucket_width() {
        let h = LiveHist::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.9, 90_000.0), (0.01, 1_000.0)] {
            let got = h.quantile(q).unwrap();
            assert!((got - want).abs() / want < 0.035, "q{q}: {got} vs {want}");
        }
        // Small values are exact; the largest fit.
        let h = LiveHist::default();
        h.record(7);
        assert_eq!(h.quantile(0.5), Some(7.0));
        h.record(u64::MAX);
        assert!(h.quantile(1.0).unwrap() > 1e19);
        for v in [0u64, 1, 31, 32, 33, 63, 64, 1000, 1 << 40, u64::MAX] {
            let i = LiveHist::index(v);
            assert!(i < LIVE_BUCKETS, "{v}");
            let mid = LiveHist::value(i);
            assert!((mid - v as f64).abs() <= (v as f64 / 32.0).max(0.5), "{v}: bucket middle {mid}");
        }
    }
}
