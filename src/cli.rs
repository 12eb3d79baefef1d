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
    /// Run the simulated vLLM server (OpenAI + Ollama APIs, vLLM metrics).
    Sim(SimArgs),
    /// Write the LuaLS type stubs and a .luarc.json for script authors.
    Types {
        /// Folder to write into (stubs go to DIR/types, settings to DIR/.luarc.json).
        #[arg(long)]
        out: String,
    },
}

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one; the URL is printed as the first line).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Served model name (default: the profile's).
    #[arg(long)]
    pub model: Option<String>,
    /// Stock profile (instant, opt-125m-cpu, llama-8b-a100) or a YAML file.
    #[arg(long, default_value = "opt-125m-cpu")]
    pub profile: String,
    /// Override the profile's batch limit.
    #[arg(long)]
    pub max_num_seqs: Option<u32>,
    /// Override the profile's KV-cache capacity (tokens).
    #[arg(long)]
    pub kv_cache_tokens: Option<u64>,
    /// Override the profile's context length.
    #[arg(long)]
    pub max_model_len: Option<u32>,
    /// Seed for generated text, output lengths and fault draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of requests answered with HTTP 500.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fraction of requests whose connection is dropped mid-stream.
    #[arg(long, default_value_t = 0.0)]
    pub disconnect_rate: f64,
    /// Fraction of requests whose stream pauses for --stall-s mid-way.
    #[arg(long, default_value_t = 0.0)]
    pub stall_rate: f64,
    /// Length of a stall, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub stall_s: f64,
    /// Answer 503 on /health (and refuse requests) for this many seconds after start.
    #[arg(long, default_value_t = 0.0)]
    pub startup_delay: f64,
}

impl SimArgs {
    pub fn to_config(&self) -> Result<crate::sim::SimConfig, String> {
        let mut profile = crate::sim::Profile::load(&self.profile)?;
        if let Some(n) = self.max_num_seqs {
            profile.max_num_seqs = n;
        }
        if let Some(n) = self.kv_cache_tokens {
            profile.kv_cache_tokens = n;
        }
        if let Some(n) = self.max_model_len {
            profile.max_model_len = n;
        }
        let mut cfg = crate::sim::SimConfig::new(profile);
        cfg.host = self.host.clone();
        cfg.port = self.port;
        if let Some(m) = &self.model {
            cfg.model = m.clone();
        }
        cfg.seed = self.seed;
        for (flag, v) in [("--stall-s", self.stall_s), ("--startup-delay", self.startup_delay)] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{flag}: expected a non-negative number of seconds, got {v}"));
            }
        }
        cfg.faults = crate::sim::Faults {
            fail_rate: self.fail_rate,
            disconnect_rate: self.disconnect_rate,
            stall_rate: self.stall_rate,
            stall: std::time::Duration::from_secs_f64(self.stall_s),
        };
        cfg.startup_delay = std::time::Duration::from_secs_f64(self.startup_delay);
        cfg.validate().map_err(|e| e.replace('_', "-"))?;
        Ok(cfg)
    }
}

async fn run_sim(args: &SimArgs) -> u8 {
    let cfg = match args.to_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("aibench sim: {e}");
            return 2;
        }
    };
    // Handlers first: a signal right after the URL is printed must not kill us.
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        eprintln!("aibench sim: cannot install signal handlers");
        return 1;
    };
    let (profile, model) = (cfg.profile.name.clone(), cfg.model.clone());
    let mut server = match crate::sim::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aibench sim: {e}");
            return 1;
        }
    };
    println!("{}", server.url());
    crate::flush_std();
    eprintln!("aibench sim: simulated vLLM serving '{model}' (profile {profile}) at {}", server.url());
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    server.stop(std::time::Duration::from_secs(5)).await;
    0
}

pub fn parse() -> Cli {
    Cli::parse()
}

pub async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Run { script, args } => run_script(&script, &args).await,
        Command::Eval { code, args } => eval(&code, &args).await,
        Command::Repl => crate::repl::run().await,
        Command::Sim(a) => run_sim(&a).await,
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
