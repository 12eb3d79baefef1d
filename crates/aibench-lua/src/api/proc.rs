//! `aibench.proc`: run programs (argument lists; a shell only when asked).

use std::sync::Arc;

use mlua::prelude::*;

use crate::binding::{Fallible, OpError, Opts};
use aibench_core::procs::{self, Finished, Output, Spec};

fn parse_spec(lua: &Lua, func: &'static str, cmd: LuaValue, opts: Option<LuaTable>) -> LuaResult<Spec> {
    let mut o = Opts::new(lua, func, opts);
    let shell: bool = o.get("shell")?.unwrap_or(false);
    let argv: Vec<String> = match cmd {
        LuaValue::Table(t) => t
            .sequence_values::<String>()
            .collect::<LuaResult<_>>()
            .map_err(|e| LuaError::runtime(format!("{func}: arguments must be strings: {e}")))?,
        LuaValue::String(s) if shell => vec![s.to_str()?.to_string()],
        LuaValue::String(_) => {
            return Err(LuaError::runtime(format!(
                "{func}: pass the command as a list of arguments ({{\"prog\", \"arg\"}}), or a string with shell = true"
            )));
        }
        other => {
            return Err(LuaError::runtime(format!("{func}: expected a list of arguments, got {}", other.type_name())));
        }
    };
    if argv.is_empty() {
        return Err(LuaError::runtime(format!("{func}: empty argument list")));
    }
    let mut spec = Spec { argv, shell, ..Default::default() };
    if let Some(env) = o.get::<LuaTable>("env")? {
        for kv in env.pairs::<String, LuaValue>() {
            let (k, v) = kv?;
            let v = match v {
                LuaValue::String(s) => s.to_str()?.to_string(),
                LuaValue::Integer(i) => i.to_string(),
                LuaValue::Number(n) => n.to_string(),
                LuaValue::Boolean(b) => b.to_string(),
                other => {
                    return Err(LuaError::runtime(format!(
                        "{func}: env.{k}: expected a string, got {}",
                        other.type_name()
                    )));
                }
            };
            spec.env.insert(k, v);
        }
    }
    spec.clear_env = o.get("clear_env")?.unwrap_or(false);
    spec.cwd = o.get::<String>("cwd")?.map(Into::into);
    spec.stdin = o.get::<LuaString>("stdin")?.map(|s| s.as_bytes().to_vec());
    if let Some(t) = o.get::<f64>("timeout_s")? {
        spec.timeout = Some(crate::binding::seconds(func, "timeout_s", t)?);
    }
    spec.new_group = o.get("group")?.unwrap_or(false);
    spec.stdout = output(func, "stdout", o.get("stdout")?)?;
    spec.stderr = output(func, "stderr", o.get("stderr")?)?;
    if let Some(p) = o.get::<String>("stdout_file")? {
        spec.stdout = Output::File(p.into());
    }
    if let Some(p) = o.get::<String>("stderr_file")? {
        spec.stderr = Output::File(p.into());
    }
    o.finish()?;
    Ok(spec)
}

fn output(func: &str, which: &str, v: Option<String>) -> LuaResult<Output> {
    Ok(match v.as_deref() {
        None | Some("capture") => Output::Capture,
        Some("inherit") => Output::Inherit,
        Some("null") => Output::Null,
        Some(other) => {
            return Err(LuaError::runtime(format!(
                "{func}: option '{which}': expected \"capture\", \"inherit\" or \"null\", got \"{other}\""
            )));
        }
    })
}

fn finished_table(lua: &Lua, f: &Finished) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set("code", f.code)?;
    t.set("signal", f.signal)?;
    t.set("ok", f.code == Some(0))?;
    t.set("stdout", lua.create_string(&f.stdout)?)?;
    t.set("stderr", lua.create_string(&f.stderr)?)?;
    t.set("timed_out", f.timed_out)?;
    t.set("duration_s", f.duration.as_secs_f64())?;
    Ok(t)
}

fn finished_result(lua: &Lua, f: &Finished, argv0: &str) -> LuaResult<Fallible<LuaTable>> {
    if f.timed_out {
        return Ok(Err(OpError::new(
            "timeout",
            format!("'{argv0}' did not finish within {:.1} s and was killed", f.duration.as_secs_f64()),
        )
        .with("stdout", String::from_utf8_lossy(&f.stdout).into_owned())
        .with("stderr", String::from_utf8_lossy(&f.stderr).into_owned())));
    }
    Ok(Ok(finished_table(lua, f)?))
}

fn proc_err(e: procs::ProcError) -> OpError {
    OpError::new(e.kind(), e.to_string())
}

struct Handle {
    inner: Arc<procs::Running>,
    argv0: String,
}

impl LuaUserData for Handle {
    fn add_fields<F: LuaUserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("pid", |_, h| Ok(h.inner.pid))
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("wait", |lua, h, timeout_s: Option<f64>| async move {
            let timeout = timeout_s.map(|t| crate::binding::seconds("handle:wait", "timeout", t)).transpose()?;
            match h.inner.wait(timeout).await {
                Ok(f) => finished_result(&lua, &f, &h.argv0),
                Err(e) => Ok(Err(proc_err(e))),
            }
        });
        m.add_method("kill", |_, h, sig: Option<String>| {
            let sig = match sig {
                None => procs::signal_number("TERM").unwrap_or(15),
                Some(s) => procs::signal_number(&s)
                    .ok_or_else(|| LuaError::runtime(format!("handle:kill: unknown signal '{s}'")))?,
            };
            Ok(h.inner.signal_now(sig))
        });
        m.add_async_method("running", |_, h, ()| async move { Ok(h.inner.running().await) });
        m.add_async_method("output", |lua, h, ()| async move {
            let (o, e) = h.inner.output_so_far().await;
            Ok((lua.create_string(&o)?, lua.create_string(&e)?))
        });
    }
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "run",
        lua.create_async_function(|lua, (cmd, opts): (LuaValue, Option<LuaTable>)| async move {
            let spec = parse_spec(&lua, "proc.run", cmd, opts)?;
            match procs::run(&spec).await {
                Ok(f) => finished_result(&lua, &f, &spec.argv[0]),
                Err(e) => Ok(Err(proc_err(e))),
            }
        })?,
    )?;
    t.set(
        "spawn",
        lua.create_function(|lua, (cmd, opts): (LuaValue, Option<LuaTable>)| -> LuaResult<Fallible<LuaAnyUserData>> {
            let spec = parse_spec(lua, "proc.spawn", cmd, opts)?;
            match procs::spawn(&spec) {
                Ok(r) => Ok(Ok(lua.create_userdata(Handle { inner: Arc::new(r), argv0: spec.argv[0].clone() })?)),
                Err(e) => Ok(Err(proc_err(e))),
            }
        })?,
    )?;
    t.set(
        "which",
        lua.create_function(|_, name: String| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            for dir in std::env::split_paths(&path) {
                let p = dir.join(&name);
                if let Ok(m) = std::fs::metadata(&p) {
                    use std::os::unix::fs::PermissionsExt;
                    if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                        return Ok(Some(p.display().to_string()));
                    }
                }
            }
            Ok(None)
        })?,
    )?;
    t.set("pid", lua.create_function(|_, ()| Ok(std::process::id()))?)?;
    Ok(t)
}
