//! What a run cost: the accounting totals of its jobs (node-, GPU- and
//! CPU-hours, energy, peak memory) and its efficiency over the benchmark
//! window (output tokens and requests per GPU-hour, or per node-hour on
//! CPU-only runs; joules per output token; cost per million output tokens
//! from a site's prices, or in SLURM's billing units).

use serde::{Deserialize, Serialize};

use super::sacct::JobUsage;

/// Prices from `config/slurm.yml` (`pricing:`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    #[serde(default)]
    pub gpu_hour: Option<f64>,
    #[serde(default)]
    pub node_hour: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
}

/// A value of a `pricing:` table as a config file gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum Given {
    Number(f64),
    Text(String),
    /// Anything else, as it reads in a message ("a list", "true").
    Other(String),
}

impl Pricing {
    pub const FIELDS: [&'static str; 3] = ["gpu_hour", "node_hour", "currency"];

    /// The message for a `pricing:` in `file` that is not a table (`got`:
    /// what it is instead).
    pub fn not_a_table(file: &str, got: &str) -> String {
        format!("{file}: pricing: expected a table of gpu_hour, node_hour and currency, got {got}")
    }

    /// Reads the fields of a `pricing:` table from `file`, keeping what is
    /// valid: the prices, and one message per problem, each naming the file
    /// and the field (an unknown field with the one it was probably meant
    /// to be), so one typo does not throw away the valid prices beside it.
    pub fn read(file: &str, given: &[(String, Given)]) -> (Pricing, Vec<String>) {
        let mut p = Pricing::default();
        let mut problems = Vec::new();
        let mut fields: Vec<&(String, Given)> = given.iter().collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in fields {
            match (k.as_str(), v) {
                ("gpu_hour", Given::Number(n)) if price_ok(*n) => p.gpu_hour = Some(*n),
                ("node_hour", Given::Number(n)) if price_ok(*n) => p.node_hour = Some(*n),
                ("gpu_hour" | "node_hour", v) => {
                    problems.push(format!("{file}: pricing.{k}: expected a finite price above 0, got {}", shown(v)));
                }
                ("currency", Given::Text(c)) if !c.trim().is_empty() => p.currency = Some(c.trim().to_string()),
                ("currency", v) => {
                    problems.push(format!(
                        "{file}: pricing.currency: expected a currency name such as \"EUR\", got {}",
                        shown(v)
                    ));
                }
                _ => {
                    let hint = crate::util::did_you_mean(k, Self::FIELDS)
                        .map(|f| format!(" (did you mean '{f}'?)"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "{file}: pricing.{k}: unknown field{hint}; the fields are gpu_hour, node_hour and currency"
                    ));
                }
            }
        }
        (p, problems)
    }

    /// Whether prices given directly (not from a file) can be used.
    pub fn check(&self) -> Result<(), String> {
        for (k, v) in [("gpu_hour", self.gpu_hour), ("node_hour", self.node_hour)] {
            if let Some(n) = v.filter(|n| !price_ok(*n)) {
                return Err(format!("pricing.{k}: expected a finite price above 0, got {n}"));
            }
        }
        Ok(())
    }
}

/// A price a cost can be worked out from.
fn price_ok(n: f64) -> bool {
    n.is_finite() && n > 0.0
}

fn shown(v: &Given) -> String {
    match v {
        Given::Number(n) => n.to_string(),
        Given::Text(t) => format!("{t:?}"),
        Given::Other(o) => o.clone(),
    }
}

/// The totals of a set of jobs, from sacct.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accounting {
    pub jobs: Vec<JobUsage>,
    pub node_hours: f64,
    pub gpu_hours: f64,
    /// Allocated CPUs × wall time.
    pub cpu_hours: f64,
    /// CPU time the jobs' processes used (TotalCPU).
    pub cpu_used_hours: f64,
    /// SLURM's billing TRES × wall time.
    pub billing_hours: f64,
    /// Joules, when the site's energy plugin measured every job.
    pub energy_j: Option<f64>,
    pub peak_rss_mb: f64,
    /// What in sacct's answer could not be used (and was left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Accounting {
    pub fn of(jobs: Vec<JobUsage>) -> Accounting {
        // Sums start at +0.0: an f64 `sum()` of nothing is -0.0, which a
        // report prints as "-0.0000 node-hours".
        let add = |a: f64, b: f64| a + b;
        let h = |f: &dyn Fn(&JobUsage) -> f64| jobs.iter().map(|j| f(j) * j.elapsed_s as f64 / 3600.0).fold(0.0, add);
        let energy = if !jobs.is_empty() && jobs.iter().all(|j| j.energy_j.is_some()) {
            Some(jobs.iter().filter_map(|j| j.energy_j).fold(0.0, add))
        } else {
            None
        };
        Accounting {
            node_hours: h(&|j| j.nodes as f64),
            gpu_hours: h(&|j| j.gpus as f64),
            cpu_hours: h(&|j| j.cpus as f64),
            cpu_used_hours: jobs.iter().map(|j| j.total_cpu_s).fold(0.0, add) / 3600.0,
            billing_hours: h(&|j| j.billing),
            energy_j: energy,
            peak_rss_mb: jobs.iter().map(|j| j.max_rss_mb).fold(0.0, f64::max),
            jobs,
            warnings: Vec::new(),
        }
    }
}

/// What the efficiency is worked out from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub output_tokens: u64,
    pub requests: u64,
    /// The benchmark window.
    pub window_s: f64,
    /// What the serving jobs hold during the window (all instances).
    pub gpus: u64,
    pub nodes: u64,
    pub billing: f64,
    /// Joules over the window and where they come from ("gpu exporter",
    /// "slurm, pro-rated to the window").
    pub energy: Option<(f64, String)>,
    pub pricing: Pricing,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Efficiency {
    /// "gpu" (per GPU-hour) or "node" (per node-hour, CPU-only runs).
    pub per: String,
    /// GPU- or node-hours the serving jobs held over the window.
    pub hours: f64,
    pub output_tokens_per_hour: f64,
    pub requests_per_hour: f64,
    pub joules_per_output_token: Option<f64>,
    pub energy_source: Option<String>,
    pub cost_per_million_output_tokens: Option<f64>,
    /// The prices' currency, or "billing units" for SLURM's billing TRES.
    pub cost_unit: Option<String>,
}

impl Efficiency {
    /// `None` when there is nothing to divide (no window, no allocation).
    pub fn of(i: &Inputs) -> Option<Efficiency> {
        let (per, units) = if i.gpus > 0 { ("gpu", i.gpus) } else { ("node", i.nodes) };
        let hours = units as f64 * i.window_s / 3600.0;
        if !(hours > 0.0 && hours.is_finite()) {
            return None;
        }
        let per_million = |cost: f64| (i.output_tokens > 0).then(|| cost / i.output_tokens as f64 * 1e6);
        // A price that is not one (NaN, negative) counts as none given.
        let price = (if i.gpus > 0 { i.pricing.gpu_hour } else { i.pricing.node_hour }).filter(|p| price_ok(*p));
        let (cost, unit) = match price {
            Some(p) => {
                (per_million(p * hours), Some(i.pricing.currency.clone().unwrap_or_else(|| "currency units".into())))
            }
            None if i.billing > 0.0 && i.billing.is_finite() => {
                (per_million(i.billing * i.window_s / 3600.0), Some("billing units".into()))
            }
            None => (None, None),
        };
        Some(Efficiency {
            per: per.into(),
            hours,
            output_tokens_per_hour: i.output_tokens as f64 / hours,
            requests_per_hour: i.requests as f64 / hours,
            joules_per_output_token: i
                .energy
                .as_ref()
                .filter(|_| i.output_tokens > 0)
                .map(|(j, _)| j / i.output_tokens as f64),
            energy_source: i.energy.as_ref().map(|(_, s)| s.clone()),
            cost_per_million_output_tokens: cost,
            cost_unit: unit.filter(|_| cost.is_some()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(elapsed: u64, nodes: u64, cpus: u64, gpus: u64, billing: f64, energy: Option<f64>) -> JobUsage {
        JobUsage {
            elapsed_s: elapsed,
            nodes,
            cpus,
            gpus,
            billing,
            energy_j: energy,
            total_cpu_s: 1800.0,
            ..Default::default()
        }
    }

    #[test]
    fn accounting_totals() {
        let a = Accounting::of(vec![job(3600, 1, 8, 4, 10.0, Some(1e6)), job(1800, 2, 2, 0, 1.0, Some(5e5))]);
        assert_eq!(a.node_hours, 2.0);
        assert_eq!(a.gpu_hours, 4.0);
        assert_eq!(a.cpu_hours, 9.0);
        assert_eq!(a.cpu_used_hours, 1.0);
        assert_eq!(a.billing_hours, 10.5);
        assert_eq!(a.energy_j, Some(1.5e6));
        // One job without a measurement: no total that would look complete.
        let a = Accounting::of(vec![job(60, 1, 1, 0, 0.0, Some(10.0)), job(60, 1, 1, 0, 0.0, None)]);
        assert_eq!(a.energy_j, None);
    }

    #[test]
    fn efficiency_per_gpu_hour_with_prices() {
        let i = Inputs {
            output_tokens: 2_000_000,
            requests: 10_000,
            window_s: 1800.0,
            gpus: 4,
            nodes: 1,
            billing: 40.0,
            energy: Some((3.6e6, "gpu exporter".into())),
            pricing: Pricing { gpu_hour: Some(2.5), node_hour: Some(10.0), currency: Some("EUR".into()) },
        };
        let e = Efficiency::of(&i).unwrap();
        assert_eq!(e.per, "gpu");
        assert_eq!(e.hours, 2.0); // 4 GPUs for half an hour
        assert_eq!(e.output_tokens_per_hour, 1_000_000.0);
        assert_eq!(e.requests_per_hour, 5_000.0);
        assert_eq!(e.joules_per_output_token, Some(1.8));
        // 2 GPU-hours at 2.50 = 5.00 for 2M tokens: 2.50 per million.
        assert_eq!(e.cost_per_million_output_tokens, Some(2.5));
        assert_eq!(e.cost_unit.as_deref(), Some("EUR"));
    }

    #[test]
    fn cpu_only_runs_count_node_hours_and_billing_without_prices() {
        let i = Inputs {
            output_tokens: 36_000,
            requests: 100,
            window_s: 3600.0,
            gpus: 0,
            nodes: 2,
            billing: 3.0,
            ..Default::default()
        };
        let e = Efficiency::of(&i).unwrap();
        assert_eq!((e.per.as_str(), e.hours), ("node", 2.0));
        assert_eq!(e.output_tokens_per_hour, 18_000.0);
        // 3 billing units an hour for one hour, for 36k tokens.
        assert!((e.cost_per_million_output_tokens.unwrap() - 3.0 / 36_000.0 * 1e6).abs() < 1e-9);
        assert_eq!(e.cost_unit.as_deref(), Some("billing units"));
        assert_eq!(e.joules_per_output_token, None);
        assert!(Efficiency::of(&Inputs { window_s: 0.0, ..i.clone() }).is_none());
        assert!(Efficiency::of(&Inputs { window_s: f64::NAN, ..i.clone() }).is_none());
        // A price that is not one is no price: billing units, never NaN.
        let bad = Pricing { node_hour: Some(f64::NAN), ..Default::default() };
        let e = Efficiency::of(&Inputs { pricing: bad, ..i }).unwrap();
        assert_eq!(e.cost_unit.as_deref(), Some("billing units"));
    }

    #[test]
    fn no_jobs_are_zero_not_negative_zero() {
        let a = Accounting::of(Vec::new());
        for v in [a.node_hours, a.gpu_hours, a.cpu_hours, a.cpu_used_hours, a.billing_hours, a.peak_rss_mb] {
            assert!(v == 0.0 && v.is_sign_positive(), "{v}");
        }
        assert_eq!(format!("{:.4}", a.node_hours), "0.0000");
        assert!(a.warnings.is_empty());
        // No warnings: the field is left out of the JSON.
        assert!(serde_json::to_value(&a).unwrap().get("warnings").is_none());
    }

    fn given(fields: &[(&str, Given)]) -> Vec<(String, Given)> {
        fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn pricing_is_read_field_by_field_with_the_file_named() {
        let f = "config/slurm.yml";
        let (p, problems) = Pricing::read(
            f,
            &given(&[
                ("gpu_hour", Given::Number(2.5)),
                ("node_hour", Given::Number(10.0)),
                ("currency", Given::Text("EUR".into())),
            ]),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(p, Pricing { gpu_hour: Some(2.5), node_hour: Some(10.0), currency: Some("EUR".into()) });
        assert_eq!(p.check(), Ok(()));

        // The typo: named, with what was meant; the valid price beside it is kept.
        let (p, problems) =
            Pricing::read(f, &given(&[("node_hour", Given::Number(10.0)), ("currencyy", Given::Text("EUR".into()))]));
        assert_eq!(p, Pricing { node_hour: Some(10.0), ..Default::default() });
        assert_eq!(
            problems,
            vec![
                "config/slurm.yml: pricing.currencyy: unknown field (did you mean 'currency'?); \
                 the fields are gpu_hour, node_hour and currency"
                    .to_string()
            ]
        );
        let (_, problems) = Pricing::read(f, &given(&[("nodehour", Given::Number(1.0))]));
        assert!(problems[0].contains("pricing.nodehour: unknown field (did you mean 'node_hour'?)"), "{problems:?}");

        // Negative, zero, non-finite and non-numbers: named, never used.
        for (v, shown) in [
            (Given::Number(-3.0), "-3"),
            (Given::Number(0.0), "0"),
            (Given::Number(f64::NAN), "NaN"),
            (Given::Number(f64::INFINITY), "inf"),
            (Given::Text("cheap".into()), "\"cheap\""),
            (Given::Other("a list".into()), "a list"),
        ] {
            let (p, problems) = Pricing::read(f, &given(&[("gpu_hour", v)]));
            assert_eq!(p, Pricing::default());
            assert_eq!(
                problems,
                vec![format!("config/slurm.yml: pricing.gpu_hour: expected a finite price above 0, got {shown}")]
            );
        }
        let (_, problems) = Pricing::read(f, &given(&[("currency", Given::Number(978.0))]));
        assert_eq!(
            problems,
            vec!["config/slurm.yml: pricing.currency: expected a currency name such as \"EUR\", got 978"]
        );
        assert_eq!(
            Pricing::not_a_table(f, "a list"),
            "config/slurm.yml: pricing: expected a table of gpu_hour, node_hour and currency, got a list"
        );

        // Prices given directly.
        let p = Pricing { gpu_hour: Some(-1.0), ..Default::default() };
        assert_eq!(p.check(), Err("pricing.gpu_hour: expected a finite price above 0, got -1".to_string()));
        let p = Pricing { node_hour: Some(f64::INFINITY), ..Default::default() };
        assert!(p.check().unwrap_err().starts_with("pricing.node_hour:"));
    }
}
