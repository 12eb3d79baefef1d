//! Wall-clock time for results and logs: Unix seconds and ISO-8601.

use chrono::{DateTime, SecondsFormat, Utc};

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    d.as_secs_f64()
}

/// Seconds since the Unix epoch -> `2026-11-27T18:00:00.123Z`.
pub fn format_iso(t: f64) -> Option<String> {
    let secs = t.floor() as i64;
    let nanos = ((t - t.floor()) * 1e9).round().min(999_999_999.0) as u32;
    DateTime::<Utc>::from_timestamp(secs, nanos).map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The current time as [`format_iso`] writes it (empty if out of range).
pub fn now_iso() -> String {
    format_iso(now()).unwrap_or_default()
}

/// A UTC time formatted with a strftime pattern (`%Y%m%dT%H%M%SZ`).
pub fn format_utc(t: f64, fmt: &str) -> Result<String, String> {
    let d = DateTime::<Utc>::from_timestamp(t.floor() as i64, 0).ok_or_else(|| format!("{t} is out of range"))?;
    let mut out = String::new();
    use std::fmt::Write;
    write!(out, "{}", d.format(fmt)).map_err(|_| format!("invalid format string '{fmt}'"))?;
    Ok(out)
}

/// ISO-8601 / RFC 3339 (with offset or `Z`; a bare date-time is read as UTC).
pub fn parse_iso(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp() as f64 + d.timestamp_subsec_nanos() as f64 / 1e9);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            let d = n.and_utc();
            return Ok(d.timestamp() as f64 + d.timestamp_subsec_nanos() as f64 / 1e9);
        }
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp() as f64).unwrap_or(0.0));
    }
    Err(format!("'{s}' is not an ISO-8601 time (expected e.g. 2026-11-27T18:00:00Z)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        let t = 1_795_802_000.25;
        let s = format_iso(t).unwrap();
        assert_eq!(s, "2026-11-27T17:53:20.250Z");
        assert!((parse_iso(&s).unwrap() - t).abs() < 1e-6);
        assert_eq!(parse_iso("2026-11-27T18:53:20+01:00").unwrap(), 1_795_802_000.0);
        assert!(parse_iso("yesterday").is_err());
        assert_eq!(format_utc(t, "%Y%m%dT%H%M%SZ").unwrap(), "20261127T175320Z");
    }
}
