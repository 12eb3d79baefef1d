//! What a request is to the engine, and what comes back to its stream: the
//! types the HTTP side, the engine and the metrics share.

use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    Abort,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Abort => "abort",
        }
    }
}

/// What a request's stream receives from the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// One output token; the last one carries the finish reason.
    Token(Option<FinishReason>),
    /// Ended without a last token (server shutting down).
    Aborted,
}

/// A request handed to the engine.
pub struct GenRequest {
    pub arrival: Instant,
    /// Prompt token ids then the output's, when prefix caching is on
    /// (empty otherwise).
    pub tokens: Vec<u32>,
    pub prompt_tokens: u32,
    /// Output length this request will have (already decided from max_tokens,
    /// min_tokens, ignore_eos and the seeded EOS draw).
    pub target_tokens: u32,
    /// Reason reported with the last token.
    pub reason: FinishReason,
    pub max_tokens: u32,
    pub events: UnboundedSender<Event>,
}
