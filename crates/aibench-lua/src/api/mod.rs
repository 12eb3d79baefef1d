//! Lua bindings: one file per `aibench.<name>` module, registered here.
//!
//! Bindings convert arguments and map errors; the work happens in the engines.
//! Two tiers of errors: misuse raises (`LuaError`), expected operational
//! failures return `nil, err` ([`OpError`], a table with `kind` and `message`).

use mlua::prelude::*;

pub mod accounting;
pub mod convert;

pub mod agent;
pub mod bench;
pub mod env;
pub mod fs;
pub mod host;
pub mod http;
pub mod jobs;
pub mod json;
pub mod local;
pub mod log;
pub mod plot;
pub mod proc;
pub mod prom;
pub mod registry;
pub mod sim;
pub mod slurm;
pub mod time;
pub mod uuid;
pub mod yaml;

type Constructor = fn(&Lua) -> LuaResult<LuaTable>;

/// Every native module, by the name scripts `require`.
pub const MODULES: &[(&str, Constructor)] = &[
    ("aibench", host::module),
    ("aibench.accounting", accounting::module),
    ("aibench.agent", agent::module),
    ("aibench.bench", bench::module),
    ("aibench.env", env::module),
    ("aibench.fs", fs::module),
    ("aibench.http", http::module),
    ("aibench.json", json::module),
    ("aibench.local", local::module),
    ("aibench.log", log::module),
    ("aibench.plot", plot::module),
    ("aibench.proc", proc::module),
    ("aibench.prom", prom::module),
    ("aibench.registry", registry::module),
    ("aibench.sim", sim::module),
    ("aibench.slurm", slurm::module),
    ("aibench.time", time::module),
    ("aibench.uuid", uuid::module),
    ("aibench.yaml", yaml::module),
];

/// Names scripts can `require`: the native modules (in [`MODULES`] order),
/// then the embedded Lua ones (in path order), as asked. Not deduplicated.
pub fn module_names(native: bool, lua: bool) -> Vec<String> {
    let mut names = Vec::new();
    if native {
        names.extend(MODULES.iter().map(|(n, _)| n.to_string()));
    }
    if lua {
        names.extend(crate::assets::lua_module_names());
    }
    names
}

/// Registers every native module in `package.loaded`.
pub fn register_all(lua: &Lua) -> LuaResult<()> {
    for (name, ctor) in MODULES {
        let t = ctor(lua)?;
        lua.register_module(name, t)?;
    }
    Ok(())
}

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
            Ok(format!("{kind}: {msg}"))
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
