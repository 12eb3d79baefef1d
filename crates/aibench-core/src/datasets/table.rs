//! Prompt files: JSON lines (a prompt string per line, or an object with a
//! prompt field, or whole request bodies) and CSV with a header row, with
//! the prompt and output-length columns named by the user.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Common, DatasetStats, Loc, json_records, read_text};

fn default_output_tokens() -> u64 {
    128
}

/// `type = "jsonl"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jsonl {
    pub path: String,
    /// Field holding the prompt (default "prompt"); lines may also be plain JSON strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Field holding the output length (default "output_tokens", then "max_tokens").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_field: Option<String>,
    /// Send each line as the whole request body.
    #[serde(default)]
    pub as_request: bool,
    #[serde(default = "default_output_tokens")]
    pub output_tokens: u64,
    #[serde(skip)]
    pub common: Common,
}

/// `type = "csv"`: a header row, then one prompt per row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Csv {
    pub path: String,
    /// Column holding the prompt (default "prompt").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Column holding the output length (unset: output_tokens for all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_field: Option<String>,
    #[serde(default = "default_output_tokens")]
    pub output_tokens: u64,
    /// One character (default ",").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(skip)]
    pub common: Common,
}

/// One row: a prompt, or a whole request body, and its output length.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Prompt { text: String, output: u64 },
    Request { body: serde_json::Map<String, Value>, output: u64 },
}

fn output_of(m: &serde_json::Map<String, Value>, field: Option<&str>, default: u64) -> Result<u64, String> {
    let keys: Vec<&str> = match field {
        Some(f) => vec![f],
        None => vec!["output_tokens", "max_tokens"],
    };
    for k in keys {
        match m.get(k) {
            None | Some(Value::Null) => continue,
            Some(v) => {
                return match v.as_u64() {
                    Some(n) if n > 0 => Ok(n),
                    _ => Err(format!("field '{k}': expected a positive integer, got {v}")),
                };
            }
        }
    }
    match field {
        Some(f) => Err(format!("no field '{f}' (dataset.output_field)")),
        None => Ok(default),
    }
}

pub fn load_jsonl(spec: &Jsonl, stats: &mut DatasetStats) -> Result<Vec<Row>, String> {
    let text = read_text(&spec.path)?;
    let field = spec.field.as_deref().unwrap_or("prompt");
    let mut out = Vec::new();
    for (at, rec) in json_records(&spec.path, &text)? {
        stats.read += 1;
        let row = rec.and_then(|v| jsonl_row(spec, field, v));
        match row {
            Ok(r) => out.push(r),
            Err(msg) => stats.bad(&spec.common, &at, &msg)?,
        }
    }
    Ok(out)
}

fn jsonl_row(spec: &Jsonl, field: &str, v: Value) -> Result<Row, String> {
    let of = spec.output_field.as_deref();
    if spec.as_request {
        let Value::Object(m) = v else { return Err("with as_request each line must be a JSON object".into()) };
        let output = output_of(&m, Some(of.unwrap_or("max_tokens")), spec.output_tokens)
            .or_else(|e| if of.is_none() { Ok(spec.output_tokens) } else { Err(e) })?;
        return Ok(Row::Request { body: m, output });
    }
    match v {
        Value::String(s) => Ok(Row::Prompt { text: s, output: spec.output_tokens }),
        Value::Object(m) => match m.get(field) {
            Some(Value::String(s)) => {
                Ok(Row::Prompt { text: s.clone(), output: output_of(&m, of, spec.output_tokens)? })
            }
            _ => Err(format!("no string field '{field}' (set dataset.field, or as_request = true)")),
        },
        _ => Err("expected a JSON string or object".into()),
    }
}

pub fn load_csv(spec: &Csv, stats: &mut DatasetStats) -> Result<Vec<Row>, String> {
    let path = &spec.path;
    let delimiter = match spec.delimiter.as_deref() {
        None => b',',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => return Err(format!("dataset.delimiter: expected one character, got \"{d}\"")),
    };
    let file = std::fs::File::open(path).map_err(|e| format!("dataset.path: cannot read '{path}': {e}"))?;
    let mut r = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(file);
    let headers = r.headers().map_err(|e| format!("dataset.path: {path}:1: cannot read the header row: {e}"))?.clone();
    let field = spec.field.as_deref().unwrap_or("prompt");
    let col = |name: &str, what: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            let have: Vec<&str> = headers.iter().collect();
            let hint = crate::util::did_you_mean(name, have.iter().copied())
                .map(|s| format!(" (did you mean \"{s}\"?)"))
                .unwrap_or_default();
            format!("dataset.{what}: '{path}' has no column \"{name}\"{hint}; its columns: {}", have.join(", "))
        })
    };
    let prompt_col = col(field, "field")?;
    let output_col = spec.output_field.as_deref().map(|f| col(f, "output_field")).transpose()?;
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        stats.read += 1;
        let at = Loc {
            path: path.clone(),
            line: Some(rec.as_ref().ok().and_then(|r| r.position()).map_or(i + 2, |p| p.line() as usize)),
            record: i + 1,
        };
        let row = rec.map_err(|e| format!("invalid CSV: {e}")).and_then(|rec| {
            let text = rec.get(prompt_col).ok_or(format!("no \"{field}\" value (row too short)"))?;
            let output = match output_col {
                None => spec.output_tokens,
                Some(c) => {
                    let v = rec.get(c).unwrap_or("").trim();
                    v.parse::<u64>().ok().filter(|n| *n > 0).ok_or(format!(
                        "column \"{}\": expected a positive integer, got \"{v}\"",
                        spec.output_field.as_deref().unwrap_or_default()
                    ))?
                }
            };
            Ok(Row::Prompt { text: text.to_string(), output })
        });
        match row {
            Ok(r) => out.push(r),
            Err(msg) => stats.bad(&spec.common, &at, &msg)?,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::OnBadLine;

    #[test]
    fn csv_columns_are_mapped_and_bad_rows_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.csv");
        std::fs::write(&p, "id,question,answer_len\n1,\"Hello, world\",12\n2,Second,zero\n3,Third,7\n").unwrap();
        let spec = |common: Common| Csv {
            path: p.to_str().unwrap().into(),
            field: Some("question".into()),
            output_field: Some("answer_len".into()),
            output_tokens: 128,
            delimiter: None,
            common,
        };
        let e = load_csv(&spec(Common::default()), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains("p.csv:3: column \"answer_len\": expected a positive integer, got \"zero\""), "{e}");
        let mut stats = DatasetStats::default();
        let rows = load_csv(&spec(Common { on_bad_line: OnBadLine::Skip, ..Default::default() }), &mut stats).unwrap();
        assert_eq!(
            rows,
            vec![
                Row::Prompt { text: "Hello, world".into(), output: 12 },
                Row::Prompt { text: "Third".into(), output: 7 }
            ]
        );
        assert_eq!((stats.read, stats.skipped_total()), (3, 1));
        let mut bad = spec(Common::default());
        bad.field = Some("questoin".into());
        let e = load_csv(&bad, &mut DatasetStats::default()).unwrap_err();
        assert!(e.starts_with("dataset.field:") && e.contains("did you mean \"question\""), "{e}");
    }

    #[test]
    fn jsonl_output_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.jsonl");
        std::fs::write(&p, "{\"q\": \"one\", \"n\": 5}\n\"two\"\n{\"q\": \"three\"}\n").unwrap();
        let spec = Jsonl {
            path: p.to_str().unwrap().into(),
            field: Some("q".into()),
            output_field: Some("n".into()),
            as_request: false,
            output_tokens: 9,
            common: Common::default(),
        };
        let e = load_jsonl(&spec, &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains("p.jsonl:3: no field 'n'"), "{e}");
        let spec = Jsonl { output_field: None, ..spec };
        let rows = load_jsonl(&spec, &mut DatasetStats::default()).unwrap();
        assert_eq!(rows[0], Row::Prompt { text: "one".into(), output: 9 });
        assert_eq!(rows[1], Row::Prompt { text: "two".into(), output: 9 });
    }
}
