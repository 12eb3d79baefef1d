//! `aibench.uuid`: random identifiers.

use mlua::prelude::*;

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set("v4", lua.create_function(|_, ()| Ok(uuid::Uuid::new_v4().to_string()))?)?;
    t.set("short", lua.create_function(|_, ()| Ok(uuid::Uuid::new_v4().simple().to_string()[..8].to_string()))?)?;
    Ok(t)
}
