//! What a benchmark run is asked to do: target, workload, dataset, SLOs.
//! Deserialised from the Lua table (or a recipe) with serde; `validate`
//! checks values and names the field in every message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::typed::{FieldError, from_json_at};

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
    /// One base URL, or a list (the instances of one service): `balance`
    /// says how requests are spread over them.
    pub url: Urls,
    /// How requests pick one of several URLs; a multi-turn session keeps
    /// the one it started on (its prefix cache is there).
    #[serde(default)]
    pub balance: Balance,
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
    /// The longest one streamed event (an SSE event or an NDJSON line) or
    /// one unstreamed response body may be, in bytes; a response past it
    /// is cut and counted as `stream_broken`.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: u64,
}

/// 8 MiB: a chunk of thousands of tokens with logprobs is well under it.
pub const DEFAULT_MAX_EVENT_BYTES: u64 = 8 << 20;

fn default_max_event_bytes() -> u64 {
    DEFAULT_MAX_EVENT_BYTES
}

/// How requests are spread over several URLs (a service's instances).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each request (each session) goes to the next URL in turn: equal
    /// counts, whatever each instance's speed.
    #[default]
    RoundRobin,
    /// Each request goes to the URL with the fewest requests in flight
    /// (sessions: the fewest sessions open), ties in turn: a slower
    /// instance gets fewer.
    LeastOutstanding,
}

impl Balance {
    pub const ALL: [Balance; 2] = [Balance::RoundRobin, Balance::LeastOutstanding];

    /// Its name in specs and results.
    pub fn name(self) -> &'static str {
        match self {
            Balance::RoundRobin => "round_robin",
            Balance::LeastOutstanding => "least_outstanding",
        }
    }
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
    Trace(TraceReplay),
    Sessions(Sessions),
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
    /// The most requests outstanding at once (sent and unanswered, or due
    /// and waiting for a `max_concurrency` slot); a request due beyond it
    /// is not sent and counted in `not_sent`. Default
    /// [`DEFAULT_MAX_IN_FLIGHT`] (within the open-file limit).
    #[serde(default)]
    pub max_in_flight: Option<u64>,
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

/// The default cap on an open loop's outstanding requests (and on sessions
/// started at a rate): far beyond what a server holds, well below what
/// would exhaust the client's memory or sockets.
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 10_000;
fn default_time_scale() -> f64 {
    1.0
}

/// Each request of a trace dataset at its timestamp × `time_scale`, on the
/// open loop's absolute schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceReplay {
    /// 0.5 replays twice as fast, 2 at half the speed.
    #[serde(default = "default_time_scale")]
    pub time_scale: f64,
    #[serde(default)]
    pub max_concurrency: Option<u64>,
    /// As for the open loop.
    #[serde(default)]
    pub max_in_flight: Option<u64>,
    /// Stop after this many of the trace's requests (default: all of them).
    #[serde(default)]
    pub total_requests: Option<u64>,
    /// Stop at this point of the replay.
    #[serde(default, alias = "duration_seconds")]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub warmup_requests: u64,
    #[serde(default = "default_unreachable_s")]
    pub unreachable_s: f64,
    #[serde(default)]
    pub keep_going: bool,
}

/// How many turns a session has: the dataset's conversation, or a number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Turns {
    #[default]
    Dataset,
    Count(u64),
}

impl Serialize for Turns {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Turns::Dataset => s.serialize_str("dataset"),
            Turns::Count(n) => s.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Turns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "dataset" => Ok(Turns::Dataset),
            serde_json::Value::Number(n) if n.as_u64().is_some_and(|n| n > 0) => {
                Ok(Turns::Count(n.as_u64().unwrap_or(1)))
            }
            other => Err(D::Error::custom(format!("expected \"dataset\" or a positive number of turns, got {other}"))),
        }
    }
}

/// What a session's history holds of the assistant's turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum History {
    /// The reply the server streamed.
    #[default]
    Generated,
    /// The dataset's own answer.
    Dataset,
}

/// Multi-turn conversations: each session sends its whole history with
/// every turn, waits for the reply, thinks, and goes on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sessions {
    /// Sessions at once; each user starts a new session when one ends.
    #[serde(default, alias = "concurrent_users")]
    pub users: Option<u64>,
    /// Or: new sessions per second (Poisson), however many run at once.
    #[serde(default)]
    pub session_rate: Option<f64>,
    #[serde(default)]
    pub max_concurrency: Option<u64>,
    /// `session_rate`: the most sessions running at once; a session due
    /// beyond it is not started and counted in `not_sent`.
    #[serde(default)]
    pub max_in_flight: Option<u64>,
    #[serde(default)]
    pub think_time_ms: f64,
    #[serde(default)]
    pub turns: Turns,
    #[serde(default)]
    pub history: History,
    #[serde(default, alias = "duration_seconds")]
    pub duration_s: Option<f64>,
    /// Stop starting sessions after this many.
    #[serde(default)]
    pub total_sessions: Option<u64>,
    #[serde(default)]
    pub ramp_up_s: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_unreachable_s")]
    pub unreachable_s: f64,
    #[serde(default)]
    pub keep_going: bool,
}

/// Parses a tagged JSON object (`{"pattern": ..., ...}`) into the variant
/// named by its tag, with errors that name the field (`where.users: ...`).
fn tagged<T: serde::de::DeserializeOwned>(mut v: serde_json::Value, tag: &str, where_: &str) -> Result<T, FieldError> {
    if let Some(m) = v.as_object_mut() {
        m.remove(tag);
    }
    from_json_at(v, where_)
}

fn tag_of<'a>(v: &'a serde_json::Value, tag: &str, where_: &str, choices: &[&str]) -> Result<&'a str, FieldError> {
    let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    let list = match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    };
    match v.get(tag) {
        None => Err(FieldError::new(format!("{where_}.{tag}"), format!("missing; expected {list}"))),
        Some(serde_json::Value::String(s)) if choices.contains(&s.as_str()) => Ok(s),
        Some(other) => {
            let got = other.as_str().map(|s| format!("\"{s}\"")).unwrap_or_else(|| other.to_string());
            let hint = other
                .as_str()
                .and_then(|s| crate::util::did_you_mean(s, choices.iter().copied()))
                .map(|c| format!(" (did you mean \"{c}\"?)"))
                .unwrap_or_default();
            Err(FieldError::new(format!("{where_}.{tag}"), format!("expected {list}, got {got}{hint}")))
        }
    }
}

impl Workload {
    pub fn from_json(v: serde_json::Value, where_: &str) -> Result<Workload, FieldError> {
        if !v.is_object() {
            return Err(FieldError::new(where_, "expected a table"));
        }
        match tag_of(&v, "pattern", where_, &["closed-loop", "open-loop", "trace", "sessions"])? {
            "closed-loop" => tagged(v, "pattern", where_).map(Workload::ClosedLoop),
            "trace" => tagged(v, "pattern", where_).map(Workload::Trace),
            "sessions" => tagged(v, "pattern", where_).map(Workload::Sessions),
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
            Workload::Trace(w) => (0.0, w.warmup_requests),
            Workload::Sessions(_) => (0.0, 0),
        }
    }

    pub fn seed(&self) -> u64 {
        match self {
            Workload::ClosedLoop(w) => w.seed,
            Workload::OpenLoop(w) => w.seed,
            Workload::Trace(_) => 0,
            Workload::Sessions(w) => w.seed,
        }
    }

    /// Seconds without success and without an answer before the run stops
    /// early; `None` when the run never stops early.
    pub fn unreachable_after(&self) -> Option<f64> {
        let (s, keep_going) = match self {
            Workload::ClosedLoop(w) => (w.unreachable_s, w.keep_going),
            Workload::OpenLoop(w) => (w.unreachable_s, w.keep_going),
            Workload::Trace(w) => (w.unreachable_s, w.keep_going),
            Workload::Sessions(w) => (w.unreachable_s, w.keep_going),
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
            Workload::Trace(w) => w.max_concurrency.map(|m| ("workload.max_concurrency", m + targets as u64)),
            Workload::Sessions(w) => match (w.users, w.max_concurrency) {
                (Some(u), _) => Some(("workload.users", u.saturating_mul(targets as u64))),
                (None, Some(m)) => Some(("workload.max_concurrency", m.saturating_mul(targets as u64))),
                _ => None,
            },
        }
    }

    /// The cap on outstanding requests (sessions) a scheduled workload
    /// asked for, if it set one (closed loops are bounded by their users).
    pub fn max_in_flight(&self) -> Option<u64> {
        match self {
            Workload::OpenLoop(w) => w.max_in_flight,
            Workload::Trace(w) => w.max_in_flight,
            Workload::Sessions(w) => w.max_in_flight,
            Workload::ClosedLoop(_) => None,
        }
    }

    pub fn pattern(&self) -> &'static str {
        match self {
            Workload::ClosedLoop(_) => "closed-loop",
            Workload::OpenLoop(_) => "open-loop",
            Workload::Trace(_) => "trace",
            Workload::Sessions(_) => "sessions",
        }
    }
}

pub use crate::datasets::Common;
pub use crate::datasets::conversations::{Messages, ShareGpt};
pub use crate::datasets::lengths::Length;
pub use crate::datasets::table::{Csv, Jsonl};
pub use crate::datasets::trace::TraceFile;

#[derive(Debug, Clone)]
pub enum Dataset {
    Synthetic(Synthetic),
    Jsonl(Jsonl),
    Csv(Csv),
    List(PromptList),
    Sharegpt(ShareGpt),
    Messages(Messages),
    Trace(TraceFile),
}

/// Random prompts of exact lengths (in the counter's tokens), optionally
/// behind one of `prefix_groups` shared prefixes of `prefix_tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    /// The prompt's own part: a number, or `{dist, mean, stdev | min, max}`.
    #[serde(default = "default_length")]
    pub prompt_tokens: Length,
    #[serde(default = "default_length")]
    pub output_tokens: Length,
    /// Lengths vary uniformly by ± this fraction.
    #[serde(default)]
    pub spread: f64,
    /// Tokens of a shared prefix (a system prompt) before each prompt.
    #[serde(default)]
    pub prefix_tokens: u64,
    /// Distinct shared prefixes; request i has prefix i mod groups.
    #[serde(default = "default_groups")]
    pub prefix_groups: u64,
    #[serde(default)]
    pub seed: u64,
}

fn default_length() -> Length {
    Length::Fixed(128)
}
fn default_groups() -> u64 {
    1
}

/// Prompts given inline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptList {
    pub prompts: Vec<String>,
    #[serde(default = "default_output_tokens")]
    pub output_tokens: u64,
}

const DATASET_TYPES: [&str; 7] = ["synthetic", "jsonl", "csv", "list", "sharegpt", "messages", "trace"];

impl Dataset {
    pub fn from_json(mut v: serde_json::Value, where_: &str) -> Result<Dataset, FieldError> {
        let Some(m) = v.as_object_mut() else { return Err(FieldError::new(where_, "expected a table")) };
        if !m.contains_key("type") {
            // The shape says which: {prompts = {...}}, {path = ...}, or synthetic.
            let kind = if m.contains_key("prompts") {
                "list"
            } else if let Some(p) = m.get("path").and_then(|p| p.as_str()) {
                if p.ends_with(".csv") { "csv" } else { "jsonl" }
            } else {
                "synthetic"
            };
            m.insert("type".into(), kind.into());
        }
        let kind = tag_of(&v, "type", where_, &DATASET_TYPES)?.to_string();
        // The options every file format shares, apart from its own fields.
        let mut common = Common::default();
        if !matches!(kind.as_str(), "synthetic" | "list")
            && let Some(m) = v.as_object_mut()
        {
            let mut c = serde_json::Map::new();
            for k in crate::datasets::COMMON_KEYS {
                if let Some(x) = m.remove(k) {
                    c.insert(k.into(), x);
                }
            }
            common = from_json_at(serde_json::Value::Object(c), where_)?;
        }
        Ok(match kind.as_str() {
            "synthetic" => Dataset::Synthetic(tagged(v, "type", where_)?),
            "jsonl" => Dataset::Jsonl(Jsonl { common, ..tagged(v, "type", where_)? }),
            "csv" => Dataset::Csv(Csv { common, ..tagged(v, "type", where_)? }),
            "sharegpt" => Dataset::Sharegpt(ShareGpt { common, ..tagged(v, "type", where_)? }),
            "messages" => Dataset::Messages(Messages { common, ..tagged(v, "type", where_)? }),
            "trace" => Dataset::Trace(TraceFile { common, ..tagged(v, "type", where_)? }),
            _ => Dataset::List(tagged(v, "type", where_)?),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Dataset::Synthetic(_) => "synthetic",
            Dataset::Jsonl(_) => "jsonl",
            Dataset::Csv(_) => "csv",
            Dataset::List(_) => "list",
            Dataset::Sharegpt(_) => "sharegpt",
            Dataset::Messages(_) => "messages",
            Dataset::Trace(_) => "trace",
        }
    }

    /// The shared options of a file format.
    pub fn common(&self) -> Option<&Common> {
        match self {
            Dataset::Jsonl(d) => Some(&d.common),
            Dataset::Csv(d) => Some(&d.common),
            Dataset::Sharegpt(d) => Some(&d.common),
            Dataset::Messages(d) => Some(&d.common),
            Dataset::Trace(d) => Some(&d.common),
            Dataset::Synthetic(_) | Dataset::List(_) => None,
        }
    }

    /// The file a dataset reads.
    pub fn path(&self) -> Option<&str> {
        match self {
            Dataset::Jsonl(d) => Some(&d.path),
            Dataset::Csv(d) => Some(&d.path),
            Dataset::Sharegpt(d) => Some(&d.path),
            Dataset::Messages(d) => Some(&d.path),
            Dataset::Trace(d) => Some(&d.path),
            Dataset::Synthetic(_) | Dataset::List(_) => None,
        }
    }
}

impl Serialize for Dataset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let own = |x: &dyn erased::Json| x.json();
        let mut v = match self {
            Dataset::Synthetic(d) => own(d),
            Dataset::Jsonl(d) => own(d),
            Dataset::Csv(d) => own(d),
            Dataset::List(d) => own(d),
            Dataset::Sharegpt(d) => own(d),
            Dataset::Messages(d) => own(d),
            Dataset::Trace(d) => own(d),
        };
        if let Some(m) = v.as_object_mut() {
            m.insert("type".into(), self.kind().into());
            if let Some(serde_json::Value::Object(c)) = self.common().map(|c| own(c)) {
                m.extend(c);
            }
        }
        v.serialize(s)
    }
}

mod erased {
    pub trait Json {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or_default()
        }
    }
}

impl<'de> Deserialize<'de> for Dataset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Dataset::from_json(v, "dataset").map_err(serde::de::Error::custom)
    }
}

fn default_output_tokens() -> u64 {
    128
}

impl Default for Dataset {
    fn default() -> Self {
        Dataset::Synthetic(Synthetic {
            prompt_tokens: default_length(),
            output_tokens: default_length(),
            spread: 0.0,
            prefix_tokens: 0,
            prefix_groups: 1,
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

fn positive(field: &str, v: f64) -> Result<(), FieldError> {
    if v.is_finite() && v > 0.0 && v <= LIMIT {
        Ok(())
    } else {
        Err(FieldError::new(field, format!("expected a positive number (at most {LIMIT:e}), got {v}")))
    }
}

fn non_negative(field: &str, v: f64) -> Result<(), FieldError> {
    if v.is_finite() && (0.0..=LIMIT).contains(&v) {
        Ok(())
    } else {
        Err(FieldError::new(field, format!("expected a non-negative number (at most {LIMIT:e}), got {v}")))
    }
}

fn check_in_flight(v: Option<u64>) -> Result<(), FieldError> {
    match v {
        Some(0) => Err(FieldError::new("workload.max_in_flight", "expected a positive integer, got 0")),
        Some(n) if n > 10_000_000 => {
            Err(FieldError::new("workload.max_in_flight", format!("expected at most 10000000, got {n}")))
        }
        _ => Ok(()),
    }
}

/// An error from code that still writes its field into its text
/// (`dataset.path: ...`: the dataset readers, the length checks): the
/// field taken back out, so that it is data here too. Only a spec field
/// (`target`, `workload`, `dataset`, `slo`, `per_request_log`, `label`,
/// with `.name` and `[n]` parts) counts; any other text has no field. The
/// error reads exactly as the text did.
pub(super) fn located(text: String) -> FieldError {
    const ROOTS: [&str; 6] = ["target", "workload", "dataset", "slo", "per_request_log", "label"];
    let field_len = ROOTS.iter().find_map(|root| {
        let rest = text.strip_prefix(root)?;
        let path = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']'))
                .len();
        let (parts, after) = rest.split_at(path);
        let well_formed = parts.is_empty() || parts.starts_with('.') || parts.starts_with('[');
        (well_formed && after.starts_with(": ")).then_some(root.len() + path)
    });
    match field_len {
        Some(n) => FieldError::new(&text[..n], &text[n + 2..]),
        None => FieldError::new("", text),
    }
}

impl BenchSpec {
    /// Checks values the types cannot; messages name the field. What needs
    /// the moment of the run (the server, the dataset's file) is checked
    /// by the run.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.target.validate()?;
        self.workload.validate()?;
        self.dataset.validate()?;
        self.workload.fits(&self.dataset)?;
        self.target.fits(&self.dataset)?;
        self.slo.validate()
    }
}

/// A spec that [`BenchSpec::validate`] accepted: what a run takes, so that
/// nothing after the parse checks a value again.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct ValidSpec(BenchSpec);

impl ValidSpec {
    pub fn new(spec: BenchSpec) -> Result<ValidSpec, FieldError> {
        spec.validate()?;
        Ok(ValidSpec(spec))
    }

    /// Parses ([`super::spec_from_json`]) and validates.
    pub fn from_json(v: serde_json::Value) -> Result<ValidSpec, FieldError> {
        ValidSpec::new(parse(v)?)
    }

    pub fn spec(&self) -> &BenchSpec {
        &self.0
    }

    pub fn into_inner(self) -> BenchSpec {
        self.0
    }

    /// The model found on the server when the spec named none (the model's
    /// name is not one of the values `validate` checks).
    pub(super) fn set_model(&mut self, model: String) {
        self.0.target.model = Some(model);
    }
}

/// The spec from its JSON form (see [`super::spec_from_json`]): the tagged
/// parts (workload, dataset) parsed by their own `from_json`, so their
/// errors carry the full field path, and the rest by serde, once each.
pub(super) fn parse(mut v: serde_json::Value) -> Result<BenchSpec, FieldError> {
    // `dataset.tokenizer` is accepted for `target.tokenizer`.
    if let Some(t) = v.get_mut("dataset").and_then(|d| d.as_object_mut()).and_then(|d| d.remove("tokenizer")) {
        match v.get_mut("target").and_then(|t| t.as_object_mut()) {
            Some(target) if target.get("tokenizer").is_some_and(|x| *x != t) => {
                return Err(FieldError::new("dataset.tokenizer", "target.tokenizer says otherwise; give one of them"));
            }
            Some(target) => {
                target.insert("tokenizer".into(), t);
            }
            None => {}
        }
    }
    // Not an object: serde's own words for the whole (it cannot be a spec).
    if !v.is_object() {
        return from_json_at::<BenchSpec>(v, "");
    }
    // Taken out in place: the other fields keep their order, and serde
    // reports the first of their errors as it would for the whole.
    let (workload, dataset) = match v.as_object_mut() {
        Some(m) => (m.shift_remove("workload"), m.shift_remove("dataset")),
        None => (None, None),
    };
    // In this order, as one serde parse of the whole would report them.
    let workload = workload.map(|w| Workload::from_json(w, "workload")).transpose()?;
    let dataset = dataset.map(|d| Dataset::from_json(d, "dataset")).transpose()?;
    let rest: SpecRest = from_json_at(v, "")?;
    let Some(workload) = workload else { return Err(FieldError::new("", "missing field `workload`")) };
    Ok(BenchSpec {
        target: rest.target,
        workload,
        dataset: dataset.unwrap_or_default(),
        slo: rest.slo,
        per_request_log: rest.per_request_log,
        label: rest.label,
    })
}

/// [`BenchSpec`]'s untagged fields, parsed by serde. It names the same
/// fields in the same order, so that serde's messages (an unknown field and
/// the fields it expected, a missing one, a wrong type) read as for
/// `BenchSpec` itself; `workload` and `dataset` are taken out before.
#[derive(Deserialize)]
#[serde(rename = "BenchSpec", deny_unknown_fields)]
struct SpecRest {
    target: Target,
    #[serde(default, rename = "workload")]
    _workload: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "dataset")]
    _dataset: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    slo: Slo,
    #[serde(default)]
    per_request_log: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

impl Target {
    /// The endpoints of `url`, each error naming its entry (`target.url[2]`
    /// when there are several).
    pub fn endpoints(&self) -> Result<Vec<super::http1::Endpoint>, FieldError> {
        let urls = self.url.list();
        if urls.is_empty() {
            return Err(FieldError::new("target.url", "expected a URL or a non-empty list of URLs"));
        }
        let field =
            |i: usize| if urls.len() == 1 { "target.url".to_string() } else { format!("target.url[{}]", i + 1) };
        urls.iter()
            .enumerate()
            .map(|(i, u)| super::http1::Endpoint::parse(u).map_err(|e| FieldError::new(field(i), e)))
            .collect()
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        self.endpoints()?;
        positive("target.timeout_s", self.timeout_s)?;
        if !(1024..=(1u64 << 30)).contains(&self.max_event_bytes) {
            return Err(FieldError::new(
                "target.max_event_bytes",
                format!("expected a size from 1024 to 1073741824 bytes, got {}", self.max_event_bytes),
            ));
        }
        if let Some(m) = &self.method
            && (m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(FieldError::new(
                "target.method",
                format!("expected an HTTP method like GET or POST, got \"{m}\""),
            ));
        }
        if let Some(p) = &self.path
            && !p.starts_with('/')
        {
            return Err(FieldError::new("target.path", format!("expected a path starting with '/', got \"{p}\"")));
        }
        for (k, v) in &self.headers {
            if k.is_empty() || k.bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_')) {
                return Err(FieldError::new("target.headers", format!("invalid header name \"{k}\"")));
            }
            if v.contains('\r') || v.contains('\n') {
                return Err(FieldError::new(format!("target.headers.{k}"), "header values cannot contain line breaks"));
            }
        }
        if self.prompt_format == PromptFormat::Ids && self.api != Api::OpenaiCompletions {
            return Err(FieldError::new(
                "target.prompt_format",
                format!("token-id prompts are for api = \"openai-completions\", not \"{}\"", self.api.name()),
            ));
        }
        if self.tokenizer.as_deref() == Some("server") && !matches!(self.api, Api::OpenaiCompletions | Api::OpenaiChat)
        {
            return Err(FieldError::new(
                "target.tokenizer",
                format!(
                    "\"server\" means vLLM's /tokenize, which api = \"{}\" does not have; give the model folder",
                    self.api.name()
                ),
            ));
        }
        if self.tokenizer.as_deref() == Some("") {
            return Err(FieldError::new(
                "target.tokenizer",
                "expected a model folder, tokenizer.json, \"server\" or \"words\"",
            ));
        }
        Ok(())
    }

    /// Checks that the target can send the dataset's prompts.
    pub fn fits(&self, d: &Dataset) -> Result<(), FieldError> {
        if matches!(d, Dataset::Trace(_)) && self.prompt_format == PromptFormat::Ids {
            return Err(FieldError::new(
                "target.prompt_format",
                "a trace's prompts are sent as text (give prompt_format = \"text\")",
            ));
        }
        Ok(())
    }
}

impl Workload {
    pub fn validate(&self) -> Result<(), FieldError> {
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
                    return Err(FieldError::new("workload.users", "expected a positive integer, got 0"));
                }
                non_negative("workload.think_time_ms", *think_time_ms)?;
                non_negative("workload.unreachable_s", *unreachable_s)?;
                non_negative("workload.ramp_up_s", *ramp_up_s)?;
                non_negative("workload.warmup_s", *warmup_s)?;
                if let Some(d) = duration_s {
                    positive("workload.duration_s", *d)?;
                }
                if requests_per_user == &Some(0) {
                    return Err(FieldError::new("workload.requests_per_user", "expected a positive integer, got 0"));
                }
                if total_requests == &Some(0) {
                    return Err(FieldError::new("workload.total_requests", "expected a positive integer, got 0"));
                }
                if duration_s.is_none() && requests_per_user.is_none() && total_requests.is_none() {
                    return Err(FieldError::new(
                        "workload",
                        "a closed loop needs duration_s, requests_per_user or total_requests",
                    ));
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
                check_in_flight(self.max_in_flight())?;
                non_negative("workload.warmup_s", *warmup_s)?;
                non_negative("workload.unreachable_s", *unreachable_s)?;
                if let Some(b) = burstiness {
                    positive("workload.burstiness", *b)?;
                    if *arrival != Arrival::Gamma {
                        return Err(FieldError::new("workload.burstiness", "only used with arrival = \"gamma\""));
                    }
                }
                if max_concurrency == &Some(0) {
                    return Err(FieldError::new("workload.max_concurrency", "expected a positive integer, got 0"));
                }
                if let Some(d) = duration_s {
                    positive("workload.duration_s", *d)?;
                }
                if total_requests == &Some(0) {
                    return Err(FieldError::new("workload.total_requests", "expected a positive integer, got 0"));
                }
                if duration_s.is_none() && total_requests.is_none() {
                    return Err(FieldError::new("workload", "an open loop needs duration_s or total_requests"));
                }
            }
            Workload::Trace(TraceReplay {
                time_scale,
                max_concurrency,
                total_requests,
                duration_s,
                unreachable_s,
                ..
            }) => {
                positive("workload.time_scale", *time_scale)?;
                check_in_flight(self.max_in_flight())?;
                non_negative("workload.unreachable_s", *unreachable_s)?;
                if max_concurrency == &Some(0) {
                    return Err(FieldError::new("workload.max_concurrency", "expected a positive integer, got 0"));
                }
                if total_requests == &Some(0) {
                    return Err(FieldError::new("workload.total_requests", "expected a positive integer, got 0"));
                }
                if let Some(d) = duration_s {
                    positive("workload.duration_s", *d)?;
                }
            }
            Workload::Sessions(w) => {
                match (w.users, w.session_rate) {
                    (Some(0), _) => {
                        return Err(FieldError::new("workload.users", "expected a positive integer, got 0"));
                    }
                    (Some(_), Some(_)) => {
                        return Err(FieldError::new(
                            "workload",
                            "give users (sessions at once) or session_rate (new sessions per second), not both",
                        ));
                    }
                    (None, None) => {
                        return Err(FieldError::new(
                            "workload",
                            "sessions need users (sessions at once) or session_rate (new sessions per second)",
                        ));
                    }
                    (None, Some(r)) => positive("workload.session_rate", r)?,
                    (Some(_), None) => {
                        if w.max_concurrency.is_some() {
                            return Err(FieldError::new(
                                "workload.max_concurrency",
                                "only with session_rate (users already bound it)",
                            ));
                        }
                    }
                }
                if w.max_concurrency == Some(0) {
                    return Err(FieldError::new("workload.max_concurrency", "expected a positive integer, got 0"));
                }
                check_in_flight(w.max_in_flight)?;
                if w.users.is_some() && w.max_in_flight.is_some() {
                    return Err(FieldError::new(
                        "workload.max_in_flight",
                        "only with session_rate (users already bound it)",
                    ));
                }
                non_negative("workload.think_time_ms", w.think_time_ms)?;
                non_negative("workload.ramp_up_s", w.ramp_up_s)?;
                non_negative("workload.unreachable_s", w.unreachable_s)?;
                if let Some(d) = w.duration_s {
                    positive("workload.duration_s", d)?;
                }
                if w.total_sessions == Some(0) {
                    return Err(FieldError::new("workload.total_sessions", "expected a positive integer, got 0"));
                }
                if w.duration_s.is_none() && w.total_sessions.is_none() {
                    return Err(FieldError::new("workload", "sessions need duration_s or total_sessions"));
                }
            }
        }
        Ok(())
    }

    /// Checks that the workload and the dataset go together.
    pub fn fits(&self, d: &Dataset) -> Result<(), FieldError> {
        match (self, d) {
            (Workload::Trace(_), Dataset::Trace(_)) => Ok(()),
            (Workload::Trace(_), other) => Err(FieldError::new(
                "workload.pattern",
                format!(
                    "\"trace\" replays a trace's timestamps and needs dataset.type = \"trace\", not \"{}\"",
                    other.kind()
                ),
            )),
            (Workload::Sessions(w), d) => {
                let conversations = matches!(d, Dataset::Sharegpt(_) | Dataset::Messages(_));
                if !conversations && !matches!(d, Dataset::Synthetic(_)) {
                    return Err(FieldError::new(
                        "workload.pattern",
                        format!(
                            "\"sessions\" needs conversations (dataset.type = \"sharegpt\" or \"messages\") or synthetic turns, not dataset.type = \"{}\"",
                            d.kind()
                        ),
                    ));
                }
                if !conversations && w.turns == Turns::Dataset {
                    return Err(FieldError::new(
                        "workload.turns",
                        "synthetic sessions need a number of turns (turns = N)",
                    ));
                }
                if !conversations && w.history == History::Dataset {
                    return Err(FieldError::new(
                        "workload.history",
                        "\"dataset\" needs a dataset with answers (sharegpt or messages)",
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The open loop's send schedule (its warmup included), as the run
    /// will use it; an error for a closed loop.
    pub fn schedule(&self) -> Result<super::schedule::Schedule, FieldError> {
        match self {
            Workload::OpenLoop(w) => w.schedule(),
            _ => Err(FieldError::new("", "only open-loop workloads have a drawn schedule")),
        }
    }
}

impl OpenLoop {
    pub fn schedule(&self) -> Result<super::schedule::Schedule, FieldError> {
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
    /// Checks the dataset's values; whether its file can be read is the
    /// run's to find (see [`Dataset::check_file`]).
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(c) = self.common() {
            c.validate()?;
        }
        let out_zero = |o: u64| {
            if o == 0 {
                Err(FieldError::new("dataset.output_tokens", "expected a positive integer, got 0"))
            } else {
                Ok(())
            }
        };
        match self {
            Dataset::Synthetic(Synthetic {
                prompt_tokens,
                output_tokens,
                spread,
                prefix_tokens,
                prefix_groups,
                ..
            }) => {
                prompt_tokens.validate("dataset.prompt_tokens")?;
                output_tokens.validate("dataset.output_tokens")?;
                if !(0.0..1.0).contains(spread) {
                    return Err(FieldError::new(
                        "dataset.spread",
                        format!("expected a fraction in [0, 1), got {spread}"),
                    ));
                }
                if *spread > 0.0 && !matches!((prompt_tokens, output_tokens), (Length::Fixed(_), Length::Fixed(_))) {
                    return Err(FieldError::new(
                        "dataset.spread",
                        "only with fixed lengths; a distribution sets its own spread",
                    ));
                }
                if *prefix_groups == 0 {
                    return Err(FieldError::new("dataset.prefix_groups", "expected a positive integer, got 0"));
                }
                if *prefix_groups > 1 && *prefix_tokens == 0 {
                    return Err(FieldError::new(
                        "dataset.prefix_groups",
                        "groups share a prefix; set prefix_tokens too",
                    ));
                }
            }
            Dataset::Jsonl(Jsonl { output_tokens, .. }) | Dataset::Csv(Csv { output_tokens, .. }) => {
                out_zero(*output_tokens)?
            }
            Dataset::List(PromptList { prompts, output_tokens }) => {
                out_zero(*output_tokens)?;
                if prompts.is_empty() {
                    return Err(FieldError::new("dataset.prompts", "expected at least one prompt"));
                }
            }
            Dataset::Sharegpt(ShareGpt { output_tokens: Some(o), .. })
            | Dataset::Messages(Messages { output_tokens: Some(o), .. }) => out_zero(*o)?,
            Dataset::Trace(TraceFile { block_size: 0, .. }) => {
                return Err(FieldError::new("dataset.block_size", "expected a positive number of tokens, got 0"));
            }
            _ => {}
        }
        Ok(())
    }
}

impl Dataset {
    /// That the dataset's file (if it reads one) can be opened now.
    pub fn check_file(&self) -> Result<(), FieldError> {
        match self.path().map(|p| crate::inputs::open(p, crate::inputs::Kind::Dataset)) {
            Some(Err(e)) => Err(FieldError::new("dataset.path", e)),
            _ => Ok(()),
        }
    }
}

impl Slo {
    pub fn validate(&self) -> Result<(), FieldError> {
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn url() -> Value {
        json!({"url": "http://127.0.0.1:8000"})
    }

    fn closed() -> Value {
        json!({"pattern": "closed-loop", "users": 1, "duration_s": 1})
    }

    fn err(v: Value) -> FieldError {
        ValidSpec::from_json(v).unwrap_err()
    }

    #[test]
    fn errors_carry_their_field() {
        let e = err(json!({"target": url(), "workload": {"pattern": "open-loop", "rate": -5, "duration_s": 1}}));
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("workload.rate", "expected a positive number (at most 1e9), got -5")
        );
        let e = err(json!({"target": url(), "workload": {"pattern": "closed-loop", "users": "ten", "duration_s": 1}}));
        assert_eq!(e.field, "workload.users");
        assert!(e.message.starts_with("invalid type: string \"ten\""), "{e}");
        let e = err(json!({"target": url(), "workload": {"pattern": "zigzag"}}));
        assert_eq!(e.field, "workload.pattern");
        let e = err(json!({"target": url(), "workload": {"users": 1}}));
        assert_eq!(
            e.to_string(),
            "workload.pattern: missing; expected \"closed-loop\", \"open-loop\", \"trace\" or \"sessions\""
        );
        let e = err(json!({"target": url(), "workload": {"pattern": "closed-loop", "users": 2}}));
        assert_eq!(e.field, "workload");
        let e = err(json!({"target": {"url": ["http://a:1", "https://b"]}, "workload": closed()}));
        assert_eq!(e.field, "target.url[2]");
        assert!(e.to_string().starts_with("target.url[2]: "), "{e}");
        let e = err(
            json!({"target": url(), "workload": closed(), "dataset": {"prompt_tokens": {"dist": "normal", "mean": 100}}}),
        );
        assert_eq!(e.field, "dataset.prompt_tokens.stdev");
        let e = err(
            json!({"target": url(), "workload": closed(), "dataset": {"type": "jsonl", "path": "x.jsonl", "sample": 0}}),
        );
        assert_eq!(
            (e.field.as_str(), e.to_string().as_str()),
            ("dataset.sample", "dataset.sample: expected a positive integer, got 0")
        );
        let e = err(json!({"target": {"url": "http://a:1", "headers": {"x-a": "b\nc"}}, "workload": closed()}));
        assert_eq!(e.field, "target.headers.x-a");
        let e = err(json!({"target": url(), "workload": {"pattern": "trace"}, "dataset": {"prompt_tokens": 4}}));
        assert_eq!(e.field, "workload.pattern");
        let trace = json!({"type": "trace", "path": "t.jsonl"});
        let e = err(
            json!({"target": {"url": "http://a:1", "prompt_format": "ids"}, "workload": {"pattern": "trace"}, "dataset": trace}),
        );
        assert_eq!(
            e.to_string(),
            "target.prompt_format: a trace's prompts are sent as text (give prompt_format = \"text\")"
        );
    }

    #[test]
    fn one_parse_reads_as_serde_reads_the_whole() {
        // What serde says of the untagged fields is what it says of
        // `BenchSpec` itself: the same fields, in the same order.
        for v in [
            json!({"target": url(), "workload": closed(), "bogus": 1}),
            json!({"target": url(), "workload": closed(), "dataset": {}, "slo": {"ttft_ms": "x"}}),
            json!({"workload": closed()}),
            json!({"target": 5, "workload": closed()}),
            json!({"target": {"url": "http://a:1", "apii": "x"}, "workload": closed()}),
            json!({"target": url(), "workload": closed(), "label": 3}),
            json!({"workload": closed(), "label": 3, "dataset": {}, "bogus": 1}),
            json!("spec"),
            json!([]),
        ] {
            let whole = from_json_at::<BenchSpec>(v.clone(), "").unwrap_err();
            assert_eq!(parse(v).unwrap_err(), whole);
        }
        let e = parse(json!({"target": url()})).unwrap_err();
        assert_eq!(e, from_json_at::<BenchSpec>(json!({"target": url()}), "").unwrap_err());
        assert_eq!(e.to_string(), "missing field `workload`");
        // The tagged parts' own errors come first, with their full path.
        let e = parse(json!({"bogus": 1, "workload": {"pattern": "closed-loop", "users": -1}})).unwrap_err();
        assert_eq!(e.field, "workload.users");
        let e = parse(json!({"target": url(), "workload": closed(), "dataset": null})).unwrap_err();
        assert_eq!(e.to_string(), "dataset: expected a table");
        let e = parse(
            json!({"target": {"url": "http://a:1", "tokenizer": "words"}, "workload": closed(), "dataset": {"tokenizer": "server"}}),
        );
        assert_eq!(e.unwrap_err().field, "dataset.tokenizer");
        let s = parse(json!({"target": url(), "workload": closed(), "dataset": {"tokenizer": "words"}})).unwrap();
        assert_eq!(s.target.tokenizer.as_deref(), Some("words"));
    }

    #[test]
    fn a_valid_spec_serialises_as_its_spec() {
        let v = ValidSpec::from_json(json!({"target": url(), "workload": closed(), "label": "x"})).unwrap();
        assert_eq!(serde_json::to_value(&v).unwrap(), serde_json::to_value(v.spec()).unwrap());
        assert_eq!(serde_json::to_value(&v).unwrap()["workload"]["pattern"], "closed-loop");
        assert_eq!(v.into_inner().label.as_deref(), Some("x"));
    }

    #[test]
    fn the_dataset_file_is_the_runs_to_check() {
        let d = json!({"type": "jsonl", "path": "/no/such/prompts.jsonl"});
        let v = ValidSpec::from_json(json!({"target": url(), "workload": closed(), "dataset": d})).unwrap();
        let e = v.spec().dataset.check_file().unwrap_err();
        assert_eq!(e.field, "dataset.path");
        assert!(e.to_string().starts_with("dataset.path: cannot read '/no/such/prompts.jsonl'"), "{e}");
        assert!(Dataset::default().check_file().is_ok());
    }

    #[test]
    fn fields_written_into_text_are_taken_back_out() {
        let cases = [
            ("dataset.path: /x/p.jsonl:3: invalid JSON", "dataset.path", "/x/p.jsonl:3: invalid JSON"),
            ("dataset: no record of 'p' is left", "dataset", "no record of 'p' is left"),
            (
                "dataset.prompt_tokens.mean: expected at least 1, got 0.5",
                "dataset.prompt_tokens.mean",
                "expected at least 1, got 0.5",
            ),
            ("target.url[2]: 'x': no host", "target.url[2]", "'x': no host"),
            ("per_request_log: folder 'x' does not exist", "per_request_log", "folder 'x' does not exist"),
            ("interrupted (SIGINT) while preparing prompts", "", "interrupted (SIGINT) while preparing prompts"),
            ("datasets: x", "", "datasets: x"),
            ("dataset.type = \"trace\": shared blocks", "", "dataset.type = \"trace\": shared blocks"),
            ("/x/p.jsonl:3: bad", "", "/x/p.jsonl:3: bad"),
            ("dataset", "", "dataset"),
        ];
        for (text, field, message) in cases {
            let e = located(text.to_string());
            assert_eq!((e.field.as_str(), e.message.as_str()), (field, message), "{text}");
            assert_eq!(e.to_string(), text);
        }
    }
}
