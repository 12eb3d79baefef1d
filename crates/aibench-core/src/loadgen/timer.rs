//! Precise timers (tokio's timer wheel has millisecond granularity: a 50 ms
//! think time becomes ~51 ms). `PreciseTimer`, for the many sleepers of
//! think times and back-offs: one thread that waits on a futex with 1 µs
//! timer slack and wakes each task at its deadline. `DeadlineTimer`, for the
//! open loop's one dispatcher: a timerfd on the runtime itself, so the
//! request it starts runs on the thread that woke, with no hand-over.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc;
use std::time::Instant;

use tokio::sync::oneshot;

/// Fine timer slack for this thread (1 µs): sleeps end when asked, not up
/// to 50 µs later (the default).
pub fn set_timer_slack() {
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's sleep rounding.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0);
    }
}

struct Entry(Instant, u64, oneshot::Sender<()>);

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(o.0, o.1))
    }
}

pub struct PreciseTimer {
    tx: mpsc::Sender<(Instant, oneshot::Sender<()>)>,
}

impl PreciseTimer {
    pub fn start() -> PreciseTimer {
        let (tx, rx) = mpsc::channel::<(Instant, oneshot::Sender<()>)>();
        std::thread::Builder::new()
            .name("aibench-timer".into())
            .spawn(move || {
                set_timer_slack();
                let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::new();
                let mut n = 0u64;
                loop {
                    let now = Instant::now();
                    while heap.peek().is_some_and(|Reverse(e)| e.0 <= now) {
                        if let Some(Reverse(e)) = heap.pop() {
                            let _ = e.2.send(());
                        }
                    }
                    let got = match heap.peek() {
                        Some(Reverse(e)) => rx.recv_timeout(e.0.saturating_duration_since(now)),
                        None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                    };
                    match got {
                        Ok((at, tx)) => {
                            n += 1;
                            heap.push(Reverse(Entry(at, n, tx)));
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            // Wake whoever still waits, then end with the run.
                            for Reverse(e) in heap.drain() {
                                let _ = e.2.send(());
                            }
                            return;
                        }
                    }
                }
            })
            .expect("spawn timer thread");
        PreciseTimer { tx }
    }

    /// Sleeps until `at`, to within tens of microseconds.
    pub async fn sleep_until(&self, at: Instant) {
        if at <= Instant::now() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if self.tx.send((at, tx)).is_err() {
            tokio::time::sleep_until(at.into()).await;
            return;
        }
        let _ = rx.await;
    }
}

/// A timerfd registered with the runtime: `sleep_until` arms it at an
/// absolute CLOCK_MONOTONIC time (the clock of `Instant`) and waits for it
/// to fire. Where no timerfd can be made, tokio's timer stands in.
pub(crate) struct DeadlineTimer {
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
    pub(crate) fn new() -> DeadlineTimer {
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

    /// Sleeps until `at`: on the timerfd, or on tokio's timer where that
    /// cannot be used.
    pub(crate) async fn sleep_until(&self, at: Instant) {
        if !self.wait_on_fd(at).await {
            tokio::time::sleep_until(at.into()).await;
        }
    }

    /// Waits on the timerfd until `at`; false when it cannot be used.
    async fn wait_on_fd(&self, at: Instant) -> bool {
        use std::os::fd::AsRawFd;
        let Some(fd) = &self.fd else { return false };
        if !self.arm(fd.as_raw_fd(), at) {
            return false;
        }
        while Instant::now() < at {
            let Ok(mut ready) = fd.readable().await else { return false };
            // Reading the expiry count re-arms readiness; WouldBlock (not
            // yet expired) clears it, and the loop waits again.
            let _ = ready.try_io(|t| {
                let mut n = [0u8; 8];
                // SAFETY: reads 8 bytes into `n` from our timerfd.
                let r = unsafe { libc::read(t.as_raw_fd(), n.as_mut_ptr().cast(), 8) };
                if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
            });
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_close_to_deadline() {
        // Behaviour, not speed (bench/ measures the precision): never early,
        // and typically well inside tokio's 1 ms tick. Other tests share the
        // two cores, so single wake-ups may be late; the median may not be.
        let t = PreciseTimer::start();
        let mut late = Vec::new();
        for _ in 0..21 {
            let at = Instant::now() + Duration::from_millis(5);
            t.sleep_until(at).await;
            assert!(Instant::now() >= at, "woke before the deadline");
            late.push(Instant::now().saturating_duration_since(at));
        }
        late.sort();
        assert!(late[10] < Duration::from_millis(1), "median lateness {:?} (all: {late:?})", late[10]);
        assert!(late[20] < Duration::from_millis(100), "worst lateness {:?}", late[20]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deadline_timer_wakes_at_its_deadlines_never_before() {
        // Behaviour, not speed: never early, on the timerfd, deadline after
        // deadline (bench/wire_speed.sh measures the precision).
        let t = DeadlineTimer::new();
        assert!(t.fd.is_some(), "a timerfd on Linux");
        let mut late = Vec::new();
        for _ in 0..21 {
            let at = Instant::now() + Duration::from_millis(2);
            t.sleep_until(at).await;
            assert!(Instant::now() >= at, "woke before the deadline");
            late.push(Instant::now().saturating_duration_since(at));
        }
        late.sort();
        assert!(late[10] < Duration::from_millis(1), "median lateness {:?} (all: {late:?})", late[10]);
        // A deadline already past returns at once.
        let t0 = Instant::now();
        t.sleep_until(t0 - Duration::from_millis(5)).await;
        assert!(t0.elapsed() < Duration::from_millis(50));
    }
}
