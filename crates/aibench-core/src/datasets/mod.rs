//! Datasets from files the user has on the cluster (nothing is downloaded):
//! conversations (ShareGPT, OpenAI-style `messages`), prompt tables (JSONL,
//! CSV) and timestamped traces (Mooncake's format), with the options every
//! format shares: length caps, sampling, shuffling and what a bad line does.
//! Parsing only: counting tokens and building requests is the load
//! generator's (`loadgen::dataset`).

pub mod conversations;
pub mod lengths;
pub mod table;
pub mod trace;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What happens at a line that cannot be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadLine {
    #[default]
    Error,
    Skip,
}

/// The options every file format takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// Records whose prompt is longer are skipped (and counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u64>,
    /// Output lengths are capped at this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Use this many records (after the filters, after shuffling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<u64>,
    #[serde(default)]
    pub shuffle: bool,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub on_bad_line: OnBadLine,
}

/// The keys of `Common`, taken out of a dataset table before its own fields.
pub const COMMON_KEYS: [&str; 6] =
    ["max_prompt_tokens", "max_output_tokens", "sample", "shuffle", "seed", "on_bad_line"];

impl Common {
    pub fn validate(&self) -> Result<(), String> {
        for (f, v) in [
            ("dataset.max_prompt_tokens", self.max_prompt_tokens),
            ("dataset.max_output_tokens", self.max_output_tokens),
            ("dataset.sample", self.sample),
        ] {
            if v == Some(0) {
                return Err(format!("{f}: expected a positive integer, got 0"));
            }
        }
        Ok(())
    }

    /// Shuffles the records when asked (before the filters, which then
    /// take records in this order until `sample` are kept).
    pub fn order<T>(&self, items: &mut [T]) {
        if self.shuffle {
            use rand::SeedableRng;
            use rand::seq::SliceRandom;
            items.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(self.seed));
        }
    }

    /// Records to keep at the most.
    pub fn limit(&self) -> usize {
        self.sample.map_or(usize::MAX, |n| n as usize)
    }

    /// An output length within `max_output_tokens`.
    pub fn cap_output(&self, n: u64) -> u64 {
        self.max_output_tokens.map_or(n, |m| n.min(m))
    }
}

/// What reading a dataset found: records read and used, and those skipped
/// by reason (results carry it, so a filtered dataset is visible).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    pub path: Option<String>,
    pub read: u64,
    pub used: u64,
    pub skipped: BTreeMap<String, u64>,
    /// The first few bad lines, as file:line: reason.
    #[serde(default)]
    pub bad_lines: Vec<String>,
}

const BAD_LINES_KEPT: usize = 5;

impl DatasetStats {
    pub fn new(path: &str) -> DatasetStats {
        DatasetStats { path: Some(path.to_string()), ..Default::default() }
    }

    pub fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }

    /// A line that cannot be read: an error under `on_bad_line = "error"`,
    /// else skipped and counted as malformed.
    pub fn bad(&mut self, common: &Common, at: &Loc, msg: &str) -> Result<(), String> {
        let text = format!("{at}: {msg}");
        if common.on_bad_line == OnBadLine::Error {
            return Err(format!("dataset.path: {text} (on_bad_line = \"skip\" skips such lines)"));
        }
        self.skip("malformed");
        if self.bad_lines.len() < BAD_LINES_KEPT {
            self.bad_lines.push(text);
        }
        Ok(())
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Where a record is: `file:line`, or `file: record N` in a JSON array.
#[derive(Debug, Clone)]
pub struct Loc {
    pub path: String,
    pub line: Option<usize>,
    pub record: usize,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.path),
            None => write!(f, "{}: record {}", self.path, self.record),
        }
    }
}

/// The whole file as text, with an error that names the field and the file.
pub fn read_text(path: &str) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("dataset.path: cannot read '{path}': {e}"))?;
    String::from_utf8(bytes)
        .map_err(|e| format!("dataset.path: '{path}' is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
}

/// A record and its place: its JSON, or why it is not JSON.
pub type Record = (Loc, Result<serde_json::Value, String>);

/// The records of a JSON file: a JSON array of records, or one JSON value
/// per line (blank lines ignored). A record that is not valid JSON comes
/// back as an error message with its place.
pub fn json_records(path: &str, text: &str) -> Result<Vec<Record>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let all: Vec<serde_json::Value> = serde_json::from_str(trimmed).map_err(|e| {
            let line = e.line() + text[..text.len() - trimmed.len()].matches('\n').count();
            format!("dataset.path: {path}:{line}: invalid JSON: {e}")
        })?;
        return Ok(all
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Loc { path: path.into(), line: None, record: i + 1 }, Ok(v)))
            .collect());
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = Loc { path: path.into(), line: Some(i + 1), record: out.len() + 1 };
        out.push((at, serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))));
    }
    Ok(out)
}

/// The error for a dataset that the filters left empty.
pub fn empty_error(stats: &DatasetStats) -> String {
    let path = stats.path.as_deref().unwrap_or("dataset");
    if stats.read == 0 {
        return format!("dataset.path: '{path}' holds no records");
    }
    let reasons: Vec<String> = stats.skipped.iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!(
        "dataset: no record of '{path}' is left after the filters ({} read, skipped: {}); loosen max_prompt_tokens or check the file",
        stats.read,
        if reasons.is_empty() { "none".into() } else { reasons.join(", ") }
    )
}
