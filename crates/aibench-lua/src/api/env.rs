//! `aibench.env`: environment variables, and whether a standard stream is
//! a terminal (what colour and progress lines are decided on).

use std::io::IsTerminal;

use mlua::prelude::*;

/// Whether `stream` ("stdin", "stdout" or "stderr") is a terminal.
fn is_terminal(stream: &str) -> LuaResult<bool> {
    match stream {
        "stdin" => Ok(std::io::stdin().is_terminal()),
        "stdout" => Ok(std::io::stdout().is_terminal()),
        "stderr" => Ok(std::io::stderr().is_terminal()),
        other => Err(LuaError::runtime(format!(
            "env.is_terminal: expected \"stdin\", \"stdout\" or \"stderr\", got \"{other}\""
        ))),
    }
}

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
    t.set("is_terminal", lua.create_function(|_, stream: String| is_terminal(&stream))?)?;
    t.set(
        "terminal_columns",
        lua.create_function(|_, stream: String| {
            let fd = match stream.as_str() {
                "stdout" => 1,
                "stderr" => 2,
                other => {
                    return Err(LuaError::runtime(format!(
                        "env.terminal_columns: expected \"stdout\" or \"stderr\", got \"{other}\""
                    )));
                }
            };
            Ok(aibench_core::loadgen::progress::terminal_columns(fd))
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
