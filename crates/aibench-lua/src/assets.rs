//! Lua sources shipped inside the binary (the repository's top-level `lua/`),
//! plus the stock recipes (the repository's `recipes/`).
//!
//! Release builds read only the embedded copies. Debug builds prefer the file
//! on disk when the source tree is present, so edits to `lua/` take effect
//! without a rebuild (the same trick yazi uses for its preset Lua).

use std::borrow::Cow;

use include_dir::{Dir, include_dir};

static LUA: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../lua");
static RECIPES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../recipes");

/// A file from `lua/`, by path relative to it (`aibench/server.lua`).
pub fn lua_file(rel: &str) -> Option<Cow<'static, [u8]>> {
    read(&LUA, "../../lua", rel)
}

/// A stock recipe, by path relative to `recipes/` (`servers/vllm-sim.yaml`).
pub fn recipe_file(rel: &str) -> Option<Cow<'static, [u8]>> {
    read(&RECIPES, "../../recipes", rel)
}

fn read(dir: &'static Dir<'static>, top: &str, rel: &str) -> Option<Cow<'static, [u8]>> {
    if cfg!(debug_assertions) {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(top).join(rel);
        if let Ok(bytes) = std::fs::read(&p) {
            return Some(Cow::Owned(bytes));
        }
    }
    dir.get_file(rel).map(|f| Cow::Borrowed(f.contents()))
}

/// Every file path under `lua/` (relative), sorted.
pub fn lua_paths() -> Vec<String> {
    paths(&LUA)
}

/// Every file path under `recipes/` (relative), sorted.
pub fn recipe_paths() -> Vec<String> {
    paths(&RECIPES)
}

fn paths(dir: &'static Dir<'static>) -> Vec<String> {
    let mut out = Vec::new();
    collect(dir, &mut out);
    out.sort();
    out
}

fn collect(dir: &'static Dir<'static>, out: &mut Vec<String>) {
    for f in dir.files() {
        out.push(f.path().to_string_lossy().replace('\\', "/"));
    }
    for d in dir.dirs() {
        collect(d, out);
    }
}

/// Embedded module names (`aibench.server`) from `lua/aibench/**.lua`.
pub fn lua_module_names() -> Vec<String> {
    lua_paths()
        .into_iter()
        .filter(|p| p.starts_with("aibench/") && p.ends_with(".lua"))
        .map(|p| {
            let stem = p.trim_end_matches(".lua").trim_end_matches("/init");
            stem.replace('/', ".")
        })
        .collect()
}

/// Maps a module name to its embedded file: the path under `lua/` and the source.
pub fn module_file(name: &str) -> Option<(String, Cow<'static, [u8]>)> {
    let base = name.replace('.', "/");
    [format!("{base}.lua"), format!("{base}/init.lua")].into_iter().find_map(|cand| {
        let src = lua_file(&cand)?;
        Some((cand, src))
    })
}
