//! The open loop: requests at their scheduled absolute times, whatever the
//! responses do, from a dispatcher task woken by a timerfd.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::ctx::Ctx;
use super::exchange::{Scratch, exec, finish_request};

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
    let mut timer = DeadlineTimer::new();
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

/// A timerfd registered with the runtime: `sleep_until` arms it at an
/// absolute CLOCK_MONOTONIC time (the clock of `Instant`) and waits for it
/// to fire. Where no timerfd can be made, tokio's timer stands in.
struct DeadlineTimer {
    fd: Option<tokio::io::unix::AsyncFd<TimerFd>>,
    /// One instant and the same moment in CLOCK_MONOTONIC, to convert deadlines.
    base: (Instant, libc::timespec),
}

struct TimerFd(std::os::fd::OwnedFd);

impl std::os::fd::AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

impl DeadlineTimer {
    fn new() -> DeadlineTimer {
        use std::os::fd::FromRawFd;
        // SAFETY: timerfd_create returns a new descriptor (or -1), which the
        // OwnedFd then owns, and which stays open and the same for the life
        // of the AsyncFd (TimerFd gives no way to change it).
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        let fd = (fd >= 0).then(|| TimerFd(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })).and_then(|t| unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(t, tokio::io::Interest::READABLE).ok()
        });
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        let now = Instant::now();
        // SAFETY: clock_gettime fills the timespec passed.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        DeadlineTimer { fd, base: (now, ts) }
    }

    fn arm(&self, fd: i32, at: Instant) -> bool {
        let (i0, t0) = self.base;
        let ns = t0.tv_sec as i128 * 1_000_000_000
            + t0.tv_nsec as i128
            + at.saturating_duration_since(i0).as_nanos() as i128;
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: (ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns % 1_000_000_000) as _,
            },
        };
        // SAFETY: `fd` is our timerfd; the specs are plain values.
        unsafe { libc::timerfd_settime(fd, libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut()) == 0 }
    }

    async fn sleep_until(&mut self, at: Instant) {
        use std::os::fd::AsRawFd;
        let Some(fd) = &self.fd else {
            tokio::time::sleep_until(at.into()).await;
            return;
        };
        if !self.arm(fd.as_raw_fd(), at) {
            tokio::time::sleep_until(at.into()).await;
            return;
        }
        while Instant::now() < at {
            let Ok(mut ready) = fd.readable().await else {
                tokio::time::sleep_until(at.into()).await;
                return;
            };
            // Reading the expiry count re-arms readiness; WouldBlock (not
            // yet expired) clears it, and the loop waits again.
            let _ = ready.try_io(|t| {
                let mut n = [0u8; 8];
                // SAFETY: reads 8 bytes into `n` from our timerfd.
                let r = unsafe { libc::read(t.as_raw_fd(), n.as_mut_ptr().cast(), 8) };
                if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
            });
        }
    }
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
