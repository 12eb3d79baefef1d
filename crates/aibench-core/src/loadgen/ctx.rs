//! What every part of a run shares: the prepared requests, the shards of
//! measurements, connection pools, and the run's clocks and flags.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};

use super::http1::{Conn, Endpoint};
use super::spec::{Api, Balance, Slo};
use super::stats::{Live, Record, Shard, TargetSums};
use crate::typed::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The spec is wrong (a value, or what it names: the dataset's file, a
    /// tokenizer, a length the server cannot take): the caller raises,
    /// naming `field` in its own terms.
    #[error("{0}")]
    Spec(FieldError),
    /// The target could not be used (e.g. model discovery failed): `nil, err`.
    #[error("{message}")]
    Unavailable { kind: &'static str, message: String },
}

/// Why the run stops before its workload ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum Halt {
    Signal(&'static str),
    /// Nothing succeeded and no request was answered since this instant.
    Unreachable(Instant),
}

/// Shards of measurements: one per core this process may run on (at most
/// 16), so recorders on different threads rarely meet, and a small client
/// does not allocate (and zero) histograms it never fills.
pub(super) fn shard_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 16)
}
/// No time recorded yet (in the `*_us` fields of `Ctx`).
pub(super) const NONE: u64 = u64::MAX;

/// One request's bytes, per target.
pub(super) enum Requests {
    /// Formatted once (the `http` API without a template, and every LLM body).
    Fixed(Vec<Vec<Vec<u8>>>),
    /// `{{seq}}` in the body: formatted per request.
    Template { method: String, path: Vec<String>, headers: Vec<(String, String)>, body: String },
    /// A trace's requests, built as they are sent.
    Trace(Box<super::build::TracePrompts>),
    /// Built by the driver itself (sessions).
    ByDriver,
}

pub(super) struct Ctx {
    pub(super) api: Api,
    pub(super) stream: bool,
    pub(super) llm: bool,
    /// `ignore_eos` was sent: an output shorter than asked was cut short.
    pub(super) ignore_eos: bool,
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) requests: Requests,
    pub(super) meta: Vec<(u64, u64)>,
    /// Keep each request's intended and actual send time (trace replay).
    pub(super) record_sends: bool,
    /// Measurements, merged at the end; see `shard`.
    pub(super) shards: Vec<Mutex<Shard>>,
    /// What the progress shows, without the shards.
    pub(super) live: Live,
    pub(super) seq: AtomicU64,
    /// How a request picks its target; `rr` is the turn (round robin, and
    /// where least-outstanding ties).
    pub(super) balance: Balance,
    pub(super) rr: AtomicU64,
    pub(super) in_flight: AtomicI64,
    /// Per target: requests in flight, and sessions open (least outstanding).
    pub(super) target_in_flight: Vec<AtomicU64>,
    pub(super) target_sessions: Vec<AtomicU64>,
    /// Per target, when there are several: its share of the measured requests.
    pub(super) per_target: Vec<Mutex<TargetSums>>,
    pub(super) warmup_excluded: AtomicU64,
    pub(super) warmup_requests: u64,
    pub(super) start: Instant,
    pub(super) origin: Instant,
    pub(super) timeout: Duration,
    /// The most one streamed event or unstreamed body may hold.
    pub(super) max_event_bytes: usize,
    /// Due requests never sent (the open loop's backlog cap).
    pub(super) not_sent: AtomicU64,
    /// Requests sent but cut when the run stopped (its grace ran out).
    pub(super) unfinished: AtomicU64,
    /// The most requests (rate-started sessions) outstanding at once.
    pub(super) max_outstanding: u64,
    /// A scheduled workload's end: nothing is sent from then on.
    pub(super) send_until: Option<Instant>,
    pub(super) slo: Slo,
    pub(super) log: Option<mpsc::UnboundedSender<Option<String>>>,
    pub(super) pools: Vec<Mutex<Vec<Conn>>>,
    pub(super) stop: AtomicBool,
    /// Wakes users sleeping (ramp-up, think time) when the run stops.
    pub(super) stopped: Notify,
    pub(super) abort: watch::Receiver<bool>,
    /// Per second since the origin: (sum of in-flight samples, samples).
    pub(super) in_flight_series: Mutex<Vec<(f64, u32)>>,
    // Open loop bookkeeping.
    pub(super) outstanding: AtomicU64,
    pub(super) dispatch_done: AtomicBool,
    pub(super) all_done: Notify,
    // Reachability, in microseconds since `start`: the last success, and the
    // first failure without an answer since the server last answered.
    pub(super) last_success_us: AtomicU64,
    pub(super) first_unanswered_us: AtomicU64,
    // Closed-loop backoff after refused requests.
    pub(super) backoff_us: AtomicU64,
    pub(super) backoffs: AtomicU64,
    /// How late the runtime's probe timer fired, in microseconds.
    pub(super) loop_delay: Mutex<hdrhistogram::Histogram<u64>>,
    /// The open loop's pacer, once it has started: its priority and demotions.
    pub(super) pacer: Mutex<Option<super::report::PacerInfo>>,
}

impl Ctx {
    pub(super) fn since_start_us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_micros() as u64
    }

    /// Notes how a request ended for the unreachable-server check.
    pub(super) fn note_reachability(&self, answered: bool, ok: bool, unanswered_failure: bool, at: Instant) {
        let t = self.since_start_us(at);
        if ok {
            self.last_success_us.fetch_max(t, Ordering::Relaxed);
        }
        if answered {
            self.first_unanswered_us.store(NONE, Ordering::Relaxed);
        } else if unanswered_failure {
            let _ = self.first_unanswered_us.compare_exchange(NONE, t, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The instant since when the server has been unreachable, once that has
    /// lasted `after`: nothing succeeded and every attempt failed unanswered.
    pub(super) fn unreachable_since(&self, after: Duration) -> Option<Instant> {
        let first = self.first_unanswered_us.load(Ordering::Relaxed);
        if first == NONE {
            return None;
        }
        let now = self.since_start_us(Instant::now());
        let after = after.as_micros() as u64;
        let last_ok = self.last_success_us.load(Ordering::Relaxed);
        (now.saturating_sub(first) >= after && now.saturating_sub(last_ok) >= after)
            .then(|| self.start + Duration::from_micros(first))
    }

    /// A shard to record into: the one `hint` picks when free, else the next free
    /// one, so a recorder never waits for another. (The ticker reads
    /// `live`, and the final merge runs after every recorder has ended.)
    /// Only with more threads recording at once than there are shards can
    /// it wait, for its own.
    pub(super) fn shard(&self, hint: u64) -> MutexGuard<'_, Shard> {
        let n = self.shards.len();
        let preferred = (hint % n as u64) as usize;
        for k in 0..n {
            match self.shards[(preferred + k) % n].try_lock() {
                Ok(g) => return g,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.shards[preferred].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Request `seq`'s bytes for `target`, and the (prompt, output) tokens it asks.
    pub(super) fn request(&self, target: usize, seq: u64) -> (std::borrow::Cow<'_, [u8]>, (u64, u64)) {
        use std::borrow::Cow;
        let meta = || self.meta[(seq % self.meta.len().max(1) as u64) as usize];
        match &self.requests {
            Requests::Fixed(t) => {
                let list = &t[target];
                (Cow::Borrowed(&list[(seq % list.len() as u64) as usize][..]), meta())
            }
            Requests::Template { method, path, headers, body } => {
                let b = body.replace("{{seq}}", &seq.to_string());
                let req =
                    super::http1::format_request(method, &path[target], &self.endpoints[target], headers, b.as_bytes());
                (Cow::Owned(req), meta())
            }
            Requests::Trace(t) => {
                let (req, m) = t.request(seq, target);
                (Cow::Owned(req), m)
            }
            Requests::ByDriver => (Cow::Borrowed(&[][..]), (0, 0)),
        }
    }

    /// The target for the next request, by `balance`: the next URL in turn,
    /// or the one with the fewest requests in flight. (The open loop picks
    /// as it builds a request, one arrival ahead of its send time.)
    pub(super) fn pick_target(&self) -> usize {
        self.pick(&self.target_in_flight)
    }

    /// The target of a new session, which keeps it for every turn (its
    /// prefix cache is there): the next URL in turn, or the one with the
    /// fewest sessions open. The caller counts the session open there
    /// (`target_sessions`) until it ends.
    pub(super) fn pick_session_target(&self) -> usize {
        self.pick(&self.target_sessions)
    }

    fn pick(&self, load: &[AtomicU64]) -> usize {
        let n = self.endpoints.len();
        if n == 1 {
            return 0;
        }
        let turn = (self.rr.fetch_add(1, Ordering::Relaxed) % n as u64) as usize;
        match self.balance {
            Balance::RoundRobin => turn,
            // From the turn's URL on, so that ties rotate.
            Balance::LeastOutstanding => {
                (0..n).map(|k| (turn + k) % n).min_by_key(|&i| load[i].load(Ordering::Relaxed)).unwrap_or(turn)
            }
        }
    }

    /// Adds a measured request to its target's share (several targets only).
    pub(super) fn note_target(&self, target: usize, rec: &Record) {
        if let Some(t) = self.per_target.get(target) {
            t.lock().unwrap_or_else(|e| e.into_inner()).record(rec);
        }
    }
}
