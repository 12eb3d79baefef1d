//! `aibench.sim`: run the simulated vLLM server inside the script's process.

use std::time::Duration;

use mlua::prelude::*;
use tokio::sync::Mutex;

use aibench_core::sim::{Profile, Settings, SimConfig, SimServer};

use crate::binding::{Fallible, OpError};
use crate::convert;

struct Handle {
    url: String,
    port: u16,
    model: String,
    server: Mutex<Option<SimServer>>,
}

impl LuaUserData for Handle {
    fn add_fields<F: LuaUserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("url", |_, h| Ok(h.url.clone()));
        f.add_field_method_get("port", |_, h| Ok(h.port));
        f.add_field_method_get("model", |_, h| Ok(h.model.clone()));
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("stop", |_, h, ()| async move {
            if let Some(mut s) = h.server.lock().await.take() {
                s.stop(Duration::from_secs(5)).await;
            }
            Ok(())
        });
        m.add_async_method("metrics", |_, h, ()| async move {
            match h.server.lock().await.as_ref() {
                Some(s) => Ok(s.metrics_text()),
                None => Err(LuaError::runtime("sim handle: the simulator was stopped")),
            }
        });
    }
}

fn config(lua: &Lua, opts: Option<LuaTable>) -> LuaResult<SimConfig> {
    let v = match opts {
        Some(t) => LuaValue::Table(t),
        None => LuaValue::Table(lua.create_table()?),
    };
    // Table keys are options in the Lua API's words.
    let settings: Settings = convert::from_lua_typed(lua, &v, "sim.start").map_err(|e| {
        LuaError::runtime(crate::binding::error_text(&e).replace("unknown field '", "unknown option '"))
    })?;
    settings.config().map_err(|e| LuaError::runtime(format!("sim.start: {e}")))
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "start",
        lua.create_async_function(|lua, opts: Option<LuaTable>| async move {
            let cfg = config(&lua, opts)?;
            let model = cfg.model.clone();
            match aibench_core::sim::start(cfg).await {
                Ok(s) => {
                    let h = Handle { url: s.url(), port: s.addr.port(), model, server: Mutex::new(Some(s)) };
                    Ok(Ok(lua.create_userdata(h)?))
                }
                Err(e) => Ok(Err::<LuaAnyUserData, _>(OpError::new("bind", e))),
            }
        })?,
    )?;
    t.set(
        "profiles",
        lua.create_function(|lua, ()| lua.create_sequence_from(aibench_core::sim::profile::stock_names()))?,
    )?;
    t.set(
        "profile",
        lua.create_function(|lua, name: String| -> LuaResult<Fallible<LuaValue>> {
            match Profile::load(&name) {
                Ok(p) => Ok(Ok(convert::to_lua(lua, &serde_json::to_value(&p).map_err(LuaError::external)?)?)),
                Err(e) => Ok(Err(OpError::new("not_found", e))),
            }
        })?,
    )?;
    t.set("count_tokens", lua.create_function(|_, s: String| Ok(aibench_core::sim::text::count_tokens(&s)))?)?;
    Ok(t)
}
