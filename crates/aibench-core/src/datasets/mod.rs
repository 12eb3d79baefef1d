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
use std::io::{BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};

use crate::inputs::{Bounded, Kind};

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
    pub fn validate(&self) -> Result<(), crate::typed::FieldError> {
        for (f, v) in [
            ("dataset.max_prompt_tokens", self.max_prompt_tokens),
            ("dataset.max_output_tokens", self.max_output_tokens),
            ("dataset.sample", self.sample),
        ] {
            if v == Some(0) {
                return Err(crate::typed::FieldError::new(f, "expected a positive integer, got 0"));
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

/// How often (in lines or records) a loading loop checks for a stop
/// request; the reader also checks at every read.
pub const CHECK_EVERY: usize = 4096;

/// An error reading a dataset (it names the file already).
pub fn read_error(e: std::io::Error) -> String {
    format!("dataset.path: {e}")
}

/// A stop request (SIGINT, SIGTERM) while loading `path`, as an error.
pub fn check_interrupt(path: &str) -> Result<(), String> {
    crate::inputs::check_interrupt(path).map_err(|e| format!("dataset.path: {e}"))
}

/// A dataset file opened for streaming (see [`crate::inputs`]: a regular
/// file within the size cap for datasets), past a UTF-8 byte-order mark.
pub fn open_text(path: &str) -> Result<BufReader<Bounded>, String> {
    let file = crate::inputs::open(path, Kind::Dataset).map_err(|e| format!("dataset.path: {e}"))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let bom = r.fill_buf().map_err(read_error)?.starts_with(crate::inputs::BOM);
    if bom {
        r.consume(crate::inputs::BOM.len());
    }
    Ok(r)
}

/// The whole file as text (without a byte-order mark), with an error that
/// names the field and the file.
pub fn read_text(path: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    open_text(path)?.read_to_end(&mut bytes).map_err(read_error)?;
    String::from_utf8(bytes)
        .map_err(|e| format!("dataset.path: '{path}' is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
}

/// A line without its line ending (`\n` or `\r\n`).
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A record and its place: its JSON, or why it is not JSON.
pub type Record = (Loc, Result<serde_json::Value, String>);

/// The records of a JSON file, handed to `each` in order: a JSON array of
/// records (read whole), or one JSON value per line (streamed; blank lines
/// ignored). A record that is not valid JSON comes with an error message
/// and its place; an error from `each` stops the reading. A byte-order mark
/// is skipped; a stop request (SIGINT, SIGTERM) ends it with an error.
pub fn each_record(path: &str, mut each: impl FnMut(Record) -> Result<(), String>) -> Result<(), String> {
    let mut r = open_text(path)?;
    // Leading white space, counted in lines, then the first character
    // decides: an array, or a value per line.
    let mut line_no = 0usize;
    loop {
        let buf = r.fill_buf().map_err(read_error)?;
        if buf.is_empty() {
            return Ok(());
        }
        let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        line_no += buf[..ws].iter().filter(|b| **b == b'\n').count();
        let all_space = ws == buf.len();
        r.consume(ws);
        if !all_space {
            break;
        }
    }
    let first = r.fill_buf().map_err(read_error)?.first().copied();
    if first == Some(b'[') {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).map_err(read_error)?;
        let all: Vec<serde_json::Value> = serde_json::from_slice(&bytes)
            .map_err(|e| format!("dataset.path: {path}:{}: invalid JSON: {e}", e.line() + line_no))?;
        drop(bytes);
        for (i, v) in all.into_iter().enumerate() {
            if i.is_multiple_of(CHECK_EVERY) {
                check_interrupt(path)?;
            }
            each((Loc { path: path.into(), line: None, record: i + 1 }, Ok(v)))?;
        }
        return Ok(());
    }
    let mut buf = Vec::with_capacity(4096);
    let mut record = 0usize;
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf).map_err(read_error)? == 0 {
            return Ok(());
        }
        line_no += 1;
        if line_no.is_multiple_of(CHECK_EVERY) {
            check_interrupt(path)?;
        }
        let line = std::str::from_utf8(trim_eol(&buf)).map_err(|e| {
            format!("dataset.path: {path}:{line_no}: not UTF-8 text (byte {} of the line)", e.valid_up_to() + 1)
        })?;
        if line.trim().is_empty() {
            continue;
        }
        record += 1;
        let at = Loc { path: path.into(), line: Some(line_no), record };
        each((at, serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))))?;
    }
}

/// The error for a dataset that the filters left empty.
pub fn empty_error(stats: &DatasetStats) -> crate::typed::FieldError {
    use crate::typed::FieldError;
    let path = stats.path.as_deref().unwrap_or("dataset");
    if stats.read == 0 {
        return FieldError::new("dataset.path", format!("'{path}' holds no records"));
    }
    let reasons: Vec<String> = stats.skipped.iter().map(|(k, v)| format!("{v} {k}")).collect();
    FieldError::new(
        "dataset",
        format!(
            "no record of '{path}' is left after the filters ({} read, skipped: {}); loosen max_prompt_tokens or check the file",
            stats.read,
            if reasons.is_empty() { "none".into() } else { reasons.join(", ") }
        ),
    )
}
