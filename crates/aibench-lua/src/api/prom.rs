//! `aibench.prom`: the text-format parser, `/metrics` scraping without a
//! Prometheus server, the Prometheus HTTP API client, config rendering.

use aibench_core::prom::client::{Client, PromError};
use aibench_core::prom::config::{self, ConfigSpec};
use aibench_core::prom::expfmt::{self, Family, Histogram};
use mlua::prelude::*;

use crate::binding::{Fallible, OpError};
use crate::convert;

fn labels_table(lua: &Lua, l: &std::collections::BTreeMap<String, String>) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    for (k, v) in l {
        t.set(k.as_str(), v.as_str())?;
    }
    Ok(t)
}

fn hist_table(lua: &Lua, h: &Histogram) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set("labels", labels_table(lua, &h.labels)?)?;
    let b = lua.create_table()?;
    for (i, (le, c)) in h.buckets.iter().enumerate() {
        let pair = lua.create_sequence_from([*le, *c])?;
        b.raw_set(i + 1, pair)?;
    }
    t.set("buckets", b)?;
    t.set("sum", h.sum)?;
    t.set("count", h.count)?;
    Ok(t)
}

/// Families as `{name = {kind, help, samples = {...}, histograms = {...}}}`.
/// Built directly (not through JSON): values may be NaN or ±Inf.
fn families_table(lua: &Lua, fams: &[Family]) -> LuaResult<LuaTable> {
    let out = lua.create_table()?;
    for f in fams {
        let t = lua.create_table()?;
        t.set("name", f.name.as_str())?;
        t.set("kind", serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(str::to_string)))?;
        t.set("help", f.help.as_str())?;
        let samples = lua.create_table()?;
        for (i, s) in f.samples.iter().enumerate() {
            let st = lua.create_table()?;
            st.set("name", s.name.as_str())?;
            st.set("labels", labels_table(lua, &s.labels)?)?;
            st.set("value", s.value)?;
            st.set("timestamp_ms", s.timestamp_ms)?;
            samples.raw_set(i + 1, st)?;
        }
        t.set("samples", samples)?;
        if f.kind == expfmt::Kind::Histogram {
            let hs = lua.create_table()?;
            for (i, h) in f.histograms().iter().enumerate() {
                hs.raw_set(i + 1, hist_table(lua, h)?)?;
            }
            t.set("histograms", hs)?;
        }
        out.set(f.name.as_str(), t)?;
    }
    Ok(out)
}

fn prom_err(e: PromError) -> OpError {
    OpError::new(e.kind(), e.to_string())
}

fn json_result(lua: &Lua, r: Result<serde_json::Value, PromError>) -> LuaResult<Fallible<LuaValue>> {
    match r {
        Ok(v) => Ok(Ok(convert::to_lua(lua, &v)?)),
        Err(e) => Ok(Err(prom_err(e))),
    }
}

/// Prometheus sends sample values as strings ("1.5", "NaN", "+Inf"; Rust's
/// float parser reads the special values, in any case).
fn num(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::String(s) => s.parse().unwrap_or(f64::NAN),
        other => other.as_f64().unwrap_or(f64::NAN),
    }
}

/// Query results as `{{metric = {...}, value = n, time = t}}` or, for ranges,
/// `{{metric = {...}, values = {{t, v}, ...}}}`.
fn series(lua: &Lua, data: &serde_json::Value) -> LuaResult<LuaTable> {
    let out = lua.create_table()?;
    out.set_metatable(Some(lua.array_metatable()))?;
    let kind = data.get("resultType").and_then(|k| k.as_str()).unwrap_or("");
    let empty = Vec::new();
    let result = data.get("result").and_then(|r| r.as_array());
    if kind == "scalar" || kind == "string" {
        let r = data.get("result").cloned().unwrap_or_default();
        let t = lua.create_table()?;
        t.set("metric", lua.create_table()?)?;
        t.set("time", num(&r[0]))?;
        t.set("value", num(&r[1]))?;
        out.raw_set(1, t)?;
        return Ok(out);
    }
    for (i, r) in result.unwrap_or(&empty).iter().enumerate() {
        let t = lua.create_table()?;
        let metric = lua.create_table()?;
        if let Some(m) = r.get("metric").and_then(|m| m.as_object()) {
            for (k, v) in m {
                metric.set(k.as_str(), v.as_str().unwrap_or_default())?;
            }
        }
        t.set("metric", metric)?;
        if let Some(v) = r.get("value") {
            t.set("time", num(&v[0]))?;
            t.set("value", num(&v[1]))?;
        }
        if let Some(vs) = r.get("values").and_then(|v| v.as_array()) {
            let pts = lua.create_table()?;
            for (j, p) in vs.iter().enumerate() {
                pts.raw_set(j + 1, lua.create_sequence_from([num(&p[0]), num(&p[1])])?)?;
            }
            t.set("values", pts)?;
        }
        out.raw_set(i + 1, t)?;
    }
    Ok(out)
}

struct PromClient(Client);

impl LuaUserData for PromClient {
    fn add_fields<F: LuaUserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("url", |_, c| Ok(c.0.base.clone()));
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("query", |lua, c, (q, t): (String, Option<f64>)| async move {
            match c.0.query(&q, t).await {
                Ok(d) => Ok(Ok(series(&lua, &d)?)),
                Err(e) => Ok(Err(prom_err(e))),
            }
        });
        m.add_async_method("query_range", |lua, c, (q, start, end, step): (String, f64, f64, f64)| async move {
            match c.0.query_range(&q, start, end, step).await {
                Ok(d) => Ok(Ok(series(&lua, &d)?)),
                Err(PromError::Invalid(m)) => Err(LuaError::runtime(format!("prom client:query_range: {m}"))),
                Err(e) => Ok(Err(prom_err(e))),
            }
        });
        m.add_async_method("targets", |lua, c, ()| async move {
            let r = c.0.targets().await.map(|d| d.get("activeTargets").cloned().unwrap_or(serde_json::json!([])));
            json_result(&lua, r)
        });
        m.add_async_method("alerts", |lua, c, ()| async move {
            let r = c.0.alerts().await.map(|d| d.get("alerts").cloned().unwrap_or(serde_json::json!([])));
            json_result(&lua, r)
        });
        m.add_async_method("ready", |_, c, ()| async move { Ok(c.0.ready().await.map_err(prom_err)) });
    }
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "parse",
        lua.create_function(|lua, text: LuaString| -> LuaResult<Fallible<LuaTable>> {
            match expfmt::parse(&text.to_string_lossy()) {
                Ok(f) => Ok(Ok(families_table(lua, &f)?)),
                Err(e) => Ok(Err(OpError::new("parse", e.to_string()).with("line", e.line))),
            }
        })?,
    )?;
    t.set(
        "scrape",
        lua.create_async_function(|lua, (url, timeout_s): (String, Option<f64>)| async move {
            let timeout = crate::binding::seconds("prom.scrape", "timeout_s", timeout_s.unwrap_or(10.0))?;
            match aibench_core::prom::scrape(&url, timeout).await {
                Ok(f) => Ok(Ok(families_table(&lua, &f)?)),
                Err(e) => Ok(Err(OpError::new(e.kind, e.message))),
            }
        })?,
    )?;
    t.set(
        "client",
        lua.create_function(|lua, url: String| {
            let c = Client::new(&url).map_err(|e| LuaError::runtime(format!("prom.client: {e}")))?;
            lua.create_userdata(PromClient(c))
        })?,
    )?;
    t.set(
        "render_config",
        lua.create_function(|lua, spec: LuaValue| {
            let s: ConfigSpec = convert::from_lua_typed(lua, &spec, "prom.render_config")?;
            s.render().map_err(|e| LuaError::runtime(format!("prom.render_config: {e}")))
        })?,
    )?;
    t.set(
        "quantile",
        lua.create_function(|_, (q, h): (f64, LuaTable)| {
            let mut buckets = Vec::new();
            for pair in h.get::<LuaTable>("buckets")?.sequence_values::<LuaTable>() {
                let p = pair?;
                buckets.push((p.get::<f64>(1)?, p.get::<f64>(2)?));
            }
            let hist = Histogram {
                labels: Default::default(),
                buckets,
                sum: h.get("sum").unwrap_or(0.0),
                count: h.get("count").unwrap_or(0.0),
            };
            let (bound, first) = hist.quantile_bucket(q);
            Ok((hist.quantile(q), bound, first))
        })?,
    )?;
    t.set("valid_duration", lua.create_function(|_, s: String| Ok(config::valid_duration(&s)))?)?;
    t.set(
        "duration_s",
        lua.create_function(|_, s: String| -> LuaResult<Fallible<f64>> {
            Ok(config::duration_seconds(&s).map_err(|m| OpError::new("invalid", m)))
        })?,
    )?;
    Ok(t)
}
