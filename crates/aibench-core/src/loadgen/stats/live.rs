//! The live view the once-a-second progress reads: counters and lock-free
//! histograms beside the shards, so recording a request never waits for
//! the progress.

use std::sync::atomic::{AtomicU64, Ordering};

use super::codec::us;
use super::recorder::Record;

/// What the once-a-second progress shows, kept with atomics beside the
/// shards: the ticker reads these and never touches a shard, so recording a
/// request never waits for it.
#[derive(Default)]
pub struct Live {
    pub successes: AtomicU64,
    pub failures: AtomicU64,
    pub output_tokens: AtomicU64,
    pub ttft: LiveHist,
    pub latency: LiveHist,
}

impl Live {
    /// A measured (non-warmup) request.
    pub fn note(&self, r: &Record) {
        if r.failure.is_some() {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.successes.fetch_add(1, Ordering::Relaxed);
        self.output_tokens.fetch_add(r.output_tokens, Ordering::Relaxed);
        self.latency.record(us(r.e2e_end().saturating_duration_since(r.sent)));
        if let Some(f) = r.first {
            self.ttft.record(us(f.saturating_duration_since(r.sent)));
        }
    }
}

/// Sub-buckets per power of two in a `LiveHist` (about 3% wide).
const LIVE_SUB: u32 = 32;
const LIVE_BUCKETS: usize = (LIVE_SUB + (64 - LIVE_SUB.trailing_zeros()) * LIVE_SUB) as usize;

/// A lock-free log-linear histogram of microseconds for progress display
/// (p50 to about 3%); results use the exact HdrHistograms.
pub struct LiveHist {
    counts: Box<[AtomicU64]>,
}

impl Default for LiveHist {
    fn default() -> Self {
        LiveHist { counts: (0..LIVE_BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl LiveHist {
    fn index(v: u64) -> usize {
        if v < LIVE_SUB as u64 {
            return v as usize;
        }
        let top = 63 - v.leading_zeros();
        let shift = top - LIVE_SUB.trailing_zeros();
        (LIVE_SUB + shift * LIVE_SUB) as usize + ((v >> shift) as usize & (LIVE_SUB as usize - 1))
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> f64 {
        let sub = LIVE_SUB as usize;
        if i < sub {
            return i as f64;
        }
        let shift = (i - sub) / sub;
        let low = ((sub + (i - sub) % sub) as u64) << shift;
        low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
    }

    pub fn record(&self, v: u64) {
        self.counts[Self::index(v)].fetch_add(1, Ordering::Relaxed);
    }

    /// The value at quantile `q` (None when empty).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::value(i));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_hist_quantiles_within_its_bucket_width() {
        let h = LiveHist::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.9, 90_000.0), (0.01, 1_000.0)] {
            let got = h.quantile(q).unwrap();
            assert!((got - want).abs() / want < 0.035, "q{q}: {got} vs {want}");
        }
        // Small values are exact; the largest fit.
        let h = LiveHist::default();
        h.record(7);
        assert_eq!(h.quantile(0.5), Some(7.0));
        h.record(u64::MAX);
        assert!(h.quantile(1.0).unwrap() > 1e19);
        for v in [0u64, 1, 31, 32, 33, 63, 64, 1000, 1 << 40, u64::MAX] {
            let i = LiveHist::index(v);
            assert!(i < LIVE_BUCKETS, "{v}");
            let mid = LiveHist::value(i);
            assert!((mid - v as f64).abs() <= (v as f64 / 32.0).max(0.5), "{v}: bucket middle {mid}");
        }
    }
}
