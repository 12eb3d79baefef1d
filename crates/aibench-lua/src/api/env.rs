//! `aibench.env`: environment variables.

use mlua::prelude::*;

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "get",
        lua.create_function(|_, (k, default): (String, Option<String>)| Ok(std::env::var(&k).ok().or(default)))?,
    )?;
    t.set("expand", lua.create_function(|_, s: String| Ok(aibench_core::util::expand_env(&s)))?)?;
    t.set(
        "set",
        lua.create_function(|_, (k, v): (String, Option<String>)| {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(LuaError::runtime(format!("env.set: invalid variable name '{k}'")));
            }
            // SAFETY: scripts run on one thread; engines read the environment only at spawn time.
            unsafe {
                match v {
                    Some(v) => std::env::set_var(&k, v),
                    None => std::env::remove_var(&k),
                }
            }
            Ok(())
        })?,
    )?;
    t.set(
        "all",
        lua.create_function(|lua, ()| {
            let t = lua.create_table()?;
            for (k, v) in std::env::vars_os() {
                t.set(k.to_string_lossy().as_ref(), v.to_string_lossy().as_ref())?;
            }
            Ok(t)
        })?,
    )?;
    Ok(t)
}
