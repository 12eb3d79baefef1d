//! Progress of a running benchmark: a snapshot about once a second, and the
//! terminal spinner line that shows it.

use std::io::IsTerminal;

/// A once-a-second view of a running benchmark.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Progress {
    pub elapsed_s: f64,
    pub completed: u64,
    pub errors: u64,
    pub in_flight: i64,
    /// Over the last second.
    pub req_per_s: f64,
    pub output_tokens_per_s: f64,
    pub p50_ttft_ms: Option<f64>,
    pub p50_latency_ms: Option<f64>,
}

impl Progress {
    /// The one line a person reads: rate, in flight, done, errors, p50.
    pub fn line(&self) -> String {
        let mut m = format!(
            "{:>7.1} req/s  {:>5} in flight  {:>7} done  {} errors",
            self.req_per_s, self.in_flight, self.completed, self.errors
        );
        if let Some(t) = self.p50_ttft_ms {
            m.push_str(&format!("  p50 TTFT {t:.1} ms"));
        } else if let Some(l) = self.p50_latency_ms {
            m.push_str(&format!("  p50 latency {l:.1} ms"));
        }
        if self.output_tokens_per_s > 0.0 {
            m.push_str(&format!("  {:.0} tok/s", self.output_tokens_per_s));
        }
        m
    }
}

/// A spinner on stderr with the latest progress line; nothing when stderr
/// is not a terminal (piped output stays clean).
pub struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    pub fn new(wanted: bool) -> Bar {
        Bar((wanted && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or(indicatif::ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(200));
            b
        }))
    }

    pub fn show(&self, p: &Progress) {
        if let Some(b) = &self.0 {
            b.set_message(p.line());
        }
    }

    /// A note above the spinner (or on stderr without one).
    pub fn note(&self, text: &str) {
        match &self.0 {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.0 {
            b.finish_and_clear();
        }
    }
}
