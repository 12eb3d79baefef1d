//! The machine's own timer floor, for bench/wire_speed.sh: how late a thread
//! wakes from `sleep(interval)`, with the same 1 µs timer slack the load
//! generator's pacer sets, measured here alone on whatever CPU the
//! caller pins it to. The open loop's send lag is then read as a multiple
//! of this floor.
//!
//!   sleep_floor INTERVAL_US [N=20000]
//!
//! Prints one JSON line: the overshoot's p50, p99, p99.9 and max in ms.

use std::time::{Duration, Instant};

fn main() -> Result<(), String> {
    let a: Vec<String> = std::env::args().collect();
    let usage = || "usage: sleep_floor INTERVAL_US [N=20000]".to_string();
    let interval_us: u64 = a.get(1).and_then(|s| s.parse().ok()).ok_or_else(usage)?;
    let n: usize = match a.get(2) {
        Some(s) => s.parse().map_err(|_| usage())?,
        None => 20_000,
    };
    aibench_core::loadgen::timer::set_timer_slack();
    let interval = Duration::from_micros(interval_us);
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    for _ in 0..n {
        let deadline = Instant::now() + interval;
        std::thread::sleep(interval);
        let late = Instant::now().saturating_duration_since(deadline).as_micros() as u64;
        h.saturating_record(late.max(1));
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        serde_json::json!({"interval_us": interval_us, "n": n, "p50": ms(0.5), "p99": ms(0.99), "p999": ms(0.999),
                           "max": h.max() as f64 / 1000.0})
    );
    Ok(())
}
