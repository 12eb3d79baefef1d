//! Token counts as the served model counts them: a local Hugging Face
//! tokenizer (`tokenizer.json` from the model folder, the implementation vLLM
//! and transformers use) with the model's chat template, or the server's own
//! `/tokenize` ([`server`]). Nothing is ever downloaded. [`prompts`] builds
//! prompts of an exact length from either.

pub mod chat;
pub mod prompts;
pub mod server;

use std::path::{Path, PathBuf};

pub use chat::{ChatTemplate, Message};

/// A tokenizer loaded from local files: `tokenizer.json`, and the chat
/// template from `tokenizer_config.json` or `chat_template.jinja` beside it.
pub struct LocalTokenizer {
    tok: tokenizers::Tokenizer,
    chat: Option<ChatTemplate>,
    /// Where it came from (the file), for messages.
    pub path: PathBuf,
}

impl std::fmt::Debug for LocalTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTokenizer").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Whether `s` looks like a Hugging Face hub name (`org/model`) rather than
/// a path that simply does not exist.
fn hub_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() == 2
        && !s.starts_with('.')
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
}

impl LocalTokenizer {
    /// Loads a model folder holding `tokenizer.json`, or that file itself.
    /// Errors say which file is missing or broken, and that a hub name is
    /// not downloaded (compute nodes have no internet).
    pub fn load(spec: &str) -> Result<LocalTokenizer, String> {
        let p = Path::new(spec);
        let file = match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let f = p.join("tokenizer.json");
                // Present but not a regular file (a FIFO, a device): refused by name below.
                if std::fs::symlink_metadata(&f).is_err() {
                    return Err(format!(
                        "'{spec}' is a folder without tokenizer.json; give the model folder the server loads (it holds tokenizer.json) or the file itself"
                    ));
                }
                f
            }
            // A file, or something that is not one: crate::inputs says which.
            Ok(_) => p.to_path_buf(),
            Err(_) if hub_like(spec) => {
                return Err(format!(
                    "'{spec}' looks like a Hugging Face hub name, and aibench never downloads (compute nodes have no internet): give the local model folder the server loads from, which holds tokenizer.json"
                ));
            }
            Err(_) => {
                return Err(format!(
                    "'{spec}': no such file or folder (expected a model folder with tokenizer.json, or the file)"
                ));
            }
        };
        // Bounded and regular files only: a device or a huge file is refused, not read.
        let bytes = crate::inputs::read_to_vec(&file, crate::inputs::Kind::Tokenizer)?;
        let tok = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| format!("{}: not a tokenizer.json that can be loaded: {e}", file.display()))?;
        drop(bytes);
        let dir = file.parent().unwrap_or(Path::new("."));
        let chat = ChatTemplate::find(dir)?;
        Ok(LocalTokenizer { tok, chat, path: file })
    }

    /// Token ids of `text`; `special` adds what the post-processor adds (BOS).
    pub fn encode(&self, text: &str, special: bool) -> Vec<u32> {
        match self.tok.encode_fast(text, special) {
            Ok(e) => e.get_ids().to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// How many tokens `text` is (`special`: with BOS and the like, as vLLM
    /// counts a completions prompt).
    pub fn count(&self, text: &str, special: bool) -> usize {
        self.tok.encode_fast(text, special).map(|e| e.len()).unwrap_or(0)
    }

    /// Text of token ids; ids outside the vocabulary are left out, as vLLM's
    /// `/detokenize` leaves them.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        let size = self.tok.get_vocab_size(true) as u32;
        let known: Vec<u32> = ids.iter().copied().filter(|i| *i < size).collect();
        self.tok.decode(&known, skip_special).unwrap_or_default()
    }

    pub fn vocab_size(&self) -> usize {
        self.tok.get_vocab_size(true)
    }

    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat.as_ref()
    }

    /// The prompt text a chat request becomes (the model's template, with
    /// the generation prompt), or an error naming what is missing.
    pub fn render_chat(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, String> {
        let t = self.chat.as_ref().ok_or_else(|| {
            format!(
                "{}: the model has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja): chat prompts cannot be counted",
                self.path.display()
            )
        })?;
        t.render(messages, add_generation_prompt)
    }

    /// Tokens of a chat request as vLLM counts them: the rendered template,
    /// encoded without adding special tokens (the template has its own).
    pub fn count_chat(&self, messages: &[Message]) -> Result<usize, String> {
        Ok(self.count(&self.render_chat(messages, true)?, false))
    }

    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>, String> {
        Ok(self.encode(&self.render_chat(messages, true)?, false))
    }
}

/// Counting as a simulator without a tokenizer counts: whitespace-separated
/// words, a token-id prompt one per id.
pub fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> String {
        format!("{}/../../tests/fixtures/tokenizer-en-bpe-8k", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn counts_as_transformers_counts() {
        // Reference ids from Python's `tokenizers` and transformers'
        // apply_chat_template on the same files (BOS <s> = 1 is counted).
        let t = LocalTokenizer::load(&fixture()).unwrap();
        assert_eq!(
            t.encode("the of and to in is that for it", true),
            vec![1, 391, 299, 313, 296, 291, 321, 337, 329, 393]
        );
        assert_eq!(t.encode("hello", false), vec![3869, 341]);
        let chat = [Message::user("hello there")];
        assert_eq!(t.render_chat(&chat, true).unwrap(), "<|user|>\nhello there\n<|assistant|>\n");
        assert_eq!(
            t.encode_chat(&chat).unwrap(),
            vec![31, 95, 2277, 95, 33, 202, 3869, 341, 1004, 202, 31, 95, 605, 361, 501, 95, 33, 202]
        );
        assert_eq!(t.decode(&[1, 391, 299], false), "<s>the of");
        assert_eq!(t.decode(&[999_999], false), "", "ids outside the vocabulary are left out, as vLLM does");
    }

    #[test]
    fn bad_paths_say_what_was_expected() {
        let e = LocalTokenizer::load("meta-llama/Llama-3.1-8B").unwrap_err();
        assert!(e.contains("never downloads") && e.contains("local model folder"), "{e}");
        let e = LocalTokenizer::load("/no/such/place").unwrap_err();
        assert!(e.contains("no such file or folder"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let e = LocalTokenizer::load(d.path().to_str().unwrap()).unwrap_err();
        assert!(e.contains("folder without tokenizer.json"), "{e}");
        std::fs::write(d.path().join("tokenizer.json"), "{\"version\": ").unwrap();
        let e = LocalTokenizer::load(d.path().to_str().unwrap()).unwrap_err();
        assert!(e.contains("tokenizer.json: not a tokenizer.json that can be loaded"), "{e}");
    }

    #[test]
    fn devices_fifos_and_huge_files_are_refused_not_read() {
        let e = LocalTokenizer::load("/dev/zero").unwrap_err();
        assert_eq!(e, "'/dev/zero' is a character device; expected a regular file");
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("tokenizer.json");
        let c = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = LocalTokenizer::load(d.path().to_str().unwrap()).unwrap_err();
        assert!(e.contains("tokenizer.json' is a FIFO (named pipe); expected a regular file"), "{e}");
        std::fs::remove_file(&f).unwrap();
        std::fs::File::create(&f).unwrap().set_len(600 << 20).unwrap();
        let e = LocalTokenizer::load(d.path().to_str().unwrap()).unwrap_err();
        assert!(e.contains("the limit for tokenizer files is 512 MiB"), "{e}");
        // The chat template beside it is bounded too.
        let t = d.path().join("tpl");
        std::fs::create_dir(&t).unwrap();
        std::fs::File::create(t.join("chat_template.jinja")).unwrap().set_len(2 << 20).unwrap();
        let e = ChatTemplate::find(&t).unwrap_err();
        assert!(
            e.contains("chat_template.jinja' is 2 MiB") && e.contains("the limit for chat templates is 1 MiB"),
            "{e}"
        );
    }
}
