//! A parser for the Prometheus text exposition format (0.0.4) and the parts
//! of OpenMetrics that servers emit (`# EOF`, `# UNIT`, `_created`).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl Kind {
    fn parse(s: &str) -> Kind {
        match s {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" | "gaugehistogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            _ => Kind::Untyped,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub help: String,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole scrape. Families keep the order they first appear in.
pub fn parse(text: &str) -> Result<Vec<Family>, ParseError> {
    let mut families: Vec<Family> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let family_of = |families: &mut Vec<Family>, index: &mut BTreeMap<String, usize>, name: &str| -> usize {
        if let Some(&i) = index.get(name) {
            return i;
        }
        families.push(Family { name: name.to_string(), kind: Kind::Untyped, help: String::new(), samples: Vec::new() });
        index.insert(name.to_string(), families.len() - 1);
        families.len() - 1
    };
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            let mut parts = rest.splitn(3, char::is_whitespace);
            match parts.next() {
                Some("TYPE") => {
                    let name = parts.next().ok_or_else(|| err(line_no, "TYPE line without a metric name"))?;
                    let kind = parts.next().map(str::trim).unwrap_or("untyped");
                    let i = family_of(&mut families, &mut index, name);
                    families[i].kind = Kind::parse(kind);
                }
                Some("HELP") => {
                    let name = parts.next().ok_or_else(|| err(line_no, "HELP line without a metric name"))?;
                    let help = unescape_help(parts.next().unwrap_or(""));
                    let i = family_of(&mut families, &mut index, name);
                    families[i].help = help;
                }
                _ => {} // comments, # EOF, # UNIT
            }
            continue;
        }
        let sample = parse_sample(line).map_err(|m| err(line_no, &m))?;
        let fam = owning_family(&index, &sample.name).unwrap_or_else(|| sample.name.clone());
        let i = family_of(&mut families, &mut index, &fam);
        families[i].samples.push(sample);
    }
    Ok(families)
}

fn err(line: usize, message: &str) -> ParseError {
    ParseError { line, message: message.to_string() }
}

/// The declared family a sample belongs to (`x_bucket` -> `x`, `x_total` -> `x`).
fn owning_family(index: &BTreeMap<String, usize>, sample: &str) -> Option<String> {
    if index.contains_key(sample) {
        return Some(sample.to_string());
    }
    for suffix in ["_bucket", "_sum", "_count", "_total", "_created", "_info", "_gsum", "_gcount"] {
        if let Some(base) = sample.strip_suffix(suffix)
            && index.contains_key(base)
        {
            return Some(base.to_string());
        }
    }
    None
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A sample value; Rust's float parser also reads `+Inf`, `-Inf`, `Inf` and
/// `NaN` (in any case).
fn parse_value(s: &str) -> Result<f64, String> {
    s.parse::<f64>().map_err(|_| format!("invalid sample value '{s}'"))
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace()).ok_or_else(|| format!("no value in '{line}'"))?;
    let name = &line[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Err(format!("invalid metric name '{name}'"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if rest.starts_with('{') {
        let (l, after) = parse_labels(&rest[1..])?;
        labels = l;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next().ok_or_else(|| format!("metric '{name}' has no value"))?)?;
    let timestamp_ms = match fields.next() {
        Some(ts) => Some(ts.parse::<f64>().map_err(|_| format!("invalid timestamp '{ts}'"))? as i64),
        None => None,
    };
    Ok(Sample { name: name.to_string(), labels, value, timestamp_ms })
}

/// Parses `a="x",b="y"}` and returns the labels and what follows the `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            return Err("unterminated label set".into());
        }
        if bytes[i] == b'}' {
            return Ok((labels, &s[i + 1..]));
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' {
            i += 1;
        }
        let key = s[key_start..i].trim();
        if key.is_empty() || i >= bytes.len() {
            return Err("label without a name or value".into());
        }
        i += 1;
        if bytes.get(i) != Some(&b'"') {
            return Err(format!("label '{key}': value must be quoted"));
        }
        i += 1;
        let mut value = String::new();
        loop {
            let Some(&b) = bytes.get(i) else { return Err(format!("label '{key}': unterminated value")) };
            match b {
                b'\\' => {
                    match bytes.get(i + 1) {
                        Some(b'n') => value.push('\n'),
                        Some(b'"') => value.push('"'),
                        Some(b'\\') => value.push('\\'),
                        Some(&o) => {
                            value.push('\\');
                            value.push(o as char);
                        }
                        None => return Err(format!("label '{key}': unterminated escape")),
                    }
                    i += 2;
                }
                b'"' => {
                    i += 1;
                    break;
                }
                _ => {
                    // Multi-byte UTF-8: copy the whole character.
                    let ch = s[i..].chars().next().ok_or("bad UTF-8")?;
                    value.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        labels.insert(key.to_string(), value);
    }
}

/// A histogram rebuilt from a family's samples, for one label set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Histogram {
    pub labels: BTreeMap<String, String>,
    /// (upper bound, cumulative count), ascending, ending with +Inf.
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl Family {
    /// Histograms of this family, one per label set (without `le`).
    pub fn histograms(&self) -> Vec<Histogram> {
        let mut by: BTreeMap<BTreeMap<String, String>, Histogram> = BTreeMap::new();
        for s in &self.samples {
            let mut labels = s.labels.clone();
            let le = labels.remove("le");
            let h = by.entry(labels.clone()).or_insert_with(|| Histogram {
                labels,
                buckets: Vec::new(),
                sum: 0.0,
                count: 0.0,
            });
            if s.name.ends_with("_bucket") {
                if let Some(le) = le.and_then(|v| parse_value(&v).ok()) {
                    h.buckets.push((le, s.value));
                }
            } else if s.name.ends_with("_sum") {
                h.sum = s.value;
            } else if s.name.ends_with("_count") {
                h.count = s.value;
            }
        }
        let mut out: Vec<Histogram> = by.into_values().collect();
        for h in &mut out {
            h.buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        }
        out
    }

    /// Sum of the family's plain samples (counters/gauges) across label sets,
    /// ignoring `_created` series.
    pub fn total(&self) -> f64 {
        self.samples.iter().filter(|s| !s.name.ends_with("_created")).map(|s| s.value).sum()
    }
}

impl Histogram {
    /// Quantile by linear interpolation within buckets (PromQL's histogram_quantile).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut prev = (0.0, 0.0);
        for &(le, c) in &self.buckets {
            if c >= rank {
                if le.is_infinite() {
                    return Some(prev.0);
                }
                let width = le - prev.0;
                let inside = c - prev.1;
                return Some(if inside > 0.0 { prev.0 + width * (rank - prev.1) / inside } else { le });
            }
            prev = (le, c);
        }
        Some(prev.0)
    }

    /// The upper bound of the bucket the quantile falls in (when finite), and
    /// whether that is the first bucket: interpolation inside the first one
    /// (from 0) says little, so a report may show "<= bound" instead.
    pub fn quantile_bucket(&self, q: f64) -> (Option<f64>, bool) {
        let total = self.buckets.last().map(|b| b.1).unwrap_or(0.0);
        let bound = self.buckets.iter().find(|b| b.1 >= q * total).map(|b| b.0);
        let first = self.buckets.first().map(|b| b.0) == bound;
        (bound.filter(|b| b.is_finite()), first)
    }
}

/// Finds a family by name.
pub fn family<'a>(families: &'a [Family], name: &str) -> Option<&'a Family> {
    families.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/vllm-0.32-cpu-metrics.txt"));

    #[test]
    fn parses_the_real_vllm_scrape() {
        let fams = parse(FIXTURE).unwrap();
        let ttft = family(&fams, "vllm:time_to_first_token_seconds").unwrap();
        assert_eq!(ttft.kind, Kind::Histogram);
        let h = &ttft.histograms()[0];
        assert_eq!(h.labels.get("model_name").map(String::as_str), Some("tiny-model"));
        assert_eq!(h.count, 100.0);
        assert_eq!(h.buckets.last().unwrap().0, f64::INFINITY);
        assert_eq!(h.buckets.len(), 23);
        let succ = family(&fams, "vllm:request_success_total").unwrap();
        assert_eq!(succ.kind, Kind::Counter);
        assert_eq!(succ.total(), 100.0);
        assert_eq!(family(&fams, "vllm:generation_tokens_total").unwrap().total(), 1600.0);
        let q = h.quantile(0.5).unwrap();
        assert!(q > 0.02 && q <= 0.04, "{q}");
    }

    #[test]
    fn escapes_nan_inf_timestamps_comments() {
        let text = "# a free comment\n# HELP m Help with \\\\ and \\n.\n# TYPE m gauge\nm{path=\"C:\\\\x\",q=\"say \\\"hi\\\"\",nl=\"a\\nb\"} NaN 1712345678000\nm{path=\"y\"} +Inf\nm{path=\"z\"} -Inf\n# EOF\n";
        let fams = parse(text).unwrap();
        let m = &fams[0];
        assert_eq!(m.help, "Help with \\ and \n.");
        assert_eq!(m.samples[0].labels["path"], "C:\\x");
        assert_eq!(m.samples[0].labels["q"], "say \"hi\"");
        assert_eq!(m.samples[0].labels["nl"], "a\nb");
        assert!(m.samples[0].value.is_nan());
        assert_eq!(m.samples[0].timestamp_ms, Some(1712345678000));
        assert_eq!(m.samples[1].value, f64::INFINITY);
        assert_eq!(m.samples[2].value, f64::NEG_INFINITY);
    }

    #[test]
    fn special_values() {
        for (text, want) in
            [("+Inf", f64::INFINITY), ("Inf", f64::INFINITY), ("+inf", f64::INFINITY), ("inf", f64::INFINITY)]
        {
            assert_eq!(parse_value(text), Ok(want), "{text}");
        }
        for text in ["-Inf", "-inf"] {
            assert_eq!(parse_value(text), Ok(f64::NEG_INFINITY), "{text}");
        }
        for text in ["NaN", "nan"] {
            assert!(parse_value(text).is_ok_and(f64::is_nan), "{text}");
        }
        assert_eq!(parse_value("1e3x"), Err("invalid sample value '1e3x'".to_string()));
    }

    #[test]
    fn openmetrics_counter_names() {
        let text = "# TYPE c counter\nc_total 3\nc_created 1.7e9\n";
        let fams = parse(text).unwrap();
        assert_eq!(fams.len(), 1);
        assert_eq!(fams[0].samples.len(), 2);
        assert_eq!(fams[0].total(), 3.0);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("ok 1\nbad{a=\"x} 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("m{a=x} 1\n").unwrap_err();
        assert!(e.message.contains("quoted"));
        assert!(parse("m abc\n").is_err());
    }
}
