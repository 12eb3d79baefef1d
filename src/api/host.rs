//! `require "aibench"`: facts about the host program itself.

use mlua::prelude::*;

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set("version", env!("CARGO_PKG_VERSION"))?;
    t.set(
        "exe",
        lua.create_function(|_, ()| {
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .map_err(|e| LuaError::runtime(format!("aibench.exe: cannot find the running binary: {e}")))
        })?,
    )?;
    t.set("home", lua.create_function(|_, ()| Ok(crate::util::aibench_home().display().to_string()))?)?;
    t.set("hostname", lua.create_function(|_, ()| Ok(crate::util::hostname()))?)?;
    t.set(
        "modules",
        lua.create_function(|lua, kind: Option<String>| {
            match kind.as_deref() {
                None | Some("native") | Some("lua") => {}
                Some(other) => {
                    return Err(LuaError::runtime(format!(
                        "aibench.modules: kind must be \"native\" or \"lua\", got \"{other}\""
                    )));
                }
            }
            let mut names = super::module_names(kind.as_deref() != Some("lua"), kind.as_deref() != Some("native"));
            names.sort();
            names.dedup();
            lua.create_sequence_from(names)
        })?,
    )?;
    t.set(
        "stock_recipe",
        lua.create_function(|lua, rel: String| match crate::assets::recipe_file(&rel) {
            Some(b) => Ok(LuaValue::String(lua.create_string(b.as_ref())?)),
            None => Ok(LuaValue::Nil),
        })?,
    )?;
    t.set("stock_recipes", lua.create_function(|lua, ()| lua.create_sequence_from(crate::assets::recipe_paths()))?)?;
    Ok(t)
}
