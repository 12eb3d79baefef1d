//! `aibench.bench`: the load generator. `bench.spec(t)` validates a spec once
//! and returns it as userdata ([`spec`]); `bench.run(spec)` hands it to the
//! engine (`loadgen`), which runs without calling Lua: Lua only sees progress
//! snapshots (about once a second) and the result, a userdata around the
//! engine's report ([`result`]).

pub mod result;
pub mod spec;

use aibench_core::loadgen::{self, Control, RunError, progress::Bar};
use aibench_core::typed::FieldError;
use mlua::prelude::*;
use tokio::sync::{mpsc, watch};

use crate::binding::{Fallible, OpError, Opts, raise_field};
use crate::convert;

/// The run options: from `bench.run`'s second argument (an options table,
/// read strictly), or, for a spec given as a table, from the table's own
/// `progress` and `on_progress` (beside its data, so read by name).
struct RunOpts {
    show_bar: bool,
    on_progress: Option<LuaFunction>,
    gang: Option<loadgen::gang::Gang>,
}

/// `gang = {dir, rank, size, timeout_s?, lead_s?, hold_s?}`: one task of a
/// gang-started client job (see `loadgen::gang`).
fn gang_opts(lua: &Lua, t: LuaTable) -> LuaResult<loadgen::gang::Gang> {
    let mut o = Opts::new(lua, "bench.run: gang", Some(t));
    let need = |v: Option<LuaValue>, k: &str| {
        v.ok_or_else(|| raise_field(FieldError::new(format!("gang.{k}"), "is required")))
    };
    let dir: String = lua.unpack(need(o.get("dir")?, "dir")?)?;
    let rank: u32 = lua.unpack(need(o.get("rank")?, "rank")?)?;
    let size: u32 = lua.unpack(need(o.get("size")?, "size")?)?;
    let g = loadgen::gang::Gang {
        dir: dir.into(),
        rank,
        size,
        timeout_s: o.get("timeout_s")?.unwrap_or(600.0),
        lead_s: o.get("lead_s")?.unwrap_or(1.0),
        hold_s: o.get("hold_s")?.unwrap_or(0.0),
    };
    o.finish()?;
    g.check().map_err(LuaError::runtime)?;
    Ok(g)
}

fn run_opts(lua: &Lua, spec_t: Option<&LuaTable>, opts: Option<LuaTable>) -> LuaResult<RunOpts> {
    let mut out = RunOpts { show_bar: true, on_progress: None, gang: None };
    if let Some(t) = spec_t {
        match t.get::<LuaValue>("progress")? {
            LuaValue::Nil => {}
            LuaValue::Boolean(b) => out.show_bar = b,
            other => {
                return Err(raise_field(FieldError::new(
                    "progress",
                    format!("expected a boolean, got {}", other.type_name()),
                )));
            }
        }
        match t.get::<LuaValue>("on_progress")? {
            LuaValue::Nil => {}
            LuaValue::Function(f) => out.on_progress = Some(f),
            other => {
                return Err(raise_field(FieldError::new(
                    "on_progress",
                    format!("expected a function, got {}", other.type_name()),
                )));
            }
        }
    }
    let mut o = Opts::new(lua, "bench.run", opts);
    if let Some(b) = o.get::<bool>("progress")? {
        out.show_bar = b;
    }
    if let Some(f) = o.get::<LuaFunction>("on_progress")? {
        out.on_progress = Some(f);
    }
    if let Some(g) = o.get::<LuaTable>("gang")? {
        out.gang = Some(gang_opts(lua, g)?);
    }
    o.finish()?;
    Ok(out)
}

async fn run(lua: Lua, (arg, opts): (LuaValue, Option<LuaTable>)) -> LuaResult<Fallible<LuaValue>> {
    let spec_t = match &arg {
        LuaValue::Table(t) => Some(t.clone()),
        _ => None,
    };
    let ro = run_opts(&lua, spec_t.as_ref(), opts)?;
    let spec = spec::spec_of(&lua, &arg)?;
    let (stop_tx, stop_rx) = watch::channel(None);
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let guard = aibench_core::interrupt::Guard::new();
    let mut handle =
        tokio::spawn(loadgen::run(spec, Control { stop: stop_rx, progress: Some(ptx), gang: ro.gang.clone() }));
    let bar = Bar::new(ro.show_bar);
    let mut stopped = false;
    let mut stopped_by = None;
    let mut hook_error: Option<LuaError> = None;
    let joined = loop {
        tokio::select! {
            r = &mut handle => break r,
            Some(p) = prx.recv() => {
                bar.show(&p);
                if let Some(f) = &ro.on_progress && hook_error.is_none() {
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
        return Err(LuaError::runtime(format!("bench.run: on_progress failed: {}", crate::binding::error_text(&e))));
    }
    match joined {
        Ok(Ok(report)) => Ok(Ok(LuaValue::UserData(result::create(&lua, report)?))),
        Ok(Err(RunError::Spec(e))) => Err(raise_field(e)),
        Ok(Err(RunError::Unavailable { kind: "interrupted", message })) => {
            let code = stopped_by.map_or(130, |s: aibench_core::interrupt::Signal| s.exit_code());
            Ok(Err(OpError::new("interrupted", message).with("code", code)))
        }
        Ok(Err(RunError::Unavailable { kind, message })) => Ok(Err(OpError::new(kind, message))),
        Err(e) => Err(LuaError::runtime(format!("bench.run: the load generator failed: {e}"))),
    }
}

/// `__index` of the bench userdata (a spec, a result) for a field: its value
/// in the JSON form (`get`), converted on first read and kept in the
/// userdata's user value, so every read gives the same table.
fn cached_field(
    lua: &Lua,
    ud: &LuaAnyUserData,
    key: &LuaValue,
    get: impl FnOnce(&str) -> LuaResult<Option<serde_json::Value>>,
) -> LuaResult<LuaValue> {
    let LuaValue::String(k) = key else { return Ok(LuaValue::Nil) };
    let cache: LuaTable = ud.user_value()?;
    let cached: LuaValue = cache.raw_get(k.clone())?;
    if !cached.is_nil() {
        return Ok(cached);
    }
    let Some(v) = get(&k.to_str()?)? else { return Ok(LuaValue::Nil) };
    let lv = convert::to_lua(lua, &v)?;
    cache.raw_set(k.clone(), lv.clone())?;
    Ok(lv)
}

/// `__pairs` of the bench userdata: `next` over a copy of the fields.
fn pairs_of(lua: &Lua, fields: &serde_json::Value) -> LuaResult<(LuaFunction, LuaValue, LuaValue)> {
    let t = convert::to_lua(lua, fields)?;
    let next: LuaFunction = lua.globals().raw_get("next")?;
    Ok((next, t, LuaValue::Nil))
}

/// `__newindex` of the bench userdata: their fields are read-only.
fn read_only(what: &str, key: &LuaValue, instead: &str) -> LuaError {
    let k = match key {
        LuaValue::String(s) => s.to_string_lossy(),
        other => format!("{other:?}"),
    };
    LuaError::runtime(format!("{what}: field '{k}' is read-only ({instead})"))
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set("run", lua.create_async_function(run)?)?;
    t.set("spec", lua.create_function(spec::make)?)?;
    t.set(
        "validate",
        lua.create_function(|lua, v: LuaValue| {
            let s = spec::spec_of(lua, &v)?;
            spec::create(lua, s)
        })?,
    )?;
    t.set(
        "result",
        lua.create_function(|lua, v: LuaValue| {
            if let LuaValue::UserData(ud) = &v
                && ud.borrow::<result::BenchResult>().is_ok()
            {
                return Ok(ud.clone());
            }
            let r = result::report_of(lua, &v, "bench.result")?;
            result::create(lua, r)
        })?,
    )?;
    t.set(
        "merge",
        lua.create_function(|lua, (list, opts): (LuaTable, Option<LuaTable>)| {
            let parts: Vec<LuaValue> = list.sequence_values::<LuaValue>().collect::<LuaResult<_>>()?;
            let mut o = Opts::new(lua, "bench.merge", opts);
            let mut mo = loadgen::report::MergeOpts::default();
            if let Some(b) = o.get::<bool>("allow_partial_overlap")? {
                mo.allow_partial = b;
            }
            if let Some(share) = o.get::<f64>("min_overlap")? {
                if !(0.0..=1.0).contains(&share) {
                    return Err(raise_field(FieldError::new(
                        "min_overlap",
                        format!("expected a share in [0, 1], got {share}"),
                    )));
                }
                mo.min_share = share;
            }
            o.finish()?;
            result::merge(lua, &parts, "bench.merge", mo)
        })?,
    )?;
    t.set(
        "to_json",
        lua.create_function(|lua, (r, opts): (LuaValue, Option<LuaTable>)| {
            let mut o = Opts::new(lua, "bench.to_json", opts);
            let pretty: bool = o.get("pretty")?.unwrap_or(true);
            o.finish()?;
            result::with_result(lua, &r, "bench.to_json", |res| res.to_json_text(pretty))
        })?,
    )?;
    t.set(
        "arrivals",
        lua.create_function(|lua, w: LuaTable| {
            let mut json = convert::to_json(lua, &LuaValue::Table(w))?;
            if let Some(m) = json.as_object_mut() {
                m.entry("pattern").or_insert_with(|| "open-loop".into());
            }
            let w = loadgen::spec::Workload::from_json(json, "workload").map_err(raise_field)?;
            w.validate().map_err(raise_field)?;
            let times = w.schedule().map_err(raise_field)?;
            let out = lua.create_sequence_from(times)?;
            out.set_metatable(Some(lua.array_metatable()))?;
            Ok(out)
        })?,
    )?;
    t.set(
        "percentiles",
        lua.create_function(|lua, (r, metric, ps): (LuaValue, String, Option<Vec<f64>>)| {
            let curve = match &r {
                // A result table (from a file, not read into a result): only
                // its histogram is read.
                LuaValue::Table(t) => result::table_curve(t, &metric, ps)?,
                _ => result::with_result(lua, &r, "bench.percentiles", |res| {
                    res.curve("bench.percentiles", &metric, ps)
                })?,
            };
            match curve {
                Some(c) => Ok(Some(result::curve_table(lua, c)?)),
                None => Ok(None),
            }
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
