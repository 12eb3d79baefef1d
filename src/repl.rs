//! `aibench repl`: an interactive Lua prompt.
//!
//! On a terminal it uses rustyline (history under `$AIBENCH_HOME`, Tab
//! completion, Enter on an incomplete chunk continues it: `complete`); from
//! a pipe it reads lines without editing so it can be scripted, continuing a
//! chunk while it is incomplete, as the stock `lua` prompt does. `help()`
//! reads the LuaLS stubs (`help`).

mod complete;
mod help;

use std::io::{BufRead, IsTerminal};

use mlua::prelude::*;
use rustyline::error::ReadlineError;

use crate::interrupt;
use aibench_lua::host;

pub async fn run() -> u8 {
    let lua = match host::state_or_exit_with(preload_globals) {
        Ok(l) => l,
        Err(c) => return c,
    };
    if std::io::stdin().is_terminal() { interactive(&lua).await } else { piped(&lua).await }
}

/// Every `aibench.*` module as a global (`json`, `time`, ...), plus `aibench`
/// holding them all (`aibench["local"]`, since `local` is a keyword).
fn preload_globals(lua: &Lua) -> LuaResult<()> {
    let g = lua.globals();
    let require: LuaFunction = g.get("require")?;
    let top: LuaTable = require.call("aibench")?;
    for name in aibench_lua::api::module_names(true, true) {
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
    help::install(lua)?;
    complete::install(lua)
}

/// Collects input lines until they form a complete chunk, as `lua` does.
#[derive(Default)]
struct Chunker {
    buf: String,
}

impl Chunker {
    /// Adds a line; returns the chunk once it is complete (blank chunks are dropped).
    fn push(&mut self, lua: &Lua, line: &str) -> Option<String> {
        if !self.buf.is_empty() {
            self.buf.push('\n');
        }
        self.buf.push_str(line);
        if !complete::is_complete(lua, &self.buf) {
            return None;
        }
        let code = std::mem::take(&mut self.buf);
        (!code.trim().is_empty()).then_some(code)
    }

    fn pending(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// Evaluates one chunk; Ctrl-C cancels it (async waits are dropped, Lua
/// loops are stopped by an instruction hook) and the prompt carries on.
async fn eval_chunk(lua: &Lua, code: &str) -> Result<Vec<String>, String> {
    let guard = interrupt::Guard::new();
    let fut = host::eval(lua, code, "=stdin");
    let res = tokio::select! {
        r = fut => r,
        sig = guard.interrupted() => {
            if sig == interrupt::Signal::Terminate {
                // SIGTERM ends the session, not just the evaluation.
                crate::flush_std();
                std::process::exit(sig.exit_code());
            }
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
        if interrupt::pending().is_some() { Err(LuaError::runtime("interrupted")) } else { Ok(mlua::VmState::Continue) }
    })
}

async fn interactive(lua: &Lua) -> u8 {
    if let Err(e) = install_interrupt_hook(lua) {
        eprintln!("aibench: {e}");
        return 1;
    }
    // List completion as bash does: Tab completes what all candidates
    // share, a second Tab lists them.
    let config = rustyline::Config::builder().completion_type(rustyline::CompletionType::List).build();
    let mut rl =
        match rustyline::Editor::<complete::ReplHelper, rustyline::history::DefaultHistory>::with_config(config) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("aibench: cannot start the line editor: {e}");
                return 1;
            }
        };
    rl.set_helper(Some(complete::ReplHelper { lua: lua.clone() }));
    // Ctrl-C never ends the session: at the prompt see `interrupt::Prompt`;
    // this guard covers the instant between reading a line and evaluating
    // it (a Ctrl-C there stops that evaluation as soon as it starts).
    let _session = interrupt::Guard::new();
    let home = crate::util::aibench_home();
    let history = home.join("repl_history");
    if crate::util::create_dirs(&home).is_ok() {
        let _ = rl.load_history(&history);
    }
    println!(
        "aibench {} (Lua 5.4) — modules loaded as globals; help() to start, Tab completes, Ctrl-D exits",
        env!("CARGO_PKG_VERSION")
    );
    let mut chunker = Chunker::default();
    loop {
        let prompt = if chunker.pending() { ">> " } else { "> " };
        let line = {
            let _at_prompt = interrupt::Prompt::enter();
            rl.readline(prompt)
        };
        match line {
            Ok(line) => {
                let Some(code) = chunker.push(lua, &line) else { continue };
                let _ = rl.add_history_entry(code.as_str());
                match eval_chunk(lua, &code).await {
                    Ok(lines) if !lines.is_empty() => aibench_core::print_line(&lines.join("\t")),
                    Ok(_) => {}
                    Err(e) => eprintln!("{e}"),
                }
            }
            Err(ReadlineError::Interrupted) => {
                chunker = Chunker::default();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("aibench: {e}");
                break;
            }
        }
    }
    if rl.save_history(&history).is_ok() {
        use std::os::unix::fs::PermissionsExt;
        // What was typed may hold tokens: the history is the user's alone.
        let _ = std::fs::set_permissions(&history, std::fs::Permissions::from_mode(0o600));
    }
    0
}

async fn piped(lua: &Lua) -> u8 {
    let stdin = std::io::stdin();
    let mut chunker = Chunker::default();
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
        let Some(code) = chunker.push(lua, &line) else { continue };
        match eval_chunk(lua, &code).await {
            Ok(out) if !out.is_empty() => aibench_core::print_line(&out.join("\t")),
            Ok(_) => {}
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    if chunker.pending() && !chunker.buf.trim().is_empty() {
        // Input ended inside an unfinished chunk: report it as Lua would.
        if let Err(e) = eval_chunk(lua, &chunker.buf).await {
            failed = true;
            eprintln!("{e}");
        }
    }
    u8::from(failed)
}
