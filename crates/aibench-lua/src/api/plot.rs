//! `aibench.plot`: SVG charts for reports (engine in `src/plot`).

use mlua::prelude::*;

use crate::convert;
use aibench_core::plot::{BarChart, LineChart};

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "lines",
        lua.create_function(|lua, spec: LuaValue| {
            let c: LineChart = convert::from_lua_typed(lua, &spec, "plot.lines")?;
            aibench_core::plot::line_chart(&c).map_err(|e| LuaError::runtime(format!("plot.lines: {e}")))
        })?,
    )?;
    t.set(
        "bars",
        lua.create_function(|lua, spec: LuaValue| {
            let c: BarChart = convert::from_lua_typed(lua, &spec, "plot.bars")?;
            aibench_core::plot::bar_chart(&c).map_err(|e| LuaError::runtime(format!("plot.bars: {e}")))
        })?,
    )?;
    t.set("nines", lua.create_function(|_, p: f64| Ok(aibench_core::plot::nines(p)))?)?;
    Ok(t)
}
