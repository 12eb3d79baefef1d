//! The open loop: requests at their scheduled absolute times, whatever the
//! responses do, sent by a pacer thread at its own wake-up.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ctx::Ctx;
use super::exchange::{Scratch, Sent, exec, finish_request};
use super::http1::Conn;
use super::report::PacerInfo;

/// Send offsets in seconds from the start: drawn (`Schedule`) or a trace's.
pub(super) type Offsets = Box<dyn Iterator<Item = f64> + Send>;

/// Dispatches the schedule and waits until every request has ended.
pub(super) async fn drive(ctx: Arc<Ctx>, max_concurrency: Option<u64>, schedule: Offsets) {
    let sem = max_concurrency.map(|n| Arc::new(Semaphore::new(n as usize)));
    let (c, rt) = (ctx.clone(), tokio::runtime::Handle::current());
    if let Err(e) = std::thread::Builder::new().name("aibench-pacer".into()).spawn(move || pace(c, schedule, sem, rt)) {
        eprintln!("aibench: cannot start the open loop's pacer thread ({e}); no request was sent");
        ctx.dispatch_done.store(true, Ordering::SeqCst);
    }
    loop {
        let notified = ctx.all_done.notified();
        if ctx.dispatch_done.load(Ordering::SeqCst) && ctx.outstanding.load(Ordering::SeqCst) == 0 {
            break;
        }
        notified.await;
    }
}

/// The longest the pacer sleeps before it looks at the stop flag again.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// The pacer: a thread of its own that builds each request before its
/// time, sleeps until that absolute time (1 µs timer slack, as the
/// machine's own floor in bench/wire_speed.sh), and at its wake-up writes
/// the request itself on an idle kept-alive connection. The runtime then
/// reads the response. A request due while the runtime is busy reading
/// others is still sent on time: the kernel runs the woken pacer, it does
/// not wait for a task to yield. Where no connection is idle, or the socket
/// would block, or `max_concurrency` has no free permit, the request goes
/// to the runtime at once and is connected and sent there.
fn pace(ctx: Arc<Ctx>, schedule: Offsets, sem: Option<Arc<Semaphore>>, rt: tokio::runtime::Handle) {
    super::timer::set_timer_slack();
    let mut prio = Priority::start();
    for (i, offset) in schedule.enumerate() {
        let seq = i as u64;
        let intended = ctx.start + Duration::from_secs_f64(offset);
        let target = ctx.pick_target();
        let (req, meta) = ctx.request(target, seq);
        let Some(on_time) = sleep_until(&ctx, intended) else { break };
        prio.note(on_time);
        // Counted before the last stop check, so `drive` cannot finish while
        // a request is about to be handed over.
        let before = ctx.outstanding.fetch_add(1, Ordering::SeqCst);
        if ctx.stop.load(Ordering::SeqCst) {
            ctx.outstanding.fetch_sub(1, Ordering::SeqCst);
            break;
        }
        if before >= ctx.max_outstanding {
            // The backlog is full: the client cannot keep up with the
            // schedule. Not sent, and counted as such, rather than a queue
            // that grows without bound and outlives the run.
            ctx.outstanding.fetch_sub(1, Ordering::SeqCst);
            ctx.not_sent.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let ready = Instant::now();
        let permit = sem.as_ref().and_then(|s| s.clone().try_acquire_owned().ok());
        let mut conn = None;
        let mut pre = None;
        if (sem.is_none() || permit.is_some())
            && let Some(c) = ctx.pools[target].lock().unwrap_or_else(|e| e.into_inner()).pop()
        {
            let written = c.try_send(&req);
            if written > 0 {
                pre = Some(Sent { written, at: Instant::now() });
            }
            conn = Some(c);
        }
        let due = Due { seq, intended, ready, target, req: built(req), meta, conn, pre, permit };
        let (c, sem) = (ctx.clone(), sem.clone());
        rt.spawn(async move {
            open_request(&c, due, sem).await;
            if c.outstanding.fetch_sub(1, Ordering::SeqCst) == 1 {
                c.all_done.notify_waiters();
            }
        });
    }
    *ctx.pacer.lock().unwrap_or_else(|e| e.into_inner()) = Some(prio.info());
    ctx.dispatch_done.store(true, Ordering::SeqCst);
    ctx.all_done.notify_waiters();
}

/// Sleeps until `at`: `Some(true)` when it was still ahead, `Some(false)`
/// when it had passed already, `None` when the run is stopped first.
fn sleep_until(ctx: &Ctx, at: Instant) -> Option<bool> {
    let mut ahead = false;
    loop {
        if ctx.stop.load(Ordering::SeqCst) {
            return None;
        }
        let now = Instant::now();
        if now >= at {
            return Some(ahead);
        }
        ahead = true;
        std::thread::sleep((at - now).min(STOP_CHECK));
    }
}

/// How long the pacer may be behind schedule, working without a pause, at
/// real-time priority.
const BEHIND: Duration = Duration::from_millis(10);

/// The pacer's scheduling class: real-time (SCHED_FIFO at its lowest
/// priority) where the system allows it, so that at its wake-up it runs
/// ahead of the runtime's threads rather than in turn with them; normal
/// again while it has been behind schedule for more than `BEHIND` (an
/// overloaded client must not starve the threads that read the
/// responses), and real-time once it has caught up and sleeps again.
/// `AIBENCH_PACER=normal` keeps it at normal priority (to measure what
/// real-time buys).
struct Priority {
    allowed: bool,
    now_rt: bool,
    behind_since: Option<Instant>,
    demotions: u64,
}

impl Priority {
    fn start() -> Priority {
        let wanted = std::env::var("AIBENCH_PACER").map_or(true, |v| v != "normal");
        let allowed = wanted && set_fifo(true);
        Priority { allowed, now_rt: allowed, behind_since: None, demotions: 0 }
    }

    /// After each wait: `on_time` = the deadline was still ahead.
    fn note(&mut self, on_time: bool) {
        if !self.allowed {
            return;
        }
        if on_time {
            self.behind_since = None;
            if !self.now_rt {
                self.now_rt = set_fifo(true);
            }
            return;
        }
        let now = Instant::now();
        let since = *self.behind_since.get_or_insert(now);
        if self.now_rt && now.duration_since(since) > BEHIND && set_fifo(false) {
            self.now_rt = false;
            self.demotions += 1;
        }
    }

    fn info(&self) -> PacerInfo {
        PacerInfo { priority: if self.allowed { "sched_fifo" } else { "normal" }.into(), demotions: self.demotions }
    }
}

/// Puts the calling thread in SCHED_FIFO (priority 1) or back in
/// SCHED_OTHER; false where that is not allowed (no CAP_SYS_NICE, no
/// RLIMIT_RTPRIO, or a container without real-time runtime).
fn set_fifo(on: bool) -> bool {
    let (policy, priority) = if on { (libc::SCHED_FIFO, 1) } else { (libc::SCHED_OTHER, 0) };
    let p = libc::sched_param { sched_priority: priority };
    // SAFETY: `p` is a plain value that outlives the call; pid 0 is this thread.
    unsafe { libc::sched_setscheduler(0, policy, &p) == 0 }
}

/// A request at its time, handed from the pacer to the runtime.
struct Due {
    seq: u64,
    intended: Instant,
    ready: Instant,
    target: usize,
    /// Bytes built for this request; `None`: the run's fixed requests
    /// (`Ctx::request` lends them again).
    req: Option<Vec<u8>>,
    meta: (u64, u64),
    /// The idle connection the pacer took, and what it sent on it.
    conn: Option<Conn>,
    pre: Option<Sent>,
    /// The `max_concurrency` permit the pacer took; `None` with a limit:
    /// still to be awaited.
    permit: Option<OwnedSemaphorePermit>,
}

/// Bytes built for one request, to hand over; `None` for bytes `Ctx` lends.
fn built(req: std::borrow::Cow<'_, [u8]>) -> Option<Vec<u8>> {
    match req {
        std::borrow::Cow::Owned(v) => Some(v),
        std::borrow::Cow::Borrowed(_) => None,
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
}

async fn open_request(ctx: &Arc<Ctx>, due: Due, sem: Option<Arc<Semaphore>>) {
    let Due { seq, intended, ready, target, req, meta, mut conn, pre, permit } = due;
    let _permit = match (permit, &sem) {
        (Some(p), _) => Some(p),
        (None, Some(s)) => {
            let p = match s.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return,
            };
            // A request that waited for its slot past the end of the
            // schedule, or past a stop, is not sent at all.
            if ctx.stop.load(Ordering::SeqCst) || ctx.send_until.is_some_and(|d| Instant::now() >= d) {
                ctx.not_sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Some(p)
        }
        (None, None) => None,
    };
    if conn.is_none() {
        conn = ctx.pools[target].lock().unwrap_or_else(|e| e.into_inner()).pop();
    }
    // Scratch buffers are per task here; reuse one from this thread when free.
    let mut scratch = SCRATCH.with(|s| s.borrow_mut().take()).unwrap_or_default();
    let mut abort = ctx.abort.clone();
    let lent;
    let bytes: &[u8] = match &req {
        Some(v) => v,
        None => {
            lent = ctx.request(target, seq).0;
            &lent
        }
    };
    let out = tokio::select! {
        r = exec(ctx, &mut conn, target, (bytes, meta), ready, Some(intended), pre, &mut scratch) => r,
        _ = abort.wait_for(|a| *a) => {
            ctx.unfinished.fetch_add(1, Ordering::Relaxed);
            None
        }
    };
    if let Some(c) = conn {
        ctx.pools[target].lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }
    if let Some(rec) = out {
        finish_request(ctx, seq, seq, target, &rec, &scratch);
    }
    SCRATCH.with(|s| *s.borrow_mut() = Some(scratch));
}
