//! Lua bindings: one file per `aibench.<name>` module, listed and registered
//! here. Bindings convert arguments and map errors; the work happens in the
//! engines. What they share (errors, option tables) is `crate::binding`.

use mlua::prelude::*;

pub mod accounting;
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
