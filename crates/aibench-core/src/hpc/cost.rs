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
}

impl Accounting {
    pub fn of(jobs: Vec<JobUsage>) -> Accounting {
        let h = |f: &dyn Fn(&JobUsage) -> f64| jobs.iter().map(|j| f(j) * j.elapsed_s as f64 / 3600.0).sum::<f64>();
        let energy = if !jobs.is_empty() && jobs.iter().all(|j| j.energy_j.is_some()) {
            Some(jobs.iter().filter_map(|j| j.energy_j).sum())
        } else {
            None
        };
        Accounting {
            node_hours: h(&|j| j.nodes as f64),
            gpu_hours: h(&|j| j.gpus as f64),
            cpu_hours: h(&|j| j.cpus as f64),
            cpu_used_hours: jobs.iter().map(|j| j.total_cpu_s).sum::<f64>() / 3600.0,
            billing_hours: h(&|j| j.billing),
            energy_j: energy,
            peak_rss_mb: jobs.iter().map(|j| j.max_rss_mb).fold(0.0, f64::max),
            jobs,
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
        if hours <= 0.0 {
            return None;
        }
        let per_million = |cost: f64| (i.output_tokens > 0).then(|| cost / i.output_tokens as f64 * 1e6);
        let price = if i.gpus > 0 { i.pricing.gpu_hour } else { i.pricing.node_hour };
        let (cost, unit) = match price {
            Some(p) => {
                (per_million(p * hours), Some(i.pricing.currency.clone().unwrap_or_else(|| "currency units".into())))
            }
            None if i.billing > 0.0 => (per_million(i.billing * i.window_s / 3600.0), Some("billing units".into())),
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
        assert!(Efficiency::of(&Inputs { window_s: 0.0, ..i }).is_none());
    }
}
