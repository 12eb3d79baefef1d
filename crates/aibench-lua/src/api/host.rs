//! `require "aibench"`: facts about the host program itself, names that
//! may become paths, error messages, and stop requests (signals).

use std::cell::RefCell;

use mlua::prelude::*;

use aibench_core::interrupt;

/// `aibench.guard()`: while held, SIGINT and SIGTERM do not end the process
/// but are reported to the holder, which stops cleanly.
struct Guard(RefCell<Option<interrupt::Guard>>);

impl LuaUserData for Guard {
    fn add_methods<M: LuaUserDataMethods<Self>>(m: &mut M) {
        m.add_method("signal", |_, g, ()| Ok(g.0.borrow().as_ref().and_then(|g| g.signal()).map(|s| s.name())));
        m.add_async_method("sleep", |_, g, s: f64| async move {
            let d = crate::binding::seconds("guard:sleep", "duration", s)?;
            if g.0.borrow().is_none() {
                tokio::time::sleep(d).await;
                return Ok(None);
            }
            tokio::select! {
                _ = tokio::time::sleep(d) => Ok(None),
                sig = interrupt::next_signal() => Ok(Some(sig.name())),
            }
        });
        m.add_method("release", |_, g, ()| {
            g.0.borrow_mut().take();
            Ok(())
        });
    }
}

/// A Lua error value's message without tracebacks: the innermost cause of a
/// Rust error, or the string itself.
fn error_message(lua: &Lua, v: LuaValue) -> LuaResult<String> {
    fn root(e: &LuaError) -> String {
        match e {
            LuaError::CallbackError { cause, .. } => root(cause),
            LuaError::WithContext { context, cause } => format!("{context}: {}", root(cause)),
            LuaError::RuntimeError(m) => m.clone(),
            LuaError::SyntaxError { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
    let text = match v {
        LuaValue::String(s) => s.to_string_lossy(),
        LuaValue::UserData(_) | LuaValue::Error(_) => root(&LuaError::from_lua(v, lua)?),
        other => lua.globals().get::<LuaFunction>("tostring")?.call::<String>(other)?,
    };
    Ok(match text.find("\nstack traceback:") {
        Some(i) => text[..i].to_string(),
        None => text,
    })
}

/// A raised error as data: `{kind, field, message}`. A field error (a bad
/// spec, recipe or job field) has kind "invalid" and its field; anything
/// else has kind "error" and the message of [`error_message`]. An error
/// table (`nil, err` raised with `error(err)`) is returned as it is.
fn error_info(lua: &Lua, v: LuaValue) -> LuaResult<LuaTable> {
    if let LuaValue::Table(t) = &v
        && t.contains_key("kind")?
    {
        return Ok(t.clone());
    }
    let field = match &v {
        LuaValue::Error(e) => crate::binding::field_error_of(e).cloned(),
        LuaValue::UserData(_) => match LuaError::from_lua(v.clone(), lua) {
            Ok(e) => crate::binding::field_error_of(&e).cloned(),
            Err(_) => None,
        },
        _ => None,
    };
    let op = match field {
        Some(fe) => crate::binding::field_error(fe),
        None => crate::binding::OpError::new("error", error_message(lua, v)?),
    };
    match op.into_lua(lua)? {
        LuaValue::Table(t) => Ok(t),
        _ => Err(LuaError::runtime("error_info: not a table")),
    }
}

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
    t.set("home", lua.create_function(|_, ()| Ok(aibench_core::util::aibench_home().display().to_string()))?)?;
    t.set("hostname", lua.create_function(|_, ()| Ok(aibench_core::util::hostname()))?)?;
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
    t.set(
        "check_name",
        lua.create_function(|_, v: String| -> LuaResult<crate::binding::Fallible<bool>> {
            Ok(aibench_core::util::check_name(&v).map(|_| true).map_err(|m| crate::binding::OpError::new("invalid", m)))
        })?,
    )?;
    t.set("error_message", lua.create_function(error_message)?)?;
    t.set("error_info", lua.create_function(error_info)?)?;
    t.set(
        "schema",
        lua.create_function(|lua, name: String| match aibench_core::schema::recipe_section(&name) {
            Some(v) => crate::convert::to_lua_plain(lua, &v),
            None => Err(LuaError::runtime(format!(
                "aibench.schema: no section '{name}' (expected target, slo or resources)"
            ))),
        })?,
    )?;
    t.set(
        "suggest",
        lua.create_function(|_, (s, names): (String, Vec<String>)| {
            Ok(aibench_core::util::did_you_mean(&s, names.iter().map(String::as_str)).map(str::to_string))
        })?,
    )?;
    t.set(
        "guard",
        lua.create_function(|lua, ()| lua.create_userdata(Guard(RefCell::new(Some(interrupt::Guard::new())))))?,
    )?;
    t.set(
        "exit_code",
        lua.create_function(|_, name: String| {
            Ok(match name.as_str() {
                "SIGINT" => interrupt::Signal::Interrupt.exit_code(),
                "SIGTERM" => interrupt::Signal::Terminate.exit_code(),
                _ => 1,
            })
        })?,
    )?;
    Ok(t)
}
