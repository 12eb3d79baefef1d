//! What a benchmark run is asked to do: target, workload, dataset, SLOs.
//! Deserialised from the Lua table (or a recipe) with serde; `validate`
//! checks values and names the field in every message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchSpec {
    pub target: Target,
    pub workload: Workload,
    #[serde(default)]
    pub dataset: Dataset,
    #[serde(default)]
    pub slo: Slo,
    /// Stream one JSON line per request to this file.
    #[serde(default)]
    pub per_request_log: Option<String>,
    /// Free text carried into the result.
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    OpenaiCompletions,
    OpenaiChat,
    OllamaGenerate,
    OllamaChat,
    Http,
}

impl Api {
    pub const ALL: [Api; 5] =
        [Api::OpenaiCompletions, Api::OpenaiChat, Api::OllamaGenerate, Api::OllamaChat, Api::Http];

    pub fn default_path(self) -> &'static str {
        match self {
            Api::OpenaiCompletions => "/v1/completions",
            Api::OpenaiChat => "/v1/chat/completions",
            Api::OllamaGenerate => "/api/generate",
            Api::OllamaChat => "/api/chat",
            Api::Http => "/",
        }
    }

    pub fn is_llm(self) -> bool {
        self != Api::Http
    }

    pub fn name(self) -> &'static str {
        match self {
            Api::OpenaiCompletions => "openai-completions",
            Api::OpenaiChat => "openai-chat",
            Api::OllamaGenerate => "ollama-generate",
            Api::OllamaChat => "ollama-chat",
            Api::Http => "http",
        }
    }
}

fn default_api() -> Api {
    Api::OpenaiCompletions
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> f64 {
    600.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    One(String),
    Many(Vec<String>),
}

impl Urls {
    pub fn list(&self) -> Vec<String> {
        match self {
            Urls::One(u) => vec![u.clone()],
            Urls::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// One base URL, or a list: requests go round-robin over them.
    pub url: Urls,
    #[serde(default = "default_api")]
    pub api: Api,
    /// Model name; found from `/v1/models` when omitted (OpenAI APIs).
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    #[serde(default = "default_true")]
    pub stream: bool,
    /// Send `ignore_eos` (vLLM) so outputs have the requested length.
    #[serde(default = "default_true")]
    pub ignore_eos: bool,
    /// Path override (default: the API's path, or the URL's own path).
    #[serde(default)]
    pub path: Option<String>,
    /// `http` API: method and body (`{{seq}}` is replaced by the request number).
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// What prompt lengths are counted with: the model folder (or its
    /// `tokenizer.json`), `"server"` (its `/tokenize`) or `"words"`.
    /// Unset: the server's `/tokenize` when it answers, else words.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// `/v1/completions` prompts as text (default) or token ids.
    #[serde(default)]
    pub prompt_format: PromptFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptFormat {
    #[default]
    Text,
    /// `"prompt": [ids]`, which vLLM accepts: exact by construction.
    Ids,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "pattern", rename_all = "kebab-case")]
pub enum Workload {
    ClosedLoop(ClosedLoop),
    OpenLoop(OpenLoop),
}

/// Each user sends, waits for the whole response, thinks, repeats.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedLoop {
    #[serde(alias = "concurrent_users")]
    pub users: u64,
    #[serde(default)]
    pub think_time_ms: f64,
    #[serde(default)]
    pub requests_per_user: Option<u64>,
    /// Stop after this many requests in all (shared by the users).
    #[serde(default)]
    pub total_requests: Option<u64>,
    #[serde(default, alias = "duration_seconds")]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub ramp_up_s: f64,
    #[serde(default)]
    pub warmup_s: f64,
    #[serde(default)]
    pub warmup_requests: u64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_unreachable_s")]
    pub unreachable_s: f64,
    #[serde(default)]
    pub keep_going: bool,
}

/// Requests at scheduled times, whatever the responses do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenLoop {
    #[serde(alias = "requests_per_second")]
    pub rate: f64,
    #[serde(default)]
    pub arrival: Arrival,
    /// Gamma shape for `arrival = "gamma"` (1 = Poisson, < 1 burstier).
    #[serde(default)]
    pub burstiness: Option<f64>,
    #[serde(default)]
    pub max_concurrency: Option<u64>,
    #[serde(default, alias = "duration_seconds")]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub total_requests: Option<u64>,
    #[serde(default)]
    pub warmup_s: f64,
    #[serde(default)]
    pub warmup_requests: u64,
    #[serde(default)]
    pub seed: u64,
    /// Stop early when, for this long, nothing succeeded and every attempt
    /// failed before the server answered (it is gone, or was never there).
    #[serde(default = "default_unreachable_s")]
    pub unreachable_s: f64,
    /// Never stop early for an unreachable server.
    #[serde(default)]
    pub keep_going: bool,
}

fn default_unreachable_s() -> f64 {
    10.0
}

/// Parses a tagged JSON object (`{"pattern": ..., ...}`) into the variant
/// named by its tag, with errors that name the field (`where.users: ...`).
fn tagged<T: serde::de::DeserializeOwned>(mut v: serde_json::Value, tag: &str, where_: &str) -> Result<T, String> {
    if let Some(m) = v.as_object_mut() {
        m.remove(tag);
    }
    crate::typed::from_json(v, where_)
}

fn tag_of<'a>(v: &'a serde_json::Value, tag: &str, where_: &str, choices: &[&str]) -> Result<&'a str, String> {
    let list = choices.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(" or ");
    match v.get(tag) {
        None => Err(format!("{where_}.{tag}: missing; expected {list}")),
        Some(serde_json::Value::String(s)) if choices.contains(&s.as_str()) => Ok(s),
        Some(other) => {
            let got = other.as_str().map(|s| format!("\"{s}\"")).unwrap_or_else(|| other.to_string());
            let hint = other
                .as_str()
                .and_then(|s| crate::util::did_you_mean(s, choices.iter().copied()))
                .map(|c| format!(" (did you mean \"{c}\"?)"))
                .unwrap_or_default();
            Err(format!("{where_}.{tag}: expected {list}, got {got}{hint}"))
        }
    }
}

impl Workload {
    pub fn from_json(v: serde_json::Value, where_: &str) -> Result<Workload, String> {
        if !v.is_object() {
            return Err(format!("{where_}: expected a table"));
        }
        match tag_of(&v, "pattern", where_, &["closed-loop", "open-loop"])? {
            "closed-loop" => tagged(v, "pattern", where_).map(Workload::ClosedLoop),
            _ => tagged(v, "pattern", where_).map(Workload::OpenLoop),
        }
    }
}

impl<'de> Deserialize<'de> for Workload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Workload::from_json(v, "workload").map_err(serde::de::Error::custom)
    }
}

pub use super::schedule::Arrival;

impl Workload {
    pub fn warmup(&self) -> (f64, u64) {
        match self {
            Workload::ClosedLoop(w) => (w.warmup_s, w.warmup_requests),
            Workload::OpenLoop(w) => (w.warmup_s, w.warmup_requests),
        }
    }

    pub fn seed(&self) -> u64 {
        match self {
            Workload::ClosedLoop(w) => w.seed,
            Workload::OpenLoop(w) => w.seed,
        }
    }

    /// Seconds without success and without an answer before the run stops
    /// early; `None` when the run never stops early.
    pub fn unreachable_after(&self) -> Option<f64> {
        let (s, keep_going) = match self {
            Workload::ClosedLoop(w) => (w.unreachable_s, w.keep_going),
            Workload::OpenLoop(w) => (w.unreachable_s, w.keep_going),
        };
        (!keep_going && s > 0.0).then_some(s)
    }

    /// Connections the run may hold at once, when the workload bounds it:
    /// (the field that sets it, the count).
    pub fn connections(&self, targets: usize) -> Option<(&'static str, u64)> {
        match self {
            // Each user keeps one connection per target it has sent to.
            Workload::ClosedLoop(w) => Some(("workload.users", w.users.saturating_mul(targets as u64))),
            Workload::OpenLoop(w) => w.max_concurrency.map(|m| ("workload.max_concurrency", m + targets as u64)),
        }
    }

    pub fn pattern(&self) -> &'static str {
        match self {
            Workload::ClosedLoop(_) => "closed-loop",
            Workload::OpenLoop(_) => "open-loop",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Dataset {
    Synthetic(Synthetic),
    Jsonl(Jsonl),
    List(PromptList),
}

/// Random prompts of a given length in words (about one token each).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    #[serde(default = "default_prompt_tokens")]
    pub prompt_tokens: u64,
    #[serde(default = "default_output_tokens")]
    pub output_tokens: u64,
    /// Lengths vary uniformly by ± this fraction.
    #[serde(default)]
    pub spread: f64,
    #[serde(default)]
    pub seed: u64,
}

/// Prompts (or whole request bodies) from a JSON-lines file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jsonl {
    pub path: String,
    /// Field holding the prompt; lines may also be plain JSON strings.
    #[serde(default)]
    pub field: Option<String>,
    /// Send each line as the whole request body.
    #[serde(default)]
    pub as_request: bool,
    #[serde(default = "default_output_tokens")]
    pub output_tokens: u64,
}

/// Prompts given inline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptList {
    pub prompts: Vec<String>,
    #[serde(default = "default_output_tokens")]
    pub output_tokens: u64,
}

impl Dataset {
    pub fn from_json(mut v: serde_json::Value, where_: &str) -> Result<Dataset, String> {
        let Some(m) = v.as_object_mut() else { return Err(format!("{where_}: expected a table")) };
        if !m.contains_key("type") {
            // The shape says which: {prompts = {...}}, {path = ...}, or synthetic.
            let kind = if m.contains_key("prompts") {
                "list"
            } else if m.contains_key("path") {
                "jsonl"
            } else {
                "synthetic"
            };
            m.insert("type".into(), kind.into());
        }
        match tag_of(&v, "type", where_, &["synthetic", "jsonl", "list"])? {
            "synthetic" => tagged(v, "type", where_).map(Dataset::Synthetic),
            "jsonl" => tagged(v, "type", where_).map(Dataset::Jsonl),
            _ => tagged(v, "type", where_).map(Dataset::List),
        }
    }
}

impl<'de> Deserialize<'de> for Dataset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Dataset::from_json(v, "dataset").map_err(serde::de::Error::custom)
    }
}

fn default_prompt_tokens() -> u64 {
    128
}
fn default_output_tokens() -> u64 {
    128
}

impl Default for Dataset {
    fn default() -> Self {
        Dataset::Synthetic(Synthetic {
            prompt_tokens: default_prompt_tokens(),
            output_tokens: default_output_tokens(),
            spread: 0.0,
            seed: 0,
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub itl_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
}

impl Slo {
    pub fn is_empty(&self) -> bool {
        self.ttft_ms.is_none() && self.tpot_ms.is_none() && self.itl_ms.is_none() && self.e2e_ms.is_none()
    }
}

/// Bounds what a duration or a rate may be (a billion seconds is 31 years).
const LIMIT: f64 = 1e9;

fn positive(field: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 && v <= LIMIT {
        Ok(())
    } else {
        Err(format!("{field}: expected a positive number (at most {LIMIT:e}), got {v}"))
    }
}

fn non_negative(field: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && (0.0..=LIMIT).contains(&v) {
        Ok(())
    } else {
        Err(format!("{field}: expected a non-negative number (at most {LIMIT:e}), got {v}"))
    }
}

impl BenchSpec {
    /// Checks values the types cannot; messages name the field.
    pub fn validate(&self) -> Result<(), String> {
        self.target.validate()?;
        self.workload.validate()?;
        self.dataset.validate()?;
        self.slo.validate()
    }
}

impl Target {
    pub fn validate(&self) -> Result<(), String> {
        let urls = self.url.list();
        if urls.is_empty() {
            return Err("target.url: expected a URL or a non-empty list of URLs".into());
        }
        for (i, u) in urls.iter().enumerate() {
            let field = if urls.len() == 1 { "target.url".to_string() } else { format!("target.url[{}]", i + 1) };
            super::http1::Endpoint::parse(u).map_err(|e| format!("{field}: {e}"))?;
        }
        positive("target.timeout_s", self.timeout_s)?;
        if let Some(m) = &self.method
            && (m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(format!("target.method: expected an HTTP method like GET or POST, got \"{m}\""));
        }
        if let Some(p) = &self.path
            && !p.starts_with('/')
        {
            return Err(format!("target.path: expected a path starting with '/', got \"{p}\""));
        }
        for (k, v) in &self.headers {
            if k.is_empty() || k.bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_')) {
                return Err(format!("target.headers: invalid header name \"{k}\""));
            }
            if v.contains('\r') || v.contains('\n') {
                return Err(format!("target.headers.{k}: header values cannot contain line breaks"));
            }
        }
        if self.prompt_format == PromptFormat::Ids && self.api != Api::OpenaiCompletions {
            return Err(format!(
                "target.prompt_format: token-id prompts are for api = \"openai-completions\", not \"{}\"",
                self.api.name()
            ));
        }
        if self.tokenizer.as_deref() == Some("server") && !matches!(self.api, Api::OpenaiCompletions | Api::OpenaiChat)
        {
            return Err(format!(
                "target.tokenizer: \"server\" means vLLM's /tokenize, which api = \"{}\" does not have; give the model folder",
                self.api.name()
            ));
        }
        if self.tokenizer.as_deref() == Some("") {
            return Err("target.tokenizer: expected a model folder, tokenizer.json, \"server\" or \"words\"".into());
        }
        Ok(())
    }
}

impl Workload {
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Workload::ClosedLoop(ClosedLoop {
                users,
                think_time_ms,
                requests_per_user,
                total_requests,
                duration_s,
                ramp_up_s,
                warmup_s,
                unreachable_s,
                ..
            }) => {
                if *users == 0 {
                    return Err("workload.users: expected a positive integer, got 0".into());
                }
                non_negative("workload.think_time_ms", *think_time_ms)?;
                non_negative("workload.unreachable_s", *unreachable_s)?;
                non_negative("workload.ramp_up_s", *ramp_up_s)?;
                non_negative("workload.warmup_s", *warmup_s)?;
                if let Some(d) = duration_s {
                    positive("workload.duration_s", *d)?;
                }
                if requests_per_user == &Some(0) {
                    return Err("workload.requests_per_user: expected a positive integer, got 0".into());
                }
                if total_requests == &Some(0) {
                    return Err("workload.total_requests: expected a positive integer, got 0".into());
                }
                if duration_s.is_none() && requests_per_user.is_none() && total_requests.is_none() {
                    return Err("workload: a closed loop needs duration_s, requests_per_user or total_requests".into());
                }
            }
            Workload::OpenLoop(OpenLoop {
                rate,
                arrival,
                burstiness,
                max_concurrency,
                duration_s,
                total_requests,
                warmup_s,
                unreachable_s,
                ..
            }) => {
                positive("workload.rate", *rate)?;
                non_negative("workload.warmup_s", *warmup_s)?;
                non_negative("workload.unreachable_s", *unreachable_s)?;
                if let Some(b) = burstiness {
                    positive("workload.burstiness", *b)?;
                    if *arrival != Arrival::Gamma {
                        return Err("workload.burstiness: only used with arrival = \"gamma\"".into());
                    }
                }
                if max_concurrency == &Some(0) {
                    return Err("workload.max_concurrency: expected a positive integer, got 0".into());
                }
                if let Some(d) = duration_s {
                    positive("workload.duration_s", *d)?;
                }
                if total_requests == &Some(0) {
                    return Err("workload.total_requests: expected a positive integer, got 0".into());
                }
                if duration_s.is_none() && total_requests.is_none() {
                    return Err("workload: an open loop needs duration_s or total_requests".into());
                }
            }
        }
        Ok(())
    }

    /// The open loop's send schedule (its warmup included), as the run
    /// will use it; an error for a closed loop.
    pub fn schedule(&self) -> Result<super::schedule::Schedule, String> {
        match self {
            Workload::OpenLoop(w) => w.schedule(),
            Workload::ClosedLoop(_) => Err("only open-loop workloads have a schedule".into()),
        }
    }
}

impl OpenLoop {
    pub fn schedule(&self) -> Result<super::schedule::Schedule, String> {
        super::schedule::Schedule::new(
            self.rate,
            self.arrival,
            self.burstiness,
            self.seed,
            self.total_requests,
            self.duration_s.map(|d| d + self.warmup_s),
        )
    }
}

impl Dataset {
    pub fn validate(&self) -> Result<(), String> {
        // Checked in this order: the fields before output_tokens, output_tokens, the fields after.
        let output_tokens = match self {
            Dataset::Synthetic(Synthetic { prompt_tokens, output_tokens, .. }) => {
                if *prompt_tokens == 0 {
                    return Err("dataset.prompt_tokens: expected a positive integer, got 0".into());
                }
                *output_tokens
            }
            Dataset::Jsonl(Jsonl { path, output_tokens, .. }) => {
                if let Err(e) = std::fs::File::open(path) {
                    return Err(format!("dataset.path: cannot read '{path}': {e}"));
                }
                *output_tokens
            }
            Dataset::List(PromptList { output_tokens, .. }) => *output_tokens,
        };
        if output_tokens == 0 {
            return Err("dataset.output_tokens: expected a positive integer, got 0".into());
        }
        match self {
            Dataset::Synthetic(Synthetic { spread, .. }) if !(0.0..1.0).contains(spread) => {
                return Err(format!("dataset.spread: expected a fraction in [0, 1), got {spread}"));
            }
            Dataset::List(PromptList { prompts, .. }) if prompts.is_empty() => {
                return Err("dataset.prompts: expected at least one prompt".into());
            }
            _ => {}
        }
        Ok(())
    }
}

impl Slo {
    pub fn validate(&self) -> Result<(), String> {
        for (f, v) in [
            ("slo.ttft_ms", self.ttft_ms),
            ("slo.tpot_ms", self.tpot_ms),
            ("slo.itl_ms", self.itl_ms),
            ("slo.e2e_ms", self.e2e_ms),
        ] {
            if let Some(v) = v {
                positive(f, v)?;
            }
        }
        Ok(())
    }
}
