//! `aibench.time`: wall and monotonic clocks, async sleep, ISO-8601.

use std::sync::OnceLock;
use std::time::Instant;

use aibench_core::clock;
use mlua::prelude::*;

use crate::binding::{Fallible, OpError};

fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    epoch();
    let t = lua.create_table()?;
    t.set("now", lua.create_function(|_, ()| Ok(clock::now()))?)?;
    t.set("monotonic", lua.create_function(|_, ()| Ok(epoch().elapsed().as_secs_f64()))?)?;
    t.set(
        "sleep",
        lua.create_async_function(|_, s: f64| async move {
            let d = crate::binding::seconds("time.sleep", "duration", s)?;
            tokio::time::sleep(d).await;
            Ok(())
        })?,
    )?;
    t.set(
        "format",
        lua.create_function(|_, (t, fmt): (Option<f64>, Option<String>)| {
            let t = t.unwrap_or_else(clock::now);
            match fmt {
                None => {
                    clock::format_iso(t).ok_or_else(|| LuaError::runtime(format!("time.format: {t} is out of range")))
                }
                Some(f) => clock::format_utc(t, &f).map_err(|e| LuaError::runtime(format!("time.format: {e}"))),
            }
        })?,
    )?;
    t.set(
        "parse",
        lua.create_function(|_, s: String| -> LuaResult<Fallible<f64>> {
            Ok(clock::parse_iso(&s).map_err(|m| OpError::new("parse", m)))
        })?,
    )?;
    Ok(t)
}
