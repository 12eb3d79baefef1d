//! A model's chat template (Jinja, as Hugging Face stores it), rendered
//! with minijinja the way transformers and vLLM render it: `messages`,
//! `add_generation_prompt`, `bos_token`, `eos_token`, Python-style string
//! methods, `raise_exception`.

use std::path::Path;

use minijinja::{Environment, Error, ErrorKind, context};
use serde::{Deserialize, Serialize};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message { role: role.into(), content: content.into() }
    }

    pub fn user(content: &str) -> Message {
        Message::new("user", content)
    }
}

/// The steps (minijinja's fuel) one render may take: real chat templates
/// take a few thousand per message.
pub const TEMPLATE_FUEL: u64 = 5_000_000;
/// What a render may add beyond four times its messages' text.
const TEMPLATE_OUTPUT_MIN: usize = 1 << 20;

pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    /// Where the template came from, for messages.
    pub origin: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("origin", &self.origin).finish_non_exhaustive()
    }
}

/// A special token in `tokenizer_config.json`: a string, or an AddedToken object.
fn token_text(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Object(m)) => m.get("content").and_then(|c| c.as_str()).unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

impl ChatTemplate {
    /// The template beside `tokenizer.json`: `chat_template` in
    /// `tokenizer_config.json` (a string, or a list of named templates, the
    /// `default` one), else `chat_template.jinja`. None when neither exists.
    pub fn find(dir: &Path) -> Result<Option<ChatTemplate>, String> {
        use crate::inputs::{Kind, read_to_string};
        // A file that is absent is no template; one that is there is read
        // within its cap, and only if it is a regular file.
        fn present(p: &Path) -> bool {
            std::fs::symlink_metadata(p).is_ok()
        }
        let cfg_path = dir.join("tokenizer_config.json");
        let cfg: serde_json::Value = if present(&cfg_path) {
            let t = read_to_string(&cfg_path, Kind::Tokenizer)?;
            serde_json::from_str(&t).map_err(|e| format!("{}: not valid JSON: {e}", cfg_path.display()))?
        } else {
            serde_json::Value::Null
        };
        let (bos, eos) = (token_text(cfg.get("bos_token")), token_text(cfg.get("eos_token")));
        let from_cfg = match cfg.get("chat_template") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .or_else(|| list.first())
                .and_then(|t| t.get("template"))
                .and_then(|t| t.as_str())
                .map(str::to_string),
            _ => None,
        };
        let (source, origin) = match from_cfg {
            Some(s) => (s, format!("{} (chat_template)", cfg_path.display())),
            None => {
                let p = dir.join("chat_template.jinja");
                if !present(&p) {
                    return Ok(None);
                }
                (read_to_string(&p, Kind::Template)?, p.display().to_string())
            }
        };
        ChatTemplate::new(&source, &bos, &eos, &origin).map(Some)
    }

    pub fn new(source: &str, bos: &str, eos: &str, origin: &str) -> Result<ChatTemplate, String> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| chrono::Utc::now().format(&fmt).to_string());
        // transformers renders with these Jinja settings.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| format!("{origin}: {e}"))?;
        env.set_syntax(syntax);
        // A template is code from outside: its work is bounded, so a loop
        // that would run for ever ends with an error in well under a second.
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| format!("{origin}: the chat template does not parse: {e}"))?;
        Ok(ChatTemplate { env, bos: bos.into(), eos: eos.into(), origin: origin.into() })
    }

    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, String> {
        let t = self.env.get_template("chat").map_err(|e| e.to_string())?;
        let out = t
            .render(context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos,
                eos_token => &self.eos,
            })
            .map_err(|e| {
                if e.kind() == ErrorKind::OutOfFuel {
                    format!(
                        "{}: the chat template did too much work (more than {TEMPLATE_FUEL} steps) and was stopped",
                        self.origin
                    )
                } else {
                    format!("{}: rendering the chat template failed: {e}", self.origin)
                }
            })?;
        let input: usize = messages.iter().map(|m| m.content.len() + m.role.len()).sum();
        if out.len() > input.saturating_mul(4).max(TEMPLATE_OUTPUT_MIN) {
            return Err(format!(
                "{}: the chat template made {} bytes from {input} bytes of messages; a chat template adds markers, not text",
                self.origin,
                out.len()
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_fixture_template_and_hf_idioms() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokenizer-en-bpe-8k");
        let t = ChatTemplate::find(&dir).unwrap().unwrap();
        let m = [Message::user("hello there")];
        assert_eq!(t.render(&m, true).unwrap(), "<|user|>\nhello there\n<|assistant|>\n");
        assert_eq!(t.render(&m, false).unwrap(), "<|user|>\nhello there\n");
        let t = ChatTemplate::new(
            "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system') }}{% endif %}[{{ m['content'].strip() }}]{% endfor %}",
            "<s>",
            "</s>",
            "test",
        )
        .unwrap();
        assert_eq!(t.render(&[Message::user("  hi ")], true).unwrap(), "<s>[hi]");
        let e = t.render(&[Message::new("system", "x")], true).unwrap_err();
        assert!(e.contains("no system"), "{e}");
        assert!(ChatTemplate::new("{% if %}", "", "", "bad.jinja").unwrap_err().contains("bad.jinja"));
    }
}
