//! `aibench.accounting`: SLURM accounting of jobs (`sacct`), the efficiency
//! and cost arithmetic, and who else is on a node. Conversion only; the
//! work is in `aibench_core::hpc`.

use aibench_core::hpc::{cost, node, sacct};
use mlua::prelude::*;

use super::convert::{from_lua_typed, to_lua};
use super::{Fallible, OpError};

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

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "sacct",
        lua.create_async_function(|lua, ids: Vec<String>| async move {
            Ok(match sacct::query(&ids).await {
                Ok(jobs) => Ok(json(&lua, &cost::Accounting::of(jobs))?),
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
