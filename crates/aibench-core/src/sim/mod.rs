//! `aibench sim`: a simulated vLLM server (OpenAI and Ollama APIs, vLLM's
//! Prometheus metrics, a continuous-batching timing model).

pub mod engine;
pub mod metrics;
pub mod prefix;
pub mod profile;
pub mod request;
pub mod server;
pub mod text;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

pub use profile::Profile;

use crate::typed::FieldError;

/// Fault injection for reliability tests: each request draws, from the seed,
/// whether it fails with HTTP 500, loses its connection mid-stream, or stalls.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub fail_rate: f64,
    pub disconnect_rate: f64,
    pub stall_rate: f64,
    pub stall: Duration,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub host: String,
    pub port: u16,
    /// Served model name.
    pub model: String,
    pub profile: Profile,
    pub seed: u64,
    pub faults: Faults,
    /// `/health` answers 503 (and requests are refused) for this long.
    pub startup_delay: Duration,
    /// How prompt tokens are counted.
    pub tokenizer: tokens::SimTokenizer,
    /// Bytes of request bodies held at once, all connections together
    /// ([`DEFAULT_BODY_BUDGET`]); a body that would go over it is answered
    /// 503 at once instead of being buffered.
    pub body_budget: usize,
}

/// The default budget of request bodies held at once: 256 MiB.
pub const DEFAULT_BODY_BUDGET: usize = 256 << 20;

/// What `aibench sim` and `aibench.sim.start` may change in a profile and in
/// how it is served; unset fields keep the profile's (or `SimConfig::new`'s).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub max_num_seqs: Option<u32>,
    pub kv_cache_tokens: Option<u64>,
    pub max_model_len: Option<u32>,
    pub host: Option<String>,
    pub port: u16,
    pub model: Option<String>,
    pub seed: u64,
}

impl SimConfig {
    /// `profile` (loaded by the caller, which words its errors) with `o`
    /// applied; faults and the startup delay are left at their defaults.
    pub fn with_overrides(mut profile: Profile, o: Overrides) -> SimConfig {
        if let Some(n) = o.max_num_seqs {
            profile.max_num_seqs = n;
        }
        if let Some(n) = o.kv_cache_tokens {
            profile.kv_cache_tokens = n;
        }
        if let Some(n) = o.max_model_len {
            profile.max_model_len = n;
        }
        let mut cfg = SimConfig::new(profile);
        if let Some(h) = o.host {
            cfg.host = h;
        }
        cfg.port = o.port;
        if let Some(m) = o.model {
            cfg.model = m;
        }
        cfg.seed = o.seed;
        cfg
    }

    pub fn new(profile: Profile) -> SimConfig {
        SimConfig {
            host: "127.0.0.1".into(),
            port: 0,
            model: profile.model.clone(),
            profile,
            seed: 0,
            faults: Faults::default(),
            startup_delay: Duration::ZERO,
            tokenizer: tokens::SimTokenizer::Words,
            body_budget: DEFAULT_BODY_BUDGET,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.check_serving().map_err(|e| e.to_string())?;
        self.profile.validate()
    }

    /// The checks of what is set beside the profile (faults, model, body
    /// budget); an error names the setting as its field.
    fn check_serving(&self) -> Result<(), FieldError> {
        for (name, v) in [
            ("fail_rate", self.faults.fail_rate),
            ("disconnect_rate", self.faults.disconnect_rate),
            ("stall_rate", self.faults.stall_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(FieldError::new(name, format!("expected a probability between 0 and 1, got {v}")));
            }
        }
        if self.model.is_empty() {
            return Err(FieldError::new("model", "expected a non-empty name"));
        }
        if self.body_budget == 0 {
            return Err(FieldError::new("body_budget_mib", "expected a positive number of MiB, got 0"));
        }
        Ok(())
    }
}

/// Everything `aibench sim` and `aibench.sim.start` may set, in one place:
/// both build their configuration here, so they accept and refuse the same
/// values. Field names are the Lua option names; `aibench sim` names them as
/// flags (`stall_s` is `--stall-s`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A stock profile name or a YAML file (default `opt-125m-cpu`).
    pub profile: Option<String>,
    pub host: Option<String>,
    /// 0 (the default) picks a free port.
    #[serde(default)]
    pub port: u16,
    pub model: Option<String>,
    pub max_num_seqs: Option<u32>,
    pub kv_cache_tokens: Option<u64>,
    pub max_model_len: Option<u32>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub fail_rate: f64,
    #[serde(default)]
    pub disconnect_rate: f64,
    #[serde(default)]
    pub stall_rate: f64,
    /// Length of a stall, seconds (default 1).
    pub stall_s: Option<f64>,
    /// `/health` answers 503 (and requests are refused) this long, seconds.
    #[serde(default)]
    pub startup_delay_s: f64,
    /// Count prompt tokens with this model folder's tokenizer (else the
    /// profile's, else words).
    pub tokenizer: Option<String>,
    /// Prefix caching on or off (the profile's when unset: on).
    pub enable_prefix_caching: Option<bool>,
    /// Tokens per KV block (the profile's when unset).
    pub block_size: Option<u32>,
    /// MiB of request bodies held at once, all connections together
    /// (default 256); a body that would go over it is answered 503 at once.
    pub body_budget_mib: Option<u64>,
}

impl Settings {
    pub const DEFAULT_PROFILE: &str = "opt-125m-cpu";

    /// The configuration, checked. An error's field is the setting it is
    /// about (`stall_s`), or `profile` when the profile cannot be loaded (its
    /// message then says what is wrong, in full).
    pub fn config(&self) -> Result<SimConfig, FieldError> {
        let profile = Profile::load(self.profile.as_deref().unwrap_or(Self::DEFAULT_PROFILE))
            .map_err(|e| FieldError::new("profile", e))?;
        let mut cfg = SimConfig::with_overrides(
            profile,
            Overrides {
                max_num_seqs: self.max_num_seqs,
                kv_cache_tokens: self.kv_cache_tokens,
                max_model_len: self.max_model_len,
                host: self.host.clone(),
                port: self.port,
                model: self.model.clone(),
                seed: self.seed,
            },
        );
        let stall_s = self.stall_s.unwrap_or(1.0);
        for (name, v) in [("stall_s", stall_s), ("startup_delay_s", self.startup_delay_s)] {
            if !v.is_finite() || !(0.0..=1e9).contains(&v) {
                return Err(FieldError::new(name, format!("expected a non-negative number of seconds, got {v}")));
            }
        }
        cfg.faults = Faults {
            fail_rate: self.fail_rate,
            disconnect_rate: self.disconnect_rate,
            stall_rate: self.stall_rate,
            stall: Duration::from_secs_f64(stall_s),
        };
        cfg.startup_delay = Duration::from_secs_f64(self.startup_delay_s);
        if let Some(on) = self.enable_prefix_caching {
            cfg.profile.enable_prefix_caching = on;
        }
        if let Some(b) = self.block_size {
            if b == 0 {
                return Err(FieldError::new("block_size", "expected a positive integer, got 0"));
            }
            cfg.profile.block_size = b;
        }
        if let Some(mib) = self.body_budget_mib {
            cfg.body_budget = usize::try_from(mib).ok().and_then(|m| m.checked_mul(1 << 20)).ok_or_else(|| {
                FieldError::new("body_budget_mib", format!("{mib} MiB is more than this machine can address"))
            })?;
        }
        if let Some(t) = self.tokenizer.as_ref().or(cfg.profile.tokenizer.as_ref()) {
            cfg.tokenizer = tokens::SimTokenizer::load(t).map_err(|e| FieldError::new("tokenizer", e))?;
        }
        cfg.check_serving()?;
        // The profile was checked as it was loaded: what can be wrong in it
        // now is an override, checked here (as `Profile::validate` does, in
        // its order) so that the error names the setting.
        let p = &cfg.profile;
        if p.max_num_seqs == 0 {
            return Err(FieldError::new("max_num_seqs", "expected a positive integer, got 0"));
        }
        for (name, v) in [("max_model_len", u64::from(p.max_model_len)), ("kv_cache_tokens", p.kv_cache_tokens)] {
            if v < 2 {
                return Err(FieldError::new(name, format!("expected at least 2, got {v}")));
            }
        }
        // Anything else is a bug, reported as the profile words it.
        cfg.profile.validate().map_err(|e| FieldError::new("", e))?;
        Ok(cfg)
    }
}

/// A running simulator.
pub struct SimServer {
    pub addr: SocketAddr,
    state: Arc<server::AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimServer {
    pub fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { self.addr.ip().to_string() };
        format!("http://{host}:{}", self.addr.port())
    }

    pub fn metrics_text(&self) -> String {
        self.state.metrics.render()
    }

    /// Stops accepting, ends in-flight streams (finish reason `abort`, then
    /// `[DONE]`) and waits up to `grace` for connections to close.
    pub async fn stop(&mut self, grace: Duration) {
        self.state.engine.shutdown();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(grace, task).await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.state.engine.shutdown();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The listen backlog of vLLM's server (uvicorn's default). The 128 of a
/// plain bind drops connections when a few thousand users connect at once.
pub const LISTEN_BACKLOG: u32 = 2048;

async fn listen(bind: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(bind).await? {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|_| socket.listen(LISTEN_BACKLOG)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the address resolves to nothing")))
}

/// Binds and starts serving (within the current tokio runtime).
pub async fn start(cfg: SimConfig) -> Result<SimServer, String> {
    cfg.validate()?;
    let bind = format!("{}:{}", cfg.host, cfg.port);
    let listener = listen(&bind).await.map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics = Arc::new(metrics::Metrics::new(&cfg.model, cfg.profile.max_model_len));
    let (engine, _join) = engine::start(cfg.profile.clone(), metrics.clone());
    let model_json = serde_json::to_string(&cfg.model).unwrap_or_else(|_| "\"\"".into()).into();
    let bodies = Arc::new(server::BodyBudget::new(cfg.body_budget));
    let state = Arc::new(server::AppState {
        model_json,
        bodies,
        parsing: tokio::sync::Semaphore::new(1),
        cfg,
        engine,
        metrics,
        started: Instant::now(),
        created: crate::clock::now() as u64,
        requests: AtomicU64::new(0),
    });
    let app = server::router(state.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // Token chunks are tiny: without TCP_NODELAY Nagle would hold them back.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(SimServer { addr, state, shutdown: Some(tx), task: Some(task) })
}
