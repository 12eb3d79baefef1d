//! Simulator profiles: the timing model's parameters, stock or from a file.

use serde::{Deserialize, Serialize};

/// Parameters of the continuous-batching timing model (see `engine.rs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Model name served (overridable with `--model`).
    pub model: String,
    /// Most sequences in one batch (vLLM `--max-num-seqs`).
    pub max_num_seqs: u32,
    /// Token budget of one engine step, decode and prefill together
    /// (vLLM `--max-num-batched-tokens`; longer prompts are prefilled in chunks).
    pub max_num_batched_tokens: u32,
    /// KV-cache capacity in tokens; sequences are preempted when it runs out.
    pub kv_cache_tokens: u64,
    /// Longest prompt + output a request may ask for.
    pub max_model_len: u32,
    /// Fixed cost of one engine step.
    pub step_base_ms: f64,
    /// Added per running sequence in the step.
    pub per_seq_ms: f64,
    /// Added per prompt token prefilled in the step.
    pub per_prefill_token_ms: f64,
    /// Mean output length when a request may stop early (no `ignore_eos`).
    pub eos_mean_tokens: u32,
    /// Count prompt tokens with this model folder's tokenizer (else words).
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Reuse cached KV blocks of shared prompt prefixes (vLLM's default: on).
    #[serde(default = "default_true")]
    pub enable_prefix_caching: bool,
    /// Tokens per KV block (the prefix cache's unit).
    #[serde(default = "default_block_size")]
    pub block_size: u32,
}

fn default_true() -> bool {
    true
}
fn default_block_size() -> u32 {
    128
}

const STOCK: &[(&str, &str)] = &[
    ("instant", include_str!("profiles/instant.yaml")),
    ("opt-125m-cpu", include_str!("profiles/opt-125m-cpu.yaml")),
    ("llama-8b-a100", include_str!("profiles/llama-8b-a100.yaml")),
];

pub fn stock_names() -> Vec<&'static str> {
    STOCK.iter().map(|(n, _)| *n).collect()
}

impl Profile {
    /// A stock profile by name, or a YAML file by path.
    pub fn load(name_or_path: &str) -> Result<Profile, String> {
        if let Some((_, text)) = STOCK.iter().find(|(n, _)| *n == name_or_path) {
            return Profile::parse(text, name_or_path);
        }
        let looks_like_file =
            name_or_path.ends_with(".yaml") || name_or_path.ends_with(".yml") || name_or_path.contains('/');
        if !looks_like_file {
            let hint = crate::util::did_you_mean(name_or_path, stock_names())
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            return Err(format!(
                "unknown simulator profile '{name_or_path}'{hint}; stock profiles: {}; or give a YAML file",
                stock_names().join(", ")
            ));
        }
        let text = crate::inputs::read_to_string(name_or_path, crate::inputs::Kind::Settings)
            .map_err(|e| format!("--profile: {e}"))?;
        Profile::parse(&text, name_or_path)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Profile, String> {
        let p: Profile = serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!("{origin}:{}:{}: {}", l.line(), l.column(), e),
            None => format!("{origin}: {e}"),
        })?;
        p.validate().map_err(|m| format!("{origin}: {m}"))?;
        Ok(p)
    }

    pub fn validate(&self) -> Result<(), String> {
        for (field, v) in [
            ("step_base_ms", self.step_base_ms),
            ("per_seq_ms", self.per_seq_ms),
            ("per_prefill_token_ms", self.per_prefill_token_ms),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{field}: expected a non-negative number of milliseconds, got {v}"));
            }
        }
        if self.max_num_seqs == 0 {
            return Err("max_num_seqs: expected a positive integer, got 0".into());
        }
        if self.max_num_batched_tokens == 0 {
            return Err("max_num_batched_tokens: expected a positive integer, got 0".into());
        }
        if self.max_model_len < 2 {
            return Err(format!("max_model_len: expected at least 2, got {}", self.max_model_len));
        }
        if self.kv_cache_tokens < 2 {
            return Err(format!("kv_cache_tokens: expected at least 2, got {}", self.kv_cache_tokens));
        }
        if self.block_size == 0 {
            return Err("block_size: expected a positive integer, got 0".into());
        }
        if self.eos_mean_tokens == 0 {
            return Err("eos_mean_tokens: expected a positive integer, got 0".into());
        }
        Ok(())
    }

    /// Model time of one engine step.
    pub fn step_seconds(&self, batch: usize, prefill_tokens: u64) -> f64 {
        (self.step_base_ms + self.per_seq_ms * batch as f64 + self.per_prefill_token_ms * prefill_tokens as f64)
            / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_profiles_parse() {
        for n in stock_names() {
            let p = Profile::load(n).unwrap();
            assert_eq!(p.name, n);
        }
    }

    #[test]
    fn unknown_profile_suggests() {
        let e = Profile::load("opt-125m").unwrap_err();
        assert!(e.contains("did you mean 'opt-125m-cpu'"), "{e}");
    }

    #[test]
    fn bad_file_names_field() {
        let e = Profile::parse("name: x\nmodel: m\nmax_num_seqs: 1\nmax_num_batched_tokens: 1\nkv_cache_tokens: 10\nmax_model_len: 10\nstep_base_ms: -1\nper_seq_ms: 0\nper_prefill_token_ms: 0\neos_mean_tokens: 1\n", "p.yaml").unwrap_err();
        assert!(e.contains("p.yaml: step_base_ms"), "{e}");
        let e = Profile::parse("name: x\nbogus: 1\n", "p.yaml").unwrap_err();
        assert!(e.contains("p.yaml:2:"), "{e}");
        assert!(e.contains("bogus"), "{e}");
    }
}
