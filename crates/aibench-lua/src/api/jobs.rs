//! The executor interface of `aibench.slurm` and `aibench.local` (one
//! binding, two modules): `submit(spec) -> job`, `job:status()`,
//! `job:node()`, `job:cancel()`, `job:wait{...}`, `job:logs{...}`, batched
//! `statuses(ids)`. The work is `aibench_core::jobs`'s; this converts.

use std::time::Duration;

use aibench_core::jobs::{self, ExecError, Executor, JobInfo, JobSpec, JobState, Wait, WaitError};
use mlua::prelude::*;

use crate::binding::{Fallible, OpError, Opts};
use crate::convert;

fn exec_err(e: ExecError) -> OpError {
    OpError::new(e.kind(), e.to_string())
}

fn info_table(lua: &Lua, i: &JobInfo) -> LuaResult<LuaValue> {
    convert::to_lua_plain(lua, &serde_json::to_value(i).map_err(LuaError::external)?)
}

/// The executor by name; made per call, as the local one reads
/// `$AIBENCH_HOME`, which a script may change.
fn executor(name: &'static str) -> Box<dyn Executor> {
    jobs::executor(name).expect("a known executor")
}

struct Job {
    executor: &'static str,
    id: String,
    dir: Option<String>,
}

impl LuaUserData for Job {
    fn add_fields<F: LuaUserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("id", |_, j| Ok(j.id.clone()));
        f.add_field_method_get("executor", |_, j| Ok(j.executor));
        f.add_field_method_get("dir", |_, j| Ok(j.dir.clone()));
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("status", |_, j, ()| async move {
            Ok(executor(j.executor).info(&j.id).await.map(|i| i.state.name().to_string()).map_err(exec_err))
        });
        m.add_async_method("info", |lua, j, ()| async move {
            match executor(j.executor).info(&j.id).await {
                Ok(i) => Ok(Ok(info_table(&lua, &i)?)),
                Err(e) => Ok(Err(exec_err(e))),
            }
        });
        m.add_async_method("node", |_, j, ()| async move {
            Ok(executor(j.executor).info(&j.id).await.map(|i| i.node).map_err(exec_err))
        });
        m.add_async_method("cancel", |_, j, grace_s: Option<f64>| async move {
            let grace = crate::binding::seconds("job:cancel", "grace", grace_s.unwrap_or(10.0))?;
            Ok(executor(j.executor).cancel(&j.id, grace).await.map(|_| true).map_err(exec_err))
        });
        m.add_async_method("wait", |lua, j, opts: Option<LuaTable>| async move {
            let mut o = Opts::new(&lua, "job:wait", opts);
            let until: Option<String> = o.get("until_state")?;
            let timeout: f64 = o.get("timeout_s")?.unwrap_or(3600.0);
            let poll: f64 = o.get("poll_s")?.unwrap_or(0.5);
            o.finish()?;
            let until = match &until {
                Some(s) => Some(JobState::parse(s).ok_or_else(|| {
                    LuaError::runtime(format!("job:wait: until_state: unknown state '{s}' (RUNNING, COMPLETED, ...)"))
                })?),
                None => None,
            };
            let w = Wait {
                until,
                timeout: crate::binding::seconds("job:wait", "timeout_s", timeout)?,
                poll: crate::binding::seconds("job:wait", "poll_s", poll)?.max(Duration::from_millis(50)),
            };
            match executor(j.executor).wait(&j.id, &w).await {
                Ok(state) => Ok(Ok(state.name().to_string())),
                Err(WaitError::Exec(e)) => Ok(Err(exec_err(e))),
                Err(e @ WaitError::Timeout { state, .. }) => {
                    Ok(Err(OpError::new("timeout", e.to_string()).with("state", state.name())))
                }
            }
        });
        m.add_method("logs", |lua, j, opts: Option<LuaTable>| -> LuaResult<Fallible<String>> {
            let mut o = Opts::new(lua, "job:logs", opts);
            let tail: Option<usize> = o.get("tail")?;
            o.finish()?;
            let Some(dir) = j.dir.clone().or_else(|| executor(j.executor).job_dir(&j.id)) else {
                return Ok(Err(OpError::new("not_found", format!("job {}: its folder is unknown", j.id))));
            };
            Ok(jobs::logs(&dir, tail).map_err(|e| OpError::new("io", e.to_string())))
        });
    }
}

fn spec_from(lua: &Lua, v: &LuaValue, func: &str) -> LuaResult<JobSpec> {
    let spec: JobSpec = convert::from_lua_typed(lua, v, &format!("{func}: spec"))?;
    spec.validate().map_err(|e| LuaError::runtime(format!("{func}: {e}")))?;
    Ok(spec)
}

/// The module for one executor.
pub fn module(lua: &Lua, name: &'static str) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set("name", name)?;
    t.set(
        "submit",
        lua.create_async_function(move |lua, spec: LuaValue| async move {
            let spec = spec_from(&lua, &spec, "submit")?;
            match executor(name).submit(&spec).await {
                Ok(id) => Ok(Ok(lua.create_userdata(Job { executor: name, id, dir: Some(spec.dir.clone()) })?)),
                Err(ExecError::Invalid(m)) => Err(LuaError::runtime(format!("submit: {m}"))),
                Err(e) => Ok(Err(exec_err(e))),
            }
        })?,
    )?;
    t.set(
        "render",
        lua.create_function(move |lua, spec: LuaValue| {
            let spec = spec_from(lua, &spec, "render")?;
            spec.render().map_err(|e| LuaError::runtime(format!("render: {e}")))
        })?,
    )?;
    t.set(
        "check",
        lua.create_function(move |_, spec: LuaValue| -> LuaResult<Fallible<bool>> {
            let spec: JobSpec = match convert::from_lua_field(&spec, "") {
                Ok(s) => s,
                Err(e) => return Ok(Err(crate::binding::field_error(e))),
            };
            Ok(spec.check().map(|_| true).map_err(crate::binding::field_error))
        })?,
    )?;
    t.set(
        "job",
        lua.create_function(move |lua, (id, dir): (String, Option<String>)| {
            lua.create_userdata(Job { executor: name, id, dir })
        })?,
    )?;
    t.set(
        "statuses",
        lua.create_async_function(move |lua, ids: Vec<String>| async move {
            match executor(name).statuses(&ids).await {
                Ok(m) => {
                    let out = lua.create_table()?;
                    for (id, i) in m {
                        out.set(id, info_table(&lua, &i)?)?;
                    }
                    Ok(Ok(out))
                }
                Err(e) => Ok(Err(exec_err(e))),
            }
        })?,
    )?;
    t.set(
        "available",
        lua.create_async_function(move |_, ()| async move {
            Ok(executor(name).available().await.map(|_| true).map_err(exec_err))
        })?,
    )?;
    t.set(
        "time_limit_seconds",
        lua.create_function(|_, s: String| -> LuaResult<Fallible<u64>> {
            Ok(jobs::script::time_limit_seconds(&s).map_err(crate::binding::field_error))
        })?,
    )?;
    t.set("is_final", lua.create_function(|_, state: String| Ok(jobs::is_final_name(&state)))?)?;
    Ok(t)
}
