//! `aibench.agent`: builds `agent.json`, the job agent's instructions, and
//! checks it at submit time (a typo would otherwise show only on the node).

use aibench_core::agent::AgentSpec;
use mlua::prelude::*;

use crate::convert;

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|lua, spec: LuaValue| {
            let json = convert::to_json(lua, &spec)
                .map_err(|e| LuaError::runtime(format!("agent.encode: {}", crate::binding::error_text(&e))))?;
            AgentSpec::encode(json).map_err(|e| LuaError::runtime(format!("agent.encode: {e}")))
        })?,
    )?;
    Ok(t)
}
