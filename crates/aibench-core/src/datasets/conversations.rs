//! Conversations: ShareGPT (`[{"id", "conversations": [{"from", "value"}]}]`,
//! JSON or JSONL) and OpenAI-style JSONL (`{"messages": [{"role", "content"}]}`),
//! read into one shape: an optional system prompt and user turns, each with
//! the dataset's own answer when it has one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Common, DatasetStats, each_record};

/// `type = "sharegpt"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareGpt {
    pub path: String,
    /// Output length of every request; unset: the token count of the
    /// dataset's answer (as vLLM's sharegpt dataset does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip)]
    pub common: Common,
}

/// `type = "messages"`: OpenAI-style chat records, one per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Messages {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip)]
    pub common: Common,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub user: String,
    /// The dataset's answer to this turn, if it has one.
    pub answer: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub system: Option<String>,
    pub turns: Vec<Turn>,
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    System,
    User,
    Assistant,
}

fn role(name: &str) -> Option<Role> {
    match name {
        "system" => Some(Role::System),
        "human" | "user" => Some(Role::User),
        "gpt" | "assistant" | "chatgpt" | "bard" | "bing" | "model" => Some(Role::Assistant),
        _ => None,
    }
}

/// Folds a list of (role, text) into a conversation: the first system text
/// is the system prompt, leading answers are dropped, a run of one role is
/// joined with newlines. `None` when no user text is left.
fn fold(parts: Vec<(Role, String)>) -> Option<Conversation> {
    let mut system = None;
    let mut turns: Vec<Turn> = Vec::new();
    let mut last = None;
    for (r, text) in parts {
        match r {
            Role::System if turns.is_empty() => {
                system = Some(match system.take() {
                    Some(s) => format!("{s}\n{text}"),
                    None => text,
                });
            }
            Role::System => {}
            Role::User if last == Some(Role::User) => {
                let t = turns.last_mut().expect("a user turn");
                t.user.push('\n');
                t.user.push_str(&text);
            }
            Role::User => turns.push(Turn { user: text, answer: None }),
            Role::Assistant => match turns.last_mut() {
                None => continue,
                Some(t) => match &mut t.answer {
                    Some(a) => {
                        a.push('\n');
                        a.push_str(&text);
                    }
                    None => t.answer = Some(text),
                },
            },
        }
        last = Some(r);
    }
    turns.retain(|t| !t.user.trim().is_empty());
    (!turns.is_empty()).then_some(Conversation { system, turns })
}

/// A ShareGPT record's turns, or what is wrong with it.
fn sharegpt_parts(v: &Value) -> Result<Vec<(Role, String)>, String> {
    let Some(obj) = v.as_object() else { return Err("expected a JSON object".into()) };
    let Some(turns) = obj.get("conversations").or_else(|| obj.get("conversation")) else {
        return Err("no 'conversations' field".into());
    };
    let Some(turns) = turns.as_array() else { return Err("conversations: expected a list".into()) };
    let mut out = Vec::with_capacity(turns.len());
    for (i, t) in turns.iter().enumerate() {
        let from = t.get("from").and_then(Value::as_str).ok_or(format!("conversations[{}].from: missing", i + 1))?;
        let r = role(from).ok_or(format!(
            "conversations[{}].from: unknown speaker \"{from}\"; expected \"system\", \"human\" or \"gpt\"",
            i + 1
        ))?;
        let value = t
            .get("value")
            .and_then(Value::as_str)
            .ok_or(format!("conversations[{}].value: expected a string", i + 1))?;
        out.push((r, value.to_string()));
    }
    Ok(out)
}

/// The text of an OpenAI message's content: a string, or the text parts.
fn content_text(c: &Value) -> Option<String> {
    match c {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn messages_parts(v: &Value) -> Result<Vec<(Role, String)>, String> {
    let Some(obj) = v.as_object() else { return Err("expected a JSON object".into()) };
    let Some(msgs) = obj.get("messages") else { return Err("no 'messages' field".into()) };
    let Some(msgs) = msgs.as_array() else { return Err("messages: expected a list".into()) };
    let mut out = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let name = m.get("role").and_then(Value::as_str).ok_or(format!("messages[{}].role: missing", i + 1))?;
        let Some(r) = role(name) else {
            // Tool and function messages carry no conversation text.
            if matches!(name, "tool" | "function" | "developer") {
                continue;
            }
            return Err(format!(
                "messages[{}].role: unknown role \"{name}\"; expected system, user or assistant",
                i + 1
            ));
        };
        let text = m
            .get("content")
            .and_then(content_text)
            .ok_or(format!("messages[{}].content: expected a string or a list of parts", i + 1))?;
        out.push((r, text));
    }
    Ok(out)
}

/// Reads one record's (role, text) parts.
type Parts = fn(&Value) -> Result<Vec<(Role, String)>, String>;

fn load(path: &str, common: &Common, stats: &mut DatasetStats, parts: Parts) -> Result<Vec<Conversation>, String> {
    let mut out = Vec::new();
    each_record(path, |(at, rec)| {
        stats.read += 1;
        let conv = rec.and_then(|v| parts(&v)).map(fold);
        match conv {
            Err(msg) => stats.bad(common, &at, &msg)?,
            Ok(None) => stats.skip("empty"),
            Ok(Some(c)) => out.push(c),
        }
        Ok(())
    })?;
    Ok(out)
}

pub fn load_sharegpt(path: &str, common: &Common, stats: &mut DatasetStats) -> Result<Vec<Conversation>, String> {
    load(path, common, stats, sharegpt_parts)
}

pub fn load_messages(path: &str, common: &Common, stats: &mut DatasetStats) -> Result<Vec<Conversation>, String> {
    load(path, common, stats, messages_parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::OnBadLine;

    fn fixture(name: &str) -> String {
        format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn sharegpt_with_system_turns_and_odd_records() {
        let skip = Common { on_bad_line: OnBadLine::Skip, ..Default::default() };
        let mut stats = DatasetStats::new("x");
        let convs = load_sharegpt(&fixture("sharegpt-small.json"), &skip, &mut stats).unwrap();
        // The fixture's records: see its own description in tests/fixtures/README.md.
        assert_eq!(stats.read, 8);
        assert_eq!(stats.skipped.get("malformed"), Some(&2), "{stats:?}");
        assert_eq!(stats.skipped.get("empty"), Some(&2), "{stats:?}");
        assert_eq!(convs.len(), 4);
        let first = &convs[0];
        assert_eq!(first.system.as_deref(), Some("You are a careful assistant."));
        assert_eq!(first.turns.len(), 2);
        assert_eq!(first.turns[0].user, "What is SLURM?");
        assert!(first.turns[0].answer.as_deref().unwrap().starts_with("SLURM is"));
        // A conversation that starts with the assistant: its first answer is dropped.
        assert_eq!(convs[1].turns[0].user, "Which GPUs does MeluXina have?");
        // Two human turns in a row are one turn.
        assert_eq!(convs[2].turns[0].user, "Hello.\nAre you there?");
        assert_eq!(convs[3].turns[0].answer, None);
        assert_eq!(stats.bad_lines.len(), 2);
        assert!(stats.bad_lines[0].contains("record"), "{:?}", stats.bad_lines);

        let strict = Common::default();
        let e = load_sharegpt(&fixture("sharegpt-small.json"), &strict, &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains("sharegpt-small.json: record 5: conversations[1].from: unknown speaker \"robot\""), "{e}");
    }

    #[test]
    fn messages_jsonl_reports_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        std::fs::write(
            &p,
            concat!(
                r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}, {"role": "assistant", "content": "Hello!"}]}"#,
                "\n\n",
                r#"{"messages": [{"role": "user"}]}"#,
                "\n"
            ),
        )
        .unwrap();
        let p = p.to_str().unwrap();
        let e = load_messages(p, &Common::default(), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains(&format!("{p}:3: messages[1].content")), "{e}");
        let skip = Common { on_bad_line: OnBadLine::Skip, ..Default::default() };
        let convs = load_messages(p, &skip, &mut DatasetStats::default()).unwrap();
        assert_eq!(convs.len(), 1);
        assert_eq!(convs[0].system.as_deref(), Some("Be brief."));
        assert_eq!(convs[0].turns, vec![Turn { user: "Hi".into(), answer: Some("Hello!".into()) }]);
    }
}
