//! The Lua host: builds a state with the aibench library, loads scripts with
//! real chunk names, and turns Lua errors into exit codes.

use std::path::{Path, PathBuf};

use mlua::prelude::*;

use crate::assets;

/// A Lua state with every `aibench.*` module available to `require`.
pub fn new_state() -> LuaResult<Lua> {
    // SAFETY: scripts are the user's own programs, as with the stock `lua`:
    // they get the full standard library, `debug` and C modules included.
    let lua = unsafe { Lua::unsafe_new() };
    crate::api::register_all(&lua)?;
    install_searcher(&lua)?;
    override_os_exit(&lua)?;
    Ok(lua)
}

/// Adds the searcher that finds modules in `$AIBENCH_LUA_PATH` (user
/// overrides, first) and then in the embedded `lua/` tree.
fn install_searcher(lua: &Lua) -> LuaResult<()> {
    let package: LuaTable = lua.globals().get("package")?;
    let searchers: LuaTable = package.get("searchers")?;
    let user_dirs: Vec<PathBuf> = std::env::var_os("AIBENCH_LUA_PATH")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    let searcher = lua.create_function(move |lua, name: String| {
        let rel = name.replace('.', "/");
        for dir in &user_dirs {
            for cand in [dir.join(format!("{rel}.lua")), dir.join(&rel).join("init.lua")] {
                if let Ok(src) = std::fs::read(&cand) {
                    let chunk = format!("@{}", cand.display());
                    let f = lua.load(src).set_name(chunk).into_function()?;
                    return (LuaValue::Function(f), cand.display().to_string()).into_lua_multi(lua);
                }
            }
        }
        if let Some((path, src)) = assets::module_file(&name) {
            let chunk = format!("@lua/{path}");
            let f = lua.load(src.as_ref()).set_name(chunk).into_function()?;
            return (LuaValue::Function(f), format!("lua/{path}")).into_lua_multi(lua);
        }
        format!("\n\tno embedded module '{name}'").into_lua_multi(lua)
    })?;
    // After the preload searcher, before the file-system ones.
    let n = searchers.raw_len();
    for i in (2..=n).rev() {
        let v: LuaValue = searchers.raw_get(i)?;
        searchers.raw_set(i + 1, v)?;
    }
    searchers.raw_set(2, searcher)?;
    Ok(())
}

/// `os.exit` flushes Rust's buffered stdout before leaving; the stock one
/// would call C `exit` and lose a partly written line.
fn override_os_exit(lua: &Lua) -> LuaResult<()> {
    let os: LuaTable = lua.globals().get("os")?;
    os.set(
        "exit",
        lua.create_function(|_, code: Option<LuaValue>| -> LuaResult<()> {
            let code = match code {
                None | Some(LuaValue::Nil) | Some(LuaValue::Boolean(true)) => 0,
                Some(LuaValue::Boolean(false)) => 1,
                Some(LuaValue::Integer(i)) => i as i32,
                Some(LuaValue::Number(n)) => n as i32,
                Some(other) => {
                    return Err(LuaError::runtime(format!(
                        "os.exit: expected a number or boolean, got {}",
                        other.type_name()
                    )));
                }
            };
            aibench_core::flush_std();
            std::process::exit(code);
        })?,
    )?;
    Ok(())
}

/// Puts a script's own folder first on `package.path`.
pub fn add_script_dir(lua: &Lua, script: &Path) -> LuaResult<()> {
    let dir = script.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let package: LuaTable = lua.globals().get("package")?;
    let path: String = package.get("path")?;
    let d = dir.display();
    package.set("path", format!("{d}/?.lua;{d}/?/init.lua;{path}"))?;
    Ok(())
}

/// Sets the global `arg` the way the stock `lua` does: `arg[0]` is the script.
pub fn set_args(lua: &Lua, script: &str, args: &[String]) -> LuaResult<()> {
    let t = lua.create_table()?;
    t.raw_set(0, script)?;
    for (i, a) in args.iter().enumerate() {
        t.raw_set(i + 1, a.as_str())?;
    }
    lua.globals().set("arg", t)?;
    Ok(())
}

/// How running a script ended.
pub enum Outcome {
    Ok,
    /// Missing or unreadable script: exit 2.
    Usage(String),
    /// The script raised: exit 1.
    Error(String),
}

/// Loads and runs a script file with `...` bound to its arguments.
pub async fn run_file(lua: &Lua, path: &str, args: &[String]) -> Outcome {
    let src = match std::fs::read(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::Usage(format!("aibench: cannot open script '{path}': no such file"));
        }
        Err(e) => return Outcome::Usage(format!("aibench: cannot read script '{path}': {e}")),
    };
    let src = strip_shebang(src);
    let func = match lua.load(src).set_name(format!("@{path}")).into_function() {
        Ok(f) => f,
        Err(e) => return Outcome::Error(error_text(&e)),
    };
    let argv: Vec<LuaValue> = args.iter().map(|a| LuaValue::String(lua.create_string(a).expect("string"))).collect();
    match func.call_async::<()>(LuaMultiValue::from_iter(argv)).await {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Error(error_text(&e)),
    }
}

fn strip_shebang(mut src: Vec<u8>) -> Vec<u8> {
    if src.starts_with(b"#!") {
        // Keep the newline so line numbers stay right.
        let end = src.iter().position(|&b| b == b'\n').unwrap_or(src.len());
        src.drain(..end);
    }
    src
}

/// Evaluates a chunk of code: first as an expression (`return CODE`), then as
/// statements, as the stock `lua -e` and REPLs do.
pub async fn eval(lua: &Lua, code: &str, name: &str) -> LuaResult<LuaMultiValue> {
    let func = compile(lua, code, name)?;
    func.call_async::<LuaMultiValue>(()).await
}

pub fn compile(lua: &Lua, code: &str, name: &str) -> LuaResult<LuaFunction> {
    match lua.load(format!("return {code}")).set_name(name.to_string()).into_function() {
        Ok(f) => Ok(f),
        Err(_) => lua.load(code).set_name(name.to_string()).into_function(),
    }
}

/// Renders values the way `eval` and the REPL print them: strings raw,
/// functions as their signature (from the stubs), a bench result as its
/// short summary (`pretty.result_summary`), tables through `aibench.pretty`.
pub fn render_values(lua: &Lua, values: &LuaMultiValue) -> LuaResult<Vec<String>> {
    let pretty: LuaTable = lua.load("return require 'aibench.pretty'").eval()?;
    let render: LuaFunction = pretty.get("render")?;
    let summary: Option<LuaFunction> = pretty.get("result_summary")?;
    let mut out = Vec::new();
    for v in values.iter() {
        out.push(match v {
            LuaValue::String(s) => s.to_string_lossy(),
            LuaValue::Function(f) => crate::types::docs::describe_function(lua, f),
            LuaValue::UserData(ud) if ud.is::<crate::api::bench::result::BenchResult>() && summary.is_some() => {
                summary.as_ref().expect("checked").call::<String>(v.clone())?
            }
            other => render.call::<String>(other.clone())?,
        });
    }
    Ok(out)
}

/// An error as the user reads it: the message and a traceback without
/// mlua's own frames (the async poll wrapper and the C calls it makes),
/// and a handle's method called with `.` instead of `:` said in those terms.
pub fn error_text(e: &LuaError) -> String {
    let text = crate::binding::error_text(e);
    match misused_method(e) {
        Some(method) => {
            let first = text.lines().next().unwrap_or("");
            let rest = text.strip_prefix(first).unwrap_or("");
            clean_traceback(&format!(
                "{method}: call it as s:{method}() (with a colon), not s.{method}()\n{}",
                rest.trim_start_matches('\n')
            ))
        }
        None => clean_traceback(&text),
    }
}

/// The method's name when `e` says a userdata method got no handle as
/// `self`: `s.stop()` where `s:stop()` was meant.
fn misused_method(e: &LuaError) -> Option<String> {
    match e {
        LuaError::BadArgument { to: Some(to), name: Some(name), .. } if name == "self" => {
            Some(to.rsplit('.').next().unwrap_or(to).to_string())
        }
        LuaError::BadArgument { cause, .. }
        | LuaError::CallbackError { cause, .. }
        | LuaError::WithContext { cause, .. } => misused_method(cause),
        _ => None,
    }
}

/// Drops the frames of mlua's async wrapper from a traceback: the
/// `__mlua_async_poll` chunk and the `[C]` calls it makes (`get_future`,
/// `in ?`). A wrapper frame that names the function called keeps the name
/// (`[C]: in function 'aibench.time.sleep'`). A traceback left with no frame
/// is dropped whole.
pub fn clean_traceback(text: &str) -> String {
    let Some(at) = text.find("stack traceback:") else { return text.to_string() };
    let (head, tail) = text.split_at(at);
    let mut frames: Vec<String> = Vec::new();
    for line in tail.lines().skip(1) {
        let frame = line.trim_start();
        if frame.starts_with("__mlua_async_poll:") {
            // `__mlua_async_poll:5: in function 'aibench.time.sleep'` names the call.
            if let Some(name) = frame.split_once(": in function '").map(|(_, n)| n) {
                frames.push(format!("\t[C]: in function '{name}"));
            }
            continue;
        }
        if frame == "[C]: in upvalue 'get_future'" || frame == "[C]: in ?" || frame.contains("<__mlua_async_poll:") {
            continue;
        }
        if frame == "(...tail calls...)" && frames.last().is_some_and(|l| l.trim_start() == "(...tail calls...)") {
            continue;
        }
        frames.push(line.to_string());
    }
    while frames.last().is_some_and(|l| l.trim_start() == "(...tail calls...)") {
        frames.pop();
    }
    if frames.is_empty() {
        return head.trim_end().to_string();
    }
    format!("{head}stack traceback:\n{}", frames.join("\n"))
}

fn state_or_exit() -> Result<Lua, u8> {
    state_or_exit_with(|_| Ok(()))
}

/// A Lua state (Ctrl-C handling installed) prepared by `setup`; on failure
/// says why and gives the exit code.
pub fn state_or_exit_with(setup: impl FnOnce(&Lua) -> LuaResult<()>) -> Result<Lua, u8> {
    aibench_core::interrupt::install();
    new_state().and_then(|l| setup(&l).map(|_| l)).map_err(|e| {
        eprintln!("aibench: cannot create the Lua state: {e}");
        1
    })
}

pub async fn run_script(script: &str, args: &[String]) -> u8 {
    let lua = match state_or_exit() {
        Ok(l) => l,
        Err(c) => return c,
    };
    let setup = set_args(&lua, script, args).and_then(|_| add_script_dir(&lua, std::path::Path::new(script)));
    if let Err(e) = setup {
        eprintln!("aibench: {e}");
        return 1;
    }
    match run_file(&lua, script, args).await {
        Outcome::Ok => 0,
        Outcome::Usage(msg) => {
            eprintln!("{msg}");
            2
        }
        Outcome::Error(msg) => {
            eprintln!("aibench: {msg}");
            1
        }
    }
}

pub async fn eval_and_print(code: &str, args: &[String]) -> u8 {
    let lua = match state_or_exit() {
        Ok(l) => l,
        Err(c) => return c,
    };
    if let Err(e) = set_args(&lua, "eval", args) {
        eprintln!("aibench: {e}");
        return 1;
    }
    let result = eval(&lua, code, "=eval").await;
    match result.and_then(|v| render_values(&lua, &v)) {
        Ok(lines) => {
            if !lines.is_empty() {
                aibench_core::print_line(&lines.join("\t"));
            }
            0
        }
        Err(e) => {
            eprintln!("aibench: {}", error_text(&e));
            1
        }
    }
}

/// Runs a workflow command implemented in `lua/aibench/cli.lua`, handing it
/// the parsed flags (as a table, nulls dropped); returns its exit code.
pub async fn run_command(name: &str, args: &serde_json::Value) -> u8 {
    let lua = match state_or_exit() {
        Ok(l) => l,
        Err(c) => return c,
    };
    let run = async {
        let opts = crate::convert::to_lua_plain(&lua, args)?;
        let cli: LuaTable = lua.load("return require 'aibench.cli'").set_name("=cli").eval()?;
        let main: LuaFunction = cli.get("main")?;
        main.call_async::<i64>((name, opts)).await
    };
    match run.await {
        Ok(code) => code.clamp(0, 255) as u8,
        Err(e) => {
            eprintln!("aibench {name}: {}", error_text(&e));
            1
        }
    }
}
