//! aibench's Lua host: a Lua 5.4 state with every `aibench.*` module, the
//! embedded Lua library (`lua/`) and stock recipes, and the loader that
//! names chunks after their files. Bindings (`api/`) only convert between
//! Lua values and the engines' types in `aibench_core`, and map errors.

pub mod api;
pub mod assets;
pub mod binding;
pub mod convert;
pub mod host;
pub mod types;
