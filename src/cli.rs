//! The command line (clap). `sim` and the internal `job-agent` run an
//! engine directly; `run`, `eval` and `repl` run Lua; the workflow commands
//! (`bench`, `server`, `monitor`, `client`, `services`, `report`) hand their
//! parsed flags to `lua/aibench/cli.lua` through the Lua host.

use clap::{Args, Parser, Subcommand};

use aibench_lua::host;

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
    /// Serve this node's GPU metrics (NVML) in dcgm-exporter's names and labels.
    GpuExporter(GpuExporterArgs),
    /// A quick one-off benchmark against a URL, with a readable summary.
    // Only --url is required: the usage line says so, and which flags
    // choose the load and the length, with their defaults after the help.
    #[command(
        override_usage = "aibench bench --url <URL> [--users <USERS> | --rate <RATE>] [--duration <DURATION> | --requests <REQUESTS>] [OPTIONS]",
        after_help = "Defaults: without --users or --rate, a closed loop of 1 user; without --duration or --requests, 10 seconds."
    )]
    Bench(Box<BenchArgs>),
    /// Deploy inference servers from recipes and manage them.
    Server {
        #[command(subcommand)]
        action: ServerCmd,
    },
    /// Run benchmark clients from recipes.
    Client {
        #[command(subcommand)]
        action: ClientCmd,
    },
    /// Prometheus monitors whose targets follow the registry.
    Monitor {
        #[command(subcommand)]
        action: MonitorCmd,
    },
    /// Reports from result files: terminal (default), Markdown, HTML, JSON; compare runs.
    Report(ReportArgs),
    /// Browse the result files of a folder (./results by default).
    Results {
        #[command(subcommand)]
        action: ResultsCmd,
    },
    /// The discovery registry: registered service instances.
    Services {
        #[command(subcommand)]
        action: ServicesCmd,
    },
    /// (internal) Supervise a job's service: ports, health, registration, signals.
    #[command(hide = true)]
    JobAgent {
        spec: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// (internal) Run Prometheus inside a monitor job, keeping its targets current.
    #[command(hide = true)]
    JobMonitor { spec: String },
    /// (internal) Run a client spec inside a job and write its result.
    #[command(hide = true)]
    JobClient {
        /// The spec file (`{rank}` is replaced by the task's rank).
        spec: String,
        /// Where the result goes (`{rank}` as above).
        out: String,
        /// One task of a gang: meet the others at this barrier folder first.
        #[arg(long)]
        gang: Option<String>,
        /// This task's rank (default: $SLURM_PROCID).
        #[arg(long)]
        rank: Option<u32>,
        /// How many tasks the gang has (default: $SLURM_NTASKS).
        #[arg(long)]
        size: Option<u32>,
    },
    /// Print a completion script for a shell: `aibench completions bash > /etc/bash_completion.d/aibench`,
    /// or `source <(aibench completions bash)`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the LuaLS type stubs and a .luarc.json for script authors.
    Types {
        /// Folder to write into (stubs go to DIR/types, settings to DIR/.luarc.json).
        #[arg(long)]
        out: String,
    },
}

/// Flags shared by commands that deploy a recipe.
#[derive(Args, Debug, serde::Serialize)]
pub struct DeployArgs {
    /// Recipe name (searched in ./recipes, $AIBENCH_RECIPES, then the stock recipes) or a YAML file.
    #[arg(long)]
    pub recipe: String,
    /// local or slurm (default: the recipe's orchestration.executor, else local).
    #[arg(long)]
    pub executor: Option<String>,
    /// Override a recipe field (repeatable), e.g. --set orchestration.resources.time_limit=02:00:00;
    /// `info NAME` shows a recipe's fields.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// `--json` on the listing and status commands: one definition, so that
/// every command says the same thing and serialises it as `json`.
#[derive(Args, Debug, serde::Serialize)]
pub struct JsonFlag {
    /// Print one JSON document for scripts instead of the table (its shape
    /// and `schema` name: the README, "Output for scripts").
    #[arg(long)]
    pub json: bool,
}

/// The subcommands every recipe-driven command ends with, in its words:
/// `KIND` ([`SERVER`], [`CLIENT`] or [`MONITOR`]) names the kind of recipe
/// in the help. Each command flattens it in as an untagged variant, so that
/// it parses and serialises as if its variants were the command's own:
/// `{"action": "info", "name": "vllm-sim"}` (`recipe_action` in
/// `lua/aibench/cli.lua` reads it).
#[derive(Subcommand, Debug, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RecipeCmd<const KIND: usize> {
    #[command(about = format!("List the {} recipes", RECIPE_KINDS[KIND]))]
    Recipes {
        #[command(flatten)]
        #[serde(flatten)]
        out: JsonFlag,
    },
    #[command(about = format!("Describe a {} recipe", RECIPE_KINDS[KIND]))]
    Info { name: String },
    #[command(about = format!("Print a starter {} recipe", RECIPE_KINDS[KIND]))]
    Template { name: Option<String> },
}

/// `RecipeCmd`'s kinds: an index into [`RECIPE_KINDS`].
pub const SERVER: usize = 0;
pub const CLIENT: usize = 1;
pub const MONITOR: usize = 2;
const RECIPE_KINDS: [&str; 3] = ["server", "client", "monitor"];

#[derive(Subcommand, Debug, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ServerCmd {
    /// Deploy N instances of a server recipe and wait until they are registered.
    Run {
        #[command(flatten)]
        #[serde(flatten)]
        deploy: DeployArgs,
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Print the job script(s) instead of submitting.
        #[arg(long)]
        dry_run: bool,
        /// Seconds to wait for the instances to become healthy.
        #[arg(long, default_value_t = 600.0)]
        timeout: f64,
        /// Submit and return at once, without waiting for the instances.
        #[arg(long)]
        detach: bool,
    },
    /// Running server deployments.
    List {
        /// Include finished ones.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        #[serde(flatten)]
        out: JsonFlag,
    },
    /// Details of one deployment (or all).
    Status {
        id: Option<String>,
        #[command(flatten)]
        #[serde(flatten)]
        out: JsonFlag,
    },
    /// Stop one deployment (instance id, job id or folder name).
    Stop { id: String },
    /// Stop every running deployment.
    StopAll,
    // recipes, info, template
    #[command(flatten)]
    #[serde(untagged)]
    Recipe(RecipeCmd<SERVER>),
}

#[derive(Subcommand, Debug, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ClientCmd {
    /// Run a client recipe against its service (discovered in the registry).
    Run {
        #[command(flatten)]
        #[serde(flatten)]
        deploy: DeployArgs,
        /// Repeat the benchmark N times (one result file each).
        #[arg(long, default_value_t = 1)]
        runs: u32,
        /// Benchmark this URL instead of discovering the service.
        #[arg(long)]
        url: Option<String>,
        /// Where result files go (default: the recipe's output.dir, else ./results).
        #[arg(long)]
        out_dir: Option<String>,
        /// Submit the client as job(s) and return at once; each job leaves its
        /// result in its job folder.
        #[arg(long)]
        detach: bool,
        /// Print the metric definitions (TTFT, TPOT, ITL, E2E) after the summary.
        #[arg(long)]
        explain: bool,
    },
    /// Client jobs (on an executor).
    List {
        /// Include finished ones.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        #[serde(flatten)]
        out: JsonFlag,
    },
    /// Stop every running client job.
    StopAll,
    // recipes, info, template
    #[command(flatten)]
    #[serde(untagged)]
    Recipe(RecipeCmd<CLIENT>),
}

#[derive(Subcommand, Debug, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum MonitorCmd {
    /// Start Prometheus for a monitor recipe; its targets follow the registry.
    Start {
        #[command(flatten)]
        #[serde(flatten)]
        deploy: DeployArgs,
        /// Submit and return at once, without waiting for Prometheus.
        #[arg(long)]
        detach: bool,
    },
    /// Running monitors.
    List {
        /// Include finished ones.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        #[serde(flatten)]
        out: JsonFlag,
    },
    /// Targets (up/down) and firing alerts of a monitor (or of all).
    Status {
        id: Option<String>,
        #[command(flatten)]
        #[serde(flatten)]
        out: JsonFlag,
    },
    /// Stop one monitor.
    Stop { id: String },
    /// Stop every monitor.
    StopAll,
    /// Export the service's metrics from a monitor's Prometheus.
    Export {
        #[arg(long)]
        id: String,
        /// json or csv.
        #[arg(long, default_value = "json")]
        format: String,
        /// instant or range.
        #[arg(long = "type", default_value = "instant")]
        kind: String,
        /// Range start (ISO-8601 or Unix seconds; default: when the monitor started).
        #[arg(long)]
        start: Option<String>,
        /// Range end (default: now).
        #[arg(long)]
        end: Option<String>,
        /// Range step (seconds or 15s/1m; default: the scrape interval).
        #[arg(long)]
        step: Option<String>,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<String>,
    },
    // recipes, info, template
    #[command(flatten)]
    #[serde(untagged)]
    Recipe(RecipeCmd<MONITOR>),
}

#[derive(Subcommand, Debug, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ServicesCmd {
    /// Every registered service and its instances.
    List {
        #[command(flatten)]
        #[serde(flatten)]
        out: JsonFlag,
    },
    /// The instances of one service, in full.
    Show { name: String },
    /// Remove the registry entries of one service, or of all.
    Clear { name: Option<String> },
    /// Remove entries whose job is no longer running.
    Prune,
}

#[derive(Subcommand, Debug, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ResultsCmd {
    /// One line per result file, oldest first: id, recipe, start time and key
    /// figures (requests, errors, req/s, output tok/s, TTFT p50/p99, TPOT p50);
    /// files that cannot be read are listed with the reason.
    List {
        /// The folder of result files.
        #[arg(default_value = "results")]
        dir: String,
        #[command(flatten)]
        #[serde(flatten)]
        out: JsonFlag,
    },
}

#[derive(Args, Debug, serde::Serialize)]
pub struct ReportArgs {
    /// Result files (results/*.json), or folders of them.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    pub html: Option<String>,
    /// Print Markdown instead of the terminal tables.
    #[arg(long)]
    pub md: bool,
    /// Print the summary figures of each result (and the comparison) as one
    /// JSON document (schema aibench.report.v1) instead of the tables.
    #[arg(long, conflicts_with = "md")]
    pub json: bool,
    /// Compare the runs against the first and flag regressions (exit 3 when any).
    #[arg(long)]
    pub compare: bool,
    /// Relative change that counts as a regression in --compare.
    #[arg(long, default_value_t = 0.10)]
    pub threshold: f64,
    /// Write the terminal, Markdown or JSON report here instead of stdout.
    #[arg(long)]
    pub out: Option<String>,
    /// Print the metric definitions (TTFT, TPOT, ITL, E2E, as vLLM's benchmark defines them) after the summary.
    #[arg(long)]
    pub explain: bool,
}

#[derive(Args, Debug, serde::Serialize)]
pub struct BenchArgs {
    /// Server base URL (repeat for several instances: round-robin).
    #[arg(long, required = true)]
    pub url: Vec<String>,
    /// Print the metric definitions (TTFT, TPOT, ITL, E2E, as vLLM's benchmark defines them) after the summary.
    #[arg(long)]
    pub explain: bool,
    /// openai-completions, openai-chat, ollama-generate, ollama-chat or http.
    #[arg(long, default_value = "openai-completions")]
    pub api: String,
    /// Model name (default: asked from the server).
    #[arg(long)]
    pub model: Option<String>,
    /// Closed loop (the default): concurrent users [default: 1]; not with --rate.
    #[arg(long)]
    pub users: Option<u64>,
    /// Closed loop: think time between a response and the next request, ms.
    #[arg(long)]
    pub think_ms: Option<f64>,
    /// Open loop: requests per second, instead of --users.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop arrivals: constant, poisson or gamma.
    #[arg(long)]
    pub arrival: Option<String>,
    /// Open loop: at most this many requests in flight.
    #[arg(long)]
    pub max_concurrency: Option<u64>,
    /// Open loop: the backlog cap, requests outstanding at once (default
    /// 10000); what is due beyond it is counted as not sent.
    #[arg(long)]
    pub max_in_flight: Option<u64>,
    /// Seconds to run [default: 10, unless --requests is given].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Total requests instead of a duration.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Seconds at the start excluded from the results.
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Prompt length in the model's tokens (BOS included, as vLLM counts it).
    #[arg(long, default_value_t = 128)]
    pub prompt_tokens: u64,
    /// Tokens to generate per request.
    #[arg(long, default_value_t = 128)]
    pub output_tokens: u64,
    /// Per-request timeout, seconds.
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Send non-streaming requests.
    #[arg(long)]
    pub no_stream: bool,
    /// http API: request method.
    #[arg(long)]
    pub method: Option<String>,
    /// http API: request body ({{seq}} becomes the request number).
    #[arg(long)]
    pub body: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the full result (JSON) here.
    #[arg(long)]
    pub json: Option<String>,
    /// Stream one JSON line per request to this file.
    #[arg(long)]
    pub log: Option<String>,
    /// Count prompt tokens with this model folder (or tokenizer.json), or
    /// "server" (its /tokenize), or "words"; default: the server's /tokenize
    /// when it has one, else words (approximate).
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// /v1/completions prompts as "text" (default) or token "ids".
    #[arg(long)]
    pub prompt_format: Option<String>,
    /// Run on even when the server stays unreachable (by default the run
    /// stops after 10 s without a success or an answer, and exits 1).
    #[arg(long)]
    pub keep_going: bool,
}

#[derive(Args, Debug)]
pub struct GpuExporterArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    /// Port (dcgm-exporter's 9400 by default; 0 picks a free one; the URL is printed first).
    #[arg(long, default_value_t = 9400)]
    pub port: u16,
    /// Serve this recorded scrape instead of reading NVML (tests, demos).
    #[arg(long)]
    pub from_file: Option<String>,
}

async fn run_gpu_exporter(args: &GpuExporterArgs) -> u8 {
    use crate::gpu::exporter::{Exporter, Source};
    let source = match Source::open(args.from_file.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aibench gpu-exporter: {e}");
            return 2;
        }
    };
    serve_until_signal("gpu-exporter", async move {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
        let host = if args.host == "0.0.0.0" { "127.0.0.1" } else { args.host.as_str() };
        let url = format!("http://{host}:{port}");
        // Said once: a node without a GPU still serves (aibench_gpu_metrics_available 0).
        let note = match &source {
            Source::Off(why) => format!("{why}; serving aibench_gpu_metrics_available 0 at {url}/metrics"),
            s => format!("GPU metrics from {} at {url}/metrics", s.describe()),
        };
        let ex = std::sync::Arc::new(Exporter { source, hostname: crate::util::hostname(), service: None });
        Ok(Serving {
            url,
            note,
            run: async move { crate::gpu::exporter::serve(listener, ex).await.map_err(|e| e.to_string()) },
            // Dropping the listener stops it.
            stop: async {},
        })
    })
    .await
}

/// A small server started by a command that serves in the foreground
/// (`sim`, `gpu-exporter`); see [`serve_until_signal`].
struct Serving<R, S> {
    /// The base URL, printed as the first line of stdout.
    url: String,
    /// What is served where, said once on stderr.
    note: String,
    /// Serving: ends only when it fails.
    run: R,
    /// Stops the server after a signal.
    stop: S,
}

/// The skeleton of `sim` and `gpu-exporter`: SIGTERM and SIGINT handlers
/// first (a signal right after the URL is printed must not kill us), then
/// `start`, the URL on stdout, a note on stderr, serving until a signal,
/// and stopping. Exits 0 after a signal; 1 when the handlers, the start or
/// the serving fail (the error on stderr, after `aibench NAME: `).
async fn serve_until_signal<R, S>(name: &str, start: impl Future<Output = Result<Serving<R, S>, String>>) -> u8
where
    R: Future<Output = Result<(), String>>,
    S: Future<Output = ()>,
{
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        eprintln!("aibench {name}: cannot install signal handlers");
        return 1;
    };
    let server = match start.await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aibench {name}: {e}");
            return 1;
        }
    };
    aibench_core::print_line(&server.url);
    crate::flush_std();
    eprintln!("aibench {name}: {}", server.note);
    tokio::select! {
        r = server.run => {
            if let Err(e) = r {
                eprintln!("aibench {name}: {e}");
                return 1;
            }
        }
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    server.stop.await;
    0
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
    /// Request bodies held at once, all connections together, MiB (default 256).
    #[arg(long)]
    pub body_budget_mib: Option<u64>,
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
    /// Count prompt tokens with this model folder's tokenizer (tokenizer.json
    /// and its chat template), as vLLM would; default: whitespace words.
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Turn vLLM's prefix caching off (on by default, as in vLLM).
    #[arg(long)]
    pub no_prefix_caching: bool,
    /// Tokens per KV block, the prefix cache's unit (the profile's; 128).
    #[arg(long)]
    pub block_size: Option<u32>,
}

impl SimArgs {
    /// The simulator's settings (the same builder `aibench.sim.start` uses).
    fn settings(&self) -> crate::sim::Settings {
        crate::sim::Settings {
            profile: Some(self.profile.clone()),
            host: Some(self.host.clone()),
            port: self.port,
            model: self.model.clone(),
            max_num_seqs: self.max_num_seqs,
            kv_cache_tokens: self.kv_cache_tokens,
            max_model_len: self.max_model_len,
            seed: self.seed,
            fail_rate: self.fail_rate,
            body_budget_mib: self.body_budget_mib,
            disconnect_rate: self.disconnect_rate,
            stall_rate: self.stall_rate,
            stall_s: Some(self.stall_s),
            startup_delay_s: self.startup_delay,
            tokenizer: self.tokenizer.clone(),
            enable_prefix_caching: self.no_prefix_caching.then_some(false),
            block_size: self.block_size,
        }
    }

    /// The checked configuration; an error names the flag (`--stall-s: ...`).
    pub fn to_config(&self) -> Result<crate::sim::SimConfig, String> {
        self.settings().config().map_err(|e| match Self::flag(&e.field) {
            Some(flag) => format!("{flag}: {}", e.message),
            // The profile's errors say what they are about (`--profile: cannot read ...`).
            None if e.field == "profile" => e.message,
            None => e.to_string(),
        })
    }

    /// The flag that sets a [`Settings`](crate::sim::Settings) field: the
    /// inverse of [`SimArgs::settings`]. (`enable_prefix_caching` is left
    /// out: its flag, `--no-prefix-caching`, says the opposite.)
    fn flag(field: &str) -> Option<&'static str> {
        Some(match field {
            "host" => "--host",
            "port" => "--port",
            "model" => "--model",
            "max_num_seqs" => "--max-num-seqs",
            "kv_cache_tokens" => "--kv-cache-tokens",
            "max_model_len" => "--max-model-len",
            "seed" => "--seed",
            "fail_rate" => "--fail-rate",
            "body_budget_mib" => "--body-budget-mib",
            "disconnect_rate" => "--disconnect-rate",
            "stall_rate" => "--stall-rate",
            "stall_s" => "--stall-s",
            "startup_delay_s" => "--startup-delay",
            "tokenizer" => "--tokenizer",
            "block_size" => "--block-size",
            _ => return None,
        })
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
    serve_until_signal("sim", async move {
        let (profile, model) = (cfg.profile.name.clone(), cfg.model.clone());
        let mut server = crate::sim::start(cfg).await?;
        let url = server.url();
        Ok(Serving {
            note: format!("simulated vLLM serving '{model}' (profile {profile}) at {url}"),
            url,
            // The simulator serves in the background.
            run: std::future::pending(),
            stop: async move { server.stop(std::time::Duration::from_secs(5)).await },
        })
    })
    .await
}

pub fn parse() -> Cli {
    Cli::parse()
}

pub async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Run { script, args } => host::run_script(&script, &args).await,
        Command::Eval { code, args } => host::eval_and_print(&code, &args).await,
        Command::Repl => crate::repl::run().await,
        Command::Sim(a) => run_sim(&a).await,
        Command::GpuExporter(a) => run_gpu_exporter(&a).await,
        Command::Bench(a) => lua_command("bench", &a).await,
        Command::Server { action } => lua_command("server", &action).await,
        Command::Client { action } => lua_command("client", &action).await,
        Command::Services { action } => lua_command("services", &action).await,
        Command::Monitor { action } => lua_command("monitor", &action).await,
        Command::Report(a) => lua_command("report", &a).await,
        Command::Results { action } => lua_command("results", &action).await,
        Command::JobMonitor { spec } => lua_command("job-monitor", &serde_json::json!({"spec": spec})).await,
        Command::JobClient { spec, out, gang, rank, size } => {
            lua_command(
                "job-client",
                &serde_json::json!({"spec": spec, "out": out, "gang": gang, "rank": rank, "size": size}),
            )
            .await
        }
        Command::JobAgent { spec, command } => {
            let cmd: Vec<String> = command.into_iter().skip_while(|a| a == "--").collect();
            crate::agent::run(std::path::Path::new(&spec), cmd).await.clamp(0, 255) as u8
        }
        Command::Completions { shell } => {
            // The internal (hidden) commands are not offered.
            let full = <Cli as clap::CommandFactory>::command();
            let mut cmd = clap::Command::new("aibench")
                .version(env!("CARGO_PKG_VERSION"))
                .args(full.get_arguments().cloned())
                .subcommands(full.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "aibench", &mut out);
            aibench_core::print_line(String::from_utf8_lossy(&out).trim_end());
            0
        }
        Command::Types { out } => match aibench_lua::types::write(std::path::Path::new(&out)) {
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

/// Runs a workflow command of `lua/aibench/cli.lua` with the parsed flags.
async fn lua_command<A: serde::Serialize>(name: &str, args: &A) -> u8 {
    match serde_json::to_value(args) {
        Ok(v) => host::run_command(name, &v).await,
        Err(e) => {
            eprintln!("aibench {name}: cannot pass the flags on: {e}");
            1
        }
    }
}
