//! `aibench.time`: wall and monotonic clocks, async sleep, ISO-8601.

use std::sync::OnceLock;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use mlua::prelude::*;

use super::{Fallible, OpError};

fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

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

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    epoch();
    let t = lua.create_table()?;
    t.set("now", lua.create_function(|_, ()| Ok(now()))?)?;
    t.set("monotonic", lua.create_function(|_, ()| Ok(epoch().elapsed().as_secs_f64()))?)?;
    t.set(
        "sleep",
        lua.create_async_function(|_, s: f64| async move {
            let d = super::seconds("time.sleep", "duration", s)?;
            tokio::time::sleep(d).await;
            Ok(())
        })?,
    )?;
    t.set(
        "format",
        lua.create_function(|_, (t, fmt): (Option<f64>, Option<String>)| {
            let t = t.unwrap_or_else(now);
            match fmt {
                None => format_iso(t).ok_or_else(|| LuaError::runtime(format!("time.format: {t} is out of range"))),
                Some(f) => {
                    let secs = t.floor() as i64;
                    let d = DateTime::<Utc>::from_timestamp(secs, 0)
                        .ok_or_else(|| LuaError::runtime(format!("time.format: {t} is out of range")))?;
                    let mut out = String::new();
                    use std::fmt::Write;
                    write!(out, "{}", d.format(&f))
                        .map_err(|_| LuaError::runtime(format!("time.format: invalid format string '{f}'")))?;
                    Ok(out)
                }
            }
        })?,
    )?;
    t.set(
        "parse",
        lua.create_function(|_, s: String| -> LuaResult<Fallible<f64>> {
            Ok(parse_iso(&s).map_err(|m| OpError::new("parse", m)))
        })?,
    )?;
    Ok(t)
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
    }
}
