//! Prompt files: JSON lines (a prompt string per line, or an object with a
//! prompt field, or whole request bodies) and CSV with a header row, with
//! the prompt and output-length columns named by the user.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CHECK_EVERY, Common, DatasetStats, Loc, check_interrupt, each_record, open_text, read_error};

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
    /// Column holding the output length (default "output_tokens", then
    /// "max_tokens", when the file has such a column; else output_tokens
    /// for all). An empty cell in a default column takes output_tokens.
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
    let field = spec.field.as_deref().unwrap_or("prompt");
    let mut out = Vec::new();
    each_record(&spec.path, |(at, rec)| {
        stats.read += 1;
        let row = rec.and_then(|v| jsonl_row(spec, field, v));
        match row {
            Ok(r) => out.push(r),
            Err(msg) => stats.bad(&spec.common, &at, &msg)?,
        }
        Ok(())
    })?;
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
    let file = open_text(path)?;
    let mut r = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(file);
    let headers = r
        .headers()
        .map_err(|e| {
            if e.is_io_error() {
                format!("dataset.path: {e}")
            } else {
                format!("dataset.path: {path}:1: cannot read the header row: {e}")
            }
        })?
        .clone();
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
    // The output length: the column named, else "output_tokens", then
    // "max_tokens" when the file has them (as for JSONL), else output_tokens.
    let explicit = spec.output_field.is_some();
    let output_cols: Vec<(usize, String)> = match spec.output_field.as_deref() {
        Some(f) => vec![(col(f, "output_field")?, f.to_string())],
        None => ["output_tokens", "max_tokens"]
            .iter()
            .filter_map(|n| headers.iter().position(|h| h == *n).map(|i| (i, n.to_string())))
            .collect(),
    };
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        if (i + 1).is_multiple_of(CHECK_EVERY) {
            check_interrupt(path)?;
        }
        let rec = match rec {
            // Reading failed (too large, interrupted, I/O): not a bad row.
            Err(e) if e.is_io_error() => {
                return Err(match e.into_kind() {
                    csv::ErrorKind::Io(io) => read_error(io),
                    other => format!("dataset.path: {path}: {other:?}"),
                });
            }
            other => other,
        };
        stats.read += 1;
        let at = Loc {
            path: path.clone(),
            line: Some(rec.as_ref().ok().and_then(|r| r.position()).map_or(i + 2, |p| p.line() as usize)),
            record: i + 1,
        };
        let row = rec.map_err(|e| format!("invalid CSV: {e}")).and_then(|rec| {
            let text = rec.get(prompt_col).ok_or(format!("no \"{field}\" value (row too short)"))?;
            let mut output = None;
            for (c, name) in &output_cols {
                let v = rec.get(*c).unwrap_or("").trim();
                if v.is_empty() && !explicit {
                    continue;
                }
                output = Some(
                    v.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(format!("column \"{name}\": expected a positive integer, got \"{v}\""))?,
                );
                break;
            }
            Ok(Row::Prompt { text: text.to_string(), output: output.unwrap_or(spec.output_tokens) })
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

    fn jsonl(path: &str) -> Jsonl {
        Jsonl {
            path: path.into(),
            field: None,
            output_field: None,
            as_request: false,
            output_tokens: 9,
            common: Common::default(),
        }
    }

    fn csv(path: &str) -> Csv {
        Csv {
            path: path.into(),
            field: None,
            output_field: None,
            output_tokens: 9,
            delimiter: None,
            common: Common::default(),
        }
    }

    #[test]
    fn csv_takes_an_output_tokens_column_by_default_as_jsonl_does() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("p.csv");
        std::fs::write(&c, "prompt,output_tokens\nfirst,12\nsecond,\n").unwrap();
        let rows = load_csv(&csv(c.to_str().unwrap()), &mut DatasetStats::default()).unwrap();
        assert_eq!(
            rows,
            vec![Row::Prompt { text: "first".into(), output: 12 }, Row::Prompt { text: "second".into(), output: 9 }],
            "an empty cell takes output_tokens, as a missing JSONL field does"
        );
        let j = dir.path().join("p.jsonl");
        std::fs::write(&j, "{\"prompt\": \"first\", \"output_tokens\": 12}\n{\"prompt\": \"second\"}\n").unwrap();
        assert_eq!(load_jsonl(&jsonl(j.to_str().unwrap()), &mut DatasetStats::default()).unwrap(), rows);
        // Then max_tokens, as for JSONL; a bad value is a bad row naming the column.
        std::fs::write(&c, "max_tokens,prompt\n7,a\nlots,b\n").unwrap();
        let e = load_csv(&csv(c.to_str().unwrap()), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains("p.csv:3: column \"max_tokens\": expected a positive integer, got \"lots\""), "{e}");
        let skip =
            Csv { common: Common { on_bad_line: OnBadLine::Skip, ..Default::default() }, ..csv(c.to_str().unwrap()) };
        assert_eq!(
            load_csv(&skip, &mut DatasetStats::default()).unwrap(),
            vec![Row::Prompt { text: "a".into(), output: 7 }]
        );
        // Without such a column: output_tokens for all.
        std::fs::write(&c, "prompt\nonly\n").unwrap();
        let rows = load_csv(&csv(c.to_str().unwrap()), &mut DatasetStats::default()).unwrap();
        assert_eq!(rows, vec![Row::Prompt { text: "only".into(), output: 9 }]);
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("bom.csv");
        std::fs::write(&c, "\u{feff}prompt,output_tokens\nhello,3\n").unwrap();
        let rows = load_csv(&csv(c.to_str().unwrap()), &mut DatasetStats::default()).unwrap();
        assert_eq!(rows, vec![Row::Prompt { text: "hello".into(), output: 3 }]);
        let j = dir.path().join("bom.jsonl");
        std::fs::write(&j, "\u{feff}{\"prompt\": \"hello\", \"output_tokens\": 3}\n\"again\"\n").unwrap();
        let rows = load_jsonl(&jsonl(j.to_str().unwrap()), &mut DatasetStats::default()).unwrap();
        assert_eq!(rows[0], Row::Prompt { text: "hello".into(), output: 3 });
        assert_eq!(rows.len(), 2);
        // A JSON array too, and its lines are still counted right.
        std::fs::write(&j, "\u{feff}\n[\"a\",\n \"b\", oops]\n").unwrap();
        let e = load_jsonl(&jsonl(j.to_str().unwrap()), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains("bom.jsonl:3: invalid JSON"), "{e}");
        std::fs::write(&j, "\u{feff}[\"a\", \"b\"]").unwrap();
        assert_eq!(load_jsonl(&jsonl(j.to_str().unwrap()), &mut DatasetStats::default()).unwrap().len(), 2);
    }

    #[test]
    fn devices_and_fifos_are_refused_not_read() {
        let e = load_jsonl(&jsonl("/dev/zero"), &mut DatasetStats::default()).unwrap_err();
        assert_eq!(e, "dataset.path: '/dev/zero' is a character device; expected a regular file");
        let e = load_csv(&csv("/dev/zero"), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains("is a character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.jsonl");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = load_jsonl(&jsonl(fifo.to_str().unwrap()), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains("fifo.jsonl' is a FIFO (named pipe); expected a regular file"), "{e}");
        let e = load_csv(&csv(dir.path().to_str().unwrap()), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains("is a directory; expected a regular file"), "{e}");
    }

    #[test]
    fn a_stop_request_ends_loading() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("big.jsonl");
        std::fs::write(&j, "\"prompt\"\n".repeat(20_000)).unwrap();
        let c = dir.path().join("big.csv");
        std::fs::write(&c, format!("prompt\n{}", "row\n".repeat(20_000))).unwrap();
        let _stop = crate::inputs::TestInterrupt::start();
        for e in [
            load_jsonl(&jsonl(j.to_str().unwrap()), &mut DatasetStats::default()).unwrap_err(),
            load_csv(&csv(c.to_str().unwrap()), &mut DatasetStats::default()).unwrap_err(),
        ] {
            assert!(e.starts_with("dataset.path: interrupted (SIGINT) while loading '"), "{e}");
        }
    }
}
