//! `aibench.log`: script messages through the same logger as the host
//! (`-v`/`-q`, `AIBENCH_LOG`; target `lua`).

use mlua::prelude::*;

fn join(args: LuaVariadic<LuaValue>) -> LuaResult<String> {
    let mut parts = Vec::with_capacity(args.len());
    for a in args.iter() {
        parts.push(match a {
            LuaValue::String(s) => s.to_string_lossy(),
            LuaValue::Nil => "nil".into(),
            other => other.to_string()?,
        });
    }
    Ok(parts.join(" "))
}

macro_rules! level {
    ($lua:expr, $t:expr, $name:literal, $mac:ident) => {
        $t.set(
            $name,
            $lua.create_function(|_, a: LuaVariadic<LuaValue>| {
                let msg = join(a)?;
                tracing::$mac!(target: "lua", "{msg}");
                Ok(())
            })?,
        )?;
    };
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    level!(lua, t, "error", error);
    level!(lua, t, "warn", warn);
    level!(lua, t, "info", info);
    level!(lua, t, "debug", debug);
    level!(lua, t, "trace", trace);
    Ok(t)
}
