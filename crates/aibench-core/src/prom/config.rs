//! `prometheus.yml` from a small spec: scrape jobs reading file_sd target
//! files (so targets change without a restart), rule files, intervals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ScrapeJob {
    pub job_name: String,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// file_sd files (JSON target lists) Prometheus re-reads every `refresh_interval`.
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub static_targets: Vec<String>,
    #[serde(default)]
    pub refresh_interval: Option<String>,
    #[serde(default)]
    pub scrape_interval: Option<String>,
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    #[serde(default)]
    pub scrape_interval: Option<String>,
    #[serde(default)]
    pub evaluation_interval: Option<String>,
    #[serde(default)]
    pub jobs: Vec<ScrapeJob>,
    #[serde(default)]
    pub rule_files: Vec<String>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
}

/// Prometheus' duration syntax: 1y2w3d4h5m6s7ms (units in that order), or 0.
pub fn valid_duration(s: &str) -> bool {
    duration_seconds(s).is_ok()
}

/// A Prometheus duration (`15s`, `1h30m`, `500ms`, `0`) in seconds: units
/// y w d h m s ms, each at most once, largest first, whole numbers.
pub fn duration_seconds(s: &str) -> Result<f64, String> {
    let bad = || format!("expected a Prometheus duration like 15s, 1m or 1h30m, got \"{}\"", s.escape_default());
    if s == "0" {
        return Ok(0.0);
    }
    const UNITS: [(&str, f64); 7] = [
        ("y", 365.0 * 86400.0),
        ("w", 7.0 * 86400.0),
        ("d", 86400.0),
        ("h", 3600.0),
        ("m", 60.0),
        ("s", 1.0),
        ("ms", 0.001),
    ];
    let mut rest = s;
    let mut last = -1i32;
    let mut total = 0.0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = if rest.starts_with("ms") { "ms" } else { &rest[..rest.chars().next().map_or(0, char::len_utf8)] };
        let Some(idx) = UNITS.iter().position(|u| u.0 == unit) else { return Err(bad()) };
        if idx as i32 <= last {
            return Err(bad());
        }
        last = idx as i32;
        total += n * UNITS[idx].1;
        rest = &rest[unit.len()..];
    }
    Ok(total)
}

fn check_duration(field: &str, v: &Option<String>) -> Result<(), String> {
    match v {
        Some(d) if !valid_duration(d) => {
            Err(format!("{field}: expected a Prometheus duration like 15s, 1m or 24h, got \"{d}\""))
        }
        _ => Ok(()),
    }
}

impl ConfigSpec {
    pub fn validate(&self) -> Result<(), String> {
        check_duration("scrape_interval", &self.scrape_interval)?;
        check_duration("evaluation_interval", &self.evaluation_interval)?;
        for (i, j) in self.jobs.iter().enumerate() {
            if j.job_name.is_empty() {
                return Err(format!("jobs[{}].job_name: expected a name", i + 1));
            }
            if !j.metrics_path.starts_with('/') {
                return Err(format!(
                    "jobs[{}].metrics_path: expected a path starting with '/', got \"{}\"",
                    i + 1,
                    j.metrics_path
                ));
            }
            check_duration(&format!("jobs[{}].refresh_interval", i + 1), &j.refresh_interval)?;
            check_duration(&format!("jobs[{}].scrape_interval", i + 1), &j.scrape_interval)?;
        }
        Ok(())
    }

    pub fn render(&self) -> Result<String, String> {
        self.validate()?;
        let mut global = serde_json::Map::new();
        global.insert("scrape_interval".into(), self.scrape_interval.clone().unwrap_or_else(|| "15s".into()).into());
        global.insert(
            "evaluation_interval".into(),
            self.evaluation_interval
                .clone()
                .or_else(|| self.scrape_interval.clone())
                .unwrap_or_else(|| "15s".into())
                .into(),
        );
        if !self.external_labels.is_empty() {
            global.insert("external_labels".into(), json!(self.external_labels));
        }
        let jobs: Vec<serde_json::Value> = self
            .jobs
            .iter()
            .map(|j| {
                let mut m = serde_json::Map::new();
                m.insert("job_name".into(), j.job_name.clone().into());
                m.insert("metrics_path".into(), j.metrics_path.clone().into());
                if let Some(s) = &j.scrape_interval {
                    m.insert("scrape_interval".into(), s.clone().into());
                }
                if !j.files.is_empty() {
                    m.insert(
                        "file_sd_configs".into(),
                        json!([{"files": j.files, "refresh_interval": j.refresh_interval.clone().unwrap_or_else(|| "5s".into())}]),
                    );
                }
                if !j.static_targets.is_empty() {
                    m.insert("static_configs".into(), json!([{"targets": j.static_targets}]));
                }
                serde_json::Value::Object(m)
            })
            .collect();
        let mut doc = serde_json::Map::new();
        doc.insert("global".into(), serde_json::Value::Object(global));
        if !self.rule_files.is_empty() {
            doc.insert("rule_files".into(), json!(self.rule_files));
        }
        doc.insert("scrape_configs".into(), serde_json::Value::Array(jobs));
        let text = serde_yaml_ng::to_string(&serde_json::Value::Object(doc)).map_err(|e| e.to_string())?;
        Ok(format!("# Written by aibench {}\n{text}", env!("CARGO_PKG_VERSION")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for ok in ["15s", "1m", "24h", "1h30m", "500ms", "0", "2w"] {
            assert!(valid_duration(ok), "{ok}");
        }
        for bad in ["", "15", "s", "1.5s", "30m1h", "15 s", "1x"] {
            assert!(!valid_duration(bad), "{bad}");
        }
        assert_eq!(duration_seconds("1h30m").unwrap(), 5400.0);
        assert_eq!(duration_seconds("500ms").unwrap(), 0.5);
        assert_eq!(duration_seconds("2w").unwrap(), 14.0 * 86400.0);
    }

    #[test]
    fn renders_file_sd_jobs() {
        let c = ConfigSpec {
            scrape_interval: Some("5s".into()),
            jobs: vec![ScrapeJob {
                job_name: "vllm".into(),
                metrics_path: "/metrics".into(),
                files: vec!["/tmp/t.json".into()],
                refresh_interval: Some("5s".into()),
                ..Default::default()
            }],
            rule_files: vec!["/tmp/rules.yml".into()],
            ..Default::default()
        };
        let text = c.render().unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(v["global"]["scrape_interval"].as_str(), Some("5s"));
        assert_eq!(v["scrape_configs"][0]["file_sd_configs"][0]["files"][0].as_str(), Some("/tmp/t.json"));
        assert_eq!(v["rule_files"][0].as_str(), Some("/tmp/rules.yml"));
        let bad = ConfigSpec { scrape_interval: Some("fast".into()), ..Default::default() };
        assert!(bad.render().unwrap_err().contains("scrape_interval"));
    }
}
