//! `aibench.http`: a small async client for health checks and APIs (not for
//! load: that is `aibench.bench`). The client is `aibench_core::httpc`.

use std::time::Duration;

use aibench_core::httpc;
use mlua::prelude::*;

use crate::binding::{Fallible, OpError, Opts};
use crate::convert;

/// A failed request as an `err` (kind connect, timeout or http).
pub fn op_error(e: httpc::HttpError) -> OpError {
    OpError::new(e.kind, e.message)
}

fn parse_req(
    lua: &Lua,
    func: &'static str,
    method: Option<&str>,
    url: Option<String>,
    opts: Option<LuaTable>,
) -> LuaResult<httpc::Request> {
    let mut o = Opts::new(lua, func, opts);
    let url = match url {
        Some(u) => u,
        None => o.get::<String>("url")?.ok_or_else(|| LuaError::runtime(format!("{func}: 'url' is required")))?,
    };
    let method = match method {
        Some(m) => m.to_string(),
        None => o.get::<String>("method")?.unwrap_or_else(|| "GET".into()),
    };
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
            .map_err(|e| LuaError::runtime(format!("{func}: json: {}", crate::binding::error_text(&e))))?;
        body = Some(serde_json::to_vec(&j).map_err(LuaError::external)?);
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            headers.push(("content-type".into(), "application/json".into()));
        }
    }
    let timeout = match o.get::<f64>("timeout_s")? {
        Some(t) => crate::binding::seconds(func, "timeout_s", t)?,
        None => Duration::from_secs(30),
    };
    o.finish()?;
    let method = httpc::check(&method, &url).map_err(|e| LuaError::runtime(format!("{func}: {e}")))?;
    Ok(httpc::Request { method, url, headers, body, timeout })
}

async fn send(lua: Lua, r: httpc::Request) -> LuaResult<Fallible<LuaTable>> {
    let url = r.url.clone();
    let resp = match httpc::send(r).await {
        Ok(resp) => resp,
        Err(e) => return Ok(Err(op_error(e).with("url", url))),
    };
    let headers = lua.create_table()?;
    for (k, v) in &resp.headers {
        headers.set(k.as_str(), v.as_str())?;
    }
    let t = lua.create_table()?;
    t.set("status", resp.status)?;
    t.set("ok", (200..300).contains(&resp.status))?;
    t.set("headers", headers)?;
    t.set("elapsed_s", resp.elapsed.as_secs_f64())?;
    if let Some(j) = resp.json() {
        t.set("json", convert::to_lua(&lua, &j)?)?;
    }
    t.set("body", lua.create_string(&resp.body)?)?;
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
