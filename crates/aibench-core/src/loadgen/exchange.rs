//! One request: the connection, the exchange (one retry on a stale
//! keep-alive connection), the timeout, classification, SLOs, and the
//! per-request log.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::ctx::Ctx;
use super::http1::{BodySink, Conn, ErrorClass, Failure};
use super::spec::{Api, Slo};
use super::sse::{LineSplitter, SseParser, Tokens, is_ndjson};
use super::stats::Record;
use crate::typed::FieldError;

/// Per-task buffers, reused between requests.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) tokens: Tokens,
    pub(super) sse: SseParser,
    pub(super) lines: LineSplitter,
    pub(super) body: Vec<u8>,
    pub(super) err_body: Vec<u8>,
    pub(super) status: u16,
    /// The unstreamed body went past the event limit.
    pub(super) body_over: bool,
}

impl Scratch {
    pub(super) fn reset(&mut self) {
        self.tokens.reset();
        self.sse.reset();
        self.lines.reset();
        self.body.clear();
        self.err_body.clear();
        self.status = 0;
        self.body_over = false;
        if self.body.capacity() > 1 << 20 {
            self.body = Vec::new();
        }
    }
}

pub(super) struct Sink<'a> {
    pub(super) s: &'a mut Scratch,
    pub(super) api: Api,
    pub(super) stream: bool,
    pub(super) llm: bool,
    /// The most one event, line or unstreamed body may hold.
    pub(super) limit: usize,
}

impl BodySink for Sink<'_> {
    fn head(&mut self, status: u16, _at: Instant) {
        self.s.status = status;
    }

    fn data(&mut self, bytes: &[u8], at: Instant) {
        let s = &mut *self.s;
        if !(200..300).contains(&s.status) {
            let room = 512usize.saturating_sub(s.err_body.len());
            s.err_body.extend_from_slice(&bytes[..bytes.len().min(room)]);
        } else if self.llm && self.stream {
            let tokens = &mut s.tokens;
            if is_ndjson(self.api) {
                s.lines.set_limit(self.limit);
                s.lines.feed(bytes, &mut |l| tokens.ollama_line(l, Some(at)));
            } else {
                s.sse.set_limit(self.limit);
                s.sse.feed(bytes, &mut |d| tokens.openai_event(d, at));
            }
        } else if self.llm {
            if s.body.len() + bytes.len() > self.limit {
                s.body_over = true;
                s.body = Vec::new();
            } else if !s.body_over {
                s.body.extend_from_slice(bytes);
            }
        }
    }

    fn failed(&self) -> Option<String> {
        let s = &*self.s;
        (s.sse.overflowed() || s.lines.overflowed() || s.body_over).then(|| {
            let what = if self.stream { "one streamed event or line" } else { "the response body" };
            format!(
                "{what} went past {} bytes without ending (target.max_event_bytes); the response was cut",
                self.limit
            )
        })
    }
}

/// A request the open loop's pacer began to send itself, on the connection
/// it hands over: the bytes that went out, and when.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sent {
    pub(super) written: usize,
    pub(super) at: Instant,
}

/// One request: connection, exchange (one retry on a stale keep-alive
/// connection), timeout, and classification. `pre`: what of it was already
/// sent on `conn` (the open loop's pacer), and when.
#[allow(clippy::too_many_arguments)]
pub(super) async fn exec(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    target: usize,
    (req, meta): (&[u8], (u64, u64)),
    ready: Instant,
    intended: Option<Instant>,
    pre: Option<Sent>,
    scratch: &mut Scratch,
) -> Option<Record> {
    ctx.in_flight.fetch_add(1, Ordering::Relaxed);
    ctx.target_in_flight[target].fetch_add(1, Ordering::Relaxed);
    let mut pre = pre.filter(|_| conn.is_some());
    let mut sent = pre.map_or_else(Instant::now, |p| p.at);
    let mut connect = None;
    let result = tokio::time::timeout(ctx.timeout, async {
        for attempt in 0..2 {
            scratch.reset();
            if conn.is_none() {
                let t0 = Instant::now();
                match Conn::connect(&ctx.endpoints[target]).await {
                    Ok(c) => {
                        connect = Some(t0.elapsed());
                        *conn = Some(c)
                    }
                    Err(f) => return Err(f),
                }
            }
            let c = conn.as_mut().expect("connected");
            let reused = c.requests > 0;
            let written = match pre.take() {
                Some(p) => {
                    sent = p.at;
                    p.written
                }
                None => {
                    sent = Instant::now();
                    0
                }
            };
            let mut sink =
                Sink { s: scratch, api: ctx.api, stream: ctx.stream, llm: ctx.llm, limit: ctx.max_event_bytes };
            match c.exchange_from(req, written, &mut sink).await {
                Ok(fin) => {
                    if fin.close {
                        *conn = None;
                    }
                    return Ok(());
                }
                Err((f, nothing_back)) => {
                    *conn = None;
                    // A kept-alive connection the server had closed: try once more.
                    if nothing_back && reused && attempt == 0 {
                        continue;
                    }
                    return Err(f);
                }
            }
        }
        Err(Failure::new(ErrorClass::Other, "unreachable"))
    })
    .await;
    let done = Instant::now();
    ctx.in_flight.fetch_sub(1, Ordering::Relaxed);
    ctx.target_in_flight[target].fetch_sub(1, Ordering::Relaxed);
    if *ctx.abort.borrow() {
        ctx.unfinished.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let failure = match result {
        Err(_) => {
            *conn = None;
            Some((ErrorClass::Timeout, format!("no complete response within {:.1} s", ctx.timeout.as_secs_f64())))
        }
        Ok(Err(f)) => Some((f.class, f.message)),
        Ok(Ok(())) => classify(ctx, scratch),
    };
    let (output_tokens, from_usage) = scratch.tokens.output_tokens();
    let (input_tokens, input_from_usage) = match scratch.tokens.usage_input {
        Some(n) => (n, true),
        None => (meta.0, false),
    };
    // Whether the server answered at all (a response head arrived).
    let answered = scratch.status != 0;
    let unanswered = failure.as_ref().is_some_and(|(class, _)| !answered && *class != ErrorClass::Timeout);
    ctx.note_reachability(answered, failure.is_none(), unanswered, done);
    let refused = unanswered || (failure.is_some() && scratch.status >= 500);
    let short = ctx.llm && ctx.ignore_eos && failure.is_none() && meta.1 > 0 && output_tokens < meta.1;
    let mut rec = Record {
        intended,
        ready,
        sent,
        done,
        first: scratch.tokens.first,
        last: scratch.tokens.last,
        failure,
        output_tokens: if ctx.llm { output_tokens } else { 0 },
        tokens_from_usage: from_usage,
        input_tokens: if ctx.llm { input_tokens } else { 0 },
        input_from_usage,
        good: false,
        llm: ctx.llm,
        short,
        refused,
        asked_input: meta.0,
        asked_output: meta.1,
        connect,
        turn: None,
    };
    rec.good = rec.failure.is_none() && meets_slo(&ctx.slo, &rec, &scratch.tokens.itl_us);
    Some(rec)
}

/// The largest token count a server's `usage` may report.
const MAX_USAGE_TOKENS: u64 = u32::MAX as u64;

pub(super) fn classify(ctx: &Ctx, s: &mut Scratch) -> Option<(ErrorClass, String)> {
    let status = s.status;
    let excerpt = || {
        let t = String::from_utf8_lossy(&s.err_body).replace('\n', " ");
        if t.is_empty() { String::new() } else { format!(": {}", t.chars().take(200).collect::<String>()) }
    };
    if status >= 500 {
        return Some((ErrorClass::Http5xx, format!("HTTP {status}{}", excerpt())));
    }
    if status >= 400 {
        return Some((ErrorClass::Http4xx, format!("HTTP {status}{}", excerpt())));
    }
    if !(200..300).contains(&status) {
        return Some((ErrorClass::Other, format!("unexpected HTTP {status}")));
    }
    if !ctx.llm {
        return None;
    }
    if !ctx.stream {
        if is_ndjson(ctx.api) {
            s.tokens.ollama_line(&s.body, None);
        } else {
            s.tokens.openai_body(&s.body);
        }
        if s.tokens.bad_chunks > 0 {
            return Some((ErrorClass::Other, "response body is not the expected JSON".into()));
        }
    }
    if let Some(e) = &s.tokens.error {
        return Some((ErrorClass::Other, format!("server error: {e}")));
    }
    // Numbers from outside are range-checked: no model has 2^32 tokens of
    // context, and a count past it would poison every total it joins.
    for (what, v) in [("prompt_tokens", &mut s.tokens.usage_input), ("completion_tokens", &mut s.tokens.usage_output)] {
        if let Some(n) = v.take_if(|n| *n > MAX_USAGE_TOKENS) {
            return Some((
                ErrorClass::Other,
                format!("server usage out of range: {what} {n} (at most {MAX_USAGE_TOKENS})"),
            ));
        }
    }
    if ctx.stream && !s.tokens.done {
        let what = if is_ndjson(ctx.api) { "a final line with done: true" } else { "data: [DONE]" };
        return Some((ErrorClass::StreamBroken, format!("stream ended without {what}")));
    }
    None
}

pub(super) fn meets_slo(slo: &Slo, r: &Record, itl_us: &[u64]) -> bool {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let e2e = ms(r.e2e_end().saturating_duration_since(r.sent));
    if slo.e2e_ms.is_some_and(|l| e2e > l) {
        return false;
    }
    let ttft = r.first.map(|f| ms(f.saturating_duration_since(r.sent))).unwrap_or(e2e);
    if slo.ttft_ms.is_some_and(|l| ttft > l) {
        return false;
    }
    if let Some(l) = slo.tpot_ms
        && r.output_tokens > 1
        && (e2e - ttft) / (r.output_tokens - 1) as f64 > l
    {
        return false;
    }
    if let Some(l) = slo.itl_ms
        && itl_us.iter().any(|g| *g as f64 / 1000.0 > l)
    {
        return false;
    }
    true
}

/// Logs and records a finished request; returns whether it was warmup.
pub(super) fn finish_request(ctx: &Ctx, shard: u64, seq: u64, target: usize, rec: &Record, scratch: &Scratch) -> bool {
    let warmup = seq < ctx.warmup_requests || rec.sent < ctx.origin;
    if let Some(log) = &ctx.log {
        let since = |t: Instant| t.saturating_duration_since(ctx.start).as_secs_f64();
        let us = |a: Instant, b: Instant| b.saturating_duration_since(a).as_micros() as u64;
        let line = serde_json::json!({
            "seq": seq,
            "target": target,
            "warmup": warmup,
            "ok": rec.failure.is_none(),
            "status": scratch.status,
            "error_class": rec.failure.as_ref().map(|f| f.0.name()),
            "error": rec.failure.as_ref().map(|f| f.1.clone()),
            "intended_s": rec.intended.map(since),
            "sent_s": since(rec.sent),
            "queue_us": us(rec.intended.unwrap_or(rec.ready), rec.sent),
            "ttft_us": rec.first.filter(|_| rec.failure.is_none()).map(|f| us(rec.sent, f)),
            "e2e_us": rec.failure.is_none().then(|| us(rec.sent, rec.e2e_end())),
            "output_tokens": rec.output_tokens,
            "input_tokens": rec.input_tokens,
            "input_from_usage": rec.input_from_usage,
            "asked_input_tokens": rec.asked_input,
            "asked_output_tokens": rec.asked_output,
            "connect_us": rec.connect.map(|d| d.as_micros() as u64),
            "turn": rec.turn.map(|t| t + 1),
            "itl_us": if rec.failure.is_none() { scratch.tokens.itl_us.clone() } else { Vec::new() },
        });
        let _ = log.send(Some(line.to_string()));
    }
    let mut sh = ctx.shard(shard);
    if ctx.record_sends
        && let Some(i) = rec.intended
    {
        sh.sends.push((ctx.since_start_us(i), ctx.since_start_us(rec.sent)));
    }
    if warmup {
        ctx.warmup_excluded.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    let itl = if rec.failure.is_none() { &scratch.tokens.itl_us[..] } else { &[] };
    sh.record(rec, itl, ctx.origin);
    drop(sh);
    ctx.note_target(target, rec);
    ctx.live.note(rec);
    false
}

/// What writing the per-request log came to: lines written, and the
/// first error that cut it short (a full disk), if any.
pub(super) type LogOutcome = (u64, Option<String>);

pub(super) type LogWriter = (mpsc::UnboundedSender<Option<String>>, tokio::task::JoinHandle<LogOutcome>);

pub(super) fn start_log_writer(path: &str) -> Result<LogWriter, FieldError> {
    let p = std::path::Path::new(path);
    if path != "-"
        && let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(FieldError::new("per_request_log", format!("folder '{}' does not exist", dir.display())));
    }
    // The output rules of `util::atomic_write`: `-` is standard output,
    // symlinks followed, devices and FIFOs written into (a FIFO without a
    // reader is an error, not a wait), folders and sockets refused.
    let file = crate::util::open_stream(p, crate::util::file_mode(p))
        .map_err(|e| FieldError::new("per_request_log", format!("cannot write '{path}': {e}")))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
    let path = path.to_string();
    let h = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut lines = 0u64;
        let mut error: Option<String> = None;
        while let Some(Some(line)) = rx.blocking_recv() {
            if error.is_some() {
                continue; // keep draining: the run goes on, the log has failed
            }
            match w.write_all(line.as_bytes()).and_then(|_| w.write_all(b"\n")) {
                Ok(()) => lines += 1,
                Err(e) => error = Some(e.to_string()),
            }
        }
        if error.is_none()
            && let Err(e) = w.flush().and_then(|_| w.get_ref().sync_data().or_else(ignore_unsupported))
        {
            error = Some(e.to_string());
        }
        let error = error.map(|e| {
            format!(
                "per_request_log '{path}' is incomplete: writing it failed ({e}); at most {lines} of its lines were written, the last possibly cut"
            )
        });
        (lines, error)
    });
    Ok((tx, h))
}

/// fsync on a device or pipe may be refused (EINVAL): not a write error.
fn ignore_unsupported(e: std::io::Error) -> std::io::Result<()> {
    if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EROFS) { Ok(()) } else { Err(e) }
}
