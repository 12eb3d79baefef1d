//! Request bodies: built once before the run from the dataset, so the hot
//! loop only copies bytes.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::spec::{Api, BenchSpec, Dataset, Jsonl, PromptList, Synthetic};

/// One ready request body and what it asks for.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub body: Vec<u8>,
    /// Prompt length by word count (the server's `usage` overrides it).
    pub prompt_tokens: u64,
    pub output_tokens: u64,
}

/// Words that common tokenizers encode as one token each (with a leading space).
const VOCAB: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "she",
    "other",
    "its",
    "may",
    "these",
    "what",
    "them",
    "than",
    "some",
    "him",
    "time",
    "into",
    "only",
    "do",
    "could",
    "new",
    "about",
    "two",
    "first",
    "then",
    "also",
    "any",
    "like",
    "my",
    "now",
    "over",
    "such",
    "our",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "did",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "those",
    "people",
    "how",
    "too",
    "little",
    "state",
    "good",
    "very",
    "make",
    "world",
    "still",
    "own",
    "see",
    "men",
    "work",
    "long",
    "get",
    "here",
    "between",
    "both",
    "life",
    "being",
    "under",
    "never",
    "day",
    "same",
    "another",
    "know",
    "while",
    "last",
    "might",
    "us",
    "great",
    "old",
    "year",
    "off",
    "come",
    "since",
    "against",
    "go",
    "came",
    "right",
    "used",
    "take",
    "three",
    "states",
    "himself",
    "few",
    "house",
    "use",
    "during",
    "without",
    "again",
    "place",
    "around",
    "however",
    "home",
    "small",
    "found",
    "thought",
    "went",
    "say",
    "part",
    "once",
    "general",
    "high",
    "upon",
    "school",
    "every",
    "does",
    "got",
    "united",
    "left",
    "number",
    "course",
    "war",
    "until",
    "always",
    "away",
    "something",
    "fact",
    "though",
    "water",
    "less",
    "public",
    "put",
    "think",
    "almost",
    "hand",
    "enough",
    "far",
    "took",
    "head",
    "yet",
    "government",
    "system",
    "better",
    "set",
    "told",
    "nothing",
    "night",
    "end",
    "why",
    "called",
    "did",
    "eyes",
    "find",
    "going",
    "look",
    "asked",
    "later",
    "knew",
    "point",
    "next",
];

fn vary(n: u64, spread: f64, rng: &mut ChaCha8Rng) -> u64 {
    if spread <= 0.0 {
        return n;
    }
    let f = 1.0 + rng.random_range(-spread..spread);
    ((n as f64 * f).round() as u64).max(1)
}

/// A prompt of `n` words from the vocabulary; the first words make each
/// prompt distinct so a prefix cache cannot serve them.
pub fn synthetic_prompt(n: u64, rng: &mut ChaCha8Rng) -> String {
    let mut s = String::with_capacity(n as usize * 6);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(VOCAB[rng.random_range(0..VOCAB.len())]);
    }
    s
}

fn words(s: &str) -> u64 {
    (s.split_whitespace().count() as u64).max(1)
}

/// The JSON body for one prompt under an API dialect.
pub fn body_for(api: Api, model: Option<&str>, prompt: &str, output: u64, stream: bool, ignore_eos: bool) -> Value {
    let mut v = match api {
        Api::OpenaiCompletions => json!({"prompt": prompt, "max_tokens": output, "stream": stream}),
        Api::OpenaiChat => {
            json!({"messages": [{"role": "user", "content": prompt}], "max_tokens": output, "stream": stream})
        }
        Api::OllamaGenerate => json!({"prompt": prompt, "stream": stream, "options": {"num_predict": output}}),
        Api::OllamaChat => {
            json!({"messages": [{"role": "user", "content": prompt}], "stream": stream, "options": {"num_predict": output}})
        }
        Api::Http => json!({}),
    };
    if let Some(m) = model {
        v["model"] = json!(m);
    }
    if matches!(api, Api::OpenaiCompletions | Api::OpenaiChat) {
        if ignore_eos {
            v["ignore_eos"] = json!(true);
        }
        if stream {
            v["stream_options"] = json!({"include_usage": true});
        }
    }
    v
}

/// Builds up to `pool` request bodies (cycled through during the run).
pub fn prepare(spec: &BenchSpec, model: Option<&str>, pool: usize) -> Result<Vec<Prepared>, String> {
    let t = &spec.target;
    let make = |prompt: &str, out: u64| Prepared {
        body: serde_json::to_vec(&body_for(t.api, model, prompt, out, t.stream, t.ignore_eos)).unwrap_or_default(),
        prompt_tokens: words(prompt),
        output_tokens: out,
    };
    match &spec.dataset {
        Dataset::Synthetic(Synthetic { prompt_tokens, output_tokens, spread, seed }) => {
            let mut rng = ChaCha8Rng::seed_from_u64(*seed);
            Ok((0..pool.max(1))
                .map(|_| {
                    let p = vary(*prompt_tokens, *spread, &mut rng);
                    let o = vary(*output_tokens, *spread, &mut rng);
                    make(&synthetic_prompt(p, &mut rng), o)
                })
                .collect())
        }
        Dataset::List(PromptList { prompts, output_tokens }) => {
            Ok(prompts.iter().map(|p| make(p, *output_tokens)).collect())
        }
        Dataset::Jsonl(Jsonl { path, field, as_request, output_tokens }) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("dataset.path: cannot read '{path}': {e}"))?;
            let field = field.as_deref().unwrap_or("prompt");
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(line)
                    .map_err(|e| format!("dataset.path: {path}:{}: invalid JSON: {e}", i + 1))?;
                if *as_request {
                    let Value::Object(mut m) = v else {
                        return Err(format!(
                            "dataset.path: {path}:{}: with as_request each line must be a JSON object",
                            i + 1
                        ));
                    };
                    if let Some(model) = model {
                        m.entry("model").or_insert_with(|| json!(model));
                    }
                    m.entry("stream").or_insert(json!(t.stream));
                    let prompt_tokens = m.get("prompt").and_then(Value::as_str).map(words).unwrap_or(0);
                    let out_t = m.get("max_tokens").and_then(Value::as_u64).unwrap_or(*output_tokens);
                    out.push(Prepared {
                        body: serde_json::to_vec(&m).unwrap_or_default(),
                        prompt_tokens,
                        output_tokens: out_t,
                    });
                    continue;
                }
                let (prompt, out_t) = match &v {
                    Value::String(s) => (s.clone(), *output_tokens),
                    Value::Object(m) => match m.get(field) {
                        Some(Value::String(s)) => {
                            let o = m
                                .get("output_tokens")
                                .or_else(|| m.get("max_tokens"))
                                .and_then(Value::as_u64)
                                .unwrap_or(*output_tokens);
                            (s.clone(), o)
                        }
                        _ => {
                            return Err(format!(
                                "dataset.path: {path}:{}: no string field '{field}' (set dataset.field, or as_request = true)",
                                i + 1
                            ));
                        }
                    },
                    _ => return Err(format!("dataset.path: {path}:{}: expected a JSON string or object", i + 1)),
                };
                out.push(make(&prompt, out_t));
            }
            if out.is_empty() {
                return Err(format!("dataset.path: '{path}' holds no prompts"));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_lengths_and_bodies() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let p = synthetic_prompt(50, &mut rng);
        assert_eq!(p.split_whitespace().count(), 50);
        let b = body_for(Api::OpenaiCompletions, Some("m"), "hi", 7, true, true);
        assert_eq!(b["max_tokens"], 7);
        assert_eq!(b["ignore_eos"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        let b = body_for(Api::OllamaChat, None, "hi", 7, false, true);
        assert_eq!(b["options"]["num_predict"], 7);
        assert!(b.get("ignore_eos").is_none());
        assert!(b.get("model").is_none());
    }
}
