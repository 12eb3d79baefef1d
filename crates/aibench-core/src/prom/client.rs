//! A client for Prometheus' HTTP API: instant and range queries, targets,
//! alerts, readiness. Errors carry Prometheus' own message.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// Prometheus answered with an error (bad PromQL, ...): its own words.
    #[error("Prometheus: {error_type}: {message}")]
    Api { error_type: String, message: String },
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Invalid(String),
}

impl PromError {
    pub fn kind(&self) -> &'static str {
        match self {
            PromError::Api { .. } => "prometheus",
            PromError::Unreachable(_) => "connect",
            PromError::Timeout(_) => "timeout",
            PromError::Invalid(_) => "invalid",
        }
    }
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    http: reqwest::Client,
}

fn transport(e: reqwest::Error, url: &str) -> PromError {
    let msg = format!("{url}: {}", crate::httpc::describe(&e));
    if e.is_timeout() { PromError::Timeout(msg) } else { PromError::Unreachable(msg) }
}

/// Every call here is a GET: sent once more if it met a stale keep-alive connection.
async fn get(b: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    crate::httpc::send_retrying_stale(&reqwest::Method::GET, b).await
}

impl Client {
    pub fn new(base: &str) -> Result<Client, PromError> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(PromError::Invalid(format!("'{base}' is not an http:// URL")));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| PromError::Invalid(e.to_string()))?;
        Ok(Client { base, http })
    }

    async fn api(&self, path: &str, params: &[(&str, String)]) -> Result<Value, PromError> {
        let url = format!("{}{path}", self.base);
        let resp = get(self.http.get(&url).query(params)).await.map_err(|e| transport(e, &url))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| transport(e, &url))?;
        let v: Value = serde_json::from_slice(&body).map_err(|_| {
            PromError::Invalid(format!(
                "{url}: HTTP {status}, not a Prometheus API answer: {}",
                String::from_utf8_lossy(&body).chars().take(200).collect::<String>()
            ))
        })?;
        if v.get("status").and_then(Value::as_str) == Some("success") {
            return Ok(v.get("data").cloned().unwrap_or(Value::Null));
        }
        Err(PromError::Api {
            error_type: v.get("errorType").and_then(Value::as_str).unwrap_or("error").to_string(),
            message: v.get("error").and_then(Value::as_str).unwrap_or("unknown error").to_string(),
        })
    }

    /// `/api/v1/query`: the result list (vector, scalar or string as Prometheus gives it).
    pub async fn query(&self, q: &str, time: Option<f64>) -> Result<Value, PromError> {
        let mut p = vec![("query", q.to_string())];
        if let Some(t) = time {
            p.push(("time", format!("{t:.3}")));
        }
        self.api("/api/v1/query", &p).await
    }

    /// `/api/v1/query_range`.
    pub async fn query_range(&self, q: &str, start: f64, end: f64, step: f64) -> Result<Value, PromError> {
        if step.is_nan() || step <= 0.0 {
            return Err(PromError::Invalid(format!("step must be positive, got {step}")));
        }
        if end < start {
            return Err(PromError::Invalid(format!("end ({end}) is before start ({start})")));
        }
        let p = [
            ("query", q.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step}")),
        ];
        self.api("/api/v1/query_range", &p).await
    }

    pub async fn targets(&self) -> Result<Value, PromError> {
        self.api("/api/v1/targets", &[]).await
    }

    pub async fn alerts(&self) -> Result<Value, PromError> {
        self.api("/api/v1/alerts", &[]).await
    }

    /// `/-/ready` answers 200.
    pub async fn ready(&self) -> Result<bool, PromError> {
        let url = format!("{}/-/ready", self.base);
        match get(self.http.get(&url).timeout(Duration::from_secs(5))).await {
            Ok(r) => Ok(r.status().is_success()),
            Err(e) if e.is_connect() => Ok(false),
            Err(e) => Err(transport(e, &url)),
        }
    }
}
