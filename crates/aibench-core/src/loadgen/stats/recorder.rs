//! What each finished request adds to a shard: the histograms by metric,
//! error counts by class with a few sample messages, the per-second series,
//! and the sums of tokens, turns and sessions; shards merge at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::codec::{add_into, new_hist, us};
use crate::loadgen::http1::ErrorClass;

const SAMPLES_PER_CLASS: usize = 5;

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

/// One target URL's share of the run, kept when there are several (with
/// one, its share is the totals): requests, how they ended, TTFT and E2E.
#[derive(Clone, Default)]
pub struct TargetSums {
    pub requests: u64,
    pub errors: u64,
    pub errors_by_class: BTreeMap<ErrorClass, u64>,
    pub ttft: Option<Histogram<u64>>,
    pub latency: Option<Histogram<u64>>,
}

impl TargetSums {
    /// Adds a measured (non-warmup) request, as `Shard::record` counts it.
    pub fn record(&mut self, r: &Record) {
        self.requests += 1;
        if let Some((class, _)) = &r.failure {
            self.errors += 1;
            *self.errors_by_class.entry(*class).or_default() += 1;
            return;
        }
        let e2e = r.e2e_end().saturating_duration_since(r.sent);
        self.latency.get_or_insert_with(new_hist).saturating_record(us(e2e).max(1));
        if let Some(f) = r.first {
            self.ttft.get_or_insert_with(new_hist).saturating_record(us(f.saturating_duration_since(r.sent)).max(1));
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
}
