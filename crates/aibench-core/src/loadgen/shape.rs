//! The parts of a result that belong to a workload's shape: sessions (per
//! turn index, and the sessions themselves) and a trace replay's schedule
//! fidelity (the trace's inter-arrival times against what was achieved,
//! offered against sent per second). Merged exactly, like the rest.

use serde::{Deserialize, Serialize};

use super::stats::{self, SessionSums, Summary, TurnSums, new_hist};

/// One turn index over all sessions (turn 1 is the first).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TurnReport {
    pub turn: u32,
    pub requests: u64,
    pub errors: u64,
    pub ttft_ms: Option<Summary>,
    pub e2e_ms: Option<Summary>,
    /// Mean prompt tokens served (usage) and asked, over the turn's successes.
    pub mean_prompt_tokens: f64,
    pub mean_asked_prompt_tokens: f64,
    /// HdrHistogram V2 (base64, microseconds), for exact merging.
    #[serde(default)]
    pub ttft_hist: Option<String>,
    #[serde(default)]
    pub e2e_hist: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionsReport {
    pub started: u64,
    /// Every turn answered.
    pub completed: u64,
    /// A turn failed, which ends the session.
    pub failed: u64,
    /// The run ended (duration, a signal) before the session did.
    pub cut: u64,
    pub turns_sent: u64,
    /// Completed sessions: first send to last reply.
    pub duration_ms: Option<Summary>,
    #[serde(default)]
    pub duration_hist: Option<String>,
    pub per_turn: Vec<TurnReport>,
}

fn ok_mean(sum: u64, n: u64) -> f64 {
    if n > 0 { sum as f64 / n as f64 } else { 0.0 }
}

impl SessionsReport {
    pub fn of(s: &SessionSums, turns: &[TurnSums]) -> SessionsReport {
        let enc = |h: &Option<hdrhistogram::Histogram<u64>>| h.as_ref().map(stats::encode);
        let sum = |h: &Option<hdrhistogram::Histogram<u64>>| h.as_ref().and_then(Summary::of);
        SessionsReport {
            started: s.started,
            completed: s.completed,
            failed: s.failed,
            cut: s.cut,
            turns_sent: turns.iter().map(|t| t.requests).sum(),
            duration_ms: sum(&s.duration),
            duration_hist: enc(&s.duration),
            per_turn: turns
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let ok = t.requests - t.errors;
                    TurnReport {
                        turn: i as u32 + 1,
                        requests: t.requests,
                        errors: t.errors,
                        ttft_ms: sum(&t.ttft),
                        e2e_ms: sum(&t.e2e),
                        mean_prompt_tokens: ok_mean(t.prompt_tokens, ok),
                        mean_asked_prompt_tokens: ok_mean(t.asked_prompt_tokens, ok),
                        ttft_hist: enc(&t.ttft),
                        e2e_hist: enc(&t.e2e),
                    }
                })
                .collect(),
        }
    }

    /// Several runs' sessions as one (histograms added).
    pub fn merge(all: &[&SessionsReport]) -> Result<Option<SessionsReport>, String> {
        if all.is_empty() {
            return Ok(None);
        }
        let dec = |h: &Option<String>| h.as_deref().map(stats::decode).transpose();
        let mut s = SessionSums::default();
        let mut turns: Vec<TurnSums> = Vec::new();
        for r in all {
            s.started += r.started;
            s.completed += r.completed;
            s.failed += r.failed;
            s.cut += r.cut;
            if let Some(h) = dec(&r.duration_hist)? {
                stats::add_into(&mut s.duration, &h);
            }
            for t in &r.per_turn {
                let i = t.turn.saturating_sub(1) as usize;
                if turns.len() <= i {
                    turns.resize(i + 1, TurnSums::default());
                }
                let ok = t.requests - t.errors;
                let x = &mut turns[i];
                x.requests += t.requests;
                x.errors += t.errors;
                x.prompt_tokens += (t.mean_prompt_tokens * ok as f64).round() as u64;
                x.asked_prompt_tokens += (t.mean_asked_prompt_tokens * ok as f64).round() as u64;
                if let Some(h) = dec(&t.ttft_hist)? {
                    stats::add_into(&mut x.ttft, &h);
                }
                if let Some(h) = dec(&t.e2e_hist)? {
                    stats::add_into(&mut x.e2e, &h);
                }
            }
        }
        Ok(Some(SessionsReport::of(&s, &turns)))
    }
}

/// How closely a replay kept to its trace's schedule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TraceReport {
    pub time_scale: f64,
    /// Requests the replay was to send (the trace's, within the workload's bounds).
    pub offered: u64,
    pub sent: u64,
    /// Offered requests per second of the replay (by intended send time),
    /// and those sent in each second.
    pub offered_per_s: Vec<u64>,
    pub sent_per_s: Vec<u64>,
    /// Gaps between consecutive requests: as the trace (scaled) has them,
    /// and as they went out.
    pub trace_gap_ms: Option<Summary>,
    pub achieved_gap_ms: Option<Summary>,
    /// Largest |achieved - intended| send time over all requests.
    pub worst_send_offset_ms: f64,
}

impl TraceReport {
    /// From each request's (intended, sent) microseconds since the start.
    pub fn of(time_scale: f64, offered: u64, sends: &[(u64, u64)]) -> TraceReport {
        let mut intended: Vec<u64> = sends.iter().map(|s| s.0).collect();
        let mut sent: Vec<u64> = sends.iter().map(|s| s.1).collect();
        intended.sort_unstable();
        sent.sort_unstable();
        let per_s = |v: &[u64]| {
            let mut out = vec![0u64; v.last().map_or(0, |l| (*l / 1_000_000) as usize + 1)];
            for t in v {
                out[(*t / 1_000_000) as usize] += 1;
            }
            out
        };
        let gaps = |v: &[u64]| {
            let mut h = new_hist();
            for w in v.windows(2) {
                h.saturating_record((w[1] - w[0]).max(1));
            }
            Summary::of(&h)
        };
        let worst = sends.iter().map(|(i, s)| s.abs_diff(*i)).max().unwrap_or(0);
        TraceReport {
            time_scale,
            offered,
            sent: sends.len() as u64,
            offered_per_s: per_s(&intended),
            sent_per_s: per_s(&sent),
            trace_gap_ms: gaps(&intended),
            achieved_gap_ms: gaps(&sent),
            worst_send_offset_ms: worst as f64 / 1000.0,
        }
    }
}
