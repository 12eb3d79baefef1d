//! Was the client the bottleneck? Measurements taken during the run, held
//! against documented thresholds (README, "Was the client the bottleneck?").
//! A result whose client was limited says so: its numbers are the client's
//! limit, not the server's.

use serde::{Deserialize, Serialize};

/// The process used this share of the CPU time its cores allow.
pub const CPU_UTIL_MAX: f64 = 0.90;
/// p99 lateness of a 10 ms probe timer on the client's runtime.
pub const LOOP_DELAY_P99_MAX_MS: f64 = 5.0;
/// Open loop: p99 of scheduled send time to ready to send.
pub const SEND_LAG_P99_MAX_MS: f64 = 5.0;
/// p99 wait for a new connection (a request that found none free).
pub const CONNECT_P99_MAX_MS: f64 = 100.0;
/// Closed loop: mean delay between a response and the user's next send,
/// beyond its think time.
pub const CLIENT_GAP_MAX_MS: f64 = 5.0;
/// CPU use over a shorter run says little.
pub const CPU_MIN_WALL_S: f64 = 1.0;
/// Nor does a p99 of fewer probe firings (one second of them).
pub const PROBE_MIN_SAMPLES: u64 = 100;
/// The probe timer's period.
pub const PROBE_PERIOD_MS: u64 = 10;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Validity {
    /// The client may have limited the load: read `reasons`.
    pub client_limited: bool,
    pub reasons: Vec<String>,
    /// The measurements the verdict rests on.
    pub cpu_util: f64,
    pub cores: u64,
    pub loop_delay_p99_ms: Option<f64>,
    pub send_lag_p99_ms: Option<f64>,
    pub connect_p99_ms: Option<f64>,
    pub connects: u64,
    pub client_gap_ms: Option<f64>,
}

/// What the run measured of the client itself.
pub struct Measured {
    pub cpu_util: f64,
    pub cores: u64,
    pub wall_s: f64,
    pub loop_delay_p99_ms: Option<f64>,
    pub loop_delay_samples: u64,
    pub send_lag_p99_ms: Option<f64>,
    pub connect_p99_ms: Option<f64>,
    pub connects: u64,
    pub client_gap_ms: Option<f64>,
}

pub fn judge(m: &Measured) -> Validity {
    let mut reasons = Vec::new();
    if m.wall_s >= CPU_MIN_WALL_S && m.cpu_util >= CPU_UTIL_MAX {
        reasons.push(format!(
            "the client process used {:.0}% of its {} core(s) (limit {:.0}%)",
            m.cpu_util * 100.0,
            m.cores,
            CPU_UTIL_MAX * 100.0
        ));
    }
    if let Some(d) =
        m.loop_delay_p99_ms.filter(|d| *d > LOOP_DELAY_P99_MAX_MS && m.loop_delay_samples >= PROBE_MIN_SAMPLES)
    {
        reasons.push(format!(
            "its event loop ran late: a {PROBE_PERIOD_MS} ms probe timer fired {d:.1} ms late at p99 (limit {LOOP_DELAY_P99_MAX_MS} ms)"
        ));
    }
    if let Some(d) = m.send_lag_p99_ms.filter(|d| *d > SEND_LAG_P99_MAX_MS) {
        reasons
            .push(format!("it sent late: p99 send lag {d:.1} ms behind the schedule (limit {SEND_LAG_P99_MAX_MS} ms)"));
    }
    if let Some(d) = m.connect_p99_ms.filter(|d| *d > CONNECT_P99_MAX_MS) {
        reasons.push(format!(
            "requests waited for connections: p99 {d:.1} ms to open one of {} new connections (limit {CONNECT_P99_MAX_MS} ms)",
            m.connects
        ));
    }
    if let Some(d) = m.client_gap_ms.filter(|d| *d > CLIENT_GAP_MAX_MS) {
        reasons.push(format!(
            "users sent late: {d:.1} ms on average between a response and the next request, beyond the think time (limit {CLIENT_GAP_MAX_MS} ms)"
        ));
    }
    Validity {
        client_limited: !reasons.is_empty(),
        reasons,
        cpu_util: m.cpu_util,
        cores: m.cores,
        loop_delay_p99_ms: m.loop_delay_p99_ms,
        send_lag_p99_ms: m.send_lag_p99_ms,
        connect_p99_ms: m.connect_p99_ms,
        connects: m.connects,
        client_gap_ms: m.client_gap_ms,
    }
}

/// Several clients: limited when any was; each measurement is the worst.
pub fn merge(all: &[&Validity], hosts: &[&str]) -> Validity {
    let worst = |f: &dyn Fn(&Validity) -> Option<f64>| all.iter().filter_map(|v| f(v)).reduce(f64::max);
    let mut reasons = Vec::new();
    for (v, host) in all.iter().zip(hosts.iter().chain(std::iter::repeat(&""))) {
        for r in &v.reasons {
            let r = if host.is_empty() { r.clone() } else { format!("{host}: {r}") };
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
    }
    Validity {
        client_limited: all.iter().any(|v| v.client_limited),
        reasons,
        cpu_util: all.iter().map(|v| v.cpu_util).fold(0.0, f64::max),
        cores: all.iter().map(|v| v.cores).sum(),
        loop_delay_p99_ms: worst(&|v| v.loop_delay_p99_ms),
        send_lag_p99_ms: worst(&|v| v.send_lag_p99_ms),
        connect_p99_ms: worst(&|v| v.connect_p99_ms),
        connects: all.iter().map(|v| v.connects).sum(),
        client_gap_ms: worst(&|v| v.client_gap_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm() -> Measured {
        Measured {
            cpu_util: 0.2,
            cores: 2,
            wall_s: 10.0,
            loop_delay_p99_ms: Some(1.1),
            loop_delay_samples: 500,
            send_lag_p99_ms: Some(0.1),
            connect_p99_ms: Some(0.3),
            connects: 8,
            client_gap_ms: Some(0.05),
        }
    }

    #[test]
    fn calm_run_is_valid() {
        let v = judge(&calm());
        assert!(!v.client_limited, "{:?}", v.reasons);
        assert!(v.reasons.is_empty());
    }

    #[test]
    fn each_threshold_trips_on_its_own() {
        type Set = fn(&mut Measured);
        let cases: [(&str, Set); 5] = [
            ("core", |m| m.cpu_util = 0.95),
            ("probe timer", |m| m.loop_delay_p99_ms = Some(12.0)),
            ("send lag", |m| m.send_lag_p99_ms = Some(8.0)),
            ("connections", |m| m.connect_p99_ms = Some(250.0)),
            ("think time", |m| m.client_gap_ms = Some(20.0)),
        ];
        for (word, set) in cases {
            let mut m = calm();
            set(&mut m);
            let v = judge(&m);
            assert!(v.client_limited, "{word}");
            assert_eq!(v.reasons.len(), 1, "{word}: {:?}", v.reasons);
            assert!(v.reasons[0].contains(word), "{word}: {}", v.reasons[0]);
        }
    }

    #[test]
    fn a_short_run_is_not_judged_on_cpu_or_the_probe() {
        let mut m = calm();
        m.cpu_util = 1.0;
        m.wall_s = 0.3;
        m.loop_delay_p99_ms = Some(9.0);
        m.loop_delay_samples = 30;
        assert!(!judge(&m).client_limited);
    }

    #[test]
    fn merge_keeps_the_worst() {
        let a = judge(&calm());
        let mut m = calm();
        m.loop_delay_p99_ms = Some(9.0);
        let b = judge(&m);
        let v = merge(&[&a, &b], &["n1", "n2"]);
        assert!(v.client_limited);
        assert_eq!(v.loop_delay_p99_ms, Some(9.0));
        assert!(v.reasons[0].starts_with("n2: "), "{:?}", v.reasons);
        assert_eq!(v.cores, 4);
    }
}
