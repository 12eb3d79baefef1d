//! Histograms as results keep them: HdrHistograms of microseconds (3
//! significant digits, up to an hour), their base64 V2 encoding (exact and
//! mergeable across machines), and the percentiles read from them.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

pub const HIST_MAX_US: u64 = 3_600_000_000;

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Adds `h` into an optional histogram, made on first use.
pub fn add_into(into: &mut Option<Histogram<u64>>, h: &Histogram<u64>) {
    let _ = into.get_or_insert_with(new_hist).add(h);
}

/// A duration in microseconds, within what a histogram holds.
pub(super) fn us(d: Duration) -> u64 {
    d.as_micros().min(HIST_MAX_US as u128) as u64
}

/// Distribution summary in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub stdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Summary {
    /// A histogram of microseconds, in milliseconds.
    pub fn of(h: &Histogram<u64>) -> Option<Summary> {
        if h.is_empty() {
            return None;
        }
        let ms = |v: u64| v as f64 / 1000.0;
        // Quantiles report the highest value equivalent to the bucket, like HdrHistogram's tools.
        let q = |p: f64| ms(h.highest_equivalent(h.value_at_quantile(p)));
        Some(Summary {
            count: h.len(),
            mean: h.mean() / 1000.0,
            min: ms(h.min()),
            max: ms(h.highest_equivalent(h.max())),
            stdev: h.stdev() / 1000.0,
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
        })
    }
}

impl Summary {
    /// Exact, from value -> count (token lengths); quantiles are the lowest
    /// value with at least that share of the counts at or below it.
    pub fn of_counts(counts: &BTreeMap<u64, u64>) -> Option<Summary> {
        let n: u64 = counts.values().sum();
        if n == 0 {
            return None;
        }
        let mean = counts.iter().map(|(v, c)| *v as f64 * *c as f64).sum::<f64>() / n as f64;
        let var = counts.iter().map(|(v, c)| (*v as f64 - mean).powi(2) * *c as f64).sum::<f64>() / n as f64;
        let q = |p: f64| {
            let rank = ((p * n as f64).ceil() as u64).clamp(1, n);
            let mut seen = 0;
            for (v, c) in counts {
                seen += c;
                if seen >= rank {
                    return *v as f64;
                }
            }
            0.0
        };
        Some(Summary {
            count: n,
            mean,
            min: *counts.keys().next().unwrap_or(&0) as f64,
            max: *counts.keys().next_back().unwrap_or(&0) as f64,
            stdev: var.sqrt(),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
        })
    }
}

/// The percentiles of a latency curve (reports plot these).
pub const CURVE_PERCENTILES: [f64; 13] =
    [0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0];

/// (percentile, value in ms) for each of `ps`, as HdrHistogram's tools
/// report them (the highest value equivalent to the bucket).
pub fn percentile_curve(h: &Histogram<u64>, ps: &[f64]) -> Result<Vec<(f64, f64)>, String> {
    ps.iter()
        .map(|p| {
            if !(0.0..=100.0).contains(p) {
                return Err(format!("{p} is not a percentile (0-100)"));
            }
            Ok((*p, h.highest_equivalent(h.value_at_percentile(*p)) as f64 / 1000.0))
        })
        .collect()
}

/// HdrHistogram V2 encoding, base64: exact and mergeable across machines.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    let _ = V2Serializer::new().serialize(h, &mut buf);
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn decode(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|e| format!("not base64: {e}"))?;
    let h: Histogram<u64> =
        Deserializer::new().deserialize(&mut &bytes[..]).map_err(|e| format!("not an HdrHistogram: {e:?}"))?;
    // Re-home into our bounds so histograms from any source add up.
    let mut out = new_hist();
    out.add(&h).map_err(|e| format!("histogram out of range: {e:?}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_exact() {
        let mut h = new_hist();
        for v in [1u64, 10, 100, 1000, 123_456, 9_999_999] {
            h.record(v).unwrap();
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back, h);
        assert!(decode("!!").is_err());
    }

    #[test]
    fn summary_of_counts_is_exact() {
        let counts: BTreeMap<u64, u64> = [(100, 50), (4000, 49), (4001, 1)].into_iter().collect();
        let s = Summary::of_counts(&counts).unwrap();
        assert_eq!((s.count, s.min, s.max, s.p50, s.p99), (100, 100.0, 4001.0, 100.0, 4000.0));
        assert_eq!(s.p999, 4001.0);
        assert!((s.mean - (5000.0 + 196_000.0 + 4001.0) / 100.0).abs() < 1e-9);
        assert!(Summary::of_counts(&BTreeMap::new()).is_none());
    }

    #[test]
    fn summary_in_ms() {
        let mut h = new_hist();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let s = Summary::of(&h).unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.mean - 500.5).abs() < 0.5);
        assert!((s.p50 - 500.0).abs() < 1.0, "{}", s.p50);
        assert!((s.p99 - 990.0).abs() < 1.0, "{}", s.p99);
        assert_eq!(s.min, 1.0);
    }
}
