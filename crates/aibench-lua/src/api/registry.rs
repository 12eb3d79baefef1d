//! `aibench.registry`: the discovery registry (`$AIBENCH_HOME/discover`).

use mlua::prelude::*;

use serde_json::json;

use crate::binding::{Fallible, OpError};
use crate::convert;
use aibench_core::registry::{Instance, Registry, RegistryError};

fn open() -> Result<Registry, OpError> {
    Registry::open(&aibench_core::util::aibench_home()).map_err(err)
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
            let json = convert::to_json(lua, &inst)?;
            let inst: Instance =
                aibench_core::typed::from_json(json, "registry.register: instance").map_err(LuaError::runtime)?;
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
        lua.create_function(|lua, service: Option<String>| -> LuaResult<LuaMultiValue> {
            let cleared = (|| -> Result<(usize, LuaTable), OpError> {
                let r = open()?;
                let names = match service {
                    Some(s) => vec![s],
                    None => r.services().map_err(err)?,
                };
                let mut n = 0;
                let files = lua.create_table().map_err(|e| OpError::new("lua", e.to_string()))?;
                for s in names {
                    let c = r.clear(&s).map_err(err)?;
                    n += c.entries;
                    if let Some(f) = c.file {
                        let row = json!({"path": f.display().to_string(), "corrupt": c.corrupt, "entries": c.entries});
                        let v = convert::to_lua(lua, &row).map_err(|e| OpError::new("lua", e.to_string()))?;
                        files.raw_push(v).map_err(|e| OpError::new("lua", e.to_string()))?;
                    }
                }
                Ok((n, files))
            })();
            match cleared {
                Ok((n, files)) => (n, files).into_lua_multi(lua),
                Err(e) => (LuaValue::Nil, e).into_lua_multi(lua),
            }
        })?,
    )?;
    t.set(
        "scan",
        lua.create_function(|lua, ()| -> LuaResult<Fallible<LuaValue>> {
            match open().and_then(|r| r.scan().map_err(err)) {
                Ok(scan) => {
                    let services: serde_json::Map<String, serde_json::Value> = scan
                        .services
                        .into_iter()
                        .map(|(s, l)| (s, serde_json::to_value(l).unwrap_or_default()))
                        .collect();
                    let v = json!({"services": services, "corrupt": scan.corrupt});
                    Ok(Ok(convert::to_lua(lua, &v)?))
                }
                Err(e) => Ok(Err(e)),
            }
        })?,
    )?;
    t.set(
        "quarantine",
        lua.create_function(|_, service: String| -> LuaResult<Fallible<Option<String>>> {
            Ok(open().and_then(|r| r.quarantine(&service).map_err(err)).map(|p| p.map(|p| p.display().to_string())))
        })?,
    )?;
    t.set(
        "dir",
        lua.create_function(|_, ()| Ok(aibench_core::util::aibench_home().join("discover").display().to_string()))?,
    )?;
    Ok(t)
}
