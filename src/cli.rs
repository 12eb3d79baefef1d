//! The command line. Scripting commands (`run`, `eval`, `repl`) and the
//! engines with their own flags (`sim`, `bench`) are handled in Rust; the
//! workflow commands (`server`, `monitor`, `client`, `services`, `report`)
//! hand their parsed options to `lua/aibench/cli.lua`.

use clap::{Args, Parser, Subcommand};
use mlua::prelude::*;

use crate::host;

#[derive(Parser, Debug)]
#[command(
    name = "aibench",
    version,
    about = "Deploy, monitor and benchmark AI inference servers on HPC clusters",
    propagate_version = true
)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). AIBENCH_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output (-q errors only, -qq nothing).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a Lua script: `arg[0]` is the script, its arguments follow.
    Run {
        script: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Evaluate Lua code and print what it returns.
    Eval {
        code: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Interactive Lua prompt with the aibench modules loaded as globals.
    Repl,
    /// Write the LuaLS type stubs and a .luarc.json for script authors.
    Types {
        /// Folder to write into (stubs go to DIR/types, settings to DIR/.luarc.json).
        #[arg(long)]
        out: String,
    },
}

pub fn parse() -> Cli {
    Cli::parse()
}

pub async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Run { script, args } => run_script(&script, &args).await,
        Command::Eval { code, args } => eval(&code, &args).await,
        Command::Repl => crate::repl::run().await,
        Command::Types { out } => match crate::types::write(std::path::Path::new(&out)) {
            Ok(written) => {
                println!("wrote {written} stub files and .luarc.json under {out}");
                0
            }
            Err(e) => {
                eprintln!("aibench types: {e:#}");
                1
            }
        },
    }
}

fn state_or_exit() -> Result<Lua, u8> {
    crate::interrupt::install();
    host::new_state().map_err(|e| {
        eprintln!("aibench: cannot create the Lua state: {e}");
        1
    })
}

async fn run_script(script: &str, args: &[String]) -> u8 {
    let lua = match state_or_exit() {
        Ok(l) => l,
        Err(c) => return c,
    };
    let setup =
        host::set_args(&lua, script, args).and_then(|_| host::add_script_dir(&lua, std::path::Path::new(script)));
    if let Err(e) = setup {
        eprintln!("aibench: {e}");
        return 1;
    }
    match host::run_file(&lua, script, args).await {
        host::Outcome::Ok => 0,
        host::Outcome::Usage(msg) => {
            eprintln!("{msg}");
            2
        }
        host::Outcome::Error(msg) => {
            eprintln!("aibench: {msg}");
            1
        }
    }
}

async fn eval(code: &str, args: &[String]) -> u8 {
    let lua = match state_or_exit() {
        Ok(l) => l,
        Err(c) => return c,
    };
    if let Err(e) = host::set_args(&lua, "eval", args) {
        eprintln!("aibench: {e}");
        return 1;
    }
    let result = host::eval(&lua, code, "=eval").await;
    match result.and_then(|v| host::render_values(&lua, &v)) {
        Ok(lines) => {
            if !lines.is_empty() {
                println!("{}", lines.join("\t"));
            }
            0
        }
        Err(e) => {
            eprintln!("aibench: {}", host::error_text(&e));
            1
        }
    }
}

/// Converts parsed flags into a Lua table for the Lua-side commands.
#[allow(dead_code)]
pub fn opts_table<A: Args + serde::Serialize>(lua: &Lua, a: &A) -> LuaResult<LuaValue> {
    let json = serde_json::to_value(a).map_err(LuaError::external)?;
    crate::api::convert::to_lua_plain(lua, &json)
}
