//! `aibench repl`: an interactive Lua prompt.
//!
//! On a terminal it uses rustyline (history under `$AIBENCH_HOME`); from a
//! pipe it reads lines without editing so it can be scripted. Both continue a
//! chunk while it is incomplete, as the stock `lua` prompt does.

use std::io::{BufRead, IsTerminal};

use mlua::prelude::*;
use rustyline::error::ReadlineError;

use crate::{host, interrupt};

pub async fn run() -> u8 {
    interrupt::install();
    let lua = match host::new_state().and_then(|l| preload_globals(&l).map(|_| l)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("aibench: cannot create the Lua state: {e}");
            return 1;
        }
    };
    if std::io::stdin().is_terminal() { interactive(&lua).await } else { piped(&lua).await }
}

/// Every `aibench.*` module as a global (`json`, `time`, ...), plus `aibench`
/// holding them all (`aibench["local"]`, since `local` is a keyword).
fn preload_globals(lua: &Lua) -> LuaResult<()> {
    let g = lua.globals();
    let require: LuaFunction = g.get("require")?;
    let top: LuaTable = require.call("aibench")?;
    let mut names: Vec<String> = crate::api::MODULES.iter().map(|(n, _)| n.to_string()).collect();
    names.extend(crate::assets::lua_module_names());
    for name in names {
        let Some(short) = name.strip_prefix("aibench.") else { continue };
        if short.contains('.') {
            continue;
        }
        // A module that fails to load must not take the prompt down with it.
        let Ok(m) = require.call::<LuaValue>(name.as_str()) else { continue };
        top.set(short, m.clone())?;
        if short != "local" && g.get::<LuaValue>(short)?.is_nil() {
            g.set(short, m)?;
        }
    }
    g.set("aibench", top)?;
    Ok(())
}

enum Check {
    Complete,
    Incomplete,
}

fn check(lua: &Lua, code: &str) -> Check {
    if lua.load(format!("return {code}")).into_function().is_ok() {
        return Check::Complete;
    }
    match lua.load(code).into_function() {
        Err(LuaError::SyntaxError { incomplete_input: true, .. }) => Check::Incomplete,
        _ => Check::Complete,
    }
}

/// Evaluates one chunk; Ctrl-C cancels it (async waits are dropped, Lua
/// loops are stopped by an instruction hook) and the prompt carries on.
async fn eval_chunk(lua: &Lua, code: &str) -> Result<Vec<String>, String> {
    let guard = interrupt::Guard::new();
    let fut = host::eval(lua, code, "=stdin");
    let res = tokio::select! {
        r = fut => r,
        _ = guard.interrupted() => {
            interrupt::clear();
            return Err("interrupted".into());
        }
    };
    interrupt::clear();
    match res {
        Ok(v) => host::render_values(lua, &v).map_err(|e| host::error_text(&e)),
        Err(e) => Err(host::error_text(&e)),
    }
}

fn install_interrupt_hook(lua: &Lua) -> LuaResult<()> {
    lua.set_global_hook(mlua::HookTriggers::new().every_nth_instruction(4096), |_, _| {
        if interrupt::pending() { Err(LuaError::runtime("interrupted")) } else { Ok(mlua::VmState::Continue) }
    })
}

async fn interactive(lua: &Lua) -> u8 {
    if let Err(e) = install_interrupt_hook(lua) {
        eprintln!("aibench: {e}");
        return 1;
    }
    let mut rl = match rustyline::DefaultEditor::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("aibench: cannot start the line editor: {e}");
            return 1;
        }
    };
    let home = crate::util::aibench_home();
    let history = home.join("repl_history");
    if crate::util::private_dir(&home).is_ok() {
        let _ = rl.load_history(&history);
    }
    println!("aibench {} (Lua 5.4) — modules loaded as globals; Ctrl-D exits", env!("CARGO_PKG_VERSION"));
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() { "> " } else { ">> " };
        match rl.readline(prompt) {
            Ok(line) => {
                if !buf.is_empty() {
                    buf.push('\n');
                }
                buf.push_str(&line);
                if matches!(check(lua, &buf), Check::Incomplete) {
                    continue;
                }
                let code = std::mem::take(&mut buf);
                if code.trim().is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(code.as_str());
                match eval_chunk(lua, &code).await {
                    Ok(lines) if !lines.is_empty() => println!("{}", lines.join("\t")),
                    Ok(_) => {}
                    Err(e) => eprintln!("{e}"),
                }
            }
            Err(ReadlineError::Interrupted) => {
                buf.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("aibench: {e}");
                break;
            }
        }
    }
    let _ = rl.save_history(&history);
    0
}

async fn piped(lua: &Lua) -> u8 {
    let stdin = std::io::stdin();
    let mut buf = String::new();
    let mut failed = false;
    let mut lines = stdin.lock().lines();
    loop {
        let line = match lines.next() {
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                eprintln!("aibench: reading stdin: {e}");
                return 1;
            }
            None => break,
        };
        if !buf.is_empty() {
            buf.push('\n');
        }
        buf.push_str(&line);
        if matches!(check(lua, &buf), Check::Incomplete) {
            continue;
        }
        let code = std::mem::take(&mut buf);
        if code.trim().is_empty() {
            continue;
        }
        match eval_chunk(lua, &code).await {
            Ok(out) if !out.is_empty() => println!("{}", out.join("\t")),
            Ok(_) => {}
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    if !buf.trim().is_empty() {
        // Input ended inside an unfinished chunk: report it as Lua would.
        if let Err(e) = eval_chunk(lua, &buf).await {
            failed = true;
            eprintln!("{e}");
        }
    }
    u8::from(failed)
}
