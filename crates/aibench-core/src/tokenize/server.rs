//! The server as tokenizer: vLLM's `POST /tokenize` (a prompt, or chat
//! messages with the model's template) and `POST /detokenize`, in the shapes
//! of `tests/fixtures/vllm-0.32-cpu-tokenize.txt`.

use std::time::Duration;

use serde_json::{Value, json};

use super::Message;
use crate::httpc;

/// A server that answers `/tokenize` for `model`.
#[derive(Debug, Clone)]
pub struct ServerTokenizer {
    base: String,
    model: String,
    /// As the server reports it.
    pub max_model_len: Option<u64>,
}

impl ServerTokenizer {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.trim_end_matches('/'))
    }

    async fn post(&self, path: &str, body: Value) -> Result<(u16, Value), String> {
        let r = httpc::send(httpc::Request {
            method: reqwest::Method::POST,
            url: self.url(path),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(body.to_string().into_bytes()),
            timeout: Duration::from_secs(60),
        })
        .await
        .map_err(|e| e.message)?;
        let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        Ok((r.status, v))
    }

    /// Asks whether `base` tokenizes for `model`: `None` when it has no
    /// `/tokenize` (404 or 405: Ollama, a generic server), an error when it
    /// answered something else or not at all.
    pub async fn probe(base: &str, model: &str) -> Result<Option<ServerTokenizer>, String> {
        let mut t = ServerTokenizer { base: base.to_string(), model: model.to_string(), max_model_len: None };
        let (status, v) = t.post("/tokenize", json!({"model": model, "prompt": "hello"})).await?;
        match status {
            200 => {
                t.max_model_len = v.get("max_model_len").and_then(Value::as_u64);
                Ok(Some(t))
            }
            404 | 405 => Ok(None),
            s => Err(format!("{}: HTTP {s}: {}", t.url("/tokenize"), error_message(&v))),
        }
    }

    /// Like [`probe`](Self::probe), but a server without `/tokenize` is an
    /// error that says what to do instead (for `tokenizer = "server"`).
    pub async fn require(base: &str, model: &str) -> Result<ServerTokenizer, String> {
        match Self::probe(base, model).await? {
            Some(t) => Ok(t),
            None => Err(format!(
                "{}/tokenize is not served there (HTTP 404): this server does not tokenize; give target.tokenizer the local model folder instead",
                base.trim_end_matches('/')
            )),
        }
    }

    async fn tokens(&self, body: Value) -> Result<Vec<u32>, String> {
        let (status, v) = self.post("/tokenize", body).await?;
        if status != 200 {
            return Err(format!("{}: HTTP {status}: {}", self.url("/tokenize"), error_message(&v)));
        }
        let ids = v.get("tokens").and_then(Value::as_array).ok_or_else(|| {
            format!(
                "{}: the answer has no \"tokens\" list: {}",
                self.url("/tokenize"),
                v.to_string().chars().take(200).collect::<String>()
            )
        })?;
        Ok(ids.iter().filter_map(|x| x.as_u64().map(|n| n as u32)).collect())
    }

    /// Token ids of a completions prompt (`special`: with BOS, as vLLM counts it).
    pub async fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, String> {
        self.tokens(json!({"model": self.model, "prompt": text, "add_special_tokens": special})).await
    }

    /// Token ids of a chat request (the server applies the model's template).
    pub async fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>, String> {
        self.tokens(json!({"model": self.model, "messages": messages})).await
    }
}

fn error_message(v: &Value) -> String {
    v.pointer("/error/message")
        .or_else(|| v.get("detail"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}
