//! How the simulator counts prompt tokens, as the server it imitates would:
//! with the model's tokenizer (`--tokenizer`: `tokenizer.json` and the chat
//! template), or, without one, whitespace-separated words. Either way
//! `/tokenize` answers with the same count the request is charged, and
//! every prompt has token ids (words get stable ids of their own).

use std::sync::Arc;

use serde_json::Value;

use crate::tokenize::{LocalTokenizer, Message};

#[derive(Clone, Debug, Default)]
pub enum SimTokenizer {
    /// One token per whitespace-separated word (token-id prompts: per id).
    #[default]
    Words,
    Local(Arc<LocalTokenizer>, Arc<Pieces>),
}

/// Output text, one token at a time: words that the tokenizer encodes, with
/// their leading space, as exactly one token, so a reply sent back in the
/// next prompt counts as many tokens as were generated.
#[derive(Debug)]
pub struct Pieces {
    words: Vec<(String, u32)>,
}

impl Pieces {
    fn of(t: &LocalTokenizer) -> Result<Pieces, String> {
        let mut words = Vec::new();
        for w in known_words() {
            if let [id] = t.encode(&format!(" {w}"), false)[..]
                && !words.iter().any(|(p, _)| p == w)
            {
                words.push((w.to_string(), id));
            }
        }
        if words.is_empty() {
            return Err(format!("{}: no word encodes as one token; cannot make output text", t.path.display()));
        }
        Ok(Pieces { words })
    }
}

/// Word ids: below this, an index into the words the simulator knows;
/// above, a hash (stable, but not decodable).
const HASHED: u32 = 1 << 24;

fn known_words() -> impl Iterator<Item = &'static str> {
    super::text::WORDS.iter().chain(crate::tokenize::prompts::VOCAB).copied()
}

/// Each known word's id: its first position among the known words (built
/// once: a linear search per output token cost the simulator a third of
/// its throughput).
static KNOWN: std::sync::LazyLock<std::collections::HashMap<&'static str, u32>> = std::sync::LazyLock::new(|| {
    let mut m = std::collections::HashMap::new();
    for (i, w) in known_words().enumerate() {
        m.entry(w).or_insert(i as u32);
    }
    m
});

/// The id of each output word (`text::WORDS[i]`), without hashing it again.
static OUTPUT_IDS: std::sync::LazyLock<Vec<u32>> =
    std::sync::LazyLock::new(|| super::text::WORDS.iter().map(|w| word_id(w)).collect());

fn word_id(w: &str) -> u32 {
    if let Some(i) = KNOWN.get(w) {
        return *i;
    }
    // FNV-1a, folded into the hashed range.
    let mut h: u32 = 0x811c_9dc5;
    for b in w.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    HASHED + h % (u32::MAX - HASHED)
}

/// The text of chat messages' contents (strings, or lists of text parts).
pub fn message_texts(messages: &[Value]) -> Result<Vec<Message>, String> {
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let content = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
            }
            Some(Value::Null) | None => String::new(),
            Some(_) => return Err(format!("messages[{i}].content: expected a string or a list of content parts")),
        };
        out.push(Message::new(role, &content));
    }
    Ok(out)
}

impl SimTokenizer {
    pub fn load(path: &str) -> Result<SimTokenizer, String> {
        let t = LocalTokenizer::load(path)?;
        let pieces = Pieces::of(&t)?;
        Ok(SimTokenizer::Local(Arc::new(t), Arc::new(pieces)))
    }

    /// Output token `index` of request `number`: its word (sent after a
    /// space) and the id of the two, deterministic for a seed.
    pub fn piece(&self, seed: u64, number: u64, index: u32) -> (&str, u32) {
        match self {
            SimTokenizer::Words => {
                let i = super::text::pick(seed, number, index, super::text::WORDS.len());
                (super::text::WORDS[i], OUTPUT_IDS[i])
            }
            SimTokenizer::Local(_, p) => {
                let (w, id) = &p.words[super::text::pick(seed, number, index, p.words.len())];
                (w.as_str(), *id)
            }
        }
    }

    /// Token ids of a completions prompt (`special`: BOS and the like).
    pub fn ids(&self, text: &str, special: bool) -> Vec<u32> {
        match self {
            SimTokenizer::Words => text.split_whitespace().map(word_id).collect(),
            SimTokenizer::Local(t, _) => t.encode(text, special),
        }
    }

    /// The largest id a token-id prompt may hold (vLLM refuses a larger one
    /// as out of vocabulary): the tokenizer's last id; without one, words'
    /// ids span `u32` (hashed words reach `u32::MAX - 1`).
    pub fn max_token_id(&self) -> u64 {
        match self {
            SimTokenizer::Words => u64::from(u32::MAX - 1),
            SimTokenizer::Local(t, _) => (t.vocab_size() as u64).saturating_sub(1),
        }
    }

    /// Tokens of a completions prompt (at least 1, as the engine needs one).
    pub fn count(&self, text: &str) -> u32 {
        (self.ids(text, true).len() as u32).max(1)
    }

    /// Token ids of a chat request: the model's template when there is a
    /// tokenizer; the words of the contents otherwise.
    pub fn chat_ids(&self, messages: &[Message]) -> Result<Vec<u32>, String> {
        match self {
            SimTokenizer::Words => {
                Ok(messages.iter().flat_map(|m| m.content.split_whitespace().map(word_id)).collect())
            }
            SimTokenizer::Local(t, _) => t.encode_chat(messages),
        }
    }

    pub fn count_chat(&self, messages: &[Message]) -> Result<u32, String> {
        Ok((self.chat_ids(messages)?.len() as u32).max(1))
    }

    /// Text of token ids, as `/detokenize` gives it (special tokens kept;
    /// ids it does not know left out).
    pub fn detokenize(&self, ids: &[u32]) -> String {
        match self {
            SimTokenizer::Words => {
                let known: Vec<&str> = known_words().collect();
                ids.iter().filter_map(|i| known.get(*i as usize).copied()).collect::<Vec<_>>().join(" ")
            }
            SimTokenizer::Local(t, _) => t.decode(ids, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_have_ids_that_round_trip() {
        let t = SimTokenizer::Words;
        let ids = t.ids("the batch of unheardofword", true);
        assert_eq!(ids.len(), 4);
        assert!(ids[3] >= HASHED);
        assert_eq!(t.detokenize(&ids), "the batch of");
        assert_eq!(t.count("  "), 1, "an empty prompt still costs one token");
        let chat =
            message_texts(&serde_json::json!([{"role": "user", "content": "a b c"}]).as_array().unwrap().clone())
                .unwrap();
        assert_eq!(t.count_chat(&chat).unwrap(), 3);
        // An output word's id is the id its text has in a prompt, so a reply
        // sent back hits the prefix cache.
        for i in 0..200 {
            let (w, id) = t.piece(5, 9, i);
            assert_eq!(id, word_id(w), "output token {i} ({w:?})");
            assert_eq!(t.ids(w, true), vec![id]);
        }
    }
}
