//! Streaming response parsing: Server-Sent Events (OpenAI / vLLM) and NDJSON
//! (Ollama), fed with body pieces in whatever split they arrive, and the
//! token accounting on top (vLLM's benchmark definitions).

use std::borrow::Cow;
use std::time::Instant;

use serde::Deserialize;

use super::chunk::{ChunkMemo, scan_chunk};
use super::spec::Api;

/// Incremental SSE parser (WHATWG rules): lines end in LF, CRLF or CR; an
/// event is dispatched at a blank line; `:` lines are comments (keep-alives);
/// only `data` fields matter here. Complete lines are read in place; only a
/// line split across pieces is copied.
#[derive(Default)]
pub struct SseParser {
    /// A line started in an earlier piece.
    partial: Vec<u8>,
    /// Data of the current event when it had to be copied (multi-line, or split).
    data: Vec<u8>,
    has_data: bool,
    last_cr: bool,
    /// The most one event (or line) may hold; 0 means no limit.
    limit: usize,
    /// An event or line went past `limit`: the rest of the stream is ignored.
    overflow: bool,
}

enum Pending {
    None,
    /// The event's only data line, still in the current piece: (start, end).
    InPlace(usize, usize),
    Copied,
}

impl SseParser {
    /// Back to the state of `SseParser::default()`, keeping the buffers' capacity.
    pub fn reset(&mut self) {
        self.partial.clear();
        self.data.clear();
        self.has_data = false;
        self.last_cr = false;
        self.overflow = false;
        if self.partial.capacity() > 1 << 20 {
            self.partial = Vec::new();
        }
        if self.data.capacity() > 1 << 20 {
            self.data = Vec::new();
        }
    }

    /// Caps one event (and one line) at `bytes`; past it the parser stops
    /// and [`SseParser::overflowed`] says so.
    pub fn set_limit(&mut self, bytes: usize) {
        self.limit = bytes;
    }

    /// Whether an event or line went past the limit.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    fn over(&self) -> bool {
        self.limit > 0 && self.partial.len().max(self.data.len()) > self.limit
    }

    /// Feeds bytes; calls `on_event` with each complete event's data.
    pub fn feed(&mut self, bytes: &[u8], on_event: &mut impl FnMut(&[u8])) {
        if self.overflow {
            return;
        }
        self.feed_inner(bytes, on_event);
        if self.over() {
            self.overflow = true;
            self.partial = Vec::new();
            self.data = Vec::new();
        }
    }

    fn feed_inner(&mut self, bytes: &[u8], on_event: &mut impl FnMut(&[u8])) {
        let mut pos = 0;
        let mut pending = if self.has_data { Pending::Copied } else { Pending::None };
        while pos < bytes.len() {
            if self.last_cr {
                self.last_cr = false;
                if bytes[pos] == b'\n' {
                    pos += 1;
                    continue;
                }
            }
            let Some(i) = memchr::memchr2(b'\n', b'\r', &bytes[pos..]) else {
                self.carry(&bytes[pos..], &mut pending, bytes);
                return;
            };
            let end = pos + i;
            if self.limit > 0 && self.partial.len() + (end - pos) > self.limit {
                self.partial.clear();
                self.overflow = true;
                return;
            }
            self.last_cr = bytes[end] == b'\r';
            if self.partial.is_empty() {
                self.line(bytes, pos, end, &mut pending, on_event);
            } else {
                self.partial.extend_from_slice(&bytes[pos..end]);
                let line = std::mem::take(&mut self.partial);
                self.owned_line(&line, &mut pending, bytes, on_event);
                self.partial = line;
                self.partial.clear();
            }
            pos = end + 1;
        }
        if let Pending::InPlace(a, b) = pending {
            // The piece ended inside an event: keep its data.
            self.data.clear();
            self.data.extend_from_slice(&bytes[a..b]);
            self.data.push(b'\n');
            self.has_data = true;
        }
    }

    fn carry(&mut self, rest: &[u8], pending: &mut Pending, bytes: &[u8]) {
        if let Pending::InPlace(a, b) = *pending {
            self.data.clear();
            self.data.extend_from_slice(&bytes[a..b]);
            self.data.push(b'\n');
            self.has_data = true;
            *pending = Pending::Copied;
        }
        self.partial.extend_from_slice(rest);
    }

    fn field(line: &[u8]) -> Option<&[u8]> {
        if line.first() == Some(&b':') {
            return None;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(c) => (&line[..c], &line[c + 1..]),
            None => (line, &b""[..]),
        };
        (name == b"data").then(|| value.strip_prefix(b" ").unwrap_or(value))
    }

    /// A complete line inside the current piece.
    fn line(&mut self, bytes: &[u8], a: usize, b: usize, pending: &mut Pending, on_event: &mut impl FnMut(&[u8])) {
        if a == b {
            self.dispatch(pending, bytes, on_event);
            return;
        }
        let line = &bytes[a..b];
        if let Some(v) = Self::field(line) {
            let off = v.as_ptr() as usize - bytes.as_ptr() as usize;
            match pending {
                Pending::None => *pending = Pending::InPlace(off, off + v.len()),
                Pending::InPlace(pa, pb) => {
                    self.data.clear();
                    self.data.extend_from_slice(&bytes[*pa..*pb]);
                    self.data.push(b'\n');
                    self.data.extend_from_slice(v);
                    self.data.push(b'\n');
                    self.has_data = true;
                    *pending = Pending::Copied;
                }
                Pending::Copied => {
                    self.data.extend_from_slice(v);
                    self.data.push(b'\n');
                    self.has_data = true;
                }
            }
        }
    }

    /// A line that was split across pieces (copied).
    fn owned_line(&mut self, line: &[u8], pending: &mut Pending, bytes: &[u8], on_event: &mut impl FnMut(&[u8])) {
        if line.is_empty() {
            self.dispatch(pending, bytes, on_event);
            return;
        }
        if let Some(v) = Self::field(line) {
            if let Pending::InPlace(a, b) = *pending {
                self.data.clear();
                self.data.extend_from_slice(&bytes[a..b]);
                self.data.push(b'\n');
            } else if !matches!(pending, Pending::Copied) {
                self.data.clear();
            }
            self.data.extend_from_slice(v);
            self.data.push(b'\n');
            self.has_data = true;
            *pending = Pending::Copied;
        }
    }

    fn dispatch(&mut self, pending: &mut Pending, bytes: &[u8], on_event: &mut impl FnMut(&[u8])) {
        match std::mem::replace(pending, Pending::None) {
            Pending::None => {}
            Pending::InPlace(a, b) => on_event(&bytes[a..b]),
            Pending::Copied => {
                if self.data.last() == Some(&b'\n') {
                    self.data.pop();
                }
                on_event(&self.data);
                self.data.clear();
                self.has_data = false;
            }
        }
    }
}

/// Splits NDJSON into lines, across pieces.
#[derive(Default)]
pub struct LineSplitter {
    line: Vec<u8>,
    /// The most one line may hold; 0 means no limit.
    limit: usize,
    overflow: bool,
}

impl LineSplitter {
    /// Back to the state of `LineSplitter::default()`, keeping the buffer's capacity.
    pub fn reset(&mut self) {
        self.line.clear();
        self.overflow = false;
        if self.line.capacity() > 1 << 20 {
            self.line = Vec::new();
        }
    }

    /// Caps one line at `bytes` (see [`SseParser::set_limit`]).
    pub fn set_limit(&mut self, bytes: usize) {
        self.limit = bytes;
    }

    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    pub fn feed(&mut self, mut bytes: &[u8], on_line: &mut impl FnMut(&[u8])) {
        if self.overflow {
            return;
        }
        let over = |have: usize, more: usize, limit: usize| limit > 0 && have + more > limit;
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            if over(self.line.len(), i, self.limit) {
                self.overflow = true;
                self.line = Vec::new();
                return;
            }
            self.line.extend_from_slice(&bytes[..i]);
            let l = std::mem::take(&mut self.line);
            let trimmed = l.strip_suffix(b"\r").unwrap_or(&l);
            if !trimmed.is_empty() {
                on_line(trimmed);
            }
            self.line = l;
            self.line.clear();
            bytes = &bytes[i + 1..];
        }
        if over(self.line.len(), bytes.len(), self.limit) {
            self.overflow = true;
            self.line = Vec::new();
            return;
        }
        self.line.extend_from_slice(bytes);
    }
}

#[derive(Deserialize)]
struct OaChunk<'a> {
    #[serde(borrow, default)]
    choices: Vec<OaChoice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OaChoice<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<OaDelta<'a>>,
    #[serde(borrow, default)]
    message: Option<OaDelta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct OaDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OllamaLine<'a> {
    #[serde(borrow, default)]
    response: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<OaDelta<'a>>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(borrow, default)]
    done_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Token timings and counts of one response, by vLLM's definitions: TTFT at
/// the first chunk with content, ITL between content chunks, output tokens
/// from the server's usage when it reports them.
#[derive(Default)]
pub struct Tokens {
    pub first: Option<Instant>,
    pub last: Option<Instant>,
    /// Inter-chunk gaps in microseconds (reused between requests).
    pub itl_us: Vec<u64>,
    pub content_chunks: u64,
    pub usage_output: Option<u64>,
    pub usage_input: Option<u64>,
    /// `[DONE]` seen, or Ollama's `done: true`.
    pub done: bool,
    pub finish_reason: Option<String>,
    /// An error object inside the stream.
    pub error: Option<String>,
    pub bad_chunks: u64,
    /// Words of non-streamed output text (when no usage is given).
    pub text_words: u64,
    /// Keep the output text (sessions put the reply in their history);
    /// set by the caller, kept across `reset`.
    pub capture: bool,
    /// The output text, when `capture` is set.
    pub text: String,
    /// The last token chunk read in full (kept across `reset`: it is only
    /// ever used for a chunk that matches it byte for byte around its text).
    memo: ChunkMemo,
}

impl Tokens {
    pub fn reset(&mut self) {
        self.first = None;
        self.last = None;
        self.itl_us.clear();
        self.content_chunks = 0;
        self.usage_output = None;
        self.usage_input = None;
        self.done = false;
        self.finish_reason = None;
        self.error = None;
        self.bad_chunks = 0;
        self.text_words = 0;
        self.text.clear();
    }

    fn content(&mut self, at: Instant) {
        match self.last {
            None => self.first = Some(at),
            Some(prev) => self.itl_us.push(at.saturating_duration_since(prev).as_micros() as u64),
        }
        self.last = Some(at);
        self.content_chunks += 1;
    }

    /// One SSE event's data from an OpenAI-style stream. Chunks are read
    /// in one pass by `scan_chunk` (no allocation, no JSON values built);
    /// anything it does not expect (errors, other shapes), and every chunk
    /// when the reply text is kept, goes through serde.
    pub fn openai_event(&mut self, data: &[u8], at: Instant) {
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        if !self.capture
            && let Some(content) = self.memo.read(data)
        {
            if content {
                self.content(at);
            }
            return;
        }
        if !self.capture
            && let Some(fast) = scan_chunk(data)
        {
            if let (Some(span), None, None) = (fast.content_span, fast.finish_reason, fast.usage) {
                self.memo.set(data, span);
            }
            if fast.content {
                self.content(at);
            }
            if let Some(fr) = fast.finish_reason {
                self.finish_reason = Some(fr.to_string());
            }
            if let Some((prompt, completion)) = fast.usage {
                self.usage_output = completion.or(self.usage_output);
                self.usage_input = prompt.or(self.usage_input);
            }
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<OaChunk>(data) else {
            self.bad_chunks += 1;
            return;
        };
        if let Some(e) = chunk.error {
            self.error = Some(error_text(&e));
        }
        if let Some(c) = chunk.choices.first() {
            let text = c.text.as_deref().or_else(|| c.delta.as_ref().and_then(|d| d.content.as_deref()));
            if let Some(t) = text.filter(|t| !t.is_empty()) {
                self.content(at);
                if self.capture {
                    self.text.push_str(t);
                }
            }
            if let Some(fr) = &c.finish_reason {
                self.finish_reason = Some(fr.to_string());
            }
        }
        if let Some(u) = chunk.usage {
            self.usage_output = u.completion_tokens.or(self.usage_output);
            self.usage_input = u.prompt_tokens.or(self.usage_input);
        }
    }

    /// A whole non-streamed OpenAI response body.
    pub fn openai_body(&mut self, body: &[u8]) {
        let Ok(chunk) = serde_json::from_slice::<OaChunk>(body) else {
            self.bad_chunks += 1;
            return;
        };
        if let Some(e) = chunk.error {
            self.error = Some(error_text(&e));
        }
        if let Some(c) = chunk.choices.first() {
            let text = c.text.as_deref().or_else(|| c.message.as_ref().and_then(|d| d.content.as_deref()));
            self.text_words = text.map(|t| t.split_whitespace().count() as u64).unwrap_or(0);
            if self.capture {
                self.text.push_str(text.unwrap_or_default());
            }
            self.finish_reason = c.finish_reason.as_ref().map(|s| s.to_string());
        }
        if let Some(u) = chunk.usage {
            self.usage_output = u.completion_tokens;
            self.usage_input = u.prompt_tokens;
        }
        self.done = true;
    }

    /// One NDJSON line from Ollama (streamed, or the whole non-streamed body).
    pub fn ollama_line(&mut self, line: &[u8], at: Option<Instant>) {
        let Ok(l) = serde_json::from_slice::<OllamaLine>(line) else {
            self.bad_chunks += 1;
            return;
        };
        if let Some(e) = l.error {
            self.error = Some(error_text(&e));
        }
        let text = l.response.as_deref().or_else(|| l.message.as_ref().and_then(|m| m.content.as_deref()));
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            if self.capture {
                self.text.push_str(t);
            }
            match at {
                Some(at) => self.content(at),
                None => self.text_words = t.split_whitespace().count() as u64,
            }
        }
        if l.done {
            self.done = true;
            self.usage_output = l.eval_count;
            self.usage_input = l.prompt_eval_count;
            self.finish_reason = l.done_reason.map(|s| s.to_string());
        }
    }

    /// Output tokens and whether they came from the server's usage.
    pub fn output_tokens(&self) -> (u64, bool) {
        match self.usage_output {
            Some(n) => (n, true),
            None if self.content_chunks > 0 => (self.content_chunks, false),
            None => (self.text_words, false),
        }
    }
}

fn error_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.get("message").and_then(|m| m.as_str()).map(str::to_string).unwrap_or_else(|| other.to_string()),
    }
}

/// Which parser a response body goes through.
pub fn is_ndjson(api: Api) -> bool {
    matches!(api, Api::OllamaGenerate | Api::OllamaChat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        // The repository's fixtures, shared with the end-to-end tests.
        std::fs::read(format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn events(pieces: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for piece in pieces {
            p.feed(piece, &mut |d| out.push(String::from_utf8_lossy(d).into_owned()));
        }
        out
    }

    fn account(body: &[u8], split: usize) -> Tokens {
        let mut p = SseParser::default();
        let mut t = Tokens::default();
        let now = Instant::now();
        for piece in body.chunks(split.max(1)) {
            p.feed(piece, &mut |d| t.openai_event(d, now));
        }
        t
    }

    #[test]
    fn real_vllm_streams_at_every_split() {
        for (name, chunks, usage) in
            [("vllm-0.32-cpu-completions-stream.txt", 6, 6), ("vllm-0.32-cpu-chat-stream.txt", 6, 6)]
        {
            let body = fixture(name);
            let whole = account(&body, body.len());
            // Every split point, as one-byte pieces and as two pieces.
            for split in [1, 2, 3, 7, 64] {
                let t = account(&body, split);
                assert_eq!(t.content_chunks, whole.content_chunks, "{name} split {split}");
            }
            for cut in 1..body.len() {
                let mut p = SseParser::default();
                let mut t = Tokens::default();
                let now = Instant::now();
                p.feed(&body[..cut], &mut |d| t.openai_event(d, now));
                p.feed(&body[cut..], &mut |d| t.openai_event(d, now));
                assert_eq!(t.content_chunks, chunks, "{name} cut at {cut}");
                assert!(t.done, "{name} cut at {cut}: [DONE] seen");
                assert_eq!(t.usage_output, Some(usage));
                assert_eq!(t.bad_chunks, 0);
            }
            assert_eq!(whole.content_chunks, chunks, "{name}: the role-only first chat chunk is not content");
            assert_eq!(whole.finish_reason.as_deref(), Some("length"));
            assert_eq!(whole.itl_us.len(), chunks as usize - 1);
        }
    }

    #[test]
    fn keepalive_comments_crlf_and_multiline_data() {
        let ev = events(&[b": keep-alive\r\n\r\ndata: a\r\n", b"data: b\r", b"\n\r\n: ping\n\ndata:c\n\n"]);
        assert_eq!(ev, vec!["a\nb".to_string(), "c".to_string()]);
        let ev = events(&[b"event: x\nid: 3\ndata: [DONE]\n\n"]);
        assert_eq!(ev, vec!["[DONE]".to_string()]);
        // A lone CR ends a line too.
        let ev = events(&[b"data: q\r\r"]);
        assert_eq!(ev, vec!["q".to_string()]);
    }

    /// The one-pass reader and serde (what `capture` uses) read a chunk alike.
    fn agree(c: &[u8]) {
        agree_in_turn(&[c]);
    }

    #[test]
    fn scanner_agrees_with_serde() {
        let chunks: Vec<&[u8]> = vec![
            br#"{"choices":[{"index":0,"text":" a","finish_reason":null}]}"#,
            br#"{"choices":[{"index":0,"text":"","finish_reason":null}]}"#,
            br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            br#"{"choices":[{"index":0,"delta":{"content":"say \"text\":\"x\""},"finish_reason":"stop"}]}"#,
            br#"{"choices":[{"index":0,"delta":{"content":null},"finish_reason":"length"}]}"#,
            br#"{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"},"finish_reason":null}]}"#,
            // A key's name inside a value is not the key.
            br#"{"id":"\"usage\":{\"completion_tokens\":9}","choices":[{"text":"\"text\":\"\"","finish_reason":null}]}"#,
            br#"{"choices":[{"text":"usage"}],"model":"error"}"#,
            // text present (even empty) wins over delta; null text falls back to delta.
            br#"{"choices":[{"text":"","delta":{"content":"x"}}]}"#,
            br#"{"choices":[{"text":null,"delta":{"content":"x"}}]}"#,
            br#"{"choices":[{"delta":null,"text":"y"}]}"#,
            // Only the first choice counts.
            br#"{"choices":[{"text":""},{"text":"second"}]}"#,
            br#"{"choices":[{"text":"a","logprobs":{"tokens":["a"],"token_logprobs":[-0.5],"top_logprobs":[{"a":-0.5}]}}]}"#,
            // Usage, alone and with content; nulls and missing fields.
            br#"{"id":"x","choices":[],"usage":{"prompt_tokens":14,"total_tokens":20,"completion_tokens":6}}"#,
            br#"{"choices":[{"text":"z","finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":null}}"#,
            br#"{"choices":[],"usage":null}"#,
            br#"{"choices":[],"usage":{"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":2}}}"#,
            br#"{"choices":[],"usage":{"completion_tokens":7.0}}"#,
            br#"{"choices":[],"usage":{"completion_tokens":-1}}"#,
            // Errors in the stream.
            br#"{"error":{"message":"boom","code":500}}"#,
            br#"{"object":"error","message":"bad","choices":[{"text":"q"}]}"#,
            // Whitespace, unicode and escapes.
            b" { \"choices\" : [ { \"text\" : \"\\u00e9\\n\" , \"finish_reason\" : \"stop\" } ] } ",
            "{\"choices\":[{\"text\":\"\u{e9}t\u{e9}\"}]}".as_bytes(),
            br#"{"choices":[{"text":"a","finish_reason":"st\"op"}]}"#,
            br#"{"choi\"ces":[{"text":"a"}]}"#,
            // Not valid JSON, or not this shape: bad chunks either way.
            br#"{"choices":[{"text":"a"}]"#,
            br#"{"choices":[{"text":"a"}]}}"#,
            br#"{"choices":[{"text":"a"]}"#,
            br#"{"choices":{"text":"a"}}"#,
            br#"{"choices":[{"text":"a","index":nul}]}"#,
            br#"{"choices":[{"text":"a","index":0x}]}"#,
            br#"{"choices":[{"text":1}]}"#,
            br#"{"choices":[{"text":"a", }]}"#,
            br#"[1,2]"#,
            br#"not json"#,
            b"",
            // Repeated members, a bad later choice, numbers and strings JSON refuses.
            br#"{"choices":[],"choices":[{"text":"a"}]}"#,
            br#"{"choices":[{"text":"a","text":"b"}]}"#,
            br#"{"choices":[{"text":"a","finish_reason":"stop","finish_reason":null}]}"#,
            br#"{"choices":[],"usage":{"completion_tokens":1,"completion_tokens":2}}"#,
            br#"{"choices":[{"text":""},{"text":5}]}"#,
            br#"{"choices":[{"text":"a"},{"text":"b","finish_reason":"stop"}]}"#,
            br#"{"choices":[{"text":"a","message":{"content":3}}]}"#,
            br#"{"choices":[{"text":"a","message":{"content":"m"}}]}"#,
            br#"{"choices":[{"text":"a","index":01}]}"#,
            br#"{"choices":[{"text":"a","index":1.}]}"#,
            br#"{"choices":[{"text":"a","index":-}]}"#,
            br#"{"choices":[{"text":"a","index":-0.5e+3}]}"#,
            br#"{"choices":[],"usage":{"completion_tokens":01}}"#,
            br#"{"choices":[{"text":"a\qb"}]}"#,
            br#"{"choices":[{"text":"\u00e9"}]}"#,
            b"{\"choices\":[{\"text\":\"a\tb\"}]}",
            b"{\"choices\":[{\"text\":\"a\x01b\"}]}",
            b"{\"choices\":[{\"text\":\"\xff\"}]}",
            b"{\"choices\":[{\"text\":\"a\"}],\"id\":\"\xff\"}",
        ];
        let deep = format!("{{\"choices\":[{{\"text\":\"a\",\"x\":{}{}}}]}}", "[".repeat(200), "]".repeat(200));
        agree(deep.as_bytes());
        for c in chunks {
            agree(c);
        }
        // Every content chunk of the real vLLM streams, and every prefix of one.
        for name in ["vllm-0.32-cpu-completions-stream.txt", "vllm-0.32-cpu-chat-stream.txt"] {
            let body = fixture(name);
            let mut datas = Vec::new();
            SseParser::default().feed(&body, &mut |d| datas.push(d.to_vec()));
            for d in &datas {
                // The real chunks take the one-pass path, not serde.
                assert!(d == b"[DONE]" || scan_chunk(d).is_some(), "{name}: {}", String::from_utf8_lossy(d));
                agree(d);
                for cut in 0..d.len() {
                    agree(&d[..cut]);
                }
            }
        }
    }

    /// Reads `chunks` in turn, fast (with the memo) and through serde.
    fn agree_in_turn(chunks: &[&[u8]]) {
        let now = Instant::now();
        let mut fast = Tokens::default();
        let mut slow = Tokens { capture: true, ..Tokens::default() };
        for (i, c) in chunks.iter().enumerate() {
            fast.openai_event(c, now);
            slow.openai_event(c, now);
            let what = format!("chunk {i}: {}", String::from_utf8_lossy(c));
            assert_eq!(fast.content_chunks, slow.content_chunks, "content: {what}");
            assert_eq!(fast.finish_reason, slow.finish_reason, "finish_reason: {what}");
            assert_eq!((fast.usage_input, fast.usage_output), (slow.usage_input, slow.usage_output), "usage: {what}");
            assert_eq!((&fast.error, fast.bad_chunks), (&slow.error, slow.bad_chunks), "error: {what}");
        }
    }

    #[test]
    fn a_remembered_chunk_reads_like_a_full_read() {
        let base: &[u8] = br#"{"id":"x","choices":[{"index":0,"text":" a","logprobs":null,"finish_reason":null}]}"#;
        let followers: Vec<&[u8]> = vec![
            br#"{"id":"x","choices":[{"index":0,"text":" b","logprobs":null,"finish_reason":null}]}"#,
            br#"{"id":"x","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":null}]}"#,
            br#"{"id":"x","choices":[{"index":0,"text":"\n\"q\"","logprobs":null,"finish_reason":null}]}"#,
            br#"{"id":"x","choices":[{"index":0,"text":"\u0041","logprobs":null,"finish_reason":null}]}"#,
            b"{\"id\":\"x\",\"choices\":[{\"index\":0,\"text\":\"a\x01\",\"logprobs\":null,\"finish_reason\":null}]}",
            b"{\"id\":\"x\",\"choices\":[{\"index\":0,\"text\":\"\xff\",\"logprobs\":null,\"finish_reason\":null}]}",
            // The same around the text, but the end differs: read in full.
            br#"{"id":"x","choices":[{"index":0,"text":" b","logprobs":null,"finish_reason":"stop"}]}"#,
            br#"{"id":"x","choices":[{"index":0,"text":" b","logprobs":null,"finish_reason":null}]"#,
            br#"{"id":"x","choices":[{"index":0,"text":" b","logprobs":null,"finish_reason":null}]}}"#,
            br#"{"id":"x","choices":[{"index":0,"text":" b","logprobs":null,"finish_reason":null}],"usage":{"completion_tokens":3}}"#,
            // Text that holds the remembered end, then more.
            br#"{"id":"x","choices":[{"index":0,"text":" b","logprobs":null,"finish_reason":null}]}","logprobs":null,"finish_reason":null}]}"#,
            // Shorter than the remembered start, or another start.
            br#"{"id":"x"}"#,
            br#"{"id":"y","choices":[{"index":0,"text":" b","logprobs":null,"finish_reason":null}]}"#,
            br#"{"id":"x","choices":[{"index":0,"text":null,"logprobs":null,"finish_reason":null}]}"#,
            br#"{"id":"x","choices":[{"index":0,"text": " b","logprobs":null,"finish_reason":null}]}"#,
        ];
        for f in &followers {
            agree_in_turn(&[base, f, base, f]);
        }
        // The first follower is read through the memo, the changed end is not.
        let mut t = Tokens::default();
        t.openai_event(base, Instant::now());
        assert_eq!(t.memo.read(followers[0]), Some(true));
        assert_eq!(t.memo.read(followers[1]), Some(false));
        assert_eq!(t.memo.read(followers[6]), None);
        // Chat: the content string is remembered the same way.
        let chat: &[u8] = br#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#;
        agree_in_turn(&[
            chat,
            br#"{"id":"c","choices":[{"index":0,"delta":{"content":""},"finish_reason":null}]}"#,
            br#"{"id":"c","choices":[{"index":0,"delta":{"content":"yo"},"finish_reason":null,"text":"x"}]}"#,
            br#"{"id":"c","choices":[{"index":0,"delta":{"content":"yo"},"finish_reason":null}]}"#,
        ]);
        // A whole real stream, chunk by chunk.
        for name in ["vllm-0.32-cpu-completions-stream.txt", "vllm-0.32-cpu-chat-stream.txt"] {
            let mut datas = Vec::new();
            SseParser::default().feed(&fixture(name), &mut |d| datas.push(d.to_vec()));
            agree_in_turn(&datas.iter().map(|d| &d[..]).collect::<Vec<_>>());
        }
    }

    #[test]
    fn error_inside_stream() {
        let mut t = Tokens::default();
        t.openai_event(br#"{"error": {"message": "boom", "code": 500}}"#, Instant::now());
        assert_eq!(t.error.as_deref(), Some("boom"));
    }

    #[test]
    fn ndjson_lines_across_pieces() {
        let mut s = LineSplitter::default();
        let mut t = Tokens::default();
        let now = Instant::now();
        let body = b"{\"response\":\" a\",\"done\":false}\n{\"response\":\" b\",\"done\":false}\n{\"response\":\"\",\"done\":true,\"eval_count\":2,\"prompt_eval_count\":4,\"done_reason\":\"length\"}\n";
        for piece in body.chunks(5) {
            s.feed(piece, &mut |l| t.ollama_line(l, Some(now)));
        }
        assert_eq!(t.content_chunks, 2);
        assert!(t.done);
        assert_eq!(t.output_tokens(), (2, true));
        assert_eq!(t.usage_input, Some(4));
    }

    #[test]
    fn non_streamed_body() {
        let mut t = Tokens::default();
        t.openai_body(&fixture("vllm-0.32-cpu-completions.json"));
        assert_eq!(t.output_tokens(), (5, true));
        assert_eq!(t.usage_input, Some(10));
    }
}
