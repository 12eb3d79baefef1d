//! The closed loop: each user sends, waits for the whole response, thinks,
//! repeats; after a refused request it backs off.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::ctx::Ctx;
use super::exchange::{Scratch, exec, finish_request};
use super::http1::Conn;
use super::spec::ClosedLoop;
use super::timer::PreciseTimer;

/// A refused user's first and longest pause before its next request.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Runs the users to the end of the workload.
pub(super) async fn drive(ctx: Arc<Ctx>, w: &ClosedLoop) {
    let ClosedLoop { users, think_time_ms, requests_per_user, total_requests, duration_s, ramp_up_s, warmup_s, .. } = w;
    let deadline = duration_s.map(|d| ctx.start + Duration::from_secs_f64(d + warmup_s));
    let think = Duration::from_secs_f64(think_time_ms / 1000.0);
    let timer = Arc::new(PreciseTimer::start());
    let mut set = tokio::task::JoinSet::new();
    for u in 0..*users {
        let delay =
            if *users > 1 { Duration::from_secs_f64(ramp_up_s * u as f64 / *users as f64) } else { Duration::ZERO };
        set.spawn(user(ctx.clone(), timer.clone(), u, deadline, (*requests_per_user, *total_requests), think, delay));
    }
    while set.join_next().await.is_some() {}
}

async fn user(
    ctx: Arc<Ctx>,
    timer: Arc<PreciseTimer>,
    uid: u64,
    deadline: Option<Instant>,
    (max, total): (Option<u64>, Option<u64>),
    think: Duration,
    delay: Duration,
) {
    let mut abort = ctx.abort.clone();
    if !delay.is_zero() && !sleep_unless_stopped(&ctx, &timer, Instant::now() + delay).await {
        return;
    }
    let mut conns: Vec<Option<Conn>> = ctx.endpoints.iter().map(|_| None).collect();
    let mut scratch = Scratch::default();
    let mut backoff = Pause::new(uid);
    let mut n = 0u64;
    // This user's own cycle accounting (measured requests only).
    let (mut first_sent, mut last_done, mut cycles) = (None::<Instant>, None::<Instant>, 0u64);
    let (mut gap_sum_us, mut gap_n, mut prev_done) = (0f64, 0u64, None::<Instant>);
    loop {
        if ctx.stop.load(Ordering::Relaxed)
            || max.is_some_and(|m| n >= m)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        let seq = ctx.seq.fetch_add(1, Ordering::Relaxed);
        if total.is_some_and(|t| seq >= t) {
            break;
        }
        let target = ctx.pick_target();
        let ready = Instant::now();
        if let Some(p) = prev_done {
            gap_sum_us += ready.saturating_duration_since(p + think).as_secs_f64() * 1e6;
            gap_n += 1;
        }
        let (req, meta) = ctx.request(target, seq);
        let out = tokio::select! {
            r = exec(&ctx, &mut conns[target], target, (&req, meta), ready, None, None, &mut scratch) => r,
            _ = abort.wait_for(|a| *a) => {
                ctx.unfinished.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if let Some(rec) = out {
            if !finish_request(&ctx, uid, seq, target, &rec, &scratch) {
                first_sent.get_or_insert(rec.sent);
                last_done = Some(rec.done);
                cycles += 1;
            }
            prev_done = Some(rec.done);
            if rec.refused {
                // The server is not taking requests: pause before the next,
                // longer each time, rather than hammering it.
                n += 1;
                // The pause replaces the think time: it is not the client's gap.
                prev_done = None;
                if !back_off(&ctx, &timer, &mut backoff, rec.done, deadline).await {
                    break;
                }
                continue;
            }
            backoff.reset();
        }
        n += 1;
        if !think.is_zero() {
            let wake = prev_done.unwrap_or_else(Instant::now) + think;
            if deadline.is_some_and(|d| wake >= d) {
                break;
            }
            if !sleep_unless_stopped(&ctx, &timer, wake).await {
                break;
            }
        }
    }
    if let (Some(a), Some(b)) = (first_sent, last_done) {
        // A cycle ends after its think time: the span holds whole cycles.
        let span = (b + think).saturating_duration_since(a).as_secs_f64();
        let mut sh = ctx.shard(uid);
        if span > 0.0 {
            sh.user_rate_sum += cycles as f64 / span;
        }
        sh.gap_sum_us += gap_sum_us;
        sh.gap_n += gap_n;
    }
}

/// A user's pauses after refused requests: exponential from 10 ms to 1 s,
/// jittered (so users that failed together do not retry together), reset by
/// a request the server answered.
pub(super) struct Pause {
    rng: rand_chacha::ChaCha8Rng,
    next: Duration,
}

impl Pause {
    pub(super) fn new(uid: u64) -> Pause {
        use rand::SeedableRng;
        Pause { rng: rand_chacha::ChaCha8Rng::seed_from_u64(uid ^ 0x0062_6163_6b6f_6666), next: BACKOFF_MIN }
    }

    pub(super) fn next(&mut self) -> Duration {
        use rand::RngExt;
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        base.mul_f64(self.rng.random_range(0.5..1.5)).min(BACKOFF_MAX)
    }

    pub(super) fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// A refused user's pause after the refusal that ended at `done`, counted in
/// the result's `backoff`; false when the run ends first (its deadline
/// falls inside the pause, or it was stopped).
pub(super) async fn back_off(
    ctx: &Ctx,
    timer: &PreciseTimer,
    pause: &mut Pause,
    done: Instant,
    deadline: Option<Instant>,
) -> bool {
    let wake = done + pause.next();
    if deadline.is_some_and(|d| wake >= d) {
        return false;
    }
    ctx.backoffs.fetch_add(1, Ordering::Relaxed);
    let from = Instant::now();
    let completed = sleep_unless_stopped(ctx, timer, wake).await;
    ctx.backoff_us.fetch_add(from.elapsed().as_micros() as u64, Ordering::Relaxed);
    completed
}

/// Sleeps until `until`; false when the run was stopped meanwhile.
pub(super) async fn sleep_unless_stopped(ctx: &Ctx, timer: &PreciseTimer, until: Instant) -> bool {
    let stopped = ctx.stopped.notified();
    if ctx.stop.load(Ordering::SeqCst) {
        return false;
    }
    tokio::select! {
        _ = timer.sleep_until(until) => true,
        _ = stopped => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_10_ms_to_1_s_with_jitter_and_reset() {
        let mut p = Pause::new(3);
        let mut base = BACKOFF_MIN;
        for _ in 0..12 {
            let d = p.next();
            assert!(d >= base.mul_f64(0.5) && d <= base.mul_f64(1.5).min(BACKOFF_MAX), "{d:?} around {base:?}");
            base = (base * 2).min(BACKOFF_MAX);
        }
        assert!(p.next() <= BACKOFF_MAX);
        p.reset();
        assert!(p.next() <= BACKOFF_MIN.mul_f64(1.5), "a success starts over");
        // Users that failed together do not retry together.
        let (a, b) = (Pause::new(1).next(), Pause::new(2).next());
        assert_ne!(a, b);
    }
}
