//! A precise timer for think times and back-offs (tokio's timer wheel has
//! millisecond granularity: a 50 ms think time becomes ~51 ms): one thread
//! that waits on a futex with 1 µs timer slack and wakes each task at its
//! deadline. (The open loop's pacer is a thread of its own and sleeps
//! itself: `open.rs`.)

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
}
