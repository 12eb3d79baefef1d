//! Request bodies: built once before the run from the dataset, so the hot
//! loop only copies bytes.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::spec::{Api, BenchSpec, Dataset, Jsonl, PromptFormat, PromptList, Synthetic};
use crate::tokenize::prompts::{Counter, PromptMaker};

/// One ready request body and what it asks for.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub body: Vec<u8>,
    /// Prompt length asked, in the counter's tokens (the server's `usage`
    /// says what it served).
    pub prompt_tokens: u64,
    pub output_tokens: u64,
}

fn vary(n: u64, spread: f64, rng: &mut ChaCha8Rng) -> u64 {
    if spread <= 0.0 {
        return n;
    }
    let f = 1.0 + rng.random_range(-spread..spread);
    ((n as f64 * f).round() as u64).max(1)
}

/// The JSON body for one prompt under an API dialect.
pub fn body_for(api: Api, model: Option<&str>, prompt: &Value, output: u64, stream: bool, ignore_eos: bool) -> Value {
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

/// What one request sends as its prompt.
enum PromptText {
    Text(String),
    Ids(Vec<u32>),
}

impl PromptText {
    fn json(&self) -> Value {
        match self {
            PromptText::Text(s) => json!(s),
            PromptText::Ids(ids) => json!(ids),
        }
    }
}

/// A prompt in the requested format: text, or its token ids.
async fn formatted(text: String, spec: &BenchSpec, counter: &Counter) -> Result<PromptText, String> {
    Ok(match spec.target.prompt_format {
        PromptFormat::Text => PromptText::Text(text),
        PromptFormat::Ids => PromptText::Ids(counter.ids(&text).await?),
    })
}

/// Builds up to `pool` request bodies (cycled through during the run), with
/// each prompt's length in `counter`'s tokens: exact for synthetic prompts,
/// counted for prompts from a file or a list.
pub async fn prepare(
    spec: &BenchSpec,
    model: Option<&str>,
    pool: usize,
    counter: &Counter,
) -> Result<Vec<Prepared>, String> {
    let t = &spec.target;
    let chat = matches!(t.api, Api::OpenaiChat | Api::OllamaChat);
    let make = |prompt: &PromptText, prompt_tokens: u64, out: u64| {
        let mut body = serde_json::to_vec(&body_for(t.api, model, &prompt.json(), out, t.stream, t.ignore_eos))
            .unwrap_or_default();
        // Kept for the whole run, many of them: no growth slack.
        body.shrink_to_fit();
        Prepared { body, prompt_tokens, output_tokens: out }
    };
    // How many tokens a prompt given as text is, as the server will count it.
    let count = async |text: &str| -> Result<u64, String> { Ok(counter.count(text, chat).await? as u64) };
    match &spec.dataset {
        Dataset::Synthetic(Synthetic { prompt_tokens, output_tokens, spread, seed }) => {
            let maker = PromptMaker::new(counter.clone(), chat).await?;
            let mut rng = ChaCha8Rng::seed_from_u64(*seed);
            let mut out = Vec::with_capacity(pool.max(1));
            for _ in 0..pool.max(1) {
                let p = vary(*prompt_tokens, *spread, &mut rng);
                let o = vary(*output_tokens, *spread, &mut rng);
                let text = maker.make(p as usize, &mut rng).await.map_err(|e| format!("dataset.prompt_tokens: {e}"))?;
                out.push(make(&formatted(text, spec, counter).await?, p, o));
            }
            Ok(out)
        }
        Dataset::List(PromptList { prompts, output_tokens }) => {
            let mut out = Vec::with_capacity(prompts.len());
            for p in prompts {
                let n = count(p).await?;
                out.push(make(&formatted(p.clone(), spec, counter).await?, n, *output_tokens));
            }
            Ok(out)
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
                    let prompt_tokens = match m.get("prompt").and_then(Value::as_str) {
                        Some(p) => count(p).await?,
                        None => 0,
                    };
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
                let n = count(&prompt).await?;
                out.push(make(&formatted(prompt, spec, counter).await?, n, out_t));
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
    fn bodies() {
        let b = body_for(Api::OpenaiCompletions, Some("m"), &json!("hi"), 7, true, true);
        assert_eq!(b["max_tokens"], 7);
        assert_eq!(b["ignore_eos"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        let b = body_for(Api::OpenaiCompletions, None, &json!([1, 2, 3]), 7, false, true);
        assert_eq!(b["prompt"], json!([1, 2, 3]));
        let b = body_for(Api::OllamaChat, None, &json!("hi"), 7, false, true);
        assert_eq!(b["options"]["num_predict"], 7);
        assert!(b.get("ignore_eos").is_none());
        assert!(b.get("model").is_none());
    }
}
