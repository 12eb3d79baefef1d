//! A plain HTTP/1.1 client for tests: one request per connection, every
//! received piece of the body timestamped, chunked encoding decoded by hand,
//! and a body cut short reported as such (not hidden by a library).
#![allow(dead_code)]

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Decoded body pieces with the time each arrived.
    pub pieces: Vec<(Instant, Vec<u8>)>,
    /// The body ended properly (terminal chunk or full Content-Length).
    pub complete: bool,
    pub sent_at: Option<Instant>,
}

impl Response {
    pub fn body(&self) -> Vec<u8> {
        self.pieces.iter().flat_map(|(_, b)| b.clone()).collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body()).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// SSE events per the WHATWG rules: lines `field: value`, events end at a
    /// blank line, comments start with `:`. Returns (arrival time, data).
    pub fn sse_events(&self) -> Vec<(Instant, String)> {
        let mut out = Vec::new();
        let mut line = Vec::new();
        let mut data: Vec<String> = Vec::new();
        for (t, piece) in &self.pieces {
            for &b in piece {
                if b != b'\n' {
                    line.push(b);
                    continue;
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let l = String::from_utf8_lossy(&line).into_owned();
                line.clear();
                if l.is_empty() {
                    if !data.is_empty() {
                        out.push((*t, data.join("\n")));
                        data.clear();
                    }
                    continue;
                }
                if l.starts_with(':') {
                    continue;
                }
                let (field, value) = match l.split_once(':') {
                    Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
                    None => (l.clone(), String::new()),
                };
                if field == "data" {
                    data.push(value);
                }
            }
        }
        out
    }

    /// NDJSON lines with their arrival times.
    pub fn ndjson(&self) -> Vec<(Instant, serde_json::Value)> {
        let mut out = Vec::new();
        let mut line = Vec::new();
        for (t, piece) in &self.pieces {
            for &b in piece {
                if b == b'\n' {
                    if !line.is_empty() {
                        out.push((*t, serde_json::from_slice(&line).expect("NDJSON line")));
                    }
                    line.clear();
                } else {
                    line.push(b);
                }
            }
        }
        out
    }
}

pub async fn get(base: &str, path: &str) -> Response {
    request(base, "GET", path, None).await
}

pub async fn post(base: &str, path: &str, body: &str) -> Response {
    request(base, "POST", path, Some(body)).await
}

pub async fn request(base: &str, method: &str, path: &str, body: Option<&str>) -> Response {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    let mut sock = tokio::net::TcpStream::connect(hostport).await.expect("connect");
    sock.set_nodelay(true).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let sent_at = Instant::now();
    sock.write_all(req.as_bytes()).await.expect("write");
    let mut resp = Response { sent_at: Some(sent_at), ..Default::default() };
    let mut raw = Vec::new();
    let mut head_done = false;
    let mut chunked = false;
    let mut content_length: Option<usize> = None;
    let mut got = 0usize;
    let mut dechunk = Dechunker::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        let mut data = &buf[..n];
        if !head_done {
            raw.extend_from_slice(data);
            let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or("");
            resp.status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            for l in lines {
                if let Some((k, v)) = l.split_once(':') {
                    let (k, v) = (k.trim().to_string(), v.trim().to_string());
                    if k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked") {
                        chunked = true;
                    }
                    if k.eq_ignore_ascii_case("content-length") {
                        content_length = v.parse().ok();
                    }
                    resp.headers.push((k, v));
                }
            }
            head_done = true;
            let rest = raw[end + 4..].to_vec();
            raw.clear();
            raw.extend_from_slice(&rest);
            data = &raw;
            if data.is_empty() {
                if content_length == Some(0) {
                    resp.complete = true;
                    break;
                }
                continue;
            }
        }
        let owned = data.to_vec();
        if chunked {
            let decoded = dechunk.feed(&owned);
            if !decoded.is_empty() {
                resp.pieces.push((now, decoded));
            }
            if dechunk.finished {
                resp.complete = true;
                break;
            }
        } else {
            got += owned.len();
            resp.pieces.push((now, owned));
            if content_length.is_some_and(|cl| got >= cl) {
                resp.complete = true;
                break;
            }
        }
        raw.clear();
    }
    resp
}

#[derive(Default)]
struct Dechunker {
    buf: Vec<u8>,
    remaining: usize,
    in_data: bool,
    finished: bool,
}

impl Dechunker {
    fn feed(&mut self, input: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(input);
        let mut out = Vec::new();
        loop {
            if self.in_data {
                let take = self.remaining.min(self.buf.len());
                out.extend_from_slice(&self.buf[..take]);
                self.buf.drain(..take);
                self.remaining -= take;
                if self.remaining > 0 {
                    return out;
                }
                if self.buf.len() < 2 {
                    return out;
                }
                self.buf.drain(..2); // CRLF after data
                self.in_data = false;
            }
            let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") else { return out };
            let size_line = String::from_utf8_lossy(&self.buf[..pos]).into_owned();
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
            self.buf.drain(..pos + 2);
            if size == 0 {
                self.finished = true;
                return out;
            }
            self.remaining = size;
            self.in_data = true;
        }
    }
}
