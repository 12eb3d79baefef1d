//! Before the run: the model (asked of the server when not given) and every
//! request's bytes, formatted once so the hot loop only copies them.

use std::time::Duration;

use super::ctx::{POOL, Requests, RunError};
use super::dataset;
use super::exchange::{Scratch, Sink};
use super::http1::{Conn, Endpoint, format_request};
use super::spec::{Api, BenchSpec, ClosedLoop, OpenLoop, Workload};

/// Asks the server which model it serves (when the spec does not say).
pub(super) async fn discover_model(api: Api, ep: &Endpoint) -> Result<String, RunError> {
    let path = if matches!(api, Api::OllamaGenerate | Api::OllamaChat) { "/api/tags" } else { "/v1/models" };
    let req = format_request("GET", path, ep, &[], b"");
    let unavailable = |kind, m: String| RunError::Unavailable { kind, message: m };
    let url = format!("http://{}{path}", ep.authority);
    let mut conn = Conn::connect(ep).await.map_err(|f| {
        unavailable("connect", format!("target.model not given and {url} is unreachable: {}", f.message))
    })?;
    let mut s = Scratch::default();
    let mut sink = Sink { s: &mut s, api: Api::OpenaiCompletions, stream: false, llm: true };
    let fut = conn.exchange(&req, &mut sink);
    let res = tokio::time::timeout(Duration::from_secs(30), fut).await;
    match res {
        Err(_) => return Err(unavailable("timeout", format!("target.model not given and {url} did not answer"))),
        Ok(Err((f, _))) => {
            return Err(unavailable("connect", format!("target.model not given and {url} failed: {}", f.message)));
        }
        Ok(Ok(_)) => {}
    }
    if s.status != 200 {
        return Err(unavailable("http", format!("target.model not given and {url} answered HTTP {}", s.status)));
    }
    let v: serde_json::Value = serde_json::from_slice(&s.body).unwrap_or_default();
    let name = v["data"][0]["id"].as_str().or_else(|| v["models"][0]["name"].as_str());
    name.map(str::to_string).ok_or_else(|| {
        unavailable("http", format!("target.model not given and {url} lists no model; set target.model"))
    })
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
/// tokens), cycled through during the run.
pub(super) fn requests(spec: &BenchSpec, endpoints: &[Endpoint]) -> Result<(Requests, Vec<(u64, u64)>), RunError> {
    let llm = spec.target.api.is_llm();
    let expected = match &spec.workload {
        Workload::ClosedLoop(ClosedLoop { total_requests: Some(n), .. }) => Some(*n),
        Workload::ClosedLoop(ClosedLoop { users, requests_per_user: Some(n), .. }) => Some(users * n),
        Workload::OpenLoop(OpenLoop { total_requests: Some(n), .. }) => Some(*n),
        _ => None,
    };
    let pool = expected.map(|n| n as usize).unwrap_or(POOL).clamp(1, POOL);
    let mut headers: Vec<(String, String)> = spec.target.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(if llm {
        let prepared = dataset::prepare(spec, spec.target.model.as_deref(), pool).map_err(RunError::Spec)?;
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        let per_target = endpoints
            .iter()
            .map(|ep| {
                let path = target_path(spec, ep);
                prepared.iter().map(|p| format_request("POST", &path, ep, &headers, &p.body)).collect()
            })
            .collect();
        (Requests::Fixed(per_target), prepared.iter().map(|p| (p.prompt_tokens, p.output_tokens)).collect())
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
