//! `aibench.registry`: the discovery registry (`$AIBENCH_HOME/discover`).

use mlua::prelude::*;

use super::{Fallible, OpError, convert};
use crate::registry::{Instance, Registry, RegistryError};

fn open() -> Result<Registry, OpError> {
    Registry::open(&crate::util::aibench_home()).map_err(err)
}

fn err(e: RegistryError) -> OpError {
    let kind = match &e {
        RegistryError::BadName(_) => "invalid",
        RegistryError::Io { .. } => "io",
        RegistryError::Corrupt { .. } => "corrupt",
    };
    OpError::new(kind, e.to_string())
}

fn to_lua(lua: &Lua, list: &[Instance]) -> LuaResult<LuaValue> {
    convert::to_lua(lua, &serde_json::to_value(list).map_err(LuaError::external)?)
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "register",
        lua.create_function(|lua, (service, inst): (String, LuaValue)| -> LuaResult<Fallible<bool>> {
            let mut json = convert::to_json(lua, &inst)?;
            if let Some(m) = json.as_object_mut() {
                m.entry("registered_at").or_insert_with(|| crate::api::time::now_iso().into());
                m.entry("status").or_insert_with(|| "RUNNING".into());
            }
            let inst: Instance =
                convert::from_json_typed(json, "registry.register: instance").map_err(LuaError::runtime)?;
            Ok(open().and_then(|r| r.register(&service, inst).map_err(err)).map(|_| true))
        })?,
    )?;
    t.set(
        "deregister",
        lua.create_function(|_, (service, id): (String, String)| -> LuaResult<Fallible<bool>> {
            Ok(open().and_then(|r| r.deregister(&service, &id).map_err(err)))
        })?,
    )?;
    t.set(
        "set_status",
        lua.create_function(|_, (service, id, status): (String, String, String)| -> LuaResult<Fallible<bool>> {
            Ok(open().and_then(|r| r.set_status(&service, &id, &status).map_err(err)))
        })?,
    )?;
    t.set(
        "list",
        lua.create_function(|lua, service: String| -> LuaResult<Fallible<LuaValue>> {
            match open().and_then(|r| r.list(&service).map_err(err)) {
                Ok(l) => Ok(Ok(to_lua(lua, &l)?)),
                Err(e) => Ok(Err(e)),
            }
        })?,
    )?;
    t.set(
        "services",
        lua.create_function(|lua, ()| -> LuaResult<Fallible<LuaTable>> {
            match open().and_then(|r| r.services().map_err(err)) {
                Ok(l) => {
                    let t = lua.create_sequence_from(l)?;
                    t.set_metatable(Some(lua.array_metatable()))?;
                    Ok(Ok(t))
                }
                Err(e) => Ok(Err(e)),
            }
        })?,
    )?;
    t.set(
        "clear",
        lua.create_function(|_, service: Option<String>| -> LuaResult<Fallible<usize>> {
            let r = match open() {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let names = match service {
                Some(s) => vec![s],
                None => match r.services() {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(err(e))),
                },
            };
            let mut n = 0;
            for s in names {
                match r.clear(&s) {
                    Ok(k) => n += k,
                    Err(e) => return Ok(Err(err(e))),
                }
            }
            Ok(Ok(n))
        })?,
    )?;
    t.set("dir", lua.create_function(|_, ()| Ok(crate::util::aibench_home().join("discover").display().to_string()))?)?;
    Ok(t)
}
