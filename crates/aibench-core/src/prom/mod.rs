//! Prometheus: the exposition-format parser, scraping a `/metrics` page, the
//! HTTP API client, and configuration rendering.

pub mod client;
pub mod config;
pub mod expfmt;

use std::time::Duration;

/// A failed scrape: kind (connect, timeout, http, parse) and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ScrapeError {
    pub kind: &'static str,
    pub message: String,
}

/// Fetches and parses one `/metrics` page (no Prometheus server involved).
pub async fn scrape(url: &str, timeout: Duration) -> Result<Vec<expfmt::Family>, ScrapeError> {
    let get = crate::httpc::client().get(url).timeout(timeout);
    let fail = |kind, message| ScrapeError { kind, message };
    let resp = crate::httpc::send_retrying_stale(&reqwest::Method::GET, get)
        .await
        .map_err(|e| fail(crate::httpc::classify(&e), format!("{url}: {}", crate::httpc::describe(&e))))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| fail("http", format!("{url}: {e}")))?;
    if !status.is_success() {
        return Err(fail("http", format!("{url}: HTTP {status}")));
    }
    expfmt::parse(&body).map_err(|e| fail("parse", format!("{url}: {e}")))
}
