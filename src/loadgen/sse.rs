//! Streaming response parsing: Server-Sent Events (OpenAI / vLLM) and NDJSON
//! (Ollama), fed with body pieces in whatever split they arrive, and the
//! token accounting on top (vLLM's benchmark definitions).

use std::borrow::Cow;
use std::time::Instant;

use serde::Deserialize;

use super::spec::Api;

/// Incremental SSE parser (WHATWG rules): lines end in LF, CRLF or CR; an
/// event is dispatched at a blank line; `:` lines are comments (keep-alives);
/// only `data` fields matter here.
#[derive(Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    last_cr: bool,
}

impl SseParser {
    /// Feeds bytes; calls `on_event` with each complete event's data.
    pub fn feed(&mut self, mut bytes: &[u8], on_event: &mut impl FnMut(&[u8])) {
        while !bytes.is_empty() {
            if self.last_cr && bytes[0] == b'\n' {
                self.last_cr = false;
                bytes = &bytes[1..];
                continue;
            }
            self.last_cr = false;
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.line.extend_from_slice(bytes);
                    return;
                }
                Some(i) => {
                    self.line.extend_from_slice(&bytes[..i]);
                    self.last_cr = bytes[i] == b'\r';
                    bytes = &bytes[i + 1..];
                    self.end_line(on_event);
                }
            }
        }
    }

    fn end_line(&mut self, on_event: &mut impl FnMut(&[u8])) {
        if self.line.is_empty() {
            if self.has_data {
                if self.data.last() == Some(&b'\n') {
                    self.data.pop();
                }
                on_event(&self.data);
                self.data.clear();
                self.has_data = false;
            }
            return;
        }
        if self.line[0] != b':' {
            let (name, value) = match self.line.iter().position(|&b| b == b':') {
                Some(c) => {
                    let v = &self.line[c + 1..];
                    (&self.line[..c], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (&self.line[..], &b""[..]),
            };
            if name == b"data" {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.has_data = true;
            }
        }
        self.line.clear();
    }
}

/// Splits NDJSON into lines, across pieces.
#[derive(Default)]
pub struct LineSplitter {
    line: Vec<u8>,
}

impl LineSplitter {
    pub fn feed(&mut self, mut bytes: &[u8], on_line: &mut impl FnMut(&[u8])) {
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
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
        self.line.extend_from_slice(bytes);
    }

    pub fn rest(&self) -> &[u8] {
        &self.line
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
    }

    fn content(&mut self, at: Instant) {
        match self.last {
            None => self.first = Some(at),
            Some(prev) => self.itl_us.push(at.saturating_duration_since(prev).as_micros() as u64),
        }
        self.last = Some(at);
        self.content_chunks += 1;
    }

    /// One SSE event's data from an OpenAI-style stream.
    pub fn openai_event(&mut self, data: &[u8], at: Instant) {
        if data == b"[DONE]" {
            self.done = true;
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
            if text.is_some_and(|t| !t.is_empty()) {
                self.content(at);
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
        std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
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
