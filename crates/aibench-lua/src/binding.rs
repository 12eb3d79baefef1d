//! What every binding shares: the two tiers of errors (misuse raises a
//! `LuaError`; an expected failure returns `nil, err`, an [`OpError`]), option
//! tables read strictly ([`Opts`]), and small argument checks. The module
//! list is `api/mod.rs`; bindings import from here, never from their list.

use aibench_core::typed::FieldError;
use mlua::prelude::*;

use crate::convert;

/// An expected failure, returned to Lua as the second value of `nil, err`.
#[derive(Debug, Clone)]
pub struct OpError {
    pub kind: String,
    pub message: String,
    pub extra: Vec<(String, serde_json::Value)>,
}

impl OpError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> OpError {
        OpError { kind: kind.into(), message: message.into(), extra: Vec::new() }
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> OpError {
        self.extra.push((key.to_string(), value.into()));
        self
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

const ERR_MT: &str = "aibench.error_mt";

/// Metatable of error tables: `tostring(err)` gives the message, so
/// `assert(f())` and `error(err)` read well.
fn error_metatable(lua: &Lua) -> LuaResult<LuaTable> {
    if let Ok(mt) = lua.named_registry_value::<LuaTable>(ERR_MT) {
        return Ok(mt);
    }
    let mt = lua.create_table()?;
    mt.set(
        "__tostring",
        lua.create_function(|_, t: LuaTable| {
            let kind: String = t.get("kind").unwrap_or_default();
            let msg: String = t.get("message").unwrap_or_default();
            Ok(match t.get::<Option<String>>("field").ok().flatten() {
                Some(field) if !field.is_empty() => format!("{kind}: {field}: {msg}"),
                _ => format!("{kind}: {msg}"),
            })
        })?,
    )?;
    lua.set_named_registry_value(ERR_MT, &mt)?;
    Ok(mt)
}

impl IntoLua for OpError {
    fn into_lua(self, lua: &Lua) -> LuaResult<LuaValue> {
        let t = lua.create_table()?;
        t.set("kind", self.kind)?;
        t.set("message", self.message)?;
        for (k, v) in &self.extra {
            t.set(k.as_str(), convert::to_lua(lua, v)?)?;
        }
        t.set_metatable(Some(error_metatable(lua)?))?;
        Ok(LuaValue::Table(t))
    }
}

/// A field error as `nil, err`: `{kind = "invalid", field = "workload.rate",
/// message = "expected ..."}`. The caller names the field in its own terms
/// (a recipe field, a flag) from `err.field`; the message does not repeat it.
pub fn field_error(e: FieldError) -> OpError {
    let op = OpError::new("invalid", e.message);
    if e.field.is_empty() { op } else { op.with("field", e.field) }
}

/// A field error raised (misuse): Lua sees `"field: message"` as its text,
/// and `aibench.error_info(err)` gives the parts back as a table.
pub fn raise_field(e: FieldError) -> LuaError {
    LuaError::external(e)
}

/// The [`FieldError`] inside a raised Lua error, if it is one.
pub fn field_error_of(e: &LuaError) -> Option<&FieldError> {
    match e {
        LuaError::CallbackError { cause, .. } => field_error_of(cause),
        LuaError::WithContext { cause, .. } => field_error_of(cause),
        LuaError::ExternalError(inner) => inner.downcast_ref::<FieldError>(),
        _ => None,
    }
}

/// What a fallible binding returns: `value` or `nil, err`.
pub type Fallible<T> = Result<T, OpError>;

/// Reads an options table, raising on wrong types and unknown keys.
pub struct Opts {
    lua: Lua,
    func: &'static str,
    table: Option<LuaTable>,
    known: Vec<&'static str>,
}

impl Opts {
    pub fn new(lua: &Lua, func: &'static str, table: Option<LuaTable>) -> Opts {
        Opts { lua: lua.clone(), func, table, known: Vec::new() }
    }

    pub fn get<T: FromLua>(&mut self, key: &'static str) -> LuaResult<Option<T>> {
        self.known.push(key);
        let Some(t) = &self.table else { return Ok(None) };
        let v: LuaValue = t.get(key)?;
        if v.is_nil() {
            return Ok(None);
        }
        let tn = v.type_name();
        T::from_lua(v, &self.lua).map(Some).map_err(|e| {
            let want = match &e {
                LuaError::FromLuaConversionError { to, .. } => to.to_string(),
                other => other.to_string(),
            };
            LuaError::runtime(format!("{}: option '{key}': expected {want}, got {tn}", self.func))
        })
    }

    pub fn value(&mut self, key: &'static str) -> LuaResult<LuaValue> {
        self.known.push(key);
        match &self.table {
            Some(t) => t.get(key),
            None => Ok(LuaValue::Nil),
        }
    }

    /// Raises on keys that were never asked for, suggesting the closest one.
    pub fn finish(self) -> LuaResult<()> {
        let Some(t) = &self.table else { return Ok(()) };
        for pair in t.pairs::<LuaValue, LuaValue>() {
            let (k, _) = pair?;
            let name = match &k {
                LuaValue::String(s) => s.to_str()?.to_string(),
                other => format!("{other:?}"),
            };
            if !self.known.contains(&name.as_str()) {
                let hint = aibench_core::util::did_you_mean(&name, self.known.iter().copied())
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                return Err(LuaError::runtime(format!("{}: unknown option '{name}'{hint}", self.func)));
            }
        }
        Ok(())
    }
}

/// A Lua error as a person should read it: the message, then the traceback.
pub fn error_text(e: &LuaError) -> String {
    match e {
        LuaError::SyntaxError { message, .. } => message.clone(),
        LuaError::RuntimeError(m) => m.clone(),
        LuaError::CallbackError { traceback, cause } => {
            let inner = error_text(cause);
            if inner.contains("stack traceback:") { inner } else { format!("{inner}\n{traceback}") }
        }
        LuaError::WithContext { context, cause } => format!("{context}: {}", error_text(cause)),
        other => other.to_string(),
    }
}

/// Seconds (Lua float) to a Duration, raising on negative or non-finite input.
pub fn seconds(func: &str, what: &str, s: f64) -> LuaResult<std::time::Duration> {
    if !s.is_finite() || s < 0.0 {
        return Err(LuaError::runtime(format!("{func}: {what} must be a non-negative number of seconds, got {s}")));
    }
    Ok(std::time::Duration::from_secs_f64(s))
}
