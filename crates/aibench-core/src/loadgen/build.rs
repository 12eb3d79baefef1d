//! Requests built as they are sent: the framing every request shares (the
//! path and headers per target, the API's body), and a trace's prompts,
//! made from its hash ids so that equal ids are equal token blocks.

use std::sync::Arc;

use serde_json::Value;

use super::dataset::body_for;
use super::http1::{Endpoint, format_request};
use super::spec::{Api, BenchSpec};
use crate::datasets::trace::{Entry, Trace};
use crate::tokenize::prompts::PromptMaker;
use crate::typed::FieldError;

/// The path requests go to: the spec's, the URL's own, or the API's.
pub(super) fn target_path(spec: &BenchSpec, ep: &Endpoint) -> String {
    if let Some(p) = &spec.target.path {
        return p.clone();
    }
    if ep.path != "/" && !ep.path.is_empty() {
        return ep.path.clone();
    }
    spec.target.api.default_path().to_string()
}

/// Turns a prompt into the request bytes for one target.
pub(super) struct Framer {
    api: Api,
    model: Option<String>,
    stream: bool,
    ignore_eos: bool,
    headers: Vec<(String, String)>,
    paths: Vec<String>,
    endpoints: Vec<Endpoint>,
}

impl Framer {
    pub(super) fn new(spec: &BenchSpec, endpoints: &[Endpoint]) -> Framer {
        let mut headers: Vec<(String, String)> =
            spec.target.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        Framer {
            api: spec.target.api,
            model: spec.target.model.clone(),
            stream: spec.target.stream,
            ignore_eos: spec.target.ignore_eos,
            headers,
            paths: endpoints.iter().map(|ep| target_path(spec, ep)).collect(),
            endpoints: endpoints.to_vec(),
        }
    }

    /// A request whose body is already JSON bytes.
    pub(super) fn frame_body(&self, target: usize, body: &[u8]) -> Vec<u8> {
        format_request("POST", &self.paths[target], &self.endpoints[target], &self.headers, body)
    }

    /// A request for `prompt` (text, token ids or chat messages).
    pub(super) fn frame(&self, target: usize, prompt: &Value, output: u64) -> Vec<u8> {
        let body = body_for(self.api, self.model.as_deref(), prompt, output, self.stream, self.ignore_eos);
        self.frame_body(target, &serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// A trace's requests: entry `seq mod len`, its prompt made of one block
/// per hash id (the same words for the same id, in every request) and
/// blocks of its own beyond them.
pub(super) struct TracePrompts {
    pub(super) trace: Arc<Trace>,
    maker: PromptMaker,
    framer: Framer,
}

/// Seeds of blocks no other request shares (beyond a line's hash ids).
const OWN_BLOCK: u64 = 1 << 63;

impl TracePrompts {
    pub(super) fn new(trace: Arc<Trace>, maker: PromptMaker, framer: Framer) -> Result<TracePrompts, FieldError> {
        // The trace's hash ids are the shared blocks; no one field asks for
        // them (the text names `dataset.type = "trace"`).
        super::dataset::need_additive(&maker)
            .map_err(|e| FieldError::new("", format!("dataset.type = \"trace\": {e}")))?;
        if trace.block_size as usize <= maker.fixed() {
            return Err(FieldError::new(
                "dataset.block_size",
                format!(
                    "{} tokens is not more than the {} the server adds to every prompt",
                    trace.block_size,
                    maker.fixed()
                ),
            ));
        }
        Ok(TracePrompts { trace, maker, framer })
    }

    /// The prompt tokens entry `e` asks (at least the server's own and one word).
    pub(super) fn asked(&self, e: &Entry) -> u64 {
        (e.input as u64).max(self.maker.fixed() as u64 + 1)
    }

    /// Entry `line`'s prompt: `input_length` tokens exactly, the first
    /// block counting the tokens the server adds.
    pub(super) fn prompt(&self, line: usize) -> String {
        let e = &self.trace.entries[line];
        let ids = self.trace.hashes(e);
        let bs = self.trace.block_size as usize;
        let fixed = self.maker.fixed();
        let mut left = self.asked(e) as usize - fixed;
        let mut text = String::with_capacity(left * 6);
        let mut k = 0usize;
        while left > 0 {
            let room = if k == 0 { bs - fixed } else { bs };
            let budget = room.min(left);
            let seed = match ids.get(k) {
                Some(id) => *id as u64,
                None => OWN_BLOCK | ((line as u64) << 20) | k as u64,
            };
            text.push_str(&self.maker.block(budget, seed, k == 0));
            left -= budget;
            k += 1;
        }
        text
    }

    /// Request `seq`'s bytes for `target`, and (prompt, output) asked.
    pub(super) fn request(&self, seq: u64, target: usize) -> (Vec<u8>, (u64, u64)) {
        let line = (seq % self.trace.entries.len() as u64) as usize;
        let e = self.trace.entries[line];
        let text = self.prompt(line);
        let bytes = self.framer.frame(target, &Value::String(text), e.output as u64);
        (bytes, (self.asked(&e), e.output as u64))
    }
}
