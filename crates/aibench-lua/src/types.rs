//! `aibench types --out DIR`: the LuaLS stubs from `lua/types/` plus a
//! `.luarc.json` pointing the language server at them.

use std::path::Path;

use anyhow::Context;

pub mod docs;

pub fn write(out: &Path) -> anyhow::Result<usize> {
    let types_dir = out.join("types");
    std::fs::create_dir_all(&types_dir).with_context(|| format!("creating {}", types_dir.display()))?;
    let mut n = 0;
    for rel in crate::assets::lua_paths() {
        let Some(name) = rel.strip_prefix("types/") else { continue };
        let data = crate::assets::lua_file(&rel).with_context(|| format!("embedded stub {rel} missing"))?;
        let dest = types_dir.join(name);
        std::fs::write(&dest, data.as_ref()).with_context(|| format!("writing {}", dest.display()))?;
        n += 1;
    }
    // Keep whatever else an existing .luarc.json says; set only our keys.
    let rc_path = out.join(".luarc.json");
    let mut rc: serde_json::Map<String, serde_json::Value> = match std::fs::read(&rc_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not valid JSON; fix or remove it", rc_path.display()))?,
        Err(_) => serde_json::Map::new(),
    };
    rc.insert("$schema".into(), "https://raw.githubusercontent.com/LuaLS/vscode-lua/master/setting/schema.json".into());
    rc.insert("runtime.version".into(), "Lua 5.4".into());
    let mut libs: Vec<serde_json::Value> =
        rc.get("workspace.library").and_then(|v| v.as_array().cloned()).unwrap_or_default();
    if !libs.iter().any(|v| v == "types") {
        libs.push("types".into());
    }
    rc.insert("workspace.library".into(), libs.into());
    rc.insert("diagnostics.globals".into(), serde_json::json!(["arg"]));
    let text = serde_json::to_string_pretty(&rc)? + "\n";
    std::fs::write(&rc_path, text).with_context(|| format!("writing {}", rc_path.display()))?;
    Ok(n)
}
