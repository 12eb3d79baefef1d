//! `aibench.bench`: the load generator. `bench.run(spec)` hands a declarative
//! spec to the engine (`src/loadgen`), which runs without calling Lua; Lua
//! only sees progress snapshots (about once a second) and the result.

use aibench_core::loadgen::{self, Control, Report, RunError, progress::Bar};
use mlua::prelude::*;
use tokio::sync::{mpsc, watch};

use super::{Fallible, OpError, convert};

/// Keys of the spec table that are not data.
const HOOKS: &[&str] = &["progress", "on_progress"];

fn spec_json(lua: &Lua, t: &LuaTable) -> LuaResult<serde_json::Value> {
    let copy = lua.create_table()?;
    for kv in t.pairs::<LuaValue, LuaValue>() {
        let (k, v) = kv?;
        if let LuaValue::String(s) = &k
            && HOOKS.contains(&s.to_str()?.as_ref())
        {
            continue;
        }
        copy.raw_set(k, v)?;
    }
    convert::to_json(lua, &LuaValue::Table(copy))
        .map_err(|e| LuaError::runtime(format!("bench.run: {}", super::error_text(&e))))
}

/// Parses and validates a spec table; raises with the field named.
pub fn parse_spec(lua: &Lua, t: &LuaTable) -> LuaResult<loadgen::BenchSpec> {
    let json = spec_json(lua, t)?;
    let spec = loadgen::spec_from_json(json).map_err(|e| LuaError::runtime(format!("bench.run: {e}")))?;
    spec.validate().map_err(|e| LuaError::runtime(format!("bench.run: {e}")))?;
    Ok(spec)
}

fn report_to_lua(lua: &Lua, r: &Report) -> LuaResult<LuaValue> {
    convert::to_lua(lua, &serde_json::to_value(r).map_err(LuaError::external)?)
}

fn report_from_lua(lua: &Lua, v: &LuaValue, what: &str) -> LuaResult<Report> {
    let j = convert::to_json(lua, v).map_err(|e| LuaError::runtime(format!("{what}: {}", super::error_text(&e))))?;
    if let Some(s) = j.get("schema").and_then(|s| s.as_str())
        && s != loadgen::report::SCHEMA
        && !loadgen::report::OLDER_SCHEMAS.contains(&s)
    {
        return Err(LuaError::runtime(format!(
            "{what}: schema '{s}' is not '{}' (nor an older one this aibench reads: {})",
            loadgen::report::SCHEMA,
            loadgen::report::OLDER_SCHEMAS.join(", ")
        )));
    }
    aibench_core::typed::from_json(j, what).map_err(LuaError::runtime)
}

async fn run(lua: Lua, spec_t: LuaTable) -> LuaResult<Fallible<LuaValue>> {
    let show_bar: bool = match spec_t.get::<LuaValue>("progress")? {
        LuaValue::Nil => true,
        LuaValue::Boolean(b) => b,
        other => {
            return Err(LuaError::runtime(format!(
                "bench.run: progress: expected a boolean, got {}",
                other.type_name()
            )));
        }
    };
    let on_progress: Option<LuaFunction> = match spec_t.get::<LuaValue>("on_progress")? {
        LuaValue::Nil => None,
        LuaValue::Function(f) => Some(f),
        other => {
            return Err(LuaError::runtime(format!(
                "bench.run: on_progress: expected a function, got {}",
                other.type_name()
            )));
        }
    };
    let spec = parse_spec(&lua, &spec_t)?;
    let (stop_tx, stop_rx) = watch::channel(None);
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let guard = aibench_core::interrupt::Guard::new();
    let mut handle = tokio::spawn(loadgen::run(spec, Control { stop: stop_rx, progress: Some(ptx) }));
    let bar = Bar::new(show_bar);
    let mut stopped = false;
    let mut stopped_by = None;
    let mut hook_error: Option<LuaError> = None;
    let joined = loop {
        tokio::select! {
            r = &mut handle => break r,
            Some(p) = prx.recv() => {
                bar.show(&p);
                if let Some(f) = &on_progress && hook_error.is_none() {
                    let snap = convert::to_lua(&lua, &serde_json::to_value(&p).map_err(LuaError::external)?)?;
                    if let Err(e) = f.call_async::<()>(snap).await {
                        // A failing hook stops the run; the error is raised after it ends.
                        hook_error = Some(e);
                        let _ = stop_tx.send(Some("on_progress"));
                    }
                }
            }
            sig = guard.interrupted(), if !stopped => {
                stopped = true;
                stopped_by = Some(sig);
                bar.note(&format!("{}: finishing in-flight requests, then saving the partial result{}",
                    sig.name(), if sig == aibench_core::interrupt::Signal::Interrupt { " (Ctrl-C again to quit now)" } else { "" }));
                let _ = stop_tx.send(Some(sig.name()));
            }
        }
    };
    bar.finish();
    if let Some(e) = hook_error {
        return Err(LuaError::runtime(format!("bench.run: on_progress failed: {}", super::error_text(&e))));
    }
    match joined {
        Ok(Ok(report)) => Ok(Ok(report_to_lua(&lua, &report)?)),
        Ok(Err(RunError::Spec(m))) => Err(LuaError::runtime(format!("bench.run: {m}"))),
        Ok(Err(RunError::Unavailable { kind: "interrupted", message })) => {
            let code = stopped_by.map_or(130, |s: aibench_core::interrupt::Signal| s.exit_code());
            Ok(Err(OpError::new("interrupted", message).with("code", code)))
        }
        Ok(Err(RunError::Unavailable { kind, message })) => Ok(Err(OpError::new(kind, message))),
        Err(e) => Err(LuaError::runtime(format!("bench.run: the load generator failed: {e}"))),
    }
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set("run", lua.create_async_function(|lua, spec: LuaTable| run(lua, spec))?)?;
    t.set(
        "merge",
        lua.create_function(|lua, list: LuaTable| {
            let mut reports = Vec::new();
            for (i, v) in list.sequence_values::<LuaValue>().enumerate() {
                reports.push(report_from_lua(lua, &v?, &format!("bench.merge: result {}", i + 1))?);
            }
            let merged = Report::merge(&reports).map_err(LuaError::runtime)?;
            report_to_lua(lua, &merged)
        })?,
    )?;
    t.set(
        "to_json",
        lua.create_function(|lua, (r, opts): (LuaValue, Option<LuaTable>)| {
            let mut o = super::Opts::new(lua, "bench.to_json", opts);
            let pretty: bool = o.get("pretty")?.unwrap_or(true);
            o.finish()?;
            let rep = report_from_lua(lua, &r, "bench.to_json")?;
            let s = if pretty { serde_json::to_string_pretty(&rep) } else { serde_json::to_string(&rep) };
            s.map_err(LuaError::external)
        })?,
    )?;
    t.set(
        "validate",
        lua.create_function(|lua, spec: LuaTable| {
            let s = parse_spec(lua, &spec)?;
            convert::to_lua(lua, &serde_json::to_value(&s).map_err(LuaError::external)?)
        })?,
    )?;
    t.set(
        "arrivals",
        lua.create_function(|lua, w: LuaTable| {
            let mut json = convert::to_json(lua, &LuaValue::Table(w))?;
            if let Some(m) = json.as_object_mut() {
                m.entry("pattern").or_insert_with(|| "open-loop".into());
            }
            let times = loadgen::spec::Workload::from_json(json, "workload")
                .and_then(|w| w.validate().map(|_| w))
                .and_then(|w| w.schedule())
                .map_err(|e| LuaError::runtime(format!("bench.arrivals: {e}")))?;
            let out = lua.create_sequence_from(times)?;
            out.set_metatable(Some(lua.array_metatable()))?;
            Ok(out)
        })?,
    )?;
    t.set(
        "percentiles",
        lua.create_function(|lua, (r, metric, ps): (LuaTable, String, Option<Vec<f64>>)| {
            let hists: LuaTable = r
                .get("histograms")
                .map_err(|_| LuaError::runtime("bench.percentiles: the result has no histograms"))?;
            let Some(enc) = hists.get::<Option<String>>(metric.as_str())? else {
                return Ok(None);
            };
            let h = loadgen::stats::decode(&enc)
                .map_err(|e| LuaError::runtime(format!("bench.percentiles: {metric}: {e}")))?;
            let ps = ps.unwrap_or_else(|| loadgen::stats::CURVE_PERCENTILES.to_vec());
            let curve = loadgen::stats::percentile_curve(&h, &ps)
                .map_err(|e| LuaError::runtime(format!("bench.percentiles: {e}")))?;
            let out = lua.create_table()?;
            for (i, pv) in curve.into_iter().enumerate() {
                out.raw_set(i + 1, lua.create_sequence_from([pv.0, pv.1])?)?;
            }
            Ok(Some(out))
        })?,
    )?;
    t.set("schema", loadgen::report::SCHEMA)?;
    // Every bench schema this build reads, the current one first: the one
    // list, kept in Rust (results.lua reads it from here).
    let readable: Vec<&str> = std::iter::once(loadgen::report::SCHEMA).chain(loadgen::report::OLDER_SCHEMAS).collect();
    let list = lua.create_sequence_from(readable)?;
    list.set_metatable(Some(lua.array_metatable()))?;
    t.set("schemas", list)?;
    Ok(t)
}
