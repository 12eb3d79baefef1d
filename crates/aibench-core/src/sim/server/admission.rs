//! What a request may ask, decided as vLLM decides it: media type, body
//! size, the model, prompt and output lengths against the context, and the
//! seeded fault draws (HTTP 500, disconnects, stalls).

use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::sim::request::FinishReason;
use crate::sim::text;
use crate::sim::tokens::message_texts;

/// Request bodies above this are refused (vLLM has no limit; a 12 MB prompt
/// still gets its answer, the length check's, below).
pub(super) const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// vLLM checks a text prompt's length in characters before tokenizing it:
/// more than this many characters per token of the context cannot fit.
pub(super) const MAX_CHARS_PER_TOKEN: usize = 64;

pub(super) fn detail(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], json!({"detail": text}).to_string()).into_response()
}

/// Reads a request body of at most [`BODY_LIMIT`] bytes. A larger declared
/// length is refused before any of the body is read (so a client waiting
/// for `100 Continue` gets the final answer instead).
pub(super) async fn read_body(headers: &axum::http::HeaderMap, body: Body) -> Result<Bytes, Reject> {
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
pub(super) fn json_content(headers: &axum::http::HeaderMap) -> Result<(), Reject> {
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
pub(super) fn check_chars(st: &AppState, chars: usize) -> Result<(), Reject> {
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

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct OpenAiRequest {
    pub(super) model: Option<String>,
    pub(super) prompt: Option<Value>,
    pub(super) messages: Option<Vec<Value>>,
    pub(super) max_tokens: Option<i64>,
    pub(super) max_completion_tokens: Option<i64>,
    pub(super) min_tokens: Option<i64>,
    pub(super) ignore_eos: Option<bool>,
    pub(super) stream: Option<bool>,
    pub(super) stream_options: Option<StreamOptions>,
    pub(super) n: Option<i64>,
    pub(super) temperature: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct StreamOptions {
    pub(super) include_usage: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct OllamaRequest {
    pub(super) model: Option<String>,
    pub(super) prompt: Option<String>,
    pub(super) messages: Option<Vec<Value>>,
    pub(super) stream: Option<bool>,
    pub(super) options: Option<OllamaOptions>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct OllamaOptions {
    pub(super) num_predict: Option<i64>,
}

/// Why a request was refused before it reached the engine.
pub(super) struct Reject {
    pub(super) status: StatusCode,
    pub(super) kind: &'static str,
    pub(super) param: Option<&'static str>,
    pub(super) message: String,
}

pub(super) fn reject(status: StatusCode, kind: &'static str, param: Option<&'static str>, message: String) -> Reject {
    Reject { status, kind, param, message }
}

pub(super) fn bad_request(param: Option<&'static str>, message: String) -> Reject {
    reject(StatusCode::BAD_REQUEST, "BadRequestError", param, message)
}

pub(super) fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Reject> {
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

pub(super) fn check_model(st: &AppState, model: &Option<String>) -> Result<(), Reject> {
    match model {
        Some(m) if *m != st.cfg.model => Err(reject(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            Some("model"),
            format!("The model `{m}` does not exist. Valid aliases: {}.", st.cfg.model),
        )),
        _ => Ok(()),
    }
}

/// At least one token: an empty prompt still costs the engine a step.
fn nonempty(mut ids: Vec<u32>) -> Vec<u32> {
    if ids.is_empty() {
        ids.push(0);
    }
    ids
}

/// Token ids of chat messages, as the model's template and tokenizer make
/// them (words of the contents without a tokenizer).
pub(super) fn chat_tokens(st: &AppState, messages: &[Value]) -> Result<Vec<u32>, Reject> {
    let msgs = message_texts(messages).map_err(|e| bad_request(Some("messages"), e))?;
    let chars: usize = msgs.iter().map(|m| m.content.chars().count()).sum();
    check_chars(st, chars)?;
    st.cfg.tokenizer.chat_ids(&msgs).map(nonempty).map_err(|e| bad_request(Some("messages"), e))
}

/// Token ids of a completions prompt: text (as the server encodes it, BOS
/// included), or the ids given.
pub(super) fn prompt_tokens(st: &AppState, prompt: &Option<Value>) -> Result<Vec<u32>, Reject> {
    let text = |s: &str| -> Result<Vec<u32>, Reject> {
        check_chars(st, s.chars().count())?;
        Ok(nonempty(st.cfg.tokenizer.ids(s, true)))
    };
    match prompt {
        Some(Value::String(s)) => text(s),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_number) => {
            Ok(items.iter().map(|v| v.as_u64().unwrap_or(0).min(u32::MAX as u64) as u32).collect())
        }
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            text(items[0].as_str().unwrap_or_default())
        }
        Some(Value::Array(items)) if items.len() > 1 => {
            Err(bad_request(Some("prompt"), "the simulator serves one prompt per request".into()))
        }
        None => Err(bad_request(Some("prompt"), "prompt: field required".into())),
        _ => Err(bad_request(Some("prompt"), "prompt: expected a string or a list of token ids".into())),
    }
}

/// A request accepted for generation.
pub(super) struct Plan {
    pub(super) number: u64,
    pub(super) prompt_tokens: u32,
    /// The prompt's token ids (prefix caching hashes them).
    pub(super) prompt_ids: Vec<u32>,
    pub(super) max_tokens: u32,
    pub(super) target: u32,
    pub(super) reason: FinishReason,
    pub(super) disconnect_after: Option<u32>,
    pub(super) stall_after: Option<u32>,
}

/// Length checks, fault draws and the output length, as vLLM would decide them.
pub(super) fn plan(
    st: &AppState,
    prompt_ids: Vec<u32>,
    max_tokens: Option<i64>,
    min_tokens: Option<i64>,
    ignore_eos: bool,
) -> Result<Plan, Reject> {
    let p = &st.cfg.profile;
    let prompt = prompt_ids.len().min(u32::MAX as usize) as u32;
    let len = p.max_model_len;
    if let Some(m) = max_tokens
        && m < 1
    {
        return Err(bad_request(
            Some("max_tokens"),
            format!("max_tokens must be at least 1, got {m}. (parameter=max_tokens, value={m})"),
        ));
    }
    if let Some(m) = min_tokens
        && m < 0
    {
        return Err(bad_request(
            Some("min_tokens"),
            format!("min_tokens must be greater than or equal to 0, got {m}."),
        ));
    }
    if let Some(m) = max_tokens
        && m > len as i64
    {
        return Err(bad_request(
            Some("max_tokens"),
            format!(
                "max_tokens={m} cannot be greater than max_model_len={len}. Please request fewer output tokens. (parameter=max_tokens, value={m})"
            ),
        ));
    }
    if prompt > len {
        // vLLM counts only up to one token past the limit.
        let shown = len + 1;
        return Err(bad_request(
            Some("input_tokens"),
            format!(
                "This model's maximum context length is {len} tokens. However, your prompt contains at least {shown} input tokens, which exceeds this limit even without any output tokens. Please reduce the length of the input prompt. (parameter=input_tokens, value={shown})"
            ),
        ));
    }
    let max = max_tokens.map(|m| m.min(u32::MAX as i64) as u32).unwrap_or(len.saturating_sub(prompt).max(1));
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
    Ok(Plan {
        number,
        prompt_tokens: prompt,
        prompt_ids,
        max_tokens: max,
        target,
        reason,
        disconnect_after,
        stall_after,
    })
}
