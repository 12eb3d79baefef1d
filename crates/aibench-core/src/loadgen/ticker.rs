//! Once-a-second progress snapshots, the in-flight sampler, and the watch
//! for an unreachable server.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::ctx::{Ctx, Halt};
use super::progress::{Plan, Progress, RATE_WINDOW_S, RateWindow};
use super::stats;
use super::validity::PROBE_PERIOD_MS;

pub(super) fn sample_in_flight(ctx: &Ctx) {
    let now = Instant::now();
    if now < ctx.origin {
        return;
    }
    let sec = now.duration_since(ctx.origin).as_secs() as usize;
    let mut s = ctx.in_flight_series.lock().unwrap_or_else(|e| e.into_inner());
    if s.len() <= sec {
        s.resize(sec + 1, (0.0, 0));
    }
    s[sec].0 += ctx.in_flight.load(Ordering::Relaxed).max(0) as f64;
    s[sec].1 += 1;
}

/// Samples the number of requests in flight 20 times a second (the series
/// holds each second's mean, not one instant), and halts the run once the
/// server has been unreachable for `unreachable_after` seconds.
pub(super) async fn sample_loop(ctx: Arc<Ctx>, unreachable_after: Option<f64>, halt: watch::Sender<Option<Halt>>) {
    let mut iv = tokio::time::interval(Duration::from_millis(50));
    let after = unreachable_after.map(Duration::from_secs_f64);
    loop {
        iv.tick().await;
        sample_in_flight(&ctx);
        if halt.borrow().is_none()
            && let Some(since) = after.and_then(|a| ctx.unreachable_since(a))
        {
            let _ = halt.send(Some(Halt::Unreachable(since)));
        }
    }
}

/// Sends a progress snapshot once a second: counters, the rates over a
/// sliding window ([`RateWindow`]), the live p50s, and the run's plan.
pub(super) async fn tick(ctx: Arc<Ctx>, progress: Option<mpsc::UnboundedSender<Progress>>, plan: Plan) {
    let Some(tx) = progress else { return };
    let first = tokio::time::Instant::from_std(ctx.start + Duration::from_secs(1));
    let mut iv = tokio::time::interval_at(first, Duration::from_secs(1));
    let (mut done_rate, mut token_rate) = (RateWindow::new(RATE_WINDOW_S), RateWindow::new(RATE_WINDOW_S));
    let live = &ctx.live;
    let p50_ms = |h: &stats::LiveHist| h.quantile(0.5).map(|us| us / 1000.0);
    loop {
        iv.tick().await;
        let successes = live.successes.load(Ordering::Relaxed);
        let failures = live.failures.load(Ordering::Relaxed);
        let output_tokens = live.output_tokens.load(Ordering::Relaxed);
        let elapsed_s = ctx.start.elapsed().as_secs_f64();
        let p = Progress {
            elapsed_s,
            completed: successes,
            errors: failures,
            in_flight: ctx.in_flight.load(Ordering::Relaxed),
            req_per_s: done_rate.push(elapsed_s, successes + failures),
            output_tokens_per_s: token_rate.push(elapsed_s, output_tokens),
            p50_ttft_ms: p50_ms(&live.ttft),
            p50_latency_ms: p50_ms(&live.latency),
            planned_s: plan.seconds,
            planned_requests: plan.requests,
        };
        if tx.send(p).is_err() {
            return;
        }
    }
}

/// The event-loop delay: a timer due every 10 ms on the client's runtime,
/// and how late each firing comes. A runtime too busy to poll its timers
/// sends late and reads responses late.
pub(super) async fn probe_loop(ctx: Arc<Ctx>) {
    let period = Duration::from_millis(PROBE_PERIOD_MS);
    let mut due = tokio::time::Instant::now() + period;
    loop {
        tokio::time::sleep_until(due).await;
        let now = tokio::time::Instant::now();
        let late = now.saturating_duration_since(due);
        ctx.loop_delay.lock().unwrap_or_else(|e| e.into_inner()).saturating_record(late.as_micros() as u64 + 1);
        // The next firing is due one period after this one came.
        due = now + period;
    }
}
