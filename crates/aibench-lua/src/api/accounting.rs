//! `aibench.accounting`: SLURM accounting of jobs (`sacct`), the efficiency
//! and cost arithmetic, and who else is on a node. Conversion only; the
//! work is in `aibench_core::hpc`.

use aibench_core::hpc::{cost, node, sacct};
use mlua::prelude::*;

use crate::binding::{Fallible, OpError};
use crate::convert::{from_lua_typed, to_lua, to_lua_plain};

fn json<T: serde::Serialize>(lua: &Lua, v: &T) -> LuaResult<LuaValue> {
    to_lua(lua, &serde_json::to_value(v).map_err(LuaError::external)?)
}

/// The efficiency inputs as Lua gives them.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Inputs {
    output_tokens: u64,
    requests: u64,
    window_s: f64,
    #[serde(default)]
    gpus: u64,
    #[serde(default)]
    nodes: u64,
    #[serde(default)]
    billing: f64,
    #[serde(default)]
    energy_j: Option<f64>,
    #[serde(default)]
    energy_source: Option<String>,
    #[serde(default)]
    pricing: cost::Pricing,
}

/// A YAML list (marked as an array, or with items 1..n).
fn is_list(lua: &Lua, t: &LuaTable) -> bool {
    t.raw_len() > 0 || t.metatable().is_some_and(|m| m == lua.array_metatable())
}

/// A value of a config file's `pricing:` table, as the engine reads it.
fn given_value(lua: &Lua, v: &LuaValue) -> LuaResult<cost::Given> {
    Ok(match v {
        LuaValue::Integer(i) => cost::Given::Number(*i as f64),
        LuaValue::Number(n) => cost::Given::Number(*n),
        LuaValue::String(s) => cost::Given::Text(s.to_str()?.to_string()),
        other => cost::Given::Other(described(lua, other)),
    })
}

/// A config value as a message names it ("a list", "true", "\"x\"").
fn described(lua: &Lua, v: &LuaValue) -> String {
    match v {
        LuaValue::Table(t) if is_list(lua, t) => "a list".to_string(),
        LuaValue::Table(_) => "a table".to_string(),
        LuaValue::Boolean(b) => b.to_string(),
        LuaValue::Integer(i) => i.to_string(),
        LuaValue::Number(n) => n.to_string(),
        LuaValue::String(s) => format!("{:?}", s.to_string_lossy()),
        other => other.type_name().to_string(),
    }
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "sacct",
        lua.create_async_function(|lua, ids: Vec<String>| async move {
            Ok(match sacct::query(&ids).await {
                Ok((jobs, warnings)) => Ok(json(&lua, &cost::Accounting { warnings, ..cost::Accounting::of(jobs) })?),
                Err(m) => Err(OpError::new("unavailable", m)),
            } as Fallible<LuaValue>)
        })?,
    )?;
    t.set(
        "totals",
        lua.create_function(|lua, jobs: LuaValue| {
            let jobs: Vec<sacct::JobUsage> = from_lua_typed(lua, &jobs, "accounting.totals")?;
            json(lua, &cost::Accounting::of(jobs))
        })?,
    )?;
    t.set(
        "efficiency",
        lua.create_function(|lua, v: LuaValue| {
            let i: Inputs = from_lua_typed(lua, &v, "accounting.efficiency")?;
            i.pricing.check().map_err(|e| LuaError::runtime(format!("accounting.efficiency: {e}")))?;
            let inputs = cost::Inputs {
                output_tokens: i.output_tokens,
                requests: i.requests,
                window_s: i.window_s,
                gpus: i.gpus,
                nodes: i.nodes,
                billing: i.billing,
                energy: i.energy_j.map(|j| (j, i.energy_source.unwrap_or_else(|| "unknown".into()))),
                pricing: i.pricing,
            };
            match cost::Efficiency::of(&inputs) {
                Some(e) => json(lua, &e),
                None => Ok(LuaValue::NULL),
            }
        })?,
    )?;
    t.set(
        "pricing",
        lua.create_function(|lua, (v, file): (LuaValue, String)| {
            let (p, problems) = match &v {
                LuaValue::Nil => (cost::Pricing::default(), Vec::new()),
                LuaValue::LightUserData(u) if u.0.is_null() => (cost::Pricing::default(), Vec::new()),
                LuaValue::Table(t) if !is_list(lua, t) => {
                    let mut given = Vec::new();
                    for kv in t.pairs::<LuaValue, LuaValue>() {
                        let (k, x) = kv?;
                        let key = match &k {
                            LuaValue::String(s) => s.to_str()?.to_string(),
                            LuaValue::Integer(i) => i.to_string(),
                            other => format!("<{}>", other.type_name()),
                        };
                        given.push((key, given_value(lua, &x)?));
                    }
                    cost::Pricing::read(&file, &given)
                }
                other => (cost::Pricing::default(), vec![cost::Pricing::not_a_table(&file, &described(lua, other))]),
            };
            Ok((to_lua_plain(lua, &serde_json::to_value(&p).map_err(LuaError::external)?)?, json(lua, &problems)?))
        })?,
    )?;
    t.set(
        "node_share",
        lua.create_async_function(|lua, (name, own, me): (String, Vec<String>, String)| async move {
            Ok(match node::share(&name, &own, &me).await {
                Ok(s) => Ok(json(&lua, &s)?),
                Err(m) => Err(OpError::new("unavailable", m)),
            } as Fallible<LuaValue>)
        })?,
    )?;
    Ok(t)
}
