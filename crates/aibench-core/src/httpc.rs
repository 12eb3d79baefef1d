//! The HTTP client for the control plane (health checks, APIs, scrapes,
//! Prometheus): not for load, which is `loadgen`'s own client. A GET or HEAD
//! that meets a keep-alive connection the server has just closed is sent
//! once more, on a new connection.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The shared client (connection pool).
pub fn client() -> &'static reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(|| reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().expect("HTTP client"))
}

/// Maps a transport error to a kind: connect, timeout, http.
pub fn classify(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "http"
    }
}

/// Full error chain: reqwest's top-level message alone hides the cause.
pub fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// True when a request went out on a pooled keep-alive connection that the
/// server had just closed. hyper reports this as "connection closed before
/// message completed": the request was sent before the close was seen.
fn stale_connection(e: &reqwest::Error) -> bool {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if s.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_incomplete_message) {
            return true;
        }
        src = s.source();
    }
    false
}

/// Sends `b`. A GET or HEAD that met a stale keep-alive connection (a server
/// that closed it, or went away, while it sat in the pool) is sent once more,
/// as browsers do. The retry takes a new connection, so it sees the server
/// as it is now. Other methods are never repeated. (hyper reports a server
/// that closes a fresh connection without answering the same way; a GET is
/// safe to repeat once in that case too.)
pub async fn send_retrying_stale(
    method: &reqwest::Method,
    b: reqwest::RequestBuilder,
) -> reqwest::Result<reqwest::Response> {
    let again = if matches!(*method, reqwest::Method::GET | reqwest::Method::HEAD) { b.try_clone() } else { None };
    match (b.send().await, again) {
        (Err(e), Some(again)) if stale_connection(&e) => {
            tracing::debug!("{}; sending again on a new connection", describe(&e));
            again.send().await
        }
        (res, _) => res,
    }
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Response {
    /// The body parsed as JSON when the server said it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        let is_json = self.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.contains("json"));
        if is_json { serde_json::from_slice(&self.body).ok() } else { None }
    }
}

/// A failed exchange: `kind` from [`classify`], `message` with the URL and
/// the whole cause chain.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HttpError {
    pub kind: &'static str,
    pub message: String,
}

impl HttpError {
    pub fn transport(url: &str, e: &reqwest::Error) -> HttpError {
        HttpError { kind: classify(e), message: format!("{url}: {}", describe(e)) }
    }
}

/// Checks a request's method and URL before it is sent.
pub fn check(method: &str, url: &str) -> Result<reqwest::Method, String> {
    let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("invalid HTTP method '{method}'"))?;
    reqwest::Url::parse(url).map_err(|_| format!("invalid URL '{url}'"))?;
    Ok(m)
}

/// Sends a request and reads the whole response.
pub async fn send(r: Request) -> Result<Response, HttpError> {
    let mut b = client().request(r.method.clone(), &r.url).timeout(r.timeout);
    for (k, v) in &r.headers {
        b = b.header(k, v);
    }
    if let Some(body) = r.body {
        b = b.body(body);
    }
    let start = Instant::now();
    let resp = send_retrying_stale(&r.method, b).await.map_err(|e| HttpError::transport(&r.url, &e))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = resp
        .bytes()
        .await
        .map_err(|e| HttpError { kind: classify(&e), message: format!("{}: reading body: {}", r.url, describe(&e)) })?;
    Ok(Response { status, headers, body: body.to_vec(), elapsed: start.elapsed() })
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;

    /// A server that answers the first request on a connection, then closes
    /// that connection as soon as a second request arrives on it (what a
    /// server that drops idle keep-alive connections looks like from the
    /// client), and answers normally on new connections. Returns its URL and
    /// a counter of the requests it answered.
    fn closing_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", l.local_addr().unwrap());
        let answered = std::sync::Arc::new(AtomicUsize::new(0));
        let count = answered.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { return };
                let count = count.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut n = 0;
                    loop {
                        // Read one request head (these requests have no body).
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        n += 1;
                        if n == 2 {
                            return; // dropped: closed without an answer
                        }
                        count.fetch_add(1, Ordering::SeqCst);
                        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
                    }
                });
            }
        });
        (url, answered)
    }

    #[tokio::test]
    async fn a_get_on_a_stale_connection_is_sent_again() {
        let (url, answered) = closing_server();
        let c = reqwest::Client::new();
        let get = reqwest::Method::GET;
        // Connection A answers; the next GET goes out on A, which the server
        // closes: the helper sends it again on a new connection B.
        for _ in 0..2 {
            let r = send_retrying_stale(&get, c.get(&url)).await.unwrap();
            assert_eq!(r.text().await.unwrap(), "ok");
        }
        assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Plain reqwest, on B's second request, fails the same way.
        let e = c.get(&url).send().await.unwrap_err();
        assert!(stale_connection(&e), "{}", describe(&e));
        assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_post_is_never_sent_twice() {
        let (url, answered) = closing_server();
        let c = reqwest::Client::new();
        let post = reqwest::Method::POST;
        send_retrying_stale(&post, c.post(&url)).await.unwrap().text().await.unwrap();
        let e = send_retrying_stale(&post, c.post(&url)).await.unwrap_err();
        assert!(stale_connection(&e), "{}", describe(&e));
        assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
