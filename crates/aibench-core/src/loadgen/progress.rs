//! Progress of a running benchmark: a snapshot about once a second, the
//! rate over a sliding window, and the terminal line that shows them (a bar
//! of elapsed against planned time, or done against planned requests, and
//! fields of fixed width, so nothing jumps as the numbers grow).

use std::collections::VecDeque;
use std::io::IsTerminal;

use super::spec::Workload;

/// The rates are taken over this many seconds: long enough that users in
/// lock-step (a burst of 20 every 2 s) do not read 0 and 20 by turns.
pub const RATE_WINDOW_S: f64 = 5.0;

/// What a run plans to do: a length in seconds (warmup included, as the
/// elapsed time is), and/or a number of measured requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Plan {
    pub seconds: Option<f64>,
    pub requests: Option<u64>,
}

impl Plan {
    /// The plan a workload states; sessions count sessions, not requests,
    /// and a trace without a bound runs as long as its file: their length
    /// in requests is unknown.
    pub fn of(w: &Workload) -> Plan {
        let measured = |n: Option<u64>, warmup: u64| n.map(|n| n.saturating_sub(warmup)).filter(|n| *n > 0);
        match w {
            Workload::ClosedLoop(w) => Plan {
                seconds: w.duration_s.map(|d| d + w.warmup_s),
                requests: measured(
                    w.total_requests.or(w.requests_per_user.map(|n| n.saturating_mul(w.users))),
                    w.warmup_requests,
                ),
            },
            Workload::OpenLoop(w) => Plan {
                seconds: w.duration_s.map(|d| d + w.warmup_s),
                requests: measured(w.total_requests, w.warmup_requests),
            },
            Workload::Trace(w) => {
                Plan { seconds: w.duration_s, requests: measured(w.total_requests, w.warmup_requests) }
            }
            Workload::Sessions(w) => Plan { seconds: w.duration_s, requests: None },
        }
    }
}

/// A once-a-second view of a running benchmark.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Progress {
    pub elapsed_s: f64,
    pub completed: u64,
    pub errors: u64,
    pub in_flight: i64,
    /// Finished requests (successes and errors) per second over the last
    /// [`RATE_WINDOW_S`] seconds (see [`RateWindow`]).
    pub req_per_s: f64,
    /// Output tokens per second, over the same window.
    pub output_tokens_per_s: f64,
    pub p50_ttft_ms: Option<f64>,
    pub p50_latency_ms: Option<f64>,
    /// The run's planned length in seconds (warmup included), if it has one.
    pub planned_s: Option<f64>,
    /// The measured requests it plans, when a count bounds it.
    pub planned_requests: Option<u64>,
}

/// Cells of the bar between its brackets.
const BAR_CELLS: usize = 20;

/// `m:ss` (or `h:mm:ss`), for the ETA.
fn clock(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Decimal digits of `n` (its printed width).
fn digits(n: u64) -> usize {
    n.to_string().len()
}

impl Progress {
    /// Done (finished) requests.
    pub fn done(&self) -> u64 {
        self.completed + self.errors
    }

    /// How far the run is, 0 to 1, by the bound that is nearer its end; and
    /// the seconds left, by the bound that ends first (None without a plan,
    /// or for a count while nothing has finished).
    pub fn fraction_and_eta(&self) -> (Option<f64>, Option<f64>) {
        let by_time = self.planned_s.filter(|p| *p > 0.0).map(|p| (self.elapsed_s / p, p - self.elapsed_s));
        let by_count = self.planned_requests.filter(|n| *n > 0).map(|n| {
            let left = n.saturating_sub(self.done()) as f64;
            (self.done() as f64 / n as f64, (self.req_per_s > 0.0).then(|| left / self.req_per_s))
        });
        let fraction = [by_time.map(|t| t.0), by_count.map(|c| c.0)].into_iter().flatten().reduce(f64::max);
        let eta = [by_time.map(|t| t.1), by_count.and_then(|c| c.1)].into_iter().flatten().reduce(f64::min);
        (fraction.map(|f| f.clamp(0.0, 1.0)), eta.map(|e| e.max(0.0)))
    }

    /// Where the run is against its plan, at a width fixed for the run:
    /// `[#####...............]  25%   7.5/30 s   ETA 0:23`, counted in
    /// requests when no duration bounds it; the elapsed time alone without
    /// a plan.
    fn position(&self) -> String {
        let (fraction, eta) = self.fraction_and_eta();
        let Some(f) = fraction else {
            return format!("{:>6.1} s elapsed", self.elapsed_s);
        };
        let full = ((f * BAR_CELLS as f64).floor() as usize).min(BAR_CELLS);
        let bar = format!("[{}{}]", "#".repeat(full), ".".repeat(BAR_CELLS - full));
        let amount = match (self.planned_s, self.planned_requests) {
            (Some(p), _) => {
                // Room for the run's end past its plan (the grace for requests in flight).
                let w = digits(p.ceil() as u64 + 10) + 2;
                format!("{:>w$.1}/{p:.0} s", self.elapsed_s)
            }
            (None, Some(n)) => format!("{:>w$}/{n} req", self.done(), w = digits(n)),
            (None, None) => String::new(),
        };
        let eta = eta.map_or_else(|| "-".to_string(), clock);
        format!("{bar} {:>3.0}%  {amount}  ETA {eta:>5}", f * 100.0)
    }

    /// The one line a person reads: position against the plan, then rate,
    /// in flight, done, errors, p50, tokens, each at a fixed width.
    pub fn line(&self) -> String {
        let p50 = match (self.p50_ttft_ms, self.p50_latency_ms) {
            (Some(t), _) => format!("TTFT p50 {t:>7.1} ms"),
            (None, Some(l)) => format!("E2E p50  {l:>7.1} ms"),
            (None, None) => format!("TTFT p50 {:>7} ms", "-"),
        };
        format!(
            "{}  {:>6.1} req/s  {:>4} in flight  {:>7} done  {:>5} errors  {p50}  {:>6.0} tok/s",
            self.position(),
            self.req_per_s,
            self.in_flight,
            self.done(),
            self.errors,
            self.output_tokens_per_s
        )
    }
}

/// A rate over a sliding window of once-a-second counter readings.
///
/// Requests that finish in bursts (closed-loop users in lock-step: 20
/// finish every 2 s) make a plain per-window count alias: a 5 s window
/// holds two bursts or three by turns and reads 8 or 12. So the rate is
/// taken between the first and the last reading in the window at which the
/// counter moved: what finished after the first of those, over the time
/// between them. Bursts every 2 s read 10/s at every reading. When the
/// counter stops moving the time since it last moved, less one usual gap
/// between moves, counts too: the rate falls off rather than holding its
/// last value, and is 0 once the window holds no move.
#[derive(Debug, Clone)]
pub struct RateWindow {
    span_s: f64,
    /// (seconds, counter), oldest first: those in the window and the one before.
    readings: VecDeque<(f64, u64)>,
}

impl RateWindow {
    /// A window of `span_s` seconds over a counter that was 0 at time 0.
    pub fn new(span_s: f64) -> RateWindow {
        RateWindow { span_s, readings: VecDeque::from([(0.0, 0)]) }
    }

    /// Adds a reading and returns the rate per second.
    pub fn push(&mut self, t: f64, count: u64) -> f64 {
        self.readings.push_back((t, count));
        let start = t - self.span_s - 1e-9;
        // Keep one reading before the window: it tells whether the first
        // reading inside it moved.
        while self.readings.len() > 2 && self.readings[1].0 < start {
            self.readings.pop_front();
        }
        let moves: Vec<(f64, u64)> = self
            .readings
            .iter()
            .zip(self.readings.iter().skip(1))
            .filter(|(prev, r)| r.0 >= start && r.1 > prev.1)
            .map(|(_, r)| *r)
            .collect();
        match moves.as_slice() {
            [] => 0.0,
            [only] => {
                let before = self.readings.iter().rev().find(|r| r.0 < only.0).map_or(0, |r| r.1);
                // Early in a run the window is as long as the run so far.
                (only.1 - before) as f64 / self.span_s.min(t).max(1e-9)
            }
            [first, .., last] => {
                let span = last.0 - first.0;
                let gap = span / (moves.len() - 1) as f64;
                let quiet = t - first.0 - gap;
                (last.1 - first.1) as f64 / span.max(quiet).max(1e-9)
            }
        }
    }
}

/// Columns of the terminal a standard stream (`fd` 1 or 2) writes to, when
/// it is one: a line updated in place must fit in it, or it wraps and the
/// next update cannot overwrite it.
pub fn terminal_columns(fd: i32) -> Option<u16> {
    // SAFETY: a zeroed winsize is a valid value; TIOCGWINSZ only writes it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl reads `fd` and writes into `ws`, which outlives it.
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(ws.ws_col)
}

/// A spinner on stderr with the latest progress line; nothing when stderr
/// is not a terminal (piped output stays clean).
pub struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    pub fn new(wanted: bool) -> Bar {
        Bar((wanted && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            // `wide_msg`: the line is cut to the terminal's width, never
            // wrapped (a wrapped line is redrawn as garbage).
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {wide_msg}")
                    .unwrap_or(indicatif::ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(200));
            b
        }))
    }

    pub fn show(&self, p: &Progress) {
        if let Some(b) = &self.0 {
            b.set_message(p.line());
        }
    }

    /// A note above the spinner (or on stderr without one).
    pub fn note(&self, text: &str) {
        match &self.0 {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.0 {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lock-step users: 20 finish together every 2 s (`phase` s after the
    /// readings' tick), read once a second.
    fn lock_step(phase: f64) -> Vec<f64> {
        let mut w = RateWindow::new(RATE_WINDOW_S);
        (1..=30)
            .map(|t| {
                let t = t as f64;
                let bursts = ((t - phase) / 2.0).floor().max(0.0) as u64;
                w.push(t, bursts * 20)
            })
            .collect()
    }

    #[test]
    fn lock_step_bursts_read_a_steady_rate() {
        for phase in [0.0, 0.5, 1.0, 1.5] {
            let rates = lock_step(phase);
            // Once the window holds two bursts, every reading is 10/s.
            for (i, r) in rates.iter().enumerate().skip(5) {
                assert!((r - 10.0).abs() < 1e-9, "phase {phase}, t={}: {r} ({rates:?})", i + 1);
            }
        }
    }

    #[test]
    fn a_steady_flow_reads_its_rate_and_a_stall_falls_to_zero() {
        let mut w = RateWindow::new(RATE_WINDOW_S);
        // The first reading already shows the rate (not a fifth of it).
        let first = w.push(1.0, 7);
        assert!((first - 7.0).abs() < 1e-9, "{first}");
        let mut last = first;
        for t in 2..=10 {
            last = w.push(t as f64, 7 * t);
        }
        assert!((last - 7.0).abs() < 1e-9, "{last}");
        // Nothing finishes from t=10 on: the rate falls, then is 0.
        let after: Vec<f64> = (11..=16).map(|t| w.push(t as f64, 70)).collect();
        assert!(after.windows(2).all(|p| p[1] <= p[0]), "{after:?}");
        assert!(after[1] < 7.0, "{after:?}");
        assert_eq!(*after.last().unwrap(), 0.0, "{after:?}");
    }

    #[test]
    fn no_move_reads_zero_and_one_move_is_spread_over_the_window() {
        let mut w = RateWindow::new(RATE_WINDOW_S);
        assert_eq!(w.push(1.0, 0), 0.0);
        // Two seconds into the run, the window is those two seconds.
        assert_eq!(w.push(2.0, 10), 10.0 / 2.0);
        // Later, one move is spread over the whole window.
        let mut w = RateWindow::new(RATE_WINDOW_S);
        for t in 1..=10 {
            w.push(t as f64, 0);
        }
        assert_eq!(w.push(11.0, 10), 10.0 / RATE_WINDOW_S);
    }

    fn snapshot(elapsed: f64, done: u64, plan: Plan) -> Progress {
        Progress {
            elapsed_s: elapsed,
            completed: done.saturating_sub(done / 10),
            errors: done / 10,
            in_flight: (done % 64) as i64,
            req_per_s: done as f64 / elapsed.max(1.0),
            output_tokens_per_s: done as f64 * 12.5,
            p50_ttft_ms: (done > 0).then_some(12.345 * done as f64),
            p50_latency_ms: (done > 0).then_some(100.0),
            planned_s: plan.seconds,
            planned_requests: plan.requests,
        }
    }

    #[test]
    fn the_line_keeps_its_width_as_the_numbers_grow() {
        for plan in [
            Plan { seconds: Some(30.0), requests: None },
            Plan { seconds: None, requests: Some(5000) },
            Plan { seconds: Some(600.0), requests: Some(100) },
            Plan::default(),
        ] {
            let lines: Vec<String> = [(0.0, 0), (1.0, 3), (7.5, 120), (29.9, 4999), (30.0, 5000)]
                .map(|(e, d)| snapshot(e, d, plan).line())
                .into();
            let width = lines[0].chars().count();
            for l in &lines {
                assert_eq!(l.chars().count(), width, "{plan:?}:\n{}", lines.join("\n"));
            }
            // Each field starts in the same column in every line.
            for field in ["req/s", "in flight", "done", "errors", "TTFT p50", "tok/s"] {
                let cols: Vec<Option<usize>> = lines.iter().map(|l| l.find(field)).collect();
                assert!(
                    cols.iter().all(|c| c.is_some() && *c == cols[0]),
                    "{field} moves: {cols:?}\n{}",
                    lines.join("\n")
                );
            }
        }
    }

    #[test]
    fn the_line_shows_elapsed_against_planned_with_a_bar_and_eta() {
        let l = snapshot(7.5, 120, Plan { seconds: Some(30.0), requests: None }).line();
        assert!(l.starts_with("[#####...............]  25%   7.5/30 s  ETA  0:23    16.0 req/s"), "{l}");
        let l = snapshot(10.0, 250, Plan { seconds: None, requests: Some(1000) }).line();
        // 750 left at 25 req/s: 30 s.
        assert!(l.starts_with("[#####...............]  25%   250/1000 req  ETA  0:30"), "{l}");
        let l = snapshot(3.0, 0, Plan::default()).line();
        assert!(l.starts_with("   3.0 s elapsed"), "{l}");
        assert!(l.contains("TTFT p50       - ms"), "{l}");
    }

    #[test]
    fn plans_from_workloads() {
        let w = |v: serde_json::Value| Workload::from_json(v, "workload").unwrap();
        assert_eq!(
            Plan::of(&w(serde_json::json!({"pattern": "closed-loop", "users": 4, "duration_s": 30, "warmup_s": 5}))),
            Plan { seconds: Some(35.0), requests: None }
        );
        assert_eq!(
            Plan::of(&w(
                serde_json::json!({"pattern": "closed-loop", "users": 4, "requests_per_user": 10, "warmup_requests": 4})
            )),
            Plan { seconds: None, requests: Some(36) }
        );
        assert_eq!(
            Plan::of(&w(serde_json::json!({"pattern": "open-loop", "rate": 5, "total_requests": 100}))),
            Plan { seconds: None, requests: Some(100) }
        );
    }
}
