//! The simulator's HTTP side, answered as vLLM's OpenAI-compatible server
//! (and Ollama) answer: the same paths, bodies, chunk shapes and error
//! shapes. Routes and handlers are here; [`admission`] decides what a
//! request may ask (vLLM's checks, fault draws), [`wire`] writes each
//! dialect's chunks.

mod admission;
mod wire;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

pub use self::admission::BodyBudget;
use self::admission::{
    OllamaRequest, OpenAiRequest, Plan, Prompt, bad_request, chat_tokens, check_model, detail, json_content,
    missing_prompt, parse_json, parse_turn, plan, prompt_tokens, read_body, reject,
};
use self::wire::{Dialect, Formatter, StreamState, body_stream, broken_body, collect, streaming, usage};
use super::SimConfig;
use super::engine::EngineHandle;
use super::metrics::Metrics;
use super::request::{Event, GenRequest};

pub struct AppState {
    pub cfg: SimConfig,
    /// `cfg.model` as a JSON string, for the chunks written by hand.
    pub model_json: Arc<str>,
    pub engine: EngineHandle,
    pub metrics: Arc<Metrics>,
    pub started: Instant,
    pub created: u64,
    pub requests: AtomicU64,
    /// Request bodies held, all connections together, against `cfg.body_budget`.
    pub bodies: Arc<BodyBudget>,
    /// Large bodies are parsed one at a time (see `admission::parse_turn`).
    pub parsing: tokio::sync::Semaphore,
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
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/api/generate", post(ollama_generate))
        .route("/api/chat", post(ollama_chat))
        .route("/api/tags", get(ollama_tags))
        .route("/api/version", get(version))
        // FastAPI's answers for an unknown path and a wrong method.
        .fallback(|| async { detail(StatusCode::NOT_FOUND, "Not Found") })
        .method_not_allowed_fallback(|| async { detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed") })
        .with_state(state)
}

pub(super) const FINGERPRINT: &str = concat!("aibench-sim-", env!("CARGO_PKG_VERSION"));

fn ready(st: &AppState) -> bool {
    st.started.elapsed() >= st.cfg.startup_delay
}

/// vLLM's error body: `{"error": {"message", "type", "param", "code"}}`.
pub(super) fn openai_error(
    status: StatusCode,
    kind: &str,
    param: Option<&str>,
    message: impl Into<String>,
) -> Response {
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

fn submit(st: &AppState, plan: &Plan) -> UnboundedReceiver<Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    // The whole sequence the engine will hold: the prompt, then the output
    // it is going to generate (prefix caching hashes both).
    let mut tokens = Vec::new();
    if st.cfg.profile.enable_prefix_caching {
        tokens.reserve(plan.prompt_ids.len() + plan.target as usize);
        tokens.extend_from_slice(&plan.prompt_ids);
        tokens.extend((0..plan.target).map(|i| st.cfg.tokenizer.piece(st.cfg.seed, plan.number, i).1));
    }
    let ok = st.engine.submit(GenRequest {
        arrival: Instant::now(),
        tokens,
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
        Ok(()) => read_body(&st, headers, body).await,
        Err(r) => Err(r),
    };
    let turn = match &body {
        Ok(b) => parse_turn(&st, b).await,
        Err(_) => None,
    };
    let prepared = (|| {
        let body = body?;
        let req: OpenAiRequest = parse_json(&body)?;
        let no_prompt = match &req.prompt {
            None => true,
            Some(Prompt::Text(s)) => s.is_empty(),
            Some(_) => false,
        };
        if dialect == Dialect::Completions && no_prompt {
            return Err(missing_prompt(&body));
        }
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
        let (prompt, out_of_vocab) = match dialect {
            Dialect::Chat => match &req.messages {
                Some(m) if !m.is_empty() => (chat_tokens(&st, m)?, None),
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
            _ => prompt_tokens(&st, req.prompt)?,
        };
        let max = req.max_completion_tokens.or(req.max_tokens);
        let p = plan(&st, prompt, max, req.min_tokens, req.ignore_eos.unwrap_or(false), out_of_vocab)?;
        let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
        Ok((p, req.stream.unwrap_or(false), include_usage))
    })();
    drop(turn);
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

/// A JSON-in, JSON-out endpoint of vLLM's: the media type, body limit,
/// JSON and model checks, then `answer`; errors in vLLM's shape.
async fn json_endpoint(
    st: &AppState,
    headers: &axum::http::HeaderMap,
    body: Body,
    answer: impl FnOnce(&AppState, Value) -> Result<Value, admission::Reject>,
) -> Response {
    let result = async {
        json_content(headers)?;
        let body = read_body(st, headers, body).await?;
        let turn = parse_turn(st, &body).await;
        let req: Value = parse_json(&body)?;
        let model = req.get("model").and_then(Value::as_str).map(str::to_string);
        check_model(st, &model)?;
        let out = answer(st, req);
        drop(turn);
        out
    };
    match result.await {
        Ok(v) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response(),
        Err(r) => openai_error(r.status, r.kind, r.param, r.message),
    }
}

/// vLLM's `POST /tokenize`: a prompt, or chat messages with the model's
/// template; the count is what a request with it is charged.
async fn tokenize(State(st): State<Arc<AppState>>, headers: axum::http::HeaderMap, body: Body) -> Response {
    json_endpoint(&st, &headers, body, |st, req| {
        let tok = &st.cfg.tokenizer;
        let ids = if let Some(p) = req.get("prompt").and_then(Value::as_str) {
            let special = req.get("add_special_tokens").and_then(Value::as_bool).unwrap_or(true);
            tok.ids(p, special)
        } else if let Some(m) = req.get("messages").and_then(Value::as_array) {
            let msgs = crate::sim::tokens::message_texts(m).map_err(|e| bad_request(Some("messages"), e))?;
            tok.chat_ids(&msgs).map_err(|e| bad_request(Some("messages"), e))?
        } else {
            let n = req.as_object().map(|o| o.len()).unwrap_or(0);
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                Some("body.prompt"),
                format!(
                    "2 validation errors:\n  {{'type': 'missing', 'loc': 'body.prompt', 'msg': 'Field required', 'input': '<dict of {n} items>'}}\n  {{'type': 'missing', 'loc': 'body.messages', 'msg': 'Field required', 'input': '<dict of {n} items>'}}"
                ),
            ));
        };
        Ok(json!({"count": ids.len(), "max_model_len": st.cfg.profile.max_model_len, "tokens": ids, "token_strs": null}))
    })
    .await
}

/// vLLM's `POST /detokenize`: the text of token ids.
async fn detokenize(State(st): State<Arc<AppState>>, headers: axum::http::HeaderMap, body: Body) -> Response {
    json_endpoint(&st, &headers, body, |st, req| {
        let ids: Vec<u32> = req
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_request(Some("body.tokens"), "tokens: field required (a list of token ids)".into()))?
            .iter()
            .map(|v| v.as_u64().map(|n| n.min(u32::MAX as u64) as u32))
            .collect::<Option<_>>()
            .ok_or_else(|| bad_request(Some("body.tokens"), "tokens: expected a list of token ids".into()))?;
        Ok(json!({"prompt": st.cfg.tokenizer.detokenize(&ids)}))
    })
    .await
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
    let body = read_body(&st, headers, body).await;
    let turn = match &body {
        Ok(b) => parse_turn(&st, b).await,
        Err(_) => None,
    };
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
            Dialect::OllamaChat => chat_tokens(&st, req.messages.as_deref().unwrap_or(&[]))?,
            _ => {
                let ids = st.cfg.tokenizer.ids(req.prompt.as_deref().unwrap_or(""), true);
                if ids.is_empty() { vec![0] } else { ids }
            }
        };
        // num_predict < 0 means "until the model stops" in Ollama.
        let max = req.options.as_ref().and_then(|o| o.num_predict).filter(|n| *n >= 0);
        if max == Some(0) {
            return Err(reject(StatusCode::BAD_REQUEST, "", None, "num_predict must be positive".into()));
        }
        let p = plan(&st, prompt, max, None, false, None)?;
        Ok((p, req.stream.unwrap_or(true)))
    })();
    drop(turn);
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
