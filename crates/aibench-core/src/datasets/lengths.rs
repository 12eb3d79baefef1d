//! Lengths of synthetic prompts and outputs: a fixed number, or a seeded
//! draw from a distribution (`{dist = "lognormal", mean = 300, stdev = 200}`).

use crate::typed::FieldError;
use rand::{Rng, RngExt};
use rand_distr::{Distribution, LogNormal, Normal};
use serde::{Deserialize, Serialize};

/// A token count, fixed or drawn per request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Length {
    Fixed(u64),
    Dist(Dist),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistKind {
    Fixed,
    Uniform,
    Normal,
    Lognormal,
}

/// `{dist, mean, stdev}` (normal, lognormal: of the lengths themselves) or
/// `{dist = "uniform", min, max}`; `min` and `max` also clip the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dist {
    pub dist: DistKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdev: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

impl<'de> Deserialize<'de> for Length {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(x) => Ok(Length::Fixed(x)),
                None => Err(D::Error::custom(format!("expected a positive integer, got {n}"))),
            },
            serde_json::Value::Object(_) => serde_json::from_value(v).map(Length::Dist).map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "expected a token count or a table {{dist = \"fixed\"|\"uniform\"|\"normal\"|\"lognormal\", mean, stdev | min, max}}, got {other}"
            ))),
        }
    }
}

impl Length {
    /// Checks the parameters; `field` names the length in messages.
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        let d = match self {
            Length::Fixed(0) => return Err(FieldError::new(field, "expected a positive integer, got 0")),
            Length::Fixed(_) => return Ok(()),
            Length::Dist(d) => d,
        };
        let need = |what: &str, v: Option<f64>| {
            v.ok_or_else(|| FieldError::new(format!("{field}.{what}"), format!("required for dist = \"{}\"", d.name())))
        };
        if d.min == Some(0) {
            return Err(FieldError::new(format!("{field}.min"), "expected a positive integer, got 0"));
        }
        if let (Some(a), Some(b)) = (d.min, d.max)
            && a > b
        {
            return Err(FieldError::new(field, format!("min ({a}) is above max ({b})")));
        }
        match d.dist {
            DistKind::Fixed => {
                let m = need("mean", d.mean)?;
                if !(m >= 1.0 && m.is_finite()) {
                    return Err(FieldError::new(format!("{field}.mean"), format!("expected at least 1, got {m}")));
                }
            }
            DistKind::Uniform => {
                if d.min.is_none() || d.max.is_none() {
                    return Err(FieldError::new(field, "dist = \"uniform\" needs min and max"));
                }
            }
            DistKind::Normal | DistKind::Lognormal => {
                let m = need("mean", d.mean)?;
                let s = need("stdev", d.stdev)?;
                if !(m >= 1.0 && m.is_finite()) {
                    return Err(FieldError::new(format!("{field}.mean"), format!("expected at least 1, got {m}")));
                }
                if !(s >= 0.0 && s.is_finite()) {
                    return Err(FieldError::new(
                        format!("{field}.stdev"),
                        format!("expected a non-negative number, got {s}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// One length (at least 1), drawn from `rng` (validated first).
    pub fn draw(&self, rng: &mut impl Rng) -> u64 {
        let d = match self {
            Length::Fixed(n) => return *n,
            Length::Dist(d) => d,
        };
        let lo = d.min.unwrap_or(1).max(1);
        let hi = d.max.unwrap_or(u64::MAX);
        let x = match d.dist {
            DistKind::Fixed => d.mean.unwrap_or(1.0),
            DistKind::Uniform => return rng.random_range(lo..=hi),
            DistKind::Normal => {
                let (m, s) = (d.mean.unwrap_or(1.0), d.stdev.unwrap_or(0.0));
                Normal::new(m, s).map(|n| n.sample(rng)).unwrap_or(m)
            }
            DistKind::Lognormal => {
                // The mean and stdev given are the lengths', not their logarithms'.
                let (m, s) = (d.mean.unwrap_or(1.0), d.stdev.unwrap_or(0.0));
                let sigma2 = (1.0 + (s * s) / (m * m)).ln();
                let mu = m.ln() - sigma2 / 2.0;
                LogNormal::new(mu, sigma2.sqrt()).map(|n| n.sample(rng)).unwrap_or(m)
            }
        };
        (x.round().max(1.0) as u64).clamp(lo, hi)
    }

    /// The mean length asked (for sizing and summaries).
    pub fn mean(&self) -> f64 {
        match self {
            Length::Fixed(n) => *n as f64,
            Length::Dist(d) => match d.dist {
                DistKind::Uniform => (d.min.unwrap_or(1) + d.max.unwrap_or(1)) as f64 / 2.0,
                _ => d.mean.unwrap_or(1.0),
            },
        }
    }
}

impl Dist {
    fn name(&self) -> &'static str {
        match self.dist {
            DistKind::Fixed => "fixed",
            DistKind::Uniform => "uniform",
            DistKind::Normal => "normal",
            DistKind::Lognormal => "lognormal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn parse(v: serde_json::Value) -> Length {
        serde_json::from_value(v).unwrap()
    }

    fn stats(l: &Length) -> (f64, f64, u64, u64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let xs: Vec<u64> = (0..20_000).map(|_| l.draw(&mut rng)).collect();
        let mean = xs.iter().sum::<u64>() as f64 / xs.len() as f64;
        let var = xs.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        (mean, var.sqrt(), *xs.iter().min().unwrap(), *xs.iter().max().unwrap())
    }

    #[test]
    fn distributions_have_their_moments_and_bounds() {
        assert_eq!(parse(serde_json::json!(7)), Length::Fixed(7));
        let (m, s, _, _) = stats(&parse(serde_json::json!({"dist": "fixed", "mean": 40})));
        assert_eq!((m, s), (40.0, 0.0));
        let (m, _, lo, hi) = stats(&parse(serde_json::json!({"dist": "uniform", "min": 10, "max": 20})));
        assert!((m - 15.0).abs() < 0.2 && lo == 10 && hi == 20, "{m} {lo} {hi}");
        let (m, s, _, _) = stats(&parse(serde_json::json!({"dist": "normal", "mean": 500, "stdev": 50})));
        assert!((m - 500.0).abs() < 3.0 && (s - 50.0).abs() < 3.0, "{m} {s}");
        let (m, s, _, _) = stats(&parse(serde_json::json!({"dist": "lognormal", "mean": 300, "stdev": 200})));
        assert!((m - 300.0).abs() < 10.0 && (s - 200.0).abs() < 20.0, "{m} {s}");
        let (_, _, lo, hi) =
            stats(&parse(serde_json::json!({"dist": "lognormal", "mean": 300, "stdev": 400, "min": 50, "max": 900})));
        assert!(lo >= 50 && hi <= 900);
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let e = parse(serde_json::json!({"dist": "normal", "mean": 10})).validate("dataset.prompt_tokens");
        let e = e.unwrap_err();
        assert_eq!(e.field, "dataset.prompt_tokens.stdev");
        assert_eq!(e.to_string(), "dataset.prompt_tokens.stdev: required for dist = \"normal\"");
        let e = parse(serde_json::json!({"dist": "uniform", "min": 9, "max": 3})).validate("x");
        assert_eq!(e.unwrap_err().to_string(), "x: min (9) is above max (3)");
        assert!(serde_json::from_value::<Length>(serde_json::json!({"dist": "zipf"})).is_err());
        assert!(serde_json::from_value::<Length>(serde_json::json!("many")).is_err());
    }
}
