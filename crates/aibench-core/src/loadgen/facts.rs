//! Turning a finished run into its report: the facts beside the
//! measurements (how it ended, the client's CPU and memory, the spec).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::ctx::{Ctx, Halt};
use super::report::{Backoff, ClientInfo, Facts, Report, StoppedEarly, TargetInfo};
use super::spec::{BenchSpec, Workload};
use super::stats::{CONNECT, SEND_LAG, Shard};
use super::validity::{self, Measured};

pub(super) fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    }
}

pub(super) fn peak_rss_mb() -> f64 {
    // SAFETY: as above.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u.ru_maxrss as f64 / 1024.0
    }
}

/// What `halt` says about how the run ended: (interrupted by, stopped early).
pub(super) fn halt_facts(halt: Option<Halt>, start: (Instant, f64)) -> (Option<String>, Option<StoppedEarly>) {
    match halt {
        None => (None, None),
        Some(Halt::Signal(name)) => (Some(name.to_string()), None),
        Some(Halt::Unreachable(since)) => {
            let since_unix = start.1 + since.saturating_duration_since(start.0).as_secs_f64();
            let since_iso = crate::clock::format_iso(since_unix).unwrap_or_default();
            let stopped = StoppedEarly {
                reason: "unreachable".into(),
                message: format!(
                    "server unreachable since {since_iso}: no request got an answer since then, so the run \
                     stopped early (keep_going = true, or --keep-going, runs on regardless)"
                ),
                since: since_iso,
                since_unix,
            };
            (None, Some(stopped))
        }
    }
}

pub(super) fn finish(
    ctx: &Ctx,
    spec: &BenchSpec,
    total: &Shard,
    halt: Option<Halt>,
    (start, start_unix): (Instant, f64),
    cpu0: f64,
    prompt_tokens_source: String,
) -> Report {
    let (interrupted_by, stopped_early) = halt_facts(halt, (start, start_unix));
    let cores = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let wall = ctx.start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let in_flight: Vec<f64> = ctx
        .in_flight_series
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(sum, n)| if *n > 0 { sum / *n as f64 } else { 0.0 })
        .collect();
    let (requested_rate, closed_loop) = match &spec.workload {
        Workload::OpenLoop(w) => (Some(w.rate), None),
        Workload::ClosedLoop(w) => (None, Some((w.users, w.think_time_ms))),
        Workload::Trace(_) => (trace_rate(total), None),
        Workload::Sessions(_) => (None, None),
    };
    let to_json = |v: &dyn erased::Ser| v.json();
    let cpu_util = if wall > 0.0 { cpu / (wall * cores as f64) } else { 0.0 };
    let p99_ms = |h: &hdrhistogram::Histogram<u64>| {
        (!h.is_empty()).then(|| h.highest_equivalent(h.value_at_quantile(0.99)) as f64 / 1000.0)
    };
    let loop_delay = ctx.loop_delay.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let not_sent = ctx.not_sent.load(Ordering::Relaxed);
    let mut validity = validity::judge(&Measured {
        cpu_util,
        cores,
        wall_s: wall,
        loop_delay_p99_ms: p99_ms(&loop_delay),
        loop_delay_samples: loop_delay.len(),
        send_lag_p99_ms: requested_rate.and_then(|_| p99_ms(&total.h.by_name[SEND_LAG])),
        connect_p99_ms: p99_ms(&total.h.by_name[CONNECT]),
        connects: total.h.by_name[CONNECT].len(),
        client_gap_ms: (total.gap_n > 0).then(|| total.gap_sum_us / total.gap_n as f64 / 1000.0),
    });
    if not_sent > 0 {
        validity.limit(format!(
            "{not_sent} scheduled requests (sessions, for a session_rate) were not sent (client overloaded): \
             {} were already outstanding (workload.max_in_flight raises the cap), or they waited for a \
             max_concurrency slot past the end of the run",
            ctx.max_outstanding
        ));
    }
    let mut report = Report::build(
        total,
        Facts {
            label: spec.label.clone(),
            started_unix: start_unix,
            finished_unix: start_unix + wall,
            origin: ctx.origin,
            origin_unix: start_unix + ctx.origin.saturating_duration_since(ctx.start).as_secs_f64(),
            interrupted_by,
            stopped_early,
            backoff: Backoff {
                count: ctx.backoffs.load(Ordering::Relaxed),
                total_s: ctx.backoff_us.load(Ordering::Relaxed) as f64 / 1e6,
            },
            target: TargetInfo {
                urls: spec.target.url.list(),
                api: spec.target.api.name().to_string(),
                model: spec.target.model.clone(),
                stream: spec.target.stream,
            },
            workload: to_json(&spec.workload),
            dataset: to_json(&spec.dataset),
            slo: to_json(&spec.slo),
            slo_set: !spec.slo.is_empty(),
            warmup_excluded: ctx.warmup_excluded.load(Ordering::Relaxed),
            requested_rate,
            closed_loop,
            in_flight,
            window_tail_s: closed_loop.map(|(_, think_ms)| think_ms / 1000.0).unwrap_or(0.0),
            prompt_tokens_source,
            validity,
            balance: spec.target.balance.name().to_string(),
            per_target: ctx.per_target.iter().map(|t| t.lock().unwrap_or_else(|e| e.into_inner()).clone()).collect(),
            client: ClientInfo {
                host: crate::util::hostname(),
                aibench_version: env!("CARGO_PKG_VERSION").into(),
                cpu_s: cpu,
                cpu_util,
                cores,
                peak_rss_mb: peak_rss_mb(),
                pacer: ctx.pacer.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            },
        },
    );
    report.not_sent = not_sent;
    report.unfinished = ctx.unfinished.load(Ordering::Relaxed);
    if not_sent > 0 {
        report.warnings.push(format!(
            "not sent (client overloaded): {not_sent} scheduled requests (sessions, for a session_rate)"
        ));
    }
    report
}

/// A trace replay's offered rate: its requests over the span of their
/// intended send times.
fn trace_rate(total: &Shard) -> Option<f64> {
    let lo = total.sends.iter().map(|s| s.0).min()?;
    let hi = total.sends.iter().map(|s| s.0).max()?;
    let span = (hi - lo) as f64 / 1e6;
    (span > 0.0 && total.sends.len() > 1).then(|| (total.sends.len() - 1) as f64 / span)
}

/// What the workload's shape adds to the report: the dataset's reading,
/// sessions per turn, a trace's schedule fidelity.
pub(super) fn add_workload_facts(
    report: &mut Report,
    spec: &BenchSpec,
    total: &Shard,
    dataset_stats: Option<crate::datasets::DatasetStats>,
    trace: Option<&crate::datasets::trace::Trace>,
) {
    report.dataset_stats = dataset_stats;
    match &spec.workload {
        Workload::Sessions(_) => {
            report.sessions = Some(super::shape::SessionsReport::of(&total.sessions, &total.turns));
        }
        Workload::Trace(w) => {
            let n = trace.map_or(0, |t| t.entries.len() as u64);
            let offered = w.total_requests.map_or(n, |m| m.min(n));
            let offered = match (w.duration_s, trace) {
                (Some(d), Some(t)) => {
                    t.entries[..offered as usize].iter().filter(|e| e.at_ms / 1000.0 * w.time_scale < d).count() as u64
                }
                _ => offered,
            };
            report.trace = Some(super::shape::TraceReport::of(w.time_scale, offered, &total.sends));
            if report.trace.as_ref().is_some_and(|t| t.sent < t.offered)
                && report.interrupted_by.is_none()
                && report.stopped_early.is_none()
            {
                report.warnings.push("trace: fewer requests were sent than the trace offered".into());
            }
        }
        _ => {}
    }
}

/// Serialisation of spec parts into the report, without naming each type.
mod erased {
    pub trait Ser {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or_default()
        }
    }
}
