//! The wire formats of the four dialects (OpenAI completions and chat,
//! Ollama generate and chat): each request's chunks as the real servers
//! write them, streamed as the engine emits tokens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use super::admission::Plan;
use super::{AppState, FINGERPRINT};
use crate::sim::request::{Event, FinishReason};

/// The four response dialects the simulator streams.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Completions,
    Chat,
    OllamaGenerate,
    OllamaChat,
}

/// Formats one request's chunks; the fixed parts are built once.
pub(super) struct Formatter {
    pub(super) dialect: Dialect,
    /// The response id's number (after `cmpl-` / `chatcmpl-`).
    pub(super) id: String,
    /// Unix seconds, for OpenAI's `created`.
    pub(super) created: u64,
    pub(super) head: String,
    /// The served model name, raw and JSON-encoded.
    pub(super) model: String,
    pub(super) model_json: Arc<str>,
    pub(super) seed: u64,
    /// Output text comes from its single-token words.
    pub(super) tokenizer: crate::sim::tokens::SimTokenizer,
    pub(super) number: u64,
    pub(super) prompt_tokens: u32,
    pub(super) include_usage: bool,
    pub(super) created_iso: String,
    pub(super) started: Instant,
    pub(super) first_at: Option<Instant>,
}

impl Formatter {
    pub(super) fn new(st: &AppState, dialect: Dialect, plan: &Plan, include_usage: bool) -> Formatter {
        let model = &st.model_json;
        let created = crate::clock::now() as u64;
        let id = format!("{:016x}", plan.number.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ st.created);
        let head = match dialect {
            Dialect::Completions => {
                format!(
                    r#"{{"id":"cmpl-{id}","object":"text_completion","created":{created},"model":{model},"choices":["#
                )
            }
            Dialect::Chat => {
                format!(
                    r#"{{"id":"chatcmpl-{id}","object":"chat.completion.chunk","created":{created},"model":{model},"choices":["#
                )
            }
            _ => String::new(),
        };
        Formatter {
            dialect,
            id,
            created,
            head,
            model: st.cfg.model.clone(),
            model_json: st.model_json.clone(),
            seed: st.cfg.seed,
            tokenizer: st.cfg.tokenizer.clone(),
            number: plan.number,
            prompt_tokens: plan.prompt_tokens,
            include_usage,
            created_iso: crate::clock::now_iso(),
            started: Instant::now(),
            first_at: None,
        }
    }

    pub(super) fn word(&self, i: u32) -> &str {
        self.tokenizer.piece(self.seed, self.number, i).0
    }

    /// The chat stream's first chunk: the role, before any token.
    pub(super) fn role_chunk(&self, out: &mut String) {
        if self.dialect == Dialect::Chat {
            out.push_str("data: ");
            out.push_str(&self.head);
            out.push_str(r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}"#);
            out.push_str("\n\n");
        }
    }

    pub(super) fn token(&mut self, out: &mut String, i: u32, finish: Option<FinishReason>) {
        if self.first_at.is_none() {
            self.first_at = Some(Instant::now());
        }
        let w = self.word(i);
        let fr = match finish {
            None => "null",
            Some(FinishReason::Stop) => "\"stop\"",
            Some(FinishReason::Length) => "\"length\"",
            Some(FinishReason::Abort) => "\"abort\"",
        };
        match self.dialect {
            Dialect::Completions => {
                out.push_str("data: ");
                out.push_str(&self.head);
                out.push_str(r#"{"index":0,"text":" "#);
                out.push_str(w);
                out.push_str(r#"","logprobs":null,"finish_reason":"#);
                out.push_str(fr);
                out.push_str(r#","stop_reason":null,"prompt_token_ids":null,"token_ids":null}]}"#);
                out.push_str("\n\n");
            }
            Dialect::Chat => {
                out.push_str("data: ");
                out.push_str(&self.head);
                out.push_str(r#"{"index":0,"delta":{"content":" "#);
                out.push_str(w);
                out.push_str(r#""},"logprobs":null,"finish_reason":"#);
                out.push_str(fr);
                if finish.is_some() {
                    out.push_str(r#","stop_reason":null"#);
                }
                out.push_str(r#","token_ids":null}]}"#);
                out.push_str("\n\n");
            }
            Dialect::OllamaGenerate => {
                out.push_str(r#"{"model":"#);
                out.push_str(&self.model_json);
                out.push_str(r#","created_at":""#);
                out.push_str(&self.created_iso);
                out.push_str(r#"","response":" "#);
                out.push_str(w);
                out.push_str("\",\"done\":false}\n");
            }
            Dialect::OllamaChat => {
                out.push_str(r#"{"model":"#);
                out.push_str(&self.model_json);
                out.push_str(r#","created_at":""#);
                out.push_str(&self.created_iso);
                out.push_str(r#"","message":{"role":"assistant","content":" "#);
                out.push_str(w);
                out.push_str("\"},\"done\":false}\n");
            }
        }
    }

    pub(super) fn ollama_stats(&self, completion: u32) -> Value {
        let now = Instant::now();
        let first = self.first_at.unwrap_or(now);
        json!({
            "total_duration": now.duration_since(self.started).as_nanos() as u64,
            "load_duration": 0,
            "prompt_eval_count": self.prompt_tokens,
            "prompt_eval_duration": first.duration_since(self.started).as_nanos() as u64,
            "eval_count": completion,
            "eval_duration": now.duration_since(first).as_nanos() as u64,
        })
    }

    /// Ollama's last object: the finish, the whole output (empty when it was
    /// streamed) and the timings.
    pub(super) fn ollama_final(&self, content: &str, completion: u32, reason: FinishReason) -> Value {
        let mut v =
            json!({"model": self.model, "created_at": self.created_iso, "done": true, "done_reason": reason.as_str()});
        if self.dialect == Dialect::OllamaGenerate {
            v["response"] = json!(content);
            v["context"] = json!([]);
        } else {
            v["message"] = json!({"role": "assistant", "content": content});
        }
        if let (Value::Object(a), Value::Object(b)) = (&mut v, self.ollama_stats(completion)) {
            a.extend(b);
        }
        v
    }

    /// After the last token: usage (when asked) and `[DONE]`, or Ollama's final line.
    pub(super) fn tail(&self, out: &mut String, completion: u32, reason: FinishReason) {
        match self.dialect {
            Dialect::Completions | Dialect::Chat => {
                if reason == FinishReason::Abort {
                    out.push_str("data: ");
                    out.push_str(&self.head);
                    out.push_str(
                        r#"{"index":0,"text":"","logprobs":null,"finish_reason":"abort","stop_reason":null}]}"#,
                    );
                    out.push_str("\n\n");
                }
                if self.include_usage {
                    out.push_str("data: ");
                    out.push_str(&self.head);
                    out.push_str(&format!(
                        r#"],"usage":{{"prompt_tokens":{p},"total_tokens":{t},"completion_tokens":{c}}},"system_fingerprint":"{FINGERPRINT}"}}"#,
                        p = self.prompt_tokens,
                        t = self.prompt_tokens + completion,
                        c = completion
                    ));
                    out.push_str("\n\n");
                }
                out.push_str("data: [DONE]\n\n");
            }
            Dialect::OllamaGenerate | Dialect::OllamaChat => {
                out.push_str(&self.ollama_final("", completion, reason).to_string());
                out.push('\n');
            }
        }
    }
}

pub(super) struct StreamState {
    pub(super) rx: UnboundedReceiver<Event>,
    pub(super) fmt: Formatter,
    pub(super) sent: u32,
    pub(super) done: bool,
    pub(super) buf: Vec<Event>,
    pub(super) pos: usize,
    pub(super) disconnect_after: Option<u32>,
    pub(super) stall_after: Option<u32>,
    pub(super) stall: Duration,
    pub(super) pending_error: bool,
    pub(super) pending_stall: bool,
    pub(super) prelude: Option<String>,
}

impl StreamState {
    pub(super) fn new(st: &AppState, rx: UnboundedReceiver<Event>, fmt: Formatter, plan: &Plan) -> StreamState {
        StreamState {
            rx,
            fmt,
            sent: 0,
            done: false,
            buf: Vec::with_capacity(64),
            pos: 0,
            disconnect_after: plan.disconnect_after,
            stall_after: plan.stall_after,
            stall: st.cfg.faults.stall,
            pending_error: false,
            pending_stall: false,
            prelude: None,
        }
    }

    /// Appends what is ready (at least one event) to `out`.
    pub(super) async fn next_chunk(&mut self, out: &mut String) {
        if self.pending_stall {
            self.pending_stall = false;
            tokio::time::sleep(self.stall).await;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.rx.recv_many(&mut self.buf, 512).await == 0 {
                // Engine gone: end the stream cleanly.
                self.fmt.tail(out, self.sent, FinishReason::Abort);
                self.done = true;
                return;
            }
        }
        while self.pos < self.buf.len() {
            let ev = self.buf[self.pos];
            self.pos += 1;
            match ev {
                Event::Token(fin) => {
                    self.fmt.token(out, self.sent, fin);
                    self.sent += 1;
                    if let Some(r) = fin {
                        self.fmt.tail(out, self.sent, r);
                        self.done = true;
                        return;
                    }
                    if self.disconnect_after == Some(self.sent) {
                        self.pending_error = true;
                        return;
                    }
                    if self.stall_after == Some(self.sent) {
                        self.pending_stall = true;
                        return;
                    }
                }
                Event::Aborted => {
                    self.fmt.tail(out, self.sent, FinishReason::Abort);
                    self.done = true;
                    return;
                }
            }
        }
    }
}

pub(super) fn disconnect_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "simulated disconnect (--disconnect-rate)")
}

/// Streams engine events as body chunks, coalescing what is ready into one write.
pub(super) fn body_stream(s: StreamState) -> Body {
    let stream = futures_util::stream::unfold(Some(s), |state| async move {
        let mut s = state?;
        if let Some(p) = s.prelude.take() {
            return Some((Ok(Bytes::from(p)), Some(s)));
        }
        if s.pending_error {
            // Let the bytes already yielded reach the socket, then drop it.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Some((Err(disconnect_error()), None));
        }
        if s.done {
            return None;
        }
        let mut out = String::with_capacity(512);
        s.next_chunk(&mut out).await;
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(out)), Some(s)))
    });
    Body::from_stream(stream)
}

pub(super) fn streaming(content_type: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Waits for the whole output (non-streaming requests). `None` = disconnect fault.
pub(super) async fn collect(s: &mut StreamState) -> Option<(u32, FinishReason, String)> {
    let mut text = String::new();
    loop {
        if s.pending_stall {
            s.pending_stall = false;
            tokio::time::sleep(s.stall).await;
        }
        let ev = s.rx.recv().await.unwrap_or(Event::Aborted);
        match ev {
            Event::Token(fin) => {
                text.push(' ');
                text.push_str(s.fmt.word(s.sent));
                if s.fmt.first_at.is_none() {
                    s.fmt.first_at = Some(Instant::now());
                }
                s.sent += 1;
                if let Some(r) = fin {
                    return Some((s.sent, r, text));
                }
                if s.disconnect_after == Some(s.sent) {
                    return None;
                }
                if s.stall_after == Some(s.sent) {
                    s.pending_stall = true;
                }
            }
            Event::Aborted => return Some((s.sent, FinishReason::Abort, text)),
        }
    }
}

pub(super) fn broken_body() -> Response {
    let stream = futures_util::stream::once(async { Err::<Bytes, std::io::Error>(disconnect_error()) });
    streaming("application/json", Body::from_stream(stream))
}

pub(super) fn usage(prompt: u32, completion: u32) -> Value {
    json!({"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion,
        "prompt_tokens_details": null, "completion_tokens_details": null})
}
