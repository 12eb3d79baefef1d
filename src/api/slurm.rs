//! `aibench.slurm`: the SLURM executor (interface in `jobs.rs`).

use mlua::prelude::*;

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    super::jobs::module(lua, super::jobs::Which::Slurm)
}
