//! Before the run: the model (asked of the server when not given) and every
//! request's bytes, formatted once so the hot loop only copies them.

use std::time::Duration;

use super::ctx::{Requests, RunError};
use super::dataset;
use super::exchange::{Scratch, Sink};
use super::http1::{Conn, Endpoint, format_request};
use super::spec::{Api, BenchSpec, ClosedLoop, OpenLoop, Workload};
use crate::tokenize::LocalTokenizer;
use crate::tokenize::prompts::Counter;
use crate::tokenize::server::ServerTokenizer;

/// What the server says of its model: the name (the first it lists) and,
/// for vLLM, `max_model_len`.
pub(super) struct ModelInfo {
    pub name: Option<String>,
    pub max_model_len: Option<u64>,
}

/// Asks the server which model it serves (`/v1/models`, or Ollama's
/// `/api/tags`); an error only says why it could not be asked.
pub(super) async fn model_info(api: Api, ep: &Endpoint) -> Result<ModelInfo, RunError> {
    let path = if matches!(api, Api::OllamaGenerate | Api::OllamaChat) { "/api/tags" } else { "/v1/models" };
    let req = format_request("GET", path, ep, &[], b"");
    let unavailable = |kind, m: String| RunError::Unavailable { kind, message: m };
    let url = format!("http://{}{path}", ep.authority);
    let mut conn =
        Conn::connect(ep).await.map_err(|f| unavailable("connect", format!("{url} is unreachable: {}", f.message)))?;
    let mut s = Scratch::default();
    let mut sink = Sink { s: &mut s, api: Api::OpenaiCompletions, stream: false, llm: true };
    let fut = conn.exchange(&req, &mut sink);
    let res = tokio::time::timeout(Duration::from_secs(30), fut).await;
    match res {
        Err(_) => return Err(unavailable("timeout", format!("{url} did not answer"))),
        Ok(Err((f, _))) => return Err(unavailable("connect", format!("{url} failed: {}", f.message))),
        Ok(Ok(_)) => {}
    }
    if s.status != 200 {
        return Err(unavailable("http", format!("{url} answered HTTP {}", s.status)));
    }
    let v: serde_json::Value = serde_json::from_slice(&s.body).unwrap_or_default();
    let name = v["data"][0]["id"].as_str().or_else(|| v["models"][0]["name"].as_str()).map(str::to_string);
    Ok(ModelInfo { name, max_model_len: v["data"][0]["max_model_len"].as_u64() })
}

/// What prompt lengths are counted with (see `Target::tokenizer`).
pub(super) async fn counter(spec: &BenchSpec, ep: &Endpoint, model: &str) -> Result<Counter, RunError> {
    let base = format!("http://{}", ep.authority);
    let unavailable = |m: String| RunError::Unavailable { kind: "tokenizer", message: m };
    match spec.target.tokenizer.as_deref() {
        Some("server") => Ok(Counter::Server(
            ServerTokenizer::require(&base, model).await.map_err(|e| unavailable(format!("target.tokenizer: {e}")))?,
        )),
        Some("words") => Ok(Counter::Words),
        Some(path) => Ok(Counter::Local(std::sync::Arc::new(
            LocalTokenizer::load(path).map_err(|e| RunError::Spec(format!("target.tokenizer: {e}")))?,
        ))),
        None if matches!(spec.target.api, Api::OpenaiCompletions | Api::OpenaiChat) => {
            // The server's own count when it offers one (vLLM, the simulator).
            match ServerTokenizer::probe(&base, model).await {
                Ok(Some(t)) => Ok(Counter::Server(t)),
                _ => Ok(Counter::Words),
            }
        }
        None => Ok(Counter::Words),
    }
}

/// Distinct synthetic prompts at the most, and their bytes at the most.
pub const POOL_MAX: usize = 100_000;
const POOL_MAX_BYTES: u64 = 512 << 20;
/// When the run's length is not known in requests: enough distinct prompts
/// that, cycled through, a prompt comes back only after this many prompt
/// tokens, more than any server's prefix cache holds.
const POOL_TOKENS: u64 = 8_000_000;
/// vLLM's smallest KV-cache block (GPU builds), and the distinct prompts
/// made when prompts are shorter than that.
const MIN_CACHE_BLOCK: u64 = 16;
const POOL_SHORT: u64 = 1024;

/// How many distinct synthetic prompts to make: one per request when the
/// count is known, else enough that reuse cannot hit a prefix cache; within
/// the caps above (about 6 bytes per token, formatted).
pub(super) fn synthetic_pool(expected: Option<u64>, dataset: &super::spec::Dataset) -> usize {
    let tokens = match dataset {
        super::spec::Dataset::Synthetic(s) => s.prompt_tokens.max(1),
        _ => 1,
    };
    if tokens < MIN_CACHE_BLOCK {
        // Shorter than any KV block: no prefix cache can reuse them.
        return expected.unwrap_or(POOL_SHORT).clamp(1, POOL_SHORT) as usize;
    }
    let by_bytes = (POOL_MAX_BYTES / (tokens * 6)).max(1);
    let want = expected.unwrap_or(POOL_TOKENS.div_ceil(tokens).max(POOL_SHORT));
    want.min(by_bytes).clamp(1, POOL_MAX as u64) as usize
}

pub(super) fn target_path(spec: &BenchSpec, ep: &Endpoint) -> String {
    if let Some(p) = &spec.target.path {
        return p.clone();
    }
    if ep.path != "/" && !ep.path.is_empty() {
        return ep.path.clone();
    }
    spec.target.api.default_path().to_string()
}

/// Every request's bytes per target, and what each asks (prompt and output
/// tokens, in `counter`'s tokens), cycled through during the run. A request
/// that cannot fit the server's `max_model_len` is refused here.
pub(super) async fn requests(
    spec: &BenchSpec,
    endpoints: &[Endpoint],
    counter: &Counter,
    max_model_len: Option<u64>,
) -> Result<(Requests, Vec<(u64, u64)>), RunError> {
    let llm = spec.target.api.is_llm();
    let expected = match &spec.workload {
        Workload::ClosedLoop(ClosedLoop { total_requests: Some(n), .. }) => Some(*n),
        Workload::ClosedLoop(ClosedLoop { users, requests_per_user: Some(n), .. }) => Some(users * n),
        Workload::OpenLoop(OpenLoop { total_requests: Some(n), .. }) => Some(*n),
        _ => None,
    };
    let pool = synthetic_pool(expected, &spec.dataset);
    let mut headers: Vec<(String, String)> = spec.target.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(if llm {
        let prepared =
            dataset::prepare(spec, spec.target.model.as_deref(), pool, counter).await.map_err(RunError::Spec)?;
        if let Some(max) = max_model_len
            && let Some(p) = prepared.iter().find(|p| p.prompt_tokens + p.output_tokens > max)
        {
            return Err(RunError::Spec(format!(
                "dataset: a prompt of {} tokens with {} output tokens does not fit the server's max_model_len of {max}; ask for fewer prompt or output tokens",
                p.prompt_tokens, p.output_tokens
            )));
        }
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        let paths: Vec<String> = endpoints.iter().map(|ep| target_path(spec, ep)).collect();
        let mut per_target: Vec<Vec<Vec<u8>>> = endpoints.iter().map(|_| Vec::with_capacity(prepared.len())).collect();
        let mut meta = Vec::with_capacity(prepared.len());
        // Each body is dropped once formatted: the run holds one copy.
        for p in prepared {
            for ((reqs, ep), path) in per_target.iter_mut().zip(endpoints).zip(&paths) {
                reqs.push(format_request("POST", path, ep, &headers, &p.body));
            }
            meta.push((p.prompt_tokens, p.output_tokens));
        }
        (Requests::Fixed(per_target), meta)
    } else {
        let body = spec.target.body.clone().unwrap_or_default();
        let method =
            spec.target.method.clone().unwrap_or_else(|| if body.is_empty() { "GET".into() } else { "POST".into() });
        let paths: Vec<String> = endpoints.iter().map(|ep| target_path(spec, ep)).collect();
        if body.contains("{{seq}}") {
            (Requests::Template { method, path: paths, headers, body }, vec![(0, 0)])
        } else {
            let per_target = endpoints
                .iter()
                .zip(&paths)
                .map(|(ep, p)| vec![format_request(&method, p, ep, &headers, body.as_bytes())])
                .collect();
            (Requests::Fixed(per_target), vec![(0, 0)])
        }
    })
}
