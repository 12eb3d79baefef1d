//! A bench result as a Lua value: userdata around the engine's [`Report`],
//! made once (by `bench.run`, `bench.result` or a merge) and never turned
//! back into a table and re-parsed.
//!
//! - Fields read as in the file: `r.successes`, `r.ttft_ms.p99`. Each is
//!   converted on first read and kept (the same table on every read).
//! - Methods in wrk's style: `r:percentile("ttft", 99)` (ms),
//!   `r:percentiles("ttft", {50, 99})`, `r:merge(other, ...)`, `r:to_json()`,
//!   `r:to_table()`, `r:mark_interrupted(by)`, `r:mark_incomplete(why)`.
//!   Histograms are decoded once.
//! - `json.encode(r)` and `yaml.encode(r)` write the report itself (the
//!   result file format), `pairs(r)` walks its fields, `tostring(r)` is a
//!   one-line description.
//! - Fields are read-only: a change would not reach the report. Marking a
//!   run interrupted is a method.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use aibench_core::loadgen::{self, Report};
use hdrhistogram::Histogram;
use mlua::prelude::*;
use serde_json::Value as Json;

use crate::binding::Opts;
use crate::convert;

pub struct BenchResult {
    report: Report,
    /// The report's JSON form, made on the first field read.
    json: RefCell<Option<Rc<serde_json::Map<String, Json>>>>,
    /// Decoded histograms by metric (`None`: the result has none for it).
    hists: RefCell<BTreeMap<String, Option<Rc<Histogram<u64>>>>>,
}

impl serde::Serialize for BenchResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.report.serialize(s)
    }
}

impl BenchResult {
    pub fn new(report: Report) -> BenchResult {
        BenchResult { report, json: RefCell::new(None), hists: RefCell::new(BTreeMap::new()) }
    }

    pub fn report(&self) -> &Report {
        &self.report
    }

    fn fields(&self) -> LuaResult<Rc<serde_json::Map<String, Json>>> {
        if let Some(m) = &*self.json.borrow() {
            return Ok(m.clone());
        }
        let m = match serde_json::to_value(&self.report).map_err(LuaError::external)? {
            Json::Object(m) => Rc::new(m),
            _ => return Err(LuaError::runtime("bench result: the report is not an object")),
        };
        *self.json.borrow_mut() = Some(m.clone());
        Ok(m)
    }

    /// The decoded histogram of `metric` (`ttft`, `latency`, ...; a trailing
    /// `_ms` is accepted), decoded on first use.
    fn histogram(&self, func: &str, metric: &str) -> LuaResult<Option<Rc<Histogram<u64>>>> {
        let metric = metric_name(func, metric)?;
        if let Some(h) = self.hists.borrow().get(metric) {
            return Ok(h.clone());
        }
        let h = match self.report.histograms.get(metric) {
            None => None,
            Some(enc) => Some(Rc::new(
                loadgen::stats::decode(enc).map_err(|e| LuaError::runtime(format!("{func}: {metric}: {e}")))?,
            )),
        };
        self.hists.borrow_mut().insert(metric.to_string(), h.clone());
        Ok(h)
    }

    /// `(percentile, ms)` pairs for `ps` (default: the curve's percentiles).
    pub fn curve(&self, func: &str, metric: &str, ps: Option<Vec<f64>>) -> LuaResult<Option<Vec<(f64, f64)>>> {
        let Some(h) = self.histogram(func, metric)? else { return Ok(None) };
        let ps = ps.unwrap_or_else(|| loadgen::stats::CURVE_PERCENTILES.to_vec());
        loadgen::stats::percentile_curve(&h, &ps).map(Some).map_err(|e| LuaError::runtime(format!("{func}: {e}")))
    }

    pub fn to_json_text(&self, pretty: bool) -> LuaResult<String> {
        let s = if pretty { serde_json::to_string_pretty(&self.report) } else { serde_json::to_string(&self.report) };
        s.map_err(LuaError::external)
    }
}

/// A histogram's name (`ttft`; `ttft_ms` is taken too), or an error naming
/// the ones there are.
fn metric_name<'a>(func: &str, metric: &'a str) -> LuaResult<&'a str> {
    let metric = metric.strip_suffix("_ms").unwrap_or(metric);
    if loadgen::stats::METRICS.contains(&metric) {
        return Ok(metric);
    }
    let hint = aibench_core::util::did_you_mean(metric, loadgen::stats::METRICS.iter().copied())
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default();
    Err(LuaError::runtime(format!(
        "{func}: unknown metric '{metric}'{hint}; expected one of: {}",
        loadgen::stats::METRICS.join(", ")
    )))
}

/// Makes the userdata (serialisable: `json.encode` writes the report).
pub fn create(lua: &Lua, report: Report) -> LuaResult<LuaAnyUserData> {
    let ud = lua.create_ser_userdata(BenchResult::new(report))?;
    ud.set_user_value(lua.create_table()?)?;
    Ok(ud)
}

/// A result from a Lua value: the userdata itself (its report cloned), or a
/// table / JSON text in the result file format, checked against the schemas
/// this build reads.
pub fn report_of(lua: &Lua, v: &LuaValue, what: &str) -> LuaResult<Report> {
    if let LuaValue::UserData(ud) = v
        && let Ok(r) = ud.borrow::<BenchResult>()
    {
        return Ok(r.report.clone());
    }
    let j = match v {
        LuaValue::String(s) => serde_json::from_slice::<Json>(&s.as_bytes())
            .map_err(|e| LuaError::runtime(format!("{what}: not JSON: {e}")))?,
        LuaValue::Table(_) => convert::to_json(lua, v)
            .map_err(|e| LuaError::runtime(format!("{what}: {}", crate::binding::error_text(&e))))?,
        other => {
            return Err(LuaError::runtime(format!(
                "{what}: expected a bench result (from bench.run, bench.result or a result file), got {}",
                other.type_name()
            )));
        }
    };
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
    // A field that does not fit the report type is named as data (`aibench.error_info`).
    aibench_core::typed::from_json_at(j, "").map_err(crate::binding::raise_field)
}

/// Runs `f` on the result inside `v` if it is a result userdata, else on one
/// made from `v` (a table or JSON text) for this call.
pub fn with_result<T>(
    lua: &Lua,
    v: &LuaValue,
    what: &str,
    f: impl FnOnce(&BenchResult) -> LuaResult<T>,
) -> LuaResult<T> {
    if let LuaValue::UserData(ud) = v
        && let Ok(r) = ud.borrow::<BenchResult>()
    {
        return f(&r);
    }
    f(&BenchResult::new(report_of(lua, v, what)?))
}

pub fn merge(lua: &Lua, parts: &[LuaValue], what: &str, opts: loadgen::report::MergeOpts) -> LuaResult<LuaAnyUserData> {
    let mut reports = Vec::with_capacity(parts.len());
    for (i, v) in parts.iter().enumerate() {
        reports.push(report_of(lua, v, &format!("{what}: result {}", i + 1))?);
    }
    let merged = Report::merge_with(&reports, opts).map_err(LuaError::runtime)?;
    create(lua, merged)
}

/// The curve of one histogram of a result still in table form, reading only
/// `histograms[metric]`.
pub fn table_curve(t: &LuaTable, metric: &str, ps: Option<Vec<f64>>) -> LuaResult<Option<Vec<(f64, f64)>>> {
    let hists: LuaTable =
        t.get("histograms").map_err(|_| LuaError::runtime("bench.percentiles: the result has no histograms"))?;
    let metric = metric_name("bench.percentiles", metric)?;
    let Some(enc) = hists.get::<Option<String>>(metric)? else { return Ok(None) };
    let h = loadgen::stats::decode(&enc).map_err(|e| LuaError::runtime(format!("bench.percentiles: {metric}: {e}")))?;
    let ps = ps.unwrap_or_else(|| loadgen::stats::CURVE_PERCENTILES.to_vec());
    loadgen::stats::percentile_curve(&h, &ps)
        .map(Some)
        .map_err(|e| LuaError::runtime(format!("bench.percentiles: {e}")))
}

pub fn curve_table(lua: &Lua, curve: Vec<(f64, f64)>) -> LuaResult<LuaTable> {
    let out = lua.create_table()?;
    for (i, pv) in curve.into_iter().enumerate() {
        out.raw_set(i + 1, lua.create_sequence_from([pv.0, pv.1])?)?;
    }
    Ok(out)
}

impl LuaUserData for BenchResult {
    fn add_methods<M: LuaUserDataMethods<Self>>(m: &mut M) {
        m.add_method("percentile", |_, this, (metric, p): (String, f64)| {
            Ok(this.curve("result:percentile", &metric, Some(vec![p]))?.and_then(|c| c.first().map(|pv| pv.1)))
        });
        m.add_method("percentiles", |lua, this, (metric, ps): (String, Option<Vec<f64>>)| {
            match this.curve("result:percentiles", &metric, ps)? {
                Some(c) => Ok(Some(curve_table(lua, c)?)),
                None => Ok(None),
            }
        });
        m.add_function("merge", |lua, args: LuaMultiValue| {
            let parts: Vec<LuaValue> = args.into_iter().collect();
            merge(lua, &parts, "result:merge", Default::default())
        });
        m.add_method("to_json", |lua, this, opts: Option<LuaTable>| {
            let mut o = Opts::new(lua, "result:to_json", opts);
            let pretty: bool = o.get("pretty")?.unwrap_or(true);
            o.finish()?;
            this.to_json_text(pretty)
        });
        m.add_method("to_table", |lua, this, ()| convert::to_lua(lua, &Json::Object((*this.fields()?).clone())));
        m.add_function("mark_interrupted", |lua, (ud, by): (LuaAnyUserData, String)| {
            let report = {
                let this = ud.borrow::<BenchResult>()?;
                let mut r = this.report.clone();
                r.interrupted = true;
                r.interrupted_by = Some(by);
                r
            };
            // The same userdata, so every holder sees the mark.
            *ud.borrow_mut::<BenchResult>()? = BenchResult::new(report);
            ud.set_user_value(lua.create_table()?)?;
            Ok(())
        });
        m.add_function("mark_incomplete", |lua, (ud, why): (LuaAnyUserData, String)| {
            let report = {
                let this = ud.borrow::<BenchResult>()?;
                let mut r = this.report.clone();
                let warning = format!("incomplete: {why}");
                if !r.warnings.contains(&warning) {
                    r.warnings.push(warning);
                }
                r.incomplete = Some(why);
                r
            };
            *ud.borrow_mut::<BenchResult>()? = BenchResult::new(report);
            ud.set_user_value(lua.create_table()?)?;
            Ok(())
        });
        m.add_meta_function(LuaMetaMethod::Index, |lua, (ud, key): (LuaAnyUserData, LuaValue)| {
            super::cached_field(lua, &ud, &key, |k| {
                let this = ud.borrow::<BenchResult>()?;
                let fields = this.fields()?;
                Ok(fields.get(k).cloned())
            })
        });
        m.add_meta_function(LuaMetaMethod::NewIndex, |_, (_ud, key): (LuaAnyUserData, LuaValue)| -> LuaResult<()> {
            Err(super::read_only(
                "bench result",
                &key,
                "the result is the measurement; r:mark_interrupted(by) marks a stop, r:to_table() gives a copy to change",
            ))
        });
        m.add_meta_function(LuaMetaMethod::Pairs, |lua, ud: LuaAnyUserData| {
            let fields = ud.borrow::<BenchResult>()?.fields()?;
            super::pairs_of(lua, &Json::Object((*fields).clone()))
        });
        m.add_meta_method(LuaMetaMethod::ToString, |_, this, ()| {
            let r = &this.report;
            Ok(format!(
                "bench result{}: {} requests, {} ok, {} errors{}",
                r.label.as_deref().map(|l| format!(" '{l}'")).unwrap_or_default(),
                r.total_requests,
                r.successes,
                r.errors,
                if r.interrupted { " (interrupted)" } else { "" }
            ))
        });
    }
}
