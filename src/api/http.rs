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
    let mut b = client().request(r.method, &r.url).timeout(r.timeout);
    for (k, v) in &r.headers {
        b = b.header(k, v);
    }
    if let Some(body) = r.body {
        b = b.body(body);
    }
    let start = Instant::now();
    let resp = match b.send().await {
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
