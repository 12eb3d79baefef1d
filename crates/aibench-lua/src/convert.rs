//! Lua values <-> `serde_json::Value`, the one data model every binding
//! converts through (JSON, YAML, specs handed to engines, results handed back).
//!
//! Rules (documented in the README under "JSON and Lua tables"):
//! - `json.null` (a light userdata) is JSON `null`; Lua `nil` never appears
//!   inside a table, so it cannot stand for null.
//! - A table carrying the array metatable (`json.array(t)`, or any array that
//!   came from `json.decode`) is always an array, empty or not.
//! - Otherwise an empty table is an object `{}`; a table whose keys are exactly
//!   `1..n` is an array; any other table is an object whose integer keys are
//!   written as strings.
//! - Serialisable userdata (bench results and specs) encode as their Rust
//!   value does (a result as the result file).

use mlua::prelude::*;
use serde_json::{Map, Number, Value as Json};

/// Lua -> JSON. `path` in errors is a JSON-path-like location (`$.a[2].b`).
pub fn to_json(lua: &Lua, v: &LuaValue) -> LuaResult<Json> {
    let mut seen = Vec::new();
    conv(lua, v, "$", &mut seen, 0)
}

fn conv(lua: &Lua, v: &LuaValue, path: &str, seen: &mut Vec<usize>, depth: usize) -> LuaResult<Json> {
    if depth > 200 {
        return Err(LuaError::runtime(format!("cannot encode {path}: nested too deeply")));
    }
    Ok(match v {
        LuaValue::Nil => Json::Null,
        LuaValue::Boolean(b) => Json::Bool(*b),
        LuaValue::Integer(i) => Json::Number((*i).into()),
        LuaValue::Number(n) => match Number::from_f64(*n) {
            Some(x) => Json::Number(x),
            None => return Err(LuaError::runtime(format!("cannot encode {path}: {n} is not a finite number"))),
        },
        LuaValue::String(s) => Json::String(s.to_str()?.to_string()),
        LuaValue::LightUserData(u) if u.0.is_null() => Json::Null,
        LuaValue::Table(t) => {
            let id = t.to_pointer() as usize;
            if seen.contains(&id) {
                return Err(LuaError::runtime(format!("cannot encode {path}: table contains a cycle")));
            }
            seen.push(id);
            let out = table_to_json(lua, t, path, seen, depth)?;
            seen.pop();
            out
        }
        // Serialisable userdata (a bench result, a bench spec) writes its
        // own form: a result encodes as the result file does.
        LuaValue::UserData(ud) => match serde_json::to_value(ud) {
            Ok(j) => j,
            Err(_) => {
                return Err(LuaError::runtime(format!(
                    "cannot encode {path}: values of type userdata have no JSON form"
                )));
            }
        },
        other => {
            return Err(LuaError::runtime(format!(
                "cannot encode {path}: values of type {} have no JSON form",
                other.type_name()
            )));
        }
    })
}

fn is_array_marked(lua: &Lua, t: &LuaTable) -> bool {
    match t.metatable() {
        Some(mt) => mt == lua.array_metatable(),
        None => false,
    }
}

fn table_to_json(lua: &Lua, t: &LuaTable, path: &str, seen: &mut Vec<usize>, depth: usize) -> LuaResult<Json> {
    if is_array_marked(lua, t) {
        let mut arr = Vec::with_capacity(t.raw_len());
        for (i, v) in t.clone().sequence_values::<LuaValue>().enumerate() {
            arr.push(conv(lua, &v?, &format!("{path}[{}]", i + 1), seen, depth + 1)?);
        }
        return Ok(Json::Array(arr));
    }
    let mut pairs: Vec<(LuaValue, LuaValue)> = Vec::new();
    for kv in t.clone().pairs::<LuaValue, LuaValue>() {
        pairs.push(kv?);
    }
    if pairs.is_empty() {
        return Ok(Json::Object(Map::new()));
    }
    let n = pairs.len() as i64;
    let is_seq = pairs.iter().all(|(k, _)| matches!(k, LuaValue::Integer(i) if *i >= 1 && *i <= n));
    if is_seq {
        let mut arr = vec![Json::Null; pairs.len()];
        for (k, v) in &pairs {
            if let LuaValue::Integer(i) = k {
                arr[(*i - 1) as usize] = conv(lua, v, &format!("{path}[{i}]"), seen, depth + 1)?;
            }
        }
        return Ok(Json::Array(arr));
    }
    let mut map = Map::new();
    for (k, v) in &pairs {
        let key = match k {
            LuaValue::String(s) => s.to_str()?.to_string(),
            LuaValue::Integer(i) => i.to_string(),
            other => {
                return Err(LuaError::runtime(format!(
                    "cannot encode {path}: object keys must be strings or integers, got {}",
                    other.type_name()
                )));
            }
        };
        let child = format!("{path}.{key}");
        map.insert(key, conv(lua, v, &child, seen, depth + 1)?);
    }
    // Sorted keys make encoded output stable (results, golden files, diffs).
    let mut sorted: Vec<(String, Json)> = map.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Json::Object(sorted.into_iter().collect()))
}

/// JSON -> Lua. Arrays get the array metatable so they stay arrays when empty.
pub fn to_lua(lua: &Lua, v: &Json) -> LuaResult<LuaValue> {
    Ok(match v {
        Json::Null => LuaValue::NULL,
        Json::Bool(b) => LuaValue::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                LuaValue::Integer(i)
            } else {
                LuaValue::Number(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => LuaValue::String(lua.create_string(s)?),
        Json::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, x) in a.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, x)?)?;
            }
            t.set_metatable(Some(lua.array_metatable()))?;
            LuaValue::Table(t)
        }
        Json::Object(m) => {
            let t = lua.create_table_with_capacity(0, m.len())?;
            for (k, x) in m {
                t.raw_set(k.as_str(), to_lua(lua, x)?)?;
            }
            LuaValue::Table(t)
        }
    })
}

/// Like [`to_lua`] but JSON `null` inside objects is dropped rather than kept
/// as `json.null`: what configuration readers want (`if cfg.x then`).
pub fn to_lua_plain(lua: &Lua, v: &Json) -> LuaResult<LuaValue> {
    Ok(match v {
        Json::Null => LuaValue::Nil,
        Json::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, x) in a.iter().enumerate() {
                let lv = match x {
                    Json::Null => LuaValue::NULL,
                    _ => to_lua_plain(lua, x)?,
                };
                t.raw_set(i + 1, lv)?;
            }
            t.set_metatable(Some(lua.array_metatable()))?;
            LuaValue::Table(t)
        }
        Json::Object(m) => {
            let t = lua.create_table_with_capacity(0, m.len())?;
            for (k, x) in m {
                if !x.is_null() {
                    t.raw_set(k.as_str(), to_lua_plain(lua, x)?)?;
                }
            }
            LuaValue::Table(t)
        }
        other => to_lua(lua, other)?,
    })
}

/// Converts a Lua value to a typed Rust value, reading it directly (so an
/// empty table is an empty list where a list is expected), with errors that
/// name the field path (`spec.resources.cpu_cores: invalid type ...`).
pub fn from_lua_typed<T: serde::de::DeserializeOwned>(_lua: &Lua, v: &LuaValue, what: &str) -> LuaResult<T> {
    from_lua_field(v, what).map_err(|e| LuaError::runtime(e.to_string()))
}

/// [`from_lua_typed`] with the failing field as data (`what.path`).
pub fn from_lua_field<T: serde::de::DeserializeOwned>(
    v: &LuaValue,
    what: &str,
) -> Result<T, aibench_core::typed::FieldError> {
    let de = mlua::serde::Deserializer::new(v.clone());
    serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
        aibench_core::typed::FieldError::new(
            aibench_core::typed::join(what, &e.path().to_string()),
            aibench_core::typed::located("", "", &e.inner().to_string()),
        )
    })
}
