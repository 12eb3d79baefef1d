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

/// How far past its limit a figure must be to count as clearly limited, as
/// a share of the limit: a figure over its limit by at most this much is
/// within the noise of one run ("borderline"), not a verdict. The limits
/// are budgets, not cliffs: a loop delay p99 of 5.1 ms against 5 ms says
/// "look again", not "these numbers are the client's".
pub const BORDERLINE_MARGIN: f64 = 0.20;
/// The CPU share is clearly limited from here; from [`CPU_UTIL_MAX`] up to
/// it, borderline. A share cannot pass 100%, so 20% of 90% would leave no
/// clear case: its margin is 5 points.
pub const CPU_UTIL_CLEAR: f64 = 0.95;

/// Where one figure stands against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// At or under its limit.
    Ok,
    /// Over its limit, but by no more than the margin.
    Borderline,
    /// Clearly over.
    Limited,
}

/// `value` against a limit it must not pass (`> limit`), clearly passed
/// beyond `clear`.
fn level(value: f64, limit: f64, clear: f64) -> Level {
    if value > clear {
        Level::Limited
    } else if value > limit {
        Level::Borderline
    } else {
        Level::Ok
    }
}

/// A time limit's level: clearly passed beyond [`BORDERLINE_MARGIN`] over it.
fn time_level(value: f64, limit: f64) -> Level {
    level(value, limit, limit * (1.0 + BORDERLINE_MARGIN))
}

/// The CPU share's level (its limit is reached at, not past, 90%).
fn cpu_level(share: f64) -> Level {
    if share >= CPU_UTIL_CLEAR {
        Level::Limited
    } else if share >= CPU_UTIL_MAX {
        Level::Borderline
    } else {
        Level::Ok
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Validity {
    /// The client clearly limited the load: read `reasons`.
    pub client_limited: bool,
    /// Not clearly limited, but a figure is over its limit within the
    /// margin (read `borderline`). Results from before it read as `false`.
    #[serde(default)]
    pub client_limited_borderline: bool,
    /// Why the client was clearly limited (empty otherwise).
    pub reasons: Vec<String>,
    /// Each figure over its limit within the margin, with the limit:
    /// "loop delay p99 5.1 ms vs 5 ms limit".
    #[serde(default)]
    pub borderline: Vec<String>,
    /// The measurements the verdict rests on.
    pub cpu_util: f64,
    pub cores: u64,
    pub loop_delay_p99_ms: Option<f64>,
    pub send_lag_p99_ms: Option<f64>,
    pub connect_p99_ms: Option<f64>,
    pub connects: u64,
    pub client_gap_ms: Option<f64>,
}

impl Validity {
    /// "limited", "borderline" or "ok": what the reports print and colour.
    pub fn verdict(&self) -> &'static str {
        if self.client_limited {
            "limited"
        } else if self.client_limited_borderline {
            "borderline"
        } else {
            "ok"
        }
    }

    /// Marks the run clearly limited for a reason found outside [`judge`]
    /// (requests that were never sent).
    pub fn limit(&mut self, reason: String) {
        self.client_limited = true;
        self.client_limited_borderline = false;
        self.reasons.push(reason);
    }
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

/// A figure just over its limit, with enough decimals that it does not
/// print as the limit itself (5.04 is "5.04", not "5.0", against 5).
fn over(d: f64, limit: f64) -> String {
    (1..=3).map(|n| format!("{d:.n$}")).find(|s| s.parse::<f64>().ok() != Some(limit)).unwrap_or_else(|| d.to_string())
}

/// One figure held against its limit: its level, the reason given when it
/// is clearly over, and the short note given when it is borderline.
struct Check {
    level: Level,
    reason: String,
    note: String,
}

fn checks(m: &Measured) -> Vec<Check> {
    let mut out = Vec::new();
    if m.wall_s >= CPU_MIN_WALL_S {
        let pct = m.cpu_util * 100.0;
        out.push(Check {
            level: cpu_level(m.cpu_util),
            reason: format!(
                "the client process used {pct:.0}% of its {} core(s) (limit {:.0}%)",
                m.cores,
                CPU_UTIL_MAX * 100.0
            ),
            note: format!("cpu {pct:.0}% of {} core(s) vs {:.0}% limit", m.cores, CPU_UTIL_MAX * 100.0),
        });
    }
    if let Some(d) = m.loop_delay_p99_ms.filter(|_| m.loop_delay_samples >= PROBE_MIN_SAMPLES) {
        out.push(Check {
            level: time_level(d, LOOP_DELAY_P99_MAX_MS),
            reason: format!(
                "its event loop ran late: a {PROBE_PERIOD_MS} ms probe timer fired {d:.1} ms late at p99 (limit {LOOP_DELAY_P99_MAX_MS} ms)"
            ),
            note: format!("loop delay p99 {} ms vs {LOOP_DELAY_P99_MAX_MS} ms limit", over(d, LOOP_DELAY_P99_MAX_MS)),
        });
    }
    if let Some(d) = m.send_lag_p99_ms {
        out.push(Check {
            level: time_level(d, SEND_LAG_P99_MAX_MS),
            reason: format!(
                "it sent late: p99 send lag {d:.1} ms behind the schedule (limit {SEND_LAG_P99_MAX_MS} ms)"
            ),
            note: format!("send lag p99 {} ms vs {SEND_LAG_P99_MAX_MS} ms limit", over(d, SEND_LAG_P99_MAX_MS)),
        });
    }
    if let Some(d) = m.connect_p99_ms {
        out.push(Check {
            level: time_level(d, CONNECT_P99_MAX_MS),
            reason: format!(
                "requests waited for connections: p99 {d:.1} ms to open one of {} new connections (limit {CONNECT_P99_MAX_MS} ms)",
                m.connects
            ),
            note: format!("connect p99 {} ms vs {CONNECT_P99_MAX_MS} ms limit", over(d, CONNECT_P99_MAX_MS)),
        });
    }
    if let Some(d) = m.client_gap_ms {
        out.push(Check {
            level: time_level(d, CLIENT_GAP_MAX_MS),
            reason: format!(
                "users sent late: {d:.1} ms on average between a response and the next request, beyond the think time (limit {CLIENT_GAP_MAX_MS} ms)"
            ),
            note: format!("client gap {} ms (mean, beyond think time) vs {CLIENT_GAP_MAX_MS} ms limit", over(d, CLIENT_GAP_MAX_MS)),
        });
    }
    out
}

/// The verdict: clearly limited when a figure is past its limit by more
/// than the margin ([`BORDERLINE_MARGIN`]; the CPU share from
/// [`CPU_UTIL_CLEAR`]); borderline when none is, but one is over its limit
/// within the margin; else not limiting.
pub fn judge(m: &Measured) -> Validity {
    let (mut reasons, mut borderline) = (Vec::new(), Vec::new());
    for c in checks(m) {
        match c.level {
            Level::Limited => reasons.push(c.reason),
            Level::Borderline => borderline.push(c.note),
            Level::Ok => {}
        }
    }
    Validity {
        client_limited: !reasons.is_empty(),
        client_limited_borderline: reasons.is_empty() && !borderline.is_empty(),
        reasons,
        borderline,
        cpu_util: m.cpu_util,
        cores: m.cores,
        loop_delay_p99_ms: m.loop_delay_p99_ms,
        send_lag_p99_ms: m.send_lag_p99_ms,
        connect_p99_ms: m.connect_p99_ms,
        connects: m.connects,
        client_gap_ms: m.client_gap_ms,
    }
}

/// Each client's texts, prefixed with its host when there are several.
fn with_hosts(all: &[&Validity], hosts: &[&str], texts: impl Fn(&Validity) -> &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (v, host) in all.iter().zip(hosts.iter().chain(std::iter::repeat(&""))) {
        for r in texts(v) {
            let r = if host.is_empty() { r.clone() } else { format!("{host}: {r}") };
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// Several clients: limited when any was, borderline when none was and
/// any was borderline; each measurement is the worst.
pub fn merge(all: &[&Validity], hosts: &[&str]) -> Validity {
    let worst = |f: &dyn Fn(&Validity) -> Option<f64>| all.iter().filter_map(|v| f(v)).reduce(f64::max);
    let client_limited = all.iter().any(|v| v.client_limited);
    Validity {
        client_limited,
        client_limited_borderline: !client_limited && all.iter().any(|v| v.client_limited_borderline),
        reasons: with_hosts(all, hosts, |v| &v.reasons),
        borderline: with_hosts(all, hosts, |v| &v.borderline),
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

    fn with(set: impl Fn(&mut Measured)) -> Validity {
        let mut m = calm();
        set(&mut m);
        judge(&m)
    }

    #[test]
    fn just_over_a_limit_is_borderline_with_the_figure_not_limited() {
        // Issue 23: 5.1 ms against 5 ms was a red CLIENT-LIMITED banner.
        let v = with(|m| m.loop_delay_p99_ms = Some(5.1));
        assert!(!v.client_limited, "{:?}", v.reasons);
        assert!(v.client_limited_borderline);
        assert_eq!(v.verdict(), "borderline");
        assert!(v.reasons.is_empty(), "{:?}", v.reasons);
        assert_eq!(v.borderline, ["loop delay p99 5.1 ms vs 5 ms limit"]);
    }

    #[test]
    fn the_time_limits_around_their_thresholds() {
        type Set = fn(&mut Measured, f64);
        let cases: [(&str, f64, Set); 4] = [
            ("loop delay", LOOP_DELAY_P99_MAX_MS, |m, x| m.loop_delay_p99_ms = Some(x)),
            ("send lag", SEND_LAG_P99_MAX_MS, |m, x| m.send_lag_p99_ms = Some(x)),
            ("connect", CONNECT_P99_MAX_MS, |m, x| m.connect_p99_ms = Some(x)),
            ("client gap", CLIENT_GAP_MAX_MS, |m, x| m.client_gap_ms = Some(x)),
        ];
        for (word, limit, set) in cases {
            let at = |x: f64| with(|m| set(m, x));
            // At the limit: within it. Just over, and up to 20% over: borderline.
            assert_eq!(at(limit).verdict(), "ok", "{word} at its limit");
            for x in [limit * 1.01, limit * 1.1, limit * 1.199] {
                let v = at(x);
                assert_eq!(v.verdict(), "borderline", "{word} at {x}");
                assert_eq!(v.borderline.len(), 1, "{word}: {:?}", v.borderline);
                assert!(v.borderline[0].starts_with(word), "{word}: {}", v.borderline[0]);
                assert!(v.borderline[0].ends_with(&format!("vs {limit} ms limit")), "{}", v.borderline[0]);
                assert!(
                    !v.borderline[0].contains(&format!(" {limit:.1} ms vs")),
                    "the figure prints as the limit: {}",
                    v.borderline[0]
                );
            }
            // Past the margin: clearly limited, with the long reason.
            let v = at(limit * 1.201);
            assert_eq!(v.verdict(), "limited", "{word}");
            assert!(v.client_limited && !v.client_limited_borderline);
            assert_eq!(v.reasons.len(), 1);
            assert!(v.borderline.is_empty());
        }
    }

    #[test]
    fn the_cpu_share_around_its_threshold() {
        let at = |x: f64| with(|m| m.cpu_util = x);
        assert_eq!(at(0.899).verdict(), "ok");
        assert_eq!(at(0.90).verdict(), "borderline");
        assert_eq!(at(0.92).borderline, ["cpu 92% of 2 core(s) vs 90% limit"]);
        assert_eq!(at(0.949).verdict(), "borderline");
        assert_eq!(at(0.95).verdict(), "limited");
        assert_eq!(at(1.0).verdict(), "limited");
    }

    #[test]
    fn a_clear_case_wins_over_a_borderline_one_which_is_still_listed() {
        let v = with(|m| {
            m.loop_delay_p99_ms = Some(5.2);
            m.client_gap_ms = Some(30.0);
        });
        assert_eq!(v.verdict(), "limited");
        assert!(!v.client_limited_borderline);
        assert_eq!(v.reasons.len(), 1);
        assert!(v.reasons[0].contains("think time"), "{:?}", v.reasons);
        assert_eq!(v.borderline, ["loop delay p99 5.2 ms vs 5 ms limit"]);
    }

    #[test]
    fn requests_not_sent_make_a_borderline_run_limited() {
        let mut v = with(|m| m.loop_delay_p99_ms = Some(5.1));
        v.limit("3 scheduled requests were not sent".into());
        assert_eq!(v.verdict(), "limited");
        assert!(!v.client_limited_borderline);
    }

    #[test]
    fn an_older_result_without_the_new_fields_reads_as_it_was() {
        let old = r#"{"client_limited": true, "reasons": ["its event loop ran late"], "cpu_util": 0.2, "cores": 2,
            "loop_delay_p99_ms": 9.0, "send_lag_p99_ms": null, "connect_p99_ms": null, "connects": 0, "client_gap_ms": null}"#;
        let v: Validity = serde_json::from_str(old).unwrap();
        assert_eq!(v.verdict(), "limited");
        assert!(v.borderline.is_empty());
        let calm: Validity = serde_json::from_str(&old.replace("true", "false")).unwrap();
        assert_eq!(calm.verdict(), "ok");
    }

    #[test]
    fn merge_is_borderline_only_when_no_client_was_limited() {
        let ok = judge(&calm());
        let near = with(|m| m.loop_delay_p99_ms = Some(5.5));
        let far = with(|m| m.loop_delay_p99_ms = Some(50.0));
        let v = merge(&[&ok, &near], &["n1", "n2"]);
        assert_eq!(v.verdict(), "borderline");
        assert_eq!(v.borderline, ["n2: loop delay p99 5.5 ms vs 5 ms limit"]);
        let v = merge(&[&near, &far], &["n1", "n2"]);
        assert_eq!(v.verdict(), "limited");
        assert!(!v.client_limited_borderline);
        assert_eq!(v.borderline.len(), 1);
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
