//! `aibench.json`: encode / decode with a distinct `json.null`.

use mlua::prelude::*;

use crate::binding::{Fallible, OpError, Opts};
use crate::convert;

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set("null", LuaValue::NULL)?;
    t.set(
        "encode",
        lua.create_function(|lua, (v, opts): (LuaValue, Option<LuaTable>)| {
            let mut o = Opts::new(lua, "json.encode", opts);
            let pretty: bool = o.get("pretty")?.unwrap_or(false);
            o.finish()?;
            let j = convert::to_json(lua, &v)
                .map_err(|e| LuaError::runtime(format!("json.encode: {}", crate::binding::error_text(&e))))?;
            let s = if pretty { serde_json::to_string_pretty(&j) } else { serde_json::to_string(&j) };
            s.map_err(|e| LuaError::runtime(format!("json.encode: {e}")))
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, s: LuaString| -> LuaResult<Fallible<LuaValue>> {
            match serde_json::from_slice::<serde_json::Value>(&s.as_bytes()) {
                Ok(j) => Ok(Ok(convert::to_lua(lua, &j)?)),
                Err(e) => Ok(Err(OpError::new(
                    "parse",
                    format!("invalid JSON at line {} column {}: {e}", e.line(), e.column()),
                )
                .with("line", e.line())
                .with("column", e.column()))),
            }
        })?,
    )?;
    t.set(
        "array",
        lua.create_function(|lua, t: Option<LuaTable>| {
            let t = match t {
                Some(t) => t,
                None => lua.create_table()?,
            };
            t.set_metatable(Some(lua.array_metatable()))?;
            Ok(t)
        })?,
    )?;
    t.set(
        "is_array",
        lua.create_function(|lua, t: LuaTable| Ok(t.metatable().is_some_and(|m| m == lua.array_metatable())))?,
    )?;
    Ok(t)
}
