//! What a request may ask, decided as vLLM decides it: media type, body
//! size, the model, prompt and output lengths against the context, and the
//! seeded fault draws (HTTP 500, disconnects, stalls).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::IgnoredAny;
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

/// Bodies from this size on are parsed one at a time ([`parse_turn`]), and
/// freeing one hands the allocator's free memory back to the system.
pub(super) const LARGE_BODY: usize = 1 << 20;

/// The bytes of request bodies the simulator holds (being received, or read
/// and not yet parsed), all connections together, against one limit
/// (`SimConfig::body_budget`): a body that would go over it is refused at
/// once with a 503 instead of being buffered. Without it, 20 connections
/// each sending 60 MB took the simulator to 1.2 GB.
pub struct BodyBudget {
    limit: usize,
    used: AtomicUsize,
}

impl BodyBudget {
    pub fn new(limit: usize) -> BodyBudget {
        BodyBudget { limit, used: AtomicUsize::new(0) }
    }

    /// Takes `n` bytes, or nothing when they would go over the limit.
    fn take(&self, n: usize) -> bool {
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            let Some(total) = used.checked_add(n).filter(|t| *t <= self.limit) else {
                return false;
            };
            match self.used.compare_exchange_weak(used, total, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// A request body, its bytes taken from the [`BodyBudget`]; dropping it
/// gives them back (and a large one's memory back to the system).
pub(super) struct BodyBuf {
    bytes: Vec<u8>,
    charged: usize,
    budget: Arc<BodyBudget>,
}

impl BodyBuf {
    /// Grows what this body holds of the budget to `total` bytes; false
    /// when the budget has not that much left.
    fn charge_to(&mut self, total: usize) -> bool {
        if total <= self.charged {
            return true;
        }
        if !self.budget.take(total - self.charged) {
            return false;
        }
        self.charged = total;
        true
    }
}

impl std::ops::Deref for BodyBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for BodyBuf {
    fn drop(&mut self) {
        let large = self.bytes.capacity() >= LARGE_BODY;
        self.bytes = Vec::new();
        self.budget.give_back(self.charged);
        if large {
            release_free_memory();
        }
    }
}

/// Hands the allocator's free memory back to the system: glibc keeps freed
/// heap pages otherwise (after 20 large bodies the simulator kept 650 MB).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Reads a request body of at most [`BODY_LIMIT`] bytes within the
/// simulator's [`BodyBudget`]. A larger declared length is refused before
/// any of the body is read (so a client waiting for `100 Continue` gets the
/// final answer instead); so is a declared length the budget cannot hold
/// (503), and a chunked body the moment it outgrows the budget.
pub(super) async fn read_body(st: &AppState, headers: &axum::http::HeaderMap, body: Body) -> Result<BodyBuf, Reject> {
    let too_large = || {
        reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BadRequestError",
            None,
            format!("The request body is larger than the simulator accepts ({BODY_LIMIT} bytes)."),
        )
    };
    let over_budget = |n: usize| {
        reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            None,
            format!(
                "The simulator is holding {} bytes of request bodies; this one ({n} bytes) would take them over its budget of {} bytes (--body-budget-mib). Try again later.",
                st.bodies.used.load(Ordering::Relaxed),
                st.bodies.limit
            ),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let mut buf = BodyBuf { bytes: Vec::new(), charged: 0, budget: st.bodies.clone() };
    if let Some(n) = declared {
        let n = n as usize;
        if !buf.charge_to(n) {
            return Err(over_budget(n));
        }
        buf.bytes.reserve_exact(n);
    }
    let mut data = body.into_data_stream();
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(|e| {
            reject(StatusCode::BAD_REQUEST, "Bad Request", None, format!("The request body could not be read: {e}"))
        })?;
        let total = buf.bytes.len() + chunk.len();
        if total > BODY_LIMIT {
            return Err(too_large());
        }
        if !buf.charge_to(total) {
            return Err(over_budget(total));
        }
        buf.bytes.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Large bodies are parsed one at a time: the parse (a copy of the prompt)
/// is the only memory of a body outside the [`BodyBudget`]. Hold the permit
/// until the parsed request is dropped.
pub(super) async fn parse_turn<'a>(st: &'a AppState, body: &BodyBuf) -> Option<tokio::sync::SemaphorePermit<'a>> {
    if body.len() < LARGE_BODY {
        return None;
    }
    st.parsing.acquire().await.ok()
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
    pub(super) prompt: Option<Prompt>,
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

/// A completions `prompt` as vLLM takes it, read straight from the JSON: a
/// list of ids becomes `u32`s, not a tree of `Value`s (a 64 MiB list of ids
/// would be gigabytes of them).
pub(super) enum Prompt {
    Text(String),
    /// Token ids, with the smallest and the largest given (vLLM checks the
    /// largest against the vocabulary); an id outside `u32` is kept as 0.
    Ids {
        ids: Vec<u32>,
        lo: i128,
        hi: i128,
    },
    /// A list of texts: how many, and the first.
    Texts {
        count: usize,
        first: String,
    },
    /// An empty list.
    Empty,
    /// Anything else: a number, an object, a nested or mixed list.
    Other,
}

impl<'de> Deserialize<'de> for Prompt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Prompt, D::Error> {
        d.deserialize_any(PromptVisitor)
    }
}

struct PromptVisitor;

impl<'de> serde::de::Visitor<'de> for PromptVisitor {
    type Value = Prompt;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string or a list of token ids")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Prompt, E> {
        Ok(Prompt::Text(s.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Prompt, E> {
        Ok(Prompt::Text(s))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Prompt, E> {
        Ok(Prompt::Other)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Prompt, E> {
        Ok(Prompt::Other)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Prompt, E> {
        Ok(Prompt::Other)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Prompt, E> {
        Ok(Prompt::Other)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Prompt, E> {
        Ok(Prompt::Other)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Prompt, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Prompt::Other)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Prompt, A::Error> {
        let mut out = Prompt::Empty;
        while let Some(item) = seq.next_element::<Item>()? {
            out = match (out, item) {
                (Prompt::Empty, Item::Id(i)) => Prompt::Ids { ids: vec![id_u32(i)], lo: i, hi: i },
                (Prompt::Ids { mut ids, lo, hi }, Item::Id(i)) => {
                    ids.push(id_u32(i));
                    Prompt::Ids { ids, lo: lo.min(i), hi: hi.max(i) }
                }
                (Prompt::Empty, Item::Text(first)) => Prompt::Texts { count: 1, first },
                (Prompt::Texts { count, first }, Item::Text(_)) => Prompt::Texts { count: count + 1, first },
                _ => Prompt::Other,
            };
        }
        Ok(out)
    }
}

fn id_u32(i: i128) -> u32 {
    u32::try_from(i).unwrap_or(0)
}

/// One element of a prompt list.
enum Item {
    /// An integer (pydantic's lax mode takes `3.0` as 3, not `3.5`).
    Id(i128),
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Item, D::Error> {
        d.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> serde::de::Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a token id or a text")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Item, E> {
        Ok(Item::Id(i128::from(v)))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Item, E> {
        Ok(Item::Id(i128::from(v)))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Item, E> {
        // `as` saturates: 1e40 is refused as out of vocabulary all the same.
        Ok(if v.fract() == 0.0 { Item::Id(v as i128) } else { Item::Other })
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Item, E> {
        Ok(Item::Text(s.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Item, E> {
        Ok(Item::Text(s))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Item, E> {
        Ok(Item::Other)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Item, E> {
        Ok(Item::Other)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Item::Other)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Item::Other)
    }
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

/// vLLM's answer to a completion without a prompt (none, `null` or `""`):
/// pydantic's error from the request's `prompt`/`prompt_embeds` validator,
/// raised before the model is looked at. `body` is the request's JSON.
pub(super) fn missing_prompt(body: &[u8]) -> Reject {
    let n = serde_json::from_slice::<std::collections::HashMap<String, IgnoredAny>>(body).map_or(0, |m| m.len());
    let why = "Either prompt or prompt_embeds must be provided and non-empty.";
    reject(
        StatusCode::BAD_REQUEST,
        "Bad Request",
        Some("body"),
        format!(
            "1 validation error:\n  {{'type': 'value_error', 'loc': 'body', 'msg': 'Value error, {why}', 'input': '<dict of {n} items>', 'ctx': {{'error': '{why}'}}}}"
        ),
    )
}

/// Token ids of a completions prompt: text (as the server encodes it, BOS
/// included), or the ids given, with the id vLLM refuses as out of its
/// vocabulary if there is one (refused by [`plan`], after the length
/// checks, where vLLM's engine refuses it).
pub(super) fn prompt_tokens(st: &AppState, prompt: Option<Prompt>) -> Result<(Vec<u32>, Option<i128>), Reject> {
    let text = |s: &str| -> Result<(Vec<u32>, Option<i128>), Reject> {
        check_chars(st, s.chars().count())?;
        let ids = st.cfg.tokenizer.ids(s, true);
        if ids.is_empty() {
            // vLLM's engine, on a prompt that tokenizes to nothing.
            return Err(bad_request(None, "The decoder prompt cannot be empty".into()));
        }
        Ok((ids, None))
    };
    match prompt {
        Some(Prompt::Text(s)) => text(&s),
        Some(Prompt::Texts { count: 1, first }) => text(&first),
        Some(Prompt::Texts { .. }) => {
            Err(bad_request(Some("prompt"), "the simulator serves one prompt per request".into()))
        }
        Some(Prompt::Empty) => Err(bad_request(None, "please provide at least one prompt".into())),
        Some(Prompt::Ids { ids, lo, hi }) => {
            // vLLM names the largest id past the vocabulary; the simulator
            // refuses a negative one too (vLLM's engine would fail on it).
            let top = i128::from(st.cfg.tokenizer.max_token_id());
            let out_of_vocab = if hi > top || hi < 0 {
                Some(hi)
            } else if lo < 0 {
                Some(lo)
            } else {
                None
            };
            Ok((ids, out_of_vocab))
        }
        Some(Prompt::Other) => {
            Err(bad_request(Some("prompt"), "prompt: expected a string or a list of token ids".into()))
        }
        None => Err(bad_request(Some("prompt"), "prompt: field required".into())),
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
    out_of_vocab: Option<i128>,
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
    if let Some(id) = out_of_vocab {
        return Err(bad_request(None, format!("Token id {id} is out of vocabulary")));
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
