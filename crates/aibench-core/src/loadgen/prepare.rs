//! Before the run: the model (asked of the server when not given) and every
//! request's bytes, formatted once so the hot loop only copies them.

use std::sync::Arc;
use std::time::Duration;

use super::build::{Framer, TracePrompts, target_path};
use super::ctx::{Requests, RunError};
use super::dataset;
use super::exchange::{Scratch, Sink};
use super::http1::{Conn, Endpoint, format_request};
use super::sessions::Script;
use super::spec::{Api, BenchSpec, ClosedLoop, Dataset, OpenLoop, ValidSpec, Workload, located};
use crate::datasets::DatasetStats;
use crate::datasets::trace::Trace;
use crate::tokenize::LocalTokenizer;
use crate::tokenize::prompts::Counter;
use crate::tokenize::prompts::PromptMaker;
use crate::tokenize::server::ServerTokenizer;
use crate::typed::FieldError;

/// What the server says of its model: the name (the first it lists) and,
/// for vLLM, `max_model_len`.
pub(super) struct ModelInfo {
    pub name: Option<String>,
    pub max_model_len: Option<u64>,
}

/// Asks the server which model it serves (`/v1/models`, or Ollama's
/// `/api/tags`); an error only says why it could not be asked.
pub(super) async fn model_info(api: Api, ep: &Endpoint, timeout: Duration) -> Result<ModelInfo, RunError> {
    let path = if matches!(api, Api::OllamaGenerate | Api::OllamaChat) { "/api/tags" } else { "/v1/models" };
    let req = format_request("GET", path, ep, &[], b"");
    let unavailable = |kind, m: String| RunError::Unavailable { kind, message: m };
    let url = format!("http://{}{path}", ep.authority);
    let mut conn =
        Conn::connect(ep).await.map_err(|f| unavailable("connect", format!("{url} is unreachable: {}", f.message)))?;
    let mut s = Scratch::default();
    let mut sink = Sink {
        s: &mut s,
        api: Api::OpenaiCompletions,
        stream: false,
        llm: true,
        limit: super::spec::DEFAULT_MAX_EVENT_BYTES as usize,
    };
    let fut = conn.exchange(&req, &mut sink);
    let res = tokio::time::timeout(timeout.min(Duration::from_secs(30)), fut).await;
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
            LocalTokenizer::load(path).map_err(|e| RunError::Spec(FieldError::new("target.tokenizer", e)))?,
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
        super::spec::Dataset::Synthetic(s) => (s.prompt_tokens.mean() as u64 + s.prefix_tokens).max(1),
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

/// What the run sends: the requests (or how they are built), what each
/// asks, and what reading the dataset found.
pub(super) struct Plan {
    pub requests: Requests,
    pub meta: Vec<(u64, u64)>,
    pub stats: Option<DatasetStats>,
    /// A trace dataset's entries (their timestamps drive a trace replay).
    pub trace: Option<Arc<Trace>>,
    pub sessions: Option<Arc<Script>>,
}

fn fits_model(max: Option<u64>, prompt: u64, output: u64, what: &str) -> Result<(), RunError> {
    match max {
        Some(max) if prompt + output > max => Err(RunError::Spec(FieldError::new(
            "dataset",
            format!(
                "{what} of {prompt} tokens with {output} output tokens does not fit the server's max_model_len of {max}; ask for fewer prompt or output tokens"
            ),
        ))),
        _ => Ok(()),
    }
}

/// Every request's bytes per target, and what each asks (prompt and output
/// tokens, in `counter`'s tokens), cycled through during the run; a trace's
/// and the sessions' requests are built as they are sent. A request that
/// cannot fit the server's `max_model_len` is refused here.
pub(super) async fn requests(
    valid: &ValidSpec,
    endpoints: &[Endpoint],
    counter: &Counter,
    max_model_len: Option<u64>,
) -> Result<Plan, RunError> {
    let spec = valid.spec();
    let llm = spec.target.api.is_llm();
    let plan = |requests, meta| Plan { requests, meta, stats: None, trace: None, sessions: None };
    if !llm {
        let headers: Vec<(String, String)> = spec.target.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let body = spec.target.body.clone().unwrap_or_default();
        let method =
            spec.target.method.clone().unwrap_or_else(|| if body.is_empty() { "GET".into() } else { "POST".into() });
        let paths: Vec<String> = endpoints.iter().map(|ep| target_path(spec, ep)).collect();
        if body.contains("{{seq}}") {
            return Ok(plan(Requests::Template { method, path: paths, headers, body }, vec![(0, 0)]));
        }
        let per_target = endpoints
            .iter()
            .zip(&paths)
            .map(|(ep, p)| vec![format_request(&method, p, ep, &headers, body.as_bytes())])
            .collect();
        return Ok(plan(Requests::Fixed(per_target), vec![(0, 0)]));
    }
    let framer = Framer::new(spec, endpoints);
    if let Workload::Sessions(w) = &spec.workload {
        let (script, stats) = Script::new(valid, w, framer, counter).await.map_err(RunError::Spec)?;
        return Ok(Plan { stats, sessions: Some(Arc::new(script)), ..plan(Requests::ByDriver, vec![(0, 0)]) });
    }
    if let Dataset::Trace(d) = &spec.dataset {
        let d = d.clone();
        let (trace, stats) = tokio::task::spawn_blocking(move || {
            let mut stats = DatasetStats::new(&d.path);
            Trace::load(&d, &mut stats).map(|t| (t, stats))
        })
        .await
        .map_err(|e| RunError::Spec(FieldError::new("dataset", format!("reading the trace failed: {e}"))))?
        .map_err(|e| RunError::Spec(located(e)))?;
        if let Some((i, e)) = trace
            .entries
            .iter()
            .enumerate()
            .find(|(_, e)| max_model_len.is_some_and(|m| e.input as u64 + e.output as u64 > m))
        {
            fits_model(max_model_len, e.input as u64, e.output as u64, &format!("trace request {}", i + 1))?;
        }
        let trace = Arc::new(trace);
        let maker = PromptMaker::new(counter.clone(), super::dataset::is_chat(spec.target.api))
            .await
            .map_err(|e| RunError::Spec(located(e)))?;
        let prompts = TracePrompts::new(trace.clone(), maker, framer).map_err(RunError::Spec)?;
        return Ok(Plan {
            stats: Some(stats),
            trace: Some(trace),
            ..plan(Requests::Trace(Box::new(prompts)), vec![(0, 0)])
        });
    }
    let expected = match &spec.workload {
        Workload::ClosedLoop(ClosedLoop { total_requests: Some(n), .. }) => Some(*n),
        Workload::ClosedLoop(ClosedLoop { users, requests_per_user: Some(n), .. }) => Some(users * n),
        Workload::OpenLoop(OpenLoop { total_requests: Some(n), .. }) => Some(*n),
        _ => None,
    };
    // A dataset's prompts are counted one by one (through /tokenize, maybe):
    // only as many as the run can send are prepared. An open loop's count
    // is its rate over its span, with room for random arrivals.
    let need = expected.or(match &spec.workload {
        Workload::OpenLoop(OpenLoop { rate, duration_s: Some(d), warmup_s, .. }) => {
            let mean = rate * (d + warmup_s);
            Some((mean + 4.0 * mean.sqrt() + 16.0).min(u64::MAX as f64 / 2.0) as u64)
        }
        _ => None,
    });
    let pool = synthetic_pool(expected, &spec.dataset);
    let need = need.map(|n| n.min(usize::MAX as u64) as usize);
    let (prepared, stats) =
        dataset::prepare(spec, spec.target.model.as_deref(), pool, need, counter).await.map_err(RunError::Spec)?;
    if let Some(p) = prepared.iter().find(|p| max_model_len.is_some_and(|m| p.prompt_tokens + p.output_tokens > m)) {
        fits_model(max_model_len, p.prompt_tokens, p.output_tokens, "a prompt")?;
    }
    let mut per_target: Vec<Vec<Vec<u8>>> = endpoints.iter().map(|_| Vec::with_capacity(prepared.len())).collect();
    let mut meta = Vec::with_capacity(prepared.len());
    // Each body is dropped once formatted: the run holds one copy.
    for p in prepared {
        for (t, reqs) in per_target.iter_mut().enumerate() {
            reqs.push(framer.frame_body(t, &p.body));
        }
        meta.push((p.prompt_tokens, p.output_tokens));
    }
    Ok(Plan { stats, ..plan(Requests::Fixed(per_target), meta) })
}
