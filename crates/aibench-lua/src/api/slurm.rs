//! `aibench.slurm`: the SLURM executor (the interface is in `jobs.rs`).

use mlua::prelude::*;

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    super::jobs::module(lua, "slurm")
}
