//! The job interface shared by `aibench.slurm` and `aibench.local`:
//! `submit(spec) -> job`, `job:status()`, `job:node()`, `job:cancel()`,
//! `job:wait{...}`, `job:logs{...}`, plus batched `statuses(ids)`.

use std::time::{Duration, Instant};

use mlua::prelude::*;

use super::{Fallible, OpError, Opts, convert};
use crate::jobs::{ExecError, JobInfo, JobState};
use crate::slurm::JobSpec;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Slurm,
    Local,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Slurm => "slurm",
            Which::Local => "local",
        }
    }

    async fn submit(self, spec: &JobSpec) -> Result<String, ExecError> {
        match self {
            Which::Slurm => crate::slurm::submit(spec).await,
            Which::Local => crate::local::submit(spec, &crate::util::aibench_home()),
        }
    }

    async fn statuses(self, ids: &[String]) -> Result<std::collections::HashMap<String, JobInfo>, ExecError> {
        match self {
            Which::Slurm => crate::slurm::statuses(ids).await,
            Which::Local => Ok(crate::local::statuses(ids, &crate::util::aibench_home())),
        }
    }

    async fn info(self, id: &str) -> Result<JobInfo, ExecError> {
        let ids = vec![id.to_string()];
        let mut m = self.statuses(&ids).await?;
        Ok(m.remove(id).unwrap_or(JobInfo {
            id: id.into(),
            state: JobState::Unknown,
            node: None,
            exit_code: None,
            reason: None,
        }))
    }

    async fn cancel(self, id: &str, grace: Duration) -> Result<(), ExecError> {
        match self {
            Which::Slurm => crate::slurm::cancel(id).await,
            Which::Local => crate::local::cancel(id, &crate::util::aibench_home(), grace).await,
        }
    }
}

fn exec_err(e: ExecError) -> OpError {
    OpError::new(e.kind(), e.to_string())
}

fn info_table(lua: &Lua, i: &JobInfo) -> LuaResult<LuaValue> {
    convert::to_lua_plain(lua, &serde_json::to_value(i).map_err(LuaError::external)?)
}

struct Job {
    which: Which,
    id: String,
    dir: Option<String>,
}

impl LuaUserData for Job {
    fn add_fields<F: LuaUserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("id", |_, j| Ok(j.id.clone()));
        f.add_field_method_get("executor", |_, j| Ok(j.which.name()));
        f.add_field_method_get("dir", |_, j| Ok(j.dir.clone()));
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("status", |_, j, ()| async move {
            Ok(j.which.info(&j.id).await.map(|i| i.state.name().to_string()).map_err(exec_err))
        });
        m.add_async_method("info", |lua, j, ()| async move {
            match j.which.info(&j.id).await {
                Ok(i) => Ok(Ok(info_table(&lua, &i)?)),
                Err(e) => Ok(Err(exec_err(e))),
            }
        });
        m.add_async_method("node", |_, j, ()| async move {
            Ok(j.which.info(&j.id).await.map(|i| i.node).map_err(exec_err))
        });
        m.add_async_method("cancel", |_, j, grace_s: Option<f64>| async move {
            let grace = super::seconds("job:cancel", "grace", grace_s.unwrap_or(10.0))?;
            Ok(j.which.cancel(&j.id, grace).await.map(|_| true).map_err(exec_err))
        });
        m.add_async_method("wait", |lua, j, opts: Option<LuaTable>| async move {
            let mut o = Opts::new(&lua, "job:wait", opts);
            let until: Option<String> = o.get("until_state")?;
            let timeout: f64 = o.get("timeout_s")?.unwrap_or(3600.0);
            let poll: f64 = o.get("poll_s")?.unwrap_or(0.5);
            o.finish()?;
            let target = match &until {
                Some(s) => Some(JobState::parse(s).ok_or_else(|| {
                    LuaError::runtime(format!("job:wait: until_state: unknown state '{s}' (RUNNING, COMPLETED, ...)"))
                })?),
                None => None,
            };
            let deadline = Instant::now() + super::seconds("job:wait", "timeout_s", timeout)?;
            let poll = super::seconds("job:wait", "poll_s", poll)?.max(Duration::from_millis(50));
            loop {
                let info = match j.which.info(&j.id).await {
                    Ok(i) => i,
                    Err(e) => return Ok(Err(exec_err(e))),
                };
                let reached = match target {
                    None => info.state.is_final(),
                    Some(t) if t.is_final() => info.state.is_final(),
                    Some(t) => info.state.rank() >= t.rank(),
                };
                if reached {
                    return Ok(Ok(info.state.name().to_string()));
                }
                if Instant::now() >= deadline {
                    return Ok(Err(OpError::new(
                        "timeout",
                        format!("job {} still {} after {timeout} s", j.id, info.state.name()),
                    )
                    .with("state", info.state.name())));
                }
                tokio::time::sleep(poll).await;
            }
        });
        m.add_method("logs", |lua, j, opts: Option<LuaTable>| -> LuaResult<Fallible<String>> {
            let mut o = Opts::new(lua, "job:logs", opts);
            let tail: Option<usize> = o.get("tail")?;
            o.finish()?;
            let dir = match (&j.dir, j.which) {
                (Some(d), _) => d.clone(),
                (None, Which::Local) => match crate::local::job_dir(&j.id, &crate::util::aibench_home()) {
                    Ok(d) => d,
                    Err(e) => return Ok(Err(exec_err(e))),
                },
                (None, Which::Slurm) => {
                    return Ok(Err(OpError::new("not_found", format!("job {}: its folder is unknown", j.id))));
                }
            };
            let path = crate::slurm::script::log_path_in(&dir);
            let text = match std::fs::read(&path) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Ok(Err(OpError::new("io", format!("{path}: {e}")))),
            };
            Ok(Ok(match tail {
                Some(n) => {
                    let lines: Vec<&str> = text.lines().collect();
                    lines[lines.len().saturating_sub(n)..].join("\n")
                }
                None => text,
            }))
        });
    }
}

fn spec_from(lua: &Lua, v: &LuaValue, func: &str) -> LuaResult<JobSpec> {
    let spec: JobSpec = convert::from_lua_typed(lua, v, &format!("{func}: spec"))?;
    spec.validate().map_err(|e| LuaError::runtime(format!("{func}: {e}")))?;
    Ok(spec)
}

/// The module for one executor.
pub fn module(lua: &Lua, which: Which) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    let name = which.name();
    t.set("name", name)?;
    t.set(
        "submit",
        lua.create_async_function(move |lua, spec: LuaValue| async move {
            let spec = spec_from(&lua, &spec, "submit")?;
            match which.submit(&spec).await {
                Ok(id) => Ok(Ok(lua.create_userdata(Job { which, id, dir: Some(spec.dir.clone()) })?)),
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
        "job",
        lua.create_function(move |lua, (id, dir): (String, Option<String>)| {
            lua.create_userdata(Job { which, id, dir })
        })?,
    )?;
    t.set(
        "statuses",
        lua.create_async_function(move |lua, ids: Vec<String>| async move {
            match which.statuses(&ids).await {
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
            match which {
                Which::Slurm => Ok(crate::slurm::available().await.map(|_| true).map_err(exec_err)),
                Which::Local => Ok(Ok(true)),
            }
        })?,
    )?;
    t.set(
        "time_limit_seconds",
        lua.create_function(|_, s: String| -> LuaResult<Fallible<u64>> {
            Ok(crate::slurm::script::time_limit_seconds(&s).map_err(|m| OpError::new("invalid", m)))
        })?,
    )?;
    Ok(t)
}
