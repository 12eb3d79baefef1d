//! `aibench.http`: a small async client for health checks and APIs (not for
//! load: that is `aibench.bench`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mlua::prelude::*;

use super::{Fallible, OpError, Opts, convert};

pub fn client() -> &'static reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(|| reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().expect("HTTP client"))
}

/// Maps a transport error to an `err` kind: connect, timeout, other.
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

/// A failed request to `url` as an `err`: kind from [`classify`], message
/// `url: full cause chain`.
pub fn transport_error(url: &str, e: &reqwest::Error) -> OpError {
    OpError::new(classify(e), format!("{url}: {}", describe(e)))
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

struct Req {
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
}

fn parse_req(
    lua: &Lua,
    func: &'static str,
    method: Option<&str>,
    url: Option<String>,
    opts: Option<LuaTable>,
) -> LuaResult<Req> {
    let mut o = Opts::new(lua, func, opts);
    let url = match url {
        Some(u) => u,
        None => o.get::<String>("url")?.ok_or_else(|| LuaError::runtime(format!("{func}: 'url' is required")))?,
    };
    let method = match method {
        Some(m) => m.to_string(),
        None => o.get::<String>("method")?.unwrap_or_else(|| "GET".into()),
    };
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| LuaError::runtime(format!("{func}: invalid HTTP method '{method}'")))?;
    let mut headers = Vec::new();
    if let Some(h) = o.get::<LuaTable>("headers")? {
        for kv in h.pairs::<String, String>() {
            headers.push(kv?);
        }
    }
    let mut body = o.get::<LuaString>("body")?.map(|s| s.as_bytes().to_vec());
    let json_v = o.value("json")?;
    if !json_v.is_nil() {
        if body.is_some() {
            return Err(LuaError::runtime(format!("{func}: give 'body' or 'json', not both")));
        }
        let j = convert::to_json(lua, &json_v)
            .map_err(|e| LuaError::runtime(format!("{func}: json: {}", crate::host::error_text(&e))))?;
        body = Some(serde_json::to_vec(&j).map_err(LuaError::external)?);
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            headers.push(("content-type".into(), "application/json".into()));
        }
    }
    let timeout = match o.get::<f64>("timeout_s")? {
        Some(t) => super::seconds(func, "timeout_s", t)?,
        None => Duration::from_secs(30),
    };
    o.finish()?;
    if reqwest::Url::parse(&url).is_err() {
        return Err(LuaError::runtime(format!("{func}: invalid URL '{url}'")));
    }
    Ok(Req { method, url, headers, body, timeout })
}

async fn send(lua: Lua, r: Req) -> LuaResult<Fallible<LuaTable>> {
    let mut b = client().request(r.method.clone(), &r.url).timeout(r.timeout);
    for (k, v) in &r.headers {
        b = b.header(k, v);
    }
    if let Some(body) = r.body {
        b = b.body(body);
    }
    let start = Instant::now();
    let resp = match send_retrying_stale(&r.method, b).await {
        Ok(resp) => resp,
        Err(e) => {
            return Ok(Err(transport_error(&r.url, &e).with("url", r.url.clone())));
        }
    };
    let status = resp.status().as_u16();
    let headers = lua.create_table()?;
    let mut is_json = false;
    for (k, v) in resp.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        if k == reqwest::header::CONTENT_TYPE && v.contains("json") {
            is_json = true;
        }
        headers.set(k.as_str(), v)?;
    }
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return Ok(Err(OpError::new(classify(&e), format!("{}: reading body: {}", r.url, describe(&e))))),
    };
    let t = lua.create_table()?;
    t.set("status", status)?;
    t.set("ok", (200..300).contains(&status))?;
    t.set("headers", headers)?;
    t.set("elapsed_s", start.elapsed().as_secs_f64())?;
    if is_json && let Ok(j) = serde_json::from_slice::<serde_json::Value>(&body) {
        t.set("json", convert::to_lua(&lua, &j)?)?;
    }
    t.set("body", lua.create_string(&body)?)?;
    Ok(Ok(t))
}

pub fn module(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "request",
        lua.create_async_function(|lua, opts: LuaTable| async move {
            let r = parse_req(&lua, "http.request", None, None, Some(opts))?;
            send(lua, r).await
        })?,
    )?;
    t.set(
        "get",
        lua.create_async_function(|lua, (url, opts): (String, Option<LuaTable>)| async move {
            let r = parse_req(&lua, "http.get", Some("GET"), Some(url), opts)?;
            send(lua, r).await
        })?,
    )?;
    t.set(
        "post",
        lua.create_async_function(|lua, (url, opts): (String, Option<LuaTable>)| async move {
            let r = parse_req(&lua, "http.post", Some("POST"), Some(url), opts)?;
            send(lua, r).await
        })?,
    )?;
    Ok(t)
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
