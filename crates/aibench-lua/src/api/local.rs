//! `aibench.local`: the local executor, the same interface as `aibench.slurm`.

use mlua::prelude::*;

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    super::jobs::module(lua, "local")
}
