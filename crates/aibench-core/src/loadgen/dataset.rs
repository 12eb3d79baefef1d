//! Request bodies: built once before the run from the dataset, so the hot
//! loop only copies bytes.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::spec::{Api, BenchSpec, Dataset, Length, PromptFormat, PromptList, Synthetic, located};
use crate::datasets::conversations::{self, Conversation};
use crate::datasets::table::{self, Row};
use crate::datasets::{Common, DatasetStats};
use crate::tokenize::Message;
use crate::tokenize::prompts::{Counter, PromptMaker};
use crate::typed::FieldError;

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

fn draw(l: &Length, spread: f64, rng: &mut ChaCha8Rng) -> u64 {
    match l {
        Length::Fixed(n) => vary(*n, spread, rng),
        d => d.draw(rng),
    }
}

/// The JSON body for one prompt under an API dialect. For the chat APIs
/// the prompt is the user's message, or the whole list of messages.
pub fn body_for(api: Api, model: Option<&str>, prompt: &Value, output: u64, stream: bool, ignore_eos: bool) -> Value {
    let messages = || match prompt {
        Value::Array(m) if m.first().is_some_and(Value::is_object) => prompt.clone(),
        _ => json!([{"role": "user", "content": prompt}]),
    };
    let mut v = match api {
        Api::OpenaiCompletions => json!({"prompt": prompt, "max_tokens": output, "stream": stream}),
        Api::OpenaiChat => json!({"messages": messages(), "max_tokens": output, "stream": stream}),
        Api::OllamaGenerate => json!({"prompt": prompt, "stream": stream, "options": {"num_predict": output}}),
        Api::OllamaChat => json!({"messages": messages(), "stream": stream, "options": {"num_predict": output}}),
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
pub enum PromptText {
    Text(String),
    Ids(Vec<u32>),
    /// A chat conversation (system, user and assistant turns).
    Messages(Vec<Message>),
}

impl PromptText {
    pub fn json(&self) -> Value {
        match self {
            PromptText::Text(s) => json!(s),
            PromptText::Ids(ids) => json!(ids),
            PromptText::Messages(m) => {
                Value::Array(m.iter().map(|m| json!({"role": m.role, "content": m.content})).collect())
            }
        }
    }
}

/// Whether the API takes chat messages.
pub fn is_chat(api: Api) -> bool {
    matches!(api, Api::OpenaiChat | Api::OllamaChat)
}

/// A prompt in the requested format: text, or its token ids.
async fn formatted(text: String, spec: &BenchSpec, counter: &Counter) -> Result<PromptText, FieldError> {
    Ok(match spec.target.prompt_format {
        PromptFormat::Text => PromptText::Text(text),
        PromptFormat::Ids => PromptText::Ids(counter.ids(&text).await.map_err(located)?),
    })
}

/// A conversation's first turn as one request: the user's text (the chat
/// APIs also get the system prompt as its own message).
fn first_turn(c: &Conversation, chat: bool) -> (Option<Vec<Message>>, String) {
    let user = c.turns[0].user.clone();
    match (&c.system, chat) {
        (Some(s), true) => (Some(vec![Message::new("system", s), Message::user(&user)]), user),
        (Some(s), false) => (None, format!("{s}\n\n{user}")),
        (None, _) => (None, user),
    }
}

/// A stop asked for (Ctrl-C, SIGTERM) while prompts are being made or
/// counted: a local tokenizer counts without yielding, so the loops look.
fn stop_requested() -> Result<(), FieldError> {
    match crate::interrupt::pending() {
        Some(sig) => Err(FieldError::new("", format!("interrupted ({}) while preparing prompts", sig.name()))),
        None => Ok(()),
    }
}

/// Prompts shorter than this are skipped from conversation datasets, as
/// vLLM's sharegpt dataset does (and outputs taken from answers, too).
const MIN_TOKENS: u64 = 4;

/// Builds up to `pool` request bodies (cycled through during the run) for
/// synthetic prompts, and for a dataset at most `need` (what the run can
/// send, when that is known), with
/// each prompt's length in `counter`'s tokens: exact for synthetic prompts,
/// counted for prompts from a file or a list. Also says what reading a
/// dataset file skipped.
pub async fn prepare(
    spec: &BenchSpec,
    model: Option<&str>,
    pool: usize,
    need: Option<usize>,
    counter: &Counter,
) -> Result<(Vec<Prepared>, Option<DatasetStats>), FieldError> {
    let need = need.unwrap_or(usize::MAX).max(1);
    let t = &spec.target;
    let chat = is_chat(t.api);
    let make = |prompt: &PromptText, prompt_tokens: u64, out: u64| {
        let mut body = serde_json::to_vec(&body_for(t.api, model, &prompt.json(), out, t.stream, t.ignore_eos))
            .unwrap_or_default();
        // Kept for the whole run, many of them: no growth slack.
        body.shrink_to_fit();
        Prepared { body, prompt_tokens, output_tokens: out }
    };
    // How many tokens a prompt given as text is, as the server will count it.
    let count =
        async |text: &str| -> Result<u64, FieldError> { Ok(counter.count(text, chat).await.map_err(located)? as u64) };
    match &spec.dataset {
        Dataset::Synthetic(s) => {
            let maker = PromptMaker::new(counter.clone(), chat).await.map_err(located)?;
            let prefixes = group_prefixes(s, &maker)?;
            let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
            let mut out = Vec::with_capacity(pool.max(1));
            for i in 0..pool.max(1) {
                stop_requested()?;
                let p = draw(&s.prompt_tokens, s.spread, &mut rng);
                let o = draw(&s.output_tokens, s.spread, &mut rng);
                let (text, asked) = match &prefixes {
                    Some(g) => {
                        let prefix = &g[i % g.len()];
                        (format!("{prefix}{}", maker.text(p as usize, &mut rng, false)), s.prefix_tokens + p)
                    }
                    None => {
                        let text = maker
                            .make(p as usize, &mut rng)
                            .await
                            .map_err(|e| FieldError::new("dataset.prompt_tokens", e))?;
                        (text, p)
                    }
                };
                out.push(make(&formatted(text, spec, counter).await?, asked, o));
            }
            Ok((out, None))
        }
        Dataset::List(PromptList { prompts, output_tokens }) => {
            let mut out = Vec::with_capacity(prompts.len());
            for p in prompts {
                stop_requested()?;
                let n = count(p).await?;
                out.push(make(&formatted(p.clone(), spec, counter).await?, n, *output_tokens));
            }
            Ok((out, None))
        }
        Dataset::Jsonl(_) | Dataset::Csv(_) => {
            let (mut rows, mut stats, common) = match &spec.dataset {
                Dataset::Jsonl(d) => {
                    let mut st = DatasetStats::new(&d.path);
                    (table::load_jsonl(d, &mut st).map_err(located)?, st, &d.common)
                }
                Dataset::Csv(d) => {
                    let mut st = DatasetStats::new(&d.path);
                    (table::load_csv(d, &mut st).map_err(located)?, st, &d.common)
                }
                _ => unreachable!("matched above"),
            };
            common.order(&mut rows);
            let mut out = Vec::new();
            for row in rows {
                if out.len() >= common.limit().min(need) {
                    break;
                }
                stop_requested()?;
                match row {
                    Row::Request { mut body, output } => {
                        if let Some(model) = model {
                            body.entry("model").or_insert_with(|| json!(model));
                        }
                        body.entry("stream").or_insert(json!(t.stream));
                        let prompt_tokens = match body.get("prompt").and_then(Value::as_str) {
                            Some(p) => count(p).await?,
                            None => 0,
                        };
                        if common.max_prompt_tokens.is_some_and(|m| prompt_tokens > m) {
                            stats.skip("too_long");
                            continue;
                        }
                        out.push(Prepared {
                            body: serde_json::to_vec(&body).unwrap_or_default(),
                            prompt_tokens,
                            output_tokens: common.cap_output(output),
                        });
                    }
                    Row::Prompt { text, output } => {
                        if text.trim().is_empty() {
                            stats.skip("empty");
                            continue;
                        }
                        let n = count(&text).await?;
                        if common.max_prompt_tokens.is_some_and(|m| n > m) {
                            stats.skip("too_long");
                            continue;
                        }
                        out.push(make(&formatted(text, spec, counter).await?, n, common.cap_output(output)));
                    }
                }
            }
            finish(out, stats)
        }
        Dataset::Sharegpt(_) | Dataset::Messages(_) => {
            let (mut convs, mut stats, fixed_out) = load_conversations(&spec.dataset)?;
            let common = spec.dataset.common().cloned().unwrap_or_default();
            common.order(&mut convs);
            let mut out = Vec::new();
            for c in convs {
                if out.len() >= common.limit().min(need) {
                    break;
                }
                stop_requested()?;
                let Some(o) = turn_output(&c.turns[0].answer, fixed_out, &common, counter, &mut stats).await? else {
                    continue;
                };
                let (messages, text) = first_turn(&c, chat);
                let n = match &messages {
                    Some(m) => counter.count_messages(m).await.map_err(located)? as u64,
                    None => count(&text).await?,
                };
                if n < MIN_TOKENS {
                    stats.skip("too_short");
                    continue;
                }
                if common.max_prompt_tokens.is_some_and(|m| n > m) {
                    stats.skip("too_long");
                    continue;
                }
                let prompt = match messages {
                    Some(m) => PromptText::Messages(m),
                    None => formatted(text, spec, counter).await?,
                };
                out.push(make(&prompt, n, o));
            }
            finish(out, stats)
        }
        Dataset::Trace(_) => {
            Err(FieldError::new("dataset", "a trace's prompts are built as they are sent, not prepared"))
        }
    }
}

/// A turn's output length: fixed, or the token count of the dataset's
/// answer; `None` when the turn is skipped (no answer, or too short).
pub async fn turn_output(
    answer: &Option<String>,
    fixed: Option<u64>,
    common: &Common,
    counter: &Counter,
    stats: &mut DatasetStats,
) -> Result<Option<u64>, FieldError> {
    if let Some(o) = fixed {
        return Ok(Some(common.cap_output(o)));
    }
    let Some(a) = answer else {
        stats.skip("no_answer");
        return Ok(None);
    };
    let n = counter.bare(a).await.map_err(located)? as u64;
    if n < MIN_TOKENS {
        stats.skip("too_short");
        return Ok(None);
    }
    Ok(Some(common.cap_output(n)))
}

/// The conversations of a sharegpt or messages dataset, what reading them
/// skipped, and the fixed output length if one is set.
pub fn load_conversations(d: &Dataset) -> Result<(Vec<Conversation>, DatasetStats, Option<u64>), FieldError> {
    match d {
        Dataset::Sharegpt(d) => {
            let mut st = DatasetStats::new(&d.path);
            Ok((conversations::load_sharegpt(&d.path, &d.common, &mut st).map_err(located)?, st, d.output_tokens))
        }
        Dataset::Messages(d) => {
            let mut st = DatasetStats::new(&d.path);
            Ok((conversations::load_messages(&d.path, &d.common, &mut st).map_err(located)?, st, d.output_tokens))
        }
        other => Err(FieldError::new("dataset.type", format!("\"{}\" holds no conversations", other.kind()))),
    }
}

fn finish(out: Vec<Prepared>, mut stats: DatasetStats) -> Result<(Vec<Prepared>, Option<DatasetStats>), FieldError> {
    stats.used = out.len() as u64;
    if out.is_empty() {
        return Err(crate::datasets::empty_error(&stats));
    }
    Ok((out, Some(stats)))
}

/// The shared prefixes of a synthetic dataset's groups (`None` without
/// `prefix_tokens`), each exactly `prefix_tokens` long with the tokens the
/// server adds; the prompts after them then add exactly their own length.
pub fn group_prefixes(s: &Synthetic, maker: &PromptMaker) -> Result<Option<Vec<String>>, FieldError> {
    if s.prefix_tokens == 0 {
        return Ok(None);
    }
    need_additive(maker).map_err(|e| FieldError::new("dataset.prefix_tokens", e))?;
    let words = (s.prefix_tokens as usize).checked_sub(maker.fixed()).filter(|w| *w > 0).ok_or_else(|| {
        FieldError::new(
            "dataset.prefix_tokens",
            format!("{} tokens is too few: the server adds {} of its own", s.prefix_tokens, maker.fixed()),
        )
    })?;
    Ok(Some((0..s.prefix_groups).map(|g| maker.block(words, s.seed ^ (0x7072_6566_6978 + g), true)).collect()))
}

/// Shared blocks are exact only where lengths add up over words: what is
/// wrong otherwise, for the caller to say which field asked for them.
pub fn need_additive(maker: &PromptMaker) -> Result<(), String> {
    if maker.additive() {
        return Ok(());
    }
    Err(format!(
        "shared blocks need a tokenizer whose prompt lengths add up over words (byte-level BPE, SentencePiece); {} does not",
        maker.counter().source()
    ))
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
