//! Open-loop send times: absolute offsets from the start of the run, drawn
//! from a seeded generator, so they neither drift nor depend on responses.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Gamma};

use serde::{Deserialize, Serialize};

use crate::typed::FieldError;

/// How open-loop arrivals are spaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    Constant,
    #[default]
    Poisson,
    Gamma,
}

/// Intended send offsets, in seconds from the start of the run.
pub struct Schedule {
    rng: ChaCha8Rng,
    kind: Kind,
    next: f64,
    index: u64,
    limit_n: Option<u64>,
    limit_t: Option<f64>,
}

enum Kind {
    Constant(f64),
    Exp(Exp<f64>),
    Gamma(Gamma<f64>),
}

impl Schedule {
    pub fn new(
        rate: f64,
        arrival: Arrival,
        burstiness: Option<f64>,
        seed: u64,
        total: Option<u64>,
        duration_s: Option<f64>,
    ) -> Result<Schedule, FieldError> {
        let kind = match arrival {
            Arrival::Constant => Kind::Constant(1.0 / rate),
            Arrival::Poisson => Kind::Exp(Exp::new(rate).map_err(|e| FieldError::new("workload.rate", e.to_string()))?),
            Arrival::Gamma => {
                // Mean inter-arrival 1/rate; shape = burstiness (1 = Poisson), as vLLM's benchmark does.
                let shape = burstiness.unwrap_or(1.0);
                Kind::Gamma(
                    Gamma::new(shape, 1.0 / (rate * shape))
                        .map_err(|e| FieldError::new("workload.burstiness", e.to_string()))?,
                )
            }
        };
        Ok(Schedule {
            rng: ChaCha8Rng::seed_from_u64(seed),
            kind,
            next: 0.0,
            index: 0,
            limit_n: total,
            limit_t: duration_s,
        })
    }
}

impl Iterator for Schedule {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        if self.limit_n.is_some_and(|n| self.index >= n) {
            return None;
        }
        // The first request goes at t = 0; each later one after a drawn gap.
        let t = if self.index == 0 {
            0.0
        } else {
            let gap = match &self.kind {
                Kind::Constant(g) => *g,
                Kind::Exp(d) => d.sample(&mut self.rng),
                Kind::Gamma(d) => d.sample(&mut self.rng),
            };
            match self.kind {
                // Constant: multiply, do not accumulate rounding.
                Kind::Constant(g) => g * self.index as f64,
                _ => self.next + gap,
            }
        };
        if self.limit_t.is_some_and(|d| t >= d) {
            return None;
        }
        self.next = t;
        self.index += 1;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_is_exact() {
        let s: Vec<f64> = Schedule::new(4.0, Arrival::Constant, None, 0, Some(5), None).unwrap().collect();
        assert_eq!(s, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let s: Vec<f64> = Schedule::new(10.0, Arrival::Constant, None, 0, None, Some(1.0)).unwrap().collect();
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn seeded_and_mean_rate() {
        let a: Vec<f64> = Schedule::new(100.0, Arrival::Poisson, None, 7, Some(20000), None).unwrap().collect();
        let b: Vec<f64> = Schedule::new(100.0, Arrival::Poisson, None, 7, Some(20000), None).unwrap().collect();
        assert_eq!(a, b);
        let rate = (a.len() - 1) as f64 / a.last().unwrap();
        assert!((rate - 100.0).abs() < 3.0, "{rate}");
        let g: Vec<f64> = Schedule::new(100.0, Arrival::Gamma, Some(0.5), 7, Some(20000), None).unwrap().collect();
        let rate = (g.len() - 1) as f64 / g.last().unwrap();
        assert!((rate - 100.0).abs() < 5.0, "{rate}");
    }
}
