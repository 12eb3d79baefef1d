//! The open loop: requests at their scheduled absolute times, whatever the
//! responses do, from a dispatcher task woken by a timerfd.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::ctx::Ctx;
use super::exchange::{Scratch, exec, finish_request};
use super::timer::DeadlineTimer;

/// Send offsets in seconds from the start: drawn (`Schedule`) or a trace's.
pub(super) type Offsets = Box<dyn Iterator<Item = f64> + Send>;

/// Dispatches the schedule and waits until every request has ended.
pub(super) async fn drive(ctx: Arc<Ctx>, max_concurrency: Option<u64>, schedule: Offsets) {
    let sem = max_concurrency.map(|n| Arc::new(Semaphore::new(n as usize)));
    let c = ctx.clone();
    tokio::spawn(dispatch(c, schedule, sem));
    loop {
        let notified = ctx.all_done.notified();
        if ctx.dispatch_done.load(Ordering::SeqCst) && ctx.outstanding.load(Ordering::SeqCst) == 0 {
            break;
        }
        notified.await;
    }
}

/// Sends at the scheduled absolute times, from a task on the runtime that
/// waits on a timerfd (tokio's own timer has millisecond granularity; a
/// timerfd wakes the runtime's poll at the deadline, to the microsecond).
/// Each request starts as a task spawned right here, so it runs next on
/// this thread: no other thread to wake, no hand-over between threads.
async fn dispatch(ctx: Arc<Ctx>, schedule: Offsets, sem: Option<Arc<Semaphore>>) {
    let timer = DeadlineTimer::new();
    for (i, offset) in schedule.enumerate() {
        let intended = ctx.start + Duration::from_secs_f64(offset);
        if Instant::now() < intended {
            let stopped = ctx.stopped.notified();
            if ctx.stop.load(Ordering::SeqCst) {
                break;
            }
            tokio::select! {
                _ = timer.sleep_until(intended) => {}
                _ = stopped => break,
            }
        }
        // Counted before the last stop check, so `drive` cannot finish while
        // a request is about to be spawned.
        ctx.outstanding.fetch_add(1, Ordering::SeqCst);
        if ctx.stop.load(Ordering::SeqCst) {
            ctx.outstanding.fetch_sub(1, Ordering::SeqCst);
            break;
        }
        let c = ctx.clone();
        let sem = sem.clone();
        tokio::spawn(async move {
            open_request(&c, i as u64, intended, sem).await;
            if c.outstanding.fetch_sub(1, Ordering::SeqCst) == 1 {
                c.all_done.notify_waiters();
            }
        });
    }
    ctx.dispatch_done.store(true, Ordering::SeqCst);
    ctx.all_done.notify_waiters();
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
}

async fn open_request(ctx: &Arc<Ctx>, seq: u64, intended: Instant, sem: Option<Arc<Semaphore>>) {
    let ready = Instant::now();
    let _permit = match &sem {
        Some(s) => match s.clone().acquire_owned().await {
            Ok(p) => Some(p),
            Err(_) => return,
        },
        None => None,
    };
    let target = ctx.pick_target();
    let mut conn = ctx.pools[target].lock().unwrap_or_else(|e| e.into_inner()).pop();
    // Scratch buffers are per task here; reuse one from this thread when free.
    let mut scratch = SCRATCH.with(|s| s.borrow_mut().take()).unwrap_or_default();
    let mut abort = ctx.abort.clone();
    let (req, meta) = ctx.request(target, seq);
    let out = tokio::select! {
        r = exec(ctx, &mut conn, target, (&req, meta), ready, Some(intended), &mut scratch) => r,
        _ = abort.wait_for(|a| *a) => None,
    };
    if let Some(c) = conn {
        ctx.pools[target].lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }
    if let Some(rec) = out {
        finish_request(ctx, seq, seq, target, &rec, &scratch);
    }
    SCRATCH.with(|s| *s.borrow_mut() = Some(scratch));
}
