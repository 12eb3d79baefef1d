//! HTTP endpoints, answered as vLLM's OpenAI-compatible server (and Ollama)
//! answer them: same paths, bodies, chunk shapes and error shapes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use super::SimConfig;
use super::engine::{EngineHandle, Event, FinishReason, GenRequest};
use super::metrics::Metrics;
use super::text;

pub struct AppState {
    pub cfg: SimConfig,
    /// `cfg.model` as a JSON string, for the chunks written by hand.
    pub model_json: Arc<str>,
    pub engine: EngineHandle,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    pub created: u64,
    pub requests: AtomicU64,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ping", get(health))
        .route("/version", get(version))
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/api/generate", post(ollama_generate))
        .route("/api/chat", post(ollama_chat))
        .route("/api/tags", get(ollama_tags))
        .route("/api/version", get(version))
        // FastAPI's answers for an unknown path and a wrong method.
        .fallback(|| async { detail(StatusCode::NOT_FOUND, "Not Found") })
        .method_not_allowed_fallback(|| async { detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed") })
        .with_state(state)
}

/// Request bodies above this are refused (vLLM has no limit; a 12 MB prompt
/// still gets its answer, the length check's, below).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// vLLM checks a text prompt's length in characters before tokenizing it:
/// more than this many characters per token of the context cannot fit.
const MAX_CHARS_PER_TOKEN: usize = 64;

fn detail(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], json!({"detail": text}).to_string()).into_response()
}

/// Reads a request body of at most [`BODY_LIMIT`] bytes. A larger declared
/// length is refused before any of the body is read (so a client waiting
/// for `100 Continue` gets the final answer instead).
async fn read_body(headers: &axum::http::HeaderMap, body: Body) -> Result<Bytes, Reject> {
    let too_large = || {
        reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BadRequestError",
            None,
            format!("The request body is larger than the simulator accepts ({BODY_LIMIT} bytes)."),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| too_large())
}

/// vLLM's OpenAI endpoints take only `application/json` (with or without
/// parameters such as a charset).
fn json_content(headers: &axum::http::HeaderMap) -> Result<(), Reject> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(reject(
        StatusCode::BAD_REQUEST,
        "Bad Request",
        None,
        "1 validation error:\n  Unsupported Media Type: Only 'application/json' is allowed".into(),
    ))
}

/// vLLM's character bound on a text prompt (checked before tokenizing).
fn check_chars(st: &AppState, chars: usize) -> Result<(), Reject> {
    let len = st.cfg.profile.max_model_len as usize;
    let bound = len * MAX_CHARS_PER_TOKEN;
    if chars <= bound {
        return Ok(());
    }
    Err(bad_request(
        Some("input_text"),
        format!(
            "This model's maximum context length is {len} tokens. However, your prompt contains {chars} characters (more than {bound} characters, which is the upper bound for {len} input tokens). Please reduce the length of the input prompt. (parameter=input_text, value={chars})"
        ),
    ))
}

const FINGERPRINT: &str = concat!("aibench-sim-", env!("CARGO_PKG_VERSION"));

fn ready(st: &AppState) -> bool {
    st.started.elapsed() >= st.cfg.startup_delay
}

/// vLLM's error body: `{"error": {"message", "type", "param", "code"}}`.
fn openai_error(status: StatusCode, kind: &str, param: Option<&str>, message: impl Into<String>) -> Response {
    let body = json!({"error": {"message": message.into(), "type": kind, "param": param, "code": status.as_u16()}});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Ollama's error body: `{"error": "..."}`.
fn ollama_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], json!({"error": message.into()}).to_string()).into_response()
}

fn starting() -> Response {
    openai_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableError", None, "The server is starting up")
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    if ready(&st) { StatusCode::OK.into_response() } else { StatusCode::SERVICE_UNAVAILABLE.into_response() }
}

async fn version() -> Response {
    axum::Json(json!({"version": FINGERPRINT})).into_response()
}

async fn models(State(st): State<Arc<AppState>>) -> Response {
    let m = &st.cfg.model;
    axum::Json(json!({"object": "list", "data": [{
        "id": m, "object": "model", "created": st.created, "owned_by": "vllm", "root": m, "parent": null,
        "max_model_len": st.cfg.profile.max_model_len,
        "permission": [{"id": format!("modelperm-{:016x}", st.created), "object": "model_permission", "created": st.created,
            "allow_create_engine": false, "allow_sampling": true, "allow_logprobs": true, "allow_search_indices": false,
            "allow_view": true, "allow_fine_tuning": false, "organization": "*", "group": null, "is_blocking": false}]
    }]}))
    .into_response()
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let mut r = st.metrics.render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}

async fn ollama_tags(State(st): State<Arc<AppState>>) -> Response {
    axum::Json(
        json!({"models": [{"name": st.cfg.model, "model": st.cfg.model, "size": 0, "details": {"family": "sim"}}]}),
    )
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenAiRequest {
    model: Option<String>,
    prompt: Option<Value>,
    messages: Option<Vec<Value>>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    min_tokens: Option<i64>,
    ignore_eos: Option<bool>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    n: Option<i64>,
    temperature: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OllamaRequest {
    model: Option<String>,
    prompt: Option<String>,
    messages: Option<Vec<Value>>,
    stream: Option<bool>,
    options: Option<OllamaOptions>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OllamaOptions {
    num_predict: Option<i64>,
}

/// Why a request was refused before it reached the engine.
struct Reject {
    status: StatusCode,
    kind: &'static str,
    param: Option<&'static str>,
    message: String,
}

fn reject(status: StatusCode, kind: &'static str, param: Option<&'static str>, message: String) -> Reject {
    Reject { status, kind, param, message }
}

fn bad_request(param: Option<&'static str>, message: String) -> Reject {
    reject(StatusCode::BAD_REQUEST, "BadRequestError", param, message)
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Reject> {
    serde_json::from_slice::<T>(body).map_err(|e| {
        let what = if e.is_data() { "invalid request field" } else { "JSON decode error" };
        reject(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            Some("body"),
            format!("1 validation error: {what} at line {} column {}: {e}", e.line(), e.column()),
        )
    })
}

fn check_model(st: &AppState, model: &Option<String>) -> Result<(), Reject> {
    match model {
        Some(m) if *m != st.cfg.model => Err(reject(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            Some("model"),
            format!("The model `{m}` does not exist. Valid aliases: {}", st.cfg.model),
        )),
        _ => Ok(()),
    }
}

/// Words in chat messages (`content` as a string or a list of text parts).
fn chat_tokens(messages: &[Value]) -> Result<u32, Reject> {
    let mut words = 0u32;
    for (i, m) in messages.iter().enumerate() {
        match m.get("content") {
            Some(Value::String(s)) => words += s.split_whitespace().count() as u32,
            Some(Value::Array(parts)) => {
                for p in parts {
                    if let Some(t) = p.get("text").and_then(Value::as_str) {
                        words += t.split_whitespace().count() as u32;
                    }
                }
            }
            Some(Value::Null) | None => {}
            Some(_) => {
                return Err(bad_request(
                    Some("messages"),
                    format!("messages[{i}].content: expected a string or a list of content parts"),
                ));
            }
        }
    }
    Ok(words.max(1))
}

fn prompt_tokens(prompt: &Option<Value>) -> Result<u32, Reject> {
    match prompt {
        Some(Value::String(s)) => Ok(text::count_tokens(s)),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_number) => Ok(items.len() as u32),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            Ok(text::count_tokens(items[0].as_str().unwrap_or_default()))
        }
        Some(Value::Array(items)) if items.len() > 1 => {
            Err(bad_request(Some("prompt"), "the simulator serves one prompt per request".into()))
        }
        None => Err(bad_request(Some("prompt"), "prompt: field required".into())),
        _ => Err(bad_request(Some("prompt"), "prompt: expected a string or a list of token ids".into())),
    }
}

/// A request accepted for generation.
struct Plan {
    number: u64,
    prompt_tokens: u32,
    max_tokens: u32,
    target: u32,
    reason: FinishReason,
    disconnect_after: Option<u32>,
    stall_after: Option<u32>,
}

/// Length checks, fault draws and the output length, as vLLM would decide them.
fn plan(
    st: &AppState,
    prompt: u32,
    max_tokens: Option<i64>,
    min_tokens: Option<i64>,
    ignore_eos: bool,
) -> Result<Plan, Reject> {
    let p = &st.cfg.profile;
    let len = p.max_model_len;
    if let Some(m) = max_tokens
        && m < 1
    {
        return Err(bad_request(Some("max_tokens"), format!("max_tokens must be at least 1, got {m}.")));
    }
    if let Some(m) = min_tokens
        && m < 0
    {
        return Err(bad_request(
            Some("min_tokens"),
            format!("min_tokens must be greater than or equal to 0, got {m}."),
        ));
    }
    if prompt >= len {
        return Err(bad_request(
            None,
            format!(
                "This model's maximum context length is {len} tokens. However, your request has {prompt} input tokens. Please reduce the length of the input messages."
            ),
        ));
    }
    let max = max_tokens.map(|m| m.min(u32::MAX as i64) as u32).unwrap_or(len - prompt);
    let total = prompt as u64 + max as u64;
    if total > len as u64 {
        return Err(bad_request(
            None,
            format!(
                "This model's maximum context length is {len} tokens. However, you requested {total} tokens ({prompt} in the messages, {max} in the completion). Please reduce the length of the messages or completion."
            ),
        ));
    }
    if total > p.kv_cache_tokens {
        return Err(bad_request(
            None,
            format!(
                "The request needs {total} KV-cache tokens ({prompt} prompt + {max} output), more than the cache holds ({}).",
                p.kv_cache_tokens
            ),
        ));
    }
    let min = min_tokens.unwrap_or(0);
    if min > max as i64 {
        return Err(bad_request(
            Some("min_tokens"),
            format!("min_tokens must be less than or equal to max_tokens={max}, got {min}."),
        ));
    }
    let min = min as u32;
    let number = st.requests.fetch_add(1, Ordering::Relaxed);
    let seed = st.cfg.seed;
    let f = &st.cfg.faults;
    if f.fail_rate > 0.0 && text::unit(seed, number, 1) < f.fail_rate {
        return Err(reject(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            None,
            "Simulated internal server error (--fail-rate)".into(),
        ));
    }
    let (target, reason) = if ignore_eos {
        (max, FinishReason::Length)
    } else {
        // Geometric output length with the profile's mean: a model that may stop.
        let u = text::unit(seed, number, 2);
        let natural = 1 + (-(1.0 - u).ln() * (p.eos_mean_tokens as f64 - 1.0).max(0.0)).floor() as u64;
        let natural = natural.clamp(min.max(1) as u64, max as u64) as u32;
        (natural, if natural < max { FinishReason::Stop } else { FinishReason::Length })
    };
    let mid = (target / 2).max(1);
    let disconnect_after = (f.disconnect_rate > 0.0 && text::unit(seed, number, 3) < f.disconnect_rate).then_some(mid);
    let stall_after = (f.stall_rate > 0.0 && text::unit(seed, number, 4) < f.stall_rate).then_some(mid);
    Ok(Plan { number, prompt_tokens: prompt, max_tokens: max, target, reason, disconnect_after, stall_after })
}

fn submit(st: &AppState, plan: &Plan) -> UnboundedReceiver<Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let ok = st.engine.submit(GenRequest {
        arrival: Instant::now(),
        prompt_tokens: plan.prompt_tokens,
        target_tokens: plan.target,
        reason: plan.reason,
        max_tokens: plan.max_tokens,
        events: tx.clone(),
    });
    if !ok {
        let _ = tx.send(Event::Aborted);
    }
    rx
}

/// The four response dialects the simulator streams.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Completions,
    Chat,
    OllamaGenerate,
    OllamaChat,
}

/// Formats one request's chunks; the fixed parts are built once.
struct Formatter {
    dialect: Dialect,
    /// The response id's number (after `cmpl-` / `chatcmpl-`).
    id: String,
    /// Unix seconds, for OpenAI's `created`.
    created: u64,
    head: String,
    /// The served model name, raw and JSON-encoded.
    model: String,
    model_json: Arc<str>,
    seed: u64,
    number: u64,
    prompt_tokens: u32,
    include_usage: bool,
    created_iso: String,
    started: Instant,
    first_at: Option<Instant>,
}

impl Formatter {
    fn new(st: &AppState, dialect: Dialect, plan: &Plan, include_usage: bool) -> Formatter {
        let model = &st.model_json;
        let created = crate::clock::now() as u64;
        let id = format!("{:016x}", plan.number.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ st.created);
        let head = match dialect {
            Dialect::Completions => {
                format!(
                    r#"{{"id":"cmpl-{id}","object":"text_completion","created":{created},"model":{model},"choices":["#
                )
            }
            Dialect::Chat => {
                format!(
                    r#"{{"id":"chatcmpl-{id}","object":"chat.completion.chunk","created":{created},"model":{model},"choices":["#
                )
            }
            _ => String::new(),
        };
        Formatter {
            dialect,
            id,
            created,
            head,
            model: st.cfg.model.clone(),
            model_json: st.model_json.clone(),
            seed: st.cfg.seed,
            number: plan.number,
            prompt_tokens: plan.prompt_tokens,
            include_usage,
            created_iso: crate::clock::now_iso(),
            started: Instant::now(),
            first_at: None,
        }
    }

    fn word(&self, i: u32) -> &'static str {
        text::word(self.seed, self.number, i)
    }

    /// The chat stream's first chunk: the role, before any token.
    fn role_chunk(&self, out: &mut String) {
        if self.dialect == Dialect::Chat {
            out.push_str("data: ");
            out.push_str(&self.head);
            out.push_str(r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}"#);
            out.push_str("\n\n");
        }
    }

    fn token(&mut self, out: &mut String, i: u32, finish: Option<FinishReason>) {
        if self.first_at.is_none() {
            self.first_at = Some(Instant::now());
        }
        let w = self.word(i);
        let fr = match finish {
            None => "null",
            Some(FinishReason::Stop) => "\"stop\"",
            Some(FinishReason::Length) => "\"length\"",
            Some(FinishReason::Abort) => "\"abort\"",
        };
        match self.dialect {
            Dialect::Completions => {
                out.push_str("data: ");
                out.push_str(&self.head);
                out.push_str(r#"{"index":0,"text":" "#);
                out.push_str(w);
                out.push_str(r#"","logprobs":null,"finish_reason":"#);
                out.push_str(fr);
                out.push_str(r#","stop_reason":null,"prompt_token_ids":null,"token_ids":null}]}"#);
                out.push_str("\n\n");
            }
            Dialect::Chat => {
                out.push_str("data: ");
                out.push_str(&self.head);
                out.push_str(r#"{"index":0,"delta":{"content":" "#);
                out.push_str(w);
                out.push_str(r#""},"logprobs":null,"finish_reason":"#);
                out.push_str(fr);
                if finish.is_some() {
                    out.push_str(r#","stop_reason":null"#);
                }
                out.push_str(r#","token_ids":null}]}"#);
                out.push_str("\n\n");
            }
            Dialect::OllamaGenerate => {
                out.push_str(r#"{"model":"#);
                out.push_str(&self.model_json);
                out.push_str(r#","created_at":""#);
                out.push_str(&self.created_iso);
                out.push_str(r#"","response":" "#);
                out.push_str(w);
                out.push_str("\",\"done\":false}\n");
            }
            Dialect::OllamaChat => {
                out.push_str(r#"{"model":"#);
                out.push_str(&self.model_json);
                out.push_str(r#","created_at":""#);
                out.push_str(&self.created_iso);
                out.push_str(r#"","message":{"role":"assistant","content":" "#);
                out.push_str(w);
                out.push_str("\"},\"done\":false}\n");
            }
        }
    }

    fn ollama_stats(&self, completion: u32) -> Value {
        let now = Instant::now();
        let first = self.first_at.unwrap_or(now);
        json!({
            "total_duration": now.duration_since(self.started).as_nanos() as u64,
            "load_duration": 0,
            "prompt_eval_count": self.prompt_tokens,
            "prompt_eval_duration": first.duration_since(self.started).as_nanos() as u64,
            "eval_count": completion,
            "eval_duration": now.duration_since(first).as_nanos() as u64,
        })
    }

    /// Ollama's last object: the finish, the whole output (empty when it was
    /// streamed) and the timings.
    fn ollama_final(&self, content: &str, completion: u32, reason: FinishReason) -> Value {
        let mut v =
            json!({"model": self.model, "created_at": self.created_iso, "done": true, "done_reason": reason.as_str()});
        if self.dialect == Dialect::OllamaGenerate {
            v["response"] = json!(content);
            v["context"] = json!([]);
        } else {
            v["message"] = json!({"role": "assistant", "content": content});
        }
        if let (Value::Object(a), Value::Object(b)) = (&mut v, self.ollama_stats(completion)) {
            a.extend(b);
        }
        v
    }

    /// After the last token: usage (when asked) and `[DONE]`, or Ollama's final line.
    fn tail(&self, out: &mut String, completion: u32, reason: FinishReason) {
        match self.dialect {
            Dialect::Completions | Dialect::Chat => {
                if reason == FinishReason::Abort {
                    out.push_str("data: ");
                    out.push_str(&self.head);
                    out.push_str(
                        r#"{"index":0,"text":"","logprobs":null,"finish_reason":"abort","stop_reason":null}]}"#,
                    );
                    out.push_str("\n\n");
                }
                if self.include_usage {
                    out.push_str("data: ");
                    out.push_str(&self.head);
                    out.push_str(&format!(
                        r#"],"usage":{{"prompt_tokens":{p},"total_tokens":{t},"completion_tokens":{c}}},"system_fingerprint":"{FINGERPRINT}"}}"#,
                        p = self.prompt_tokens,
                        t = self.prompt_tokens + completion,
                        c = completion
                    ));
                    out.push_str("\n\n");
                }
                out.push_str("data: [DONE]\n\n");
            }
            Dialect::OllamaGenerate | Dialect::OllamaChat => {
                out.push_str(&self.ollama_final("", completion, reason).to_string());
                out.push('\n');
            }
        }
    }
}

struct StreamState {
    rx: UnboundedReceiver<Event>,
    fmt: Formatter,
    sent: u32,
    done: bool,
    buf: Vec<Event>,
    pos: usize,
    disconnect_after: Option<u32>,
    stall_after: Option<u32>,
    stall: Duration,
    pending_error: bool,
    pending_stall: bool,
    prelude: Option<String>,
}

impl StreamState {
    fn new(st: &AppState, rx: UnboundedReceiver<Event>, fmt: Formatter, plan: &Plan) -> StreamState {
        StreamState {
            rx,
            fmt,
            sent: 0,
            done: false,
            buf: Vec::with_capacity(64),
            pos: 0,
            disconnect_after: plan.disconnect_after,
            stall_after: plan.stall_after,
            stall: st.cfg.faults.stall,
            pending_error: false,
            pending_stall: false,
            prelude: None,
        }
    }

    /// Appends what is ready (at least one event) to `out`.
    async fn next_chunk(&mut self, out: &mut String) {
        if self.pending_stall {
            self.pending_stall = false;
            tokio::time::sleep(self.stall).await;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.rx.recv_many(&mut self.buf, 512).await == 0 {
                // Engine gone: end the stream cleanly.
                self.fmt.tail(out, self.sent, FinishReason::Abort);
                self.done = true;
                return;
            }
        }
        while self.pos < self.buf.len() {
            let ev = self.buf[self.pos];
            self.pos += 1;
            match ev {
                Event::Token(fin) => {
                    self.fmt.token(out, self.sent, fin);
                    self.sent += 1;
                    if let Some(r) = fin {
                        self.fmt.tail(out, self.sent, r);
                        self.done = true;
                        return;
                    }
                    if self.disconnect_after == Some(self.sent) {
                        self.pending_error = true;
                        return;
                    }
                    if self.stall_after == Some(self.sent) {
                        self.pending_stall = true;
                        return;
                    }
                }
                Event::Aborted => {
                    self.fmt.tail(out, self.sent, FinishReason::Abort);
                    self.done = true;
                    return;
                }
            }
        }
    }
}

fn disconnect_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "simulated disconnect (--disconnect-rate)")
}

/// Streams engine events as body chunks, coalescing what is ready into one write.
fn body_stream(s: StreamState) -> Body {
    let stream = futures_util::stream::unfold(Some(s), |state| async move {
        let mut s = state?;
        if let Some(p) = s.prelude.take() {
            return Some((Ok(Bytes::from(p)), Some(s)));
        }
        if s.pending_error {
            // Let the bytes already yielded reach the socket, then drop it.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Some((Err(disconnect_error()), None));
        }
        if s.done {
            return None;
        }
        let mut out = String::with_capacity(512);
        s.next_chunk(&mut out).await;
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(out)), Some(s)))
    });
    Body::from_stream(stream)
}

fn streaming(content_type: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Waits for the whole output (non-streaming requests). `None` = disconnect fault.
async fn collect(s: &mut StreamState) -> Option<(u32, FinishReason, String)> {
    let mut text = String::new();
    loop {
        if s.pending_stall {
            s.pending_stall = false;
            tokio::time::sleep(s.stall).await;
        }
        let ev = s.rx.recv().await.unwrap_or(Event::Aborted);
        match ev {
            Event::Token(fin) => {
                text.push(' ');
                text.push_str(s.fmt.word(s.sent));
                if s.fmt.first_at.is_none() {
                    s.fmt.first_at = Some(Instant::now());
                }
                s.sent += 1;
                if let Some(r) = fin {
                    return Some((s.sent, r, text));
                }
                if s.disconnect_after == Some(s.sent) {
                    return None;
                }
                if s.stall_after == Some(s.sent) {
                    s.pending_stall = true;
                }
            }
            Event::Aborted => return Some((s.sent, FinishReason::Abort, text)),
        }
    }
}

fn broken_body() -> Response {
    let stream = futures_util::stream::once(async { Err::<Bytes, std::io::Error>(disconnect_error()) });
    streaming("application/json", Body::from_stream(stream))
}

fn usage(prompt: u32, completion: u32) -> Value {
    json!({"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion,
        "prompt_tokens_details": null, "completion_tokens_details": null})
}

async fn completions(State(st): State<Arc<AppState>>, headers: axum::http::HeaderMap, body: Body) -> Response {
    openai(st, &headers, body, Dialect::Completions).await
}

async fn chat_completions(State(st): State<Arc<AppState>>, headers: axum::http::HeaderMap, body: Body) -> Response {
    openai(st, &headers, body, Dialect::Chat).await
}

async fn openai(st: Arc<AppState>, headers: &axum::http::HeaderMap, body: Body, dialect: Dialect) -> Response {
    if !ready(&st) {
        return starting();
    }
    let body = match json_content(headers) {
        Ok(()) => read_body(headers, body).await,
        Err(r) => Err(r),
    };
    let prepared = (|| {
        let body = body?;
        let req: OpenAiRequest = parse_json(&body)?;
        check_model(&st, &req.model)?;
        if let Some(n) = req.n
            && n != 1
        {
            return Err(bad_request(Some("n"), format!("n must be 1 on the simulator, got {n}.")));
        }
        if let Some(t) = req.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(bad_request(Some("temperature"), format!("temperature must be in [0, 2], got {t}.")));
        }
        let prompt = match dialect {
            Dialect::Chat => match &req.messages {
                Some(m) if !m.is_empty() => chat_tokens(m)?,
                Some(_) => {
                    return Err(bad_request(
                        None,
                        "Cannot apply chat template to an empty conversation. Provide at least one message.".into(),
                    ));
                }
                None => {
                    return Err(bad_request(Some("messages"), "messages: field required (a non-empty list)".into()));
                }
            },
            _ => {
                if let Some(Value::String(p)) = &req.prompt {
                    check_chars(&st, p.chars().count())?;
                }
                prompt_tokens(&req.prompt)?
            }
        };
        let max = req.max_completion_tokens.or(req.max_tokens);
        let p = plan(&st, prompt, max, req.min_tokens, req.ignore_eos.unwrap_or(false))?;
        let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
        Ok((p, req.stream.unwrap_or(false), include_usage))
    })();
    let (plan, stream, include_usage) = match prepared {
        Ok(x) => x,
        Err(r) => return openai_error(r.status, r.kind, r.param, r.message),
    };
    let rx = submit(&st, &plan);
    let fmt = Formatter::new(&st, dialect, &plan, include_usage);
    let mut s = StreamState::new(&st, rx, fmt, &plan);
    if stream {
        let mut prelude = String::new();
        s.fmt.role_chunk(&mut prelude);
        if !prelude.is_empty() {
            s.prelude = Some(prelude);
        }
        return streaming("text/event-stream; charset=utf-8", body_stream(s));
    }
    let Some((completion, reason, text)) = collect(&mut s).await else {
        return broken_body();
    };
    let (id_num, created) = (&s.fmt.id, s.fmt.created);
    let v = match dialect {
        Dialect::Chat => json!({
            "id": format!("chatcmpl-{id_num}"), "object": "chat.completion", "created": created, "model": st.cfg.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null, "annotations": null,
                "audio": null, "function_call": null, "tool_calls": [], "reasoning_content": null},
                "logprobs": null, "finish_reason": reason.as_str(), "stop_reason": null, "token_ids": null}],
            "service_tier": null, "system_fingerprint": FINGERPRINT, "usage": usage(plan.prompt_tokens, completion),
            "prompt_logprobs": null, "prompt_token_ids": null, "kv_transfer_params": null
        }),
        _ => json!({
            "id": format!("cmpl-{id_num}"), "object": "text_completion", "created": created, "model": st.cfg.model,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": reason.as_str(), "stop_reason": null,
                "token_ids": null, "prompt_logprobs": null, "prompt_token_ids": null, "routed_experts": null}],
            "service_tier": null, "system_fingerprint": FINGERPRINT, "usage": usage(plan.prompt_tokens, completion),
            "kv_transfer_params": null, "ec_transfer_params": null, "metrics": null
        }),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

async fn ollama_generate(State(st): State<Arc<AppState>>, headers: axum::http::HeaderMap, body: Body) -> Response {
    ollama(st, &headers, body, Dialect::OllamaGenerate).await
}

async fn ollama_chat(State(st): State<Arc<AppState>>, headers: axum::http::HeaderMap, body: Body) -> Response {
    ollama(st, &headers, body, Dialect::OllamaChat).await
}

async fn ollama(st: Arc<AppState>, headers: &axum::http::HeaderMap, body: Body, dialect: Dialect) -> Response {
    if !ready(&st) {
        return ollama_error(StatusCode::SERVICE_UNAVAILABLE, "server is starting up");
    }
    let body = read_body(headers, body).await;
    let prepared = (|| {
        let body = body?;
        let req: OllamaRequest = parse_json(&body)?;
        if let Some(m) = &req.model
            && *m != st.cfg.model
        {
            return Err(reject(
                StatusCode::NOT_FOUND,
                "",
                None,
                format!("model \"{m}\" not found, try pulling it first"),
            ));
        }
        let prompt = match dialect {
            Dialect::OllamaChat => chat_tokens(req.messages.as_deref().unwrap_or(&[]))?,
            _ => text::count_tokens(req.prompt.as_deref().unwrap_or("")),
        };
        // num_predict < 0 means "until the model stops" in Ollama.
        let max = req.options.as_ref().and_then(|o| o.num_predict).filter(|n| *n >= 0);
        if max == Some(0) {
            return Err(reject(StatusCode::BAD_REQUEST, "", None, "num_predict must be positive".into()));
        }
        let p = plan(&st, prompt, max, None, false)?;
        Ok((p, req.stream.unwrap_or(true)))
    })();
    let (plan, stream) = match prepared {
        Ok(x) => x,
        Err(r) => return ollama_error(r.status, r.message),
    };
    let rx = submit(&st, &plan);
    let fmt = Formatter::new(&st, dialect, &plan, false);
    let mut s = StreamState::new(&st, rx, fmt, &plan);
    if stream {
        return streaming("application/x-ndjson", body_stream(s));
    }
    let Some((completion, reason, text)) = collect(&mut s).await else {
        return broken_body();
    };
    let v = s.fmt.ollama_final(&text, completion, reason);
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}
