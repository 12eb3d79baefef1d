//! The native load generator: a declarative spec in, a report out. The hot
//! loop is plain tokio and never calls Lua (`run.rs` says how a run goes;
//! a new workload pattern is a new driver beside `closed.rs` and `open.rs`).

mod build;
mod chunk;
mod closed;
mod ctx;
pub mod dataset;
mod exchange;
mod facts;
pub mod http1;
mod open;
mod prepare;
pub mod progress;
pub mod report;
pub mod run;
pub mod schedule;
mod sessions;
pub mod shape;
pub mod spec;
pub mod sse;
pub mod stats;
mod ticker;
pub mod timer;
pub mod validity;

pub use ctx::RunError;
pub use progress::Progress;
pub use report::Report;
pub use run::{Control, run};
pub use spec::BenchSpec;

/// Parses a spec from its JSON form (from a Lua table or a recipe), with
/// errors that name the field (`workload.users: invalid type ...`).
pub fn spec_from_json(mut v: serde_json::Value) -> Result<BenchSpec, String> {
    // `dataset.tokenizer` is accepted for `target.tokenizer`.
    if let Some(t) = v.get_mut("dataset").and_then(|d| d.as_object_mut()).and_then(|d| d.remove("tokenizer")) {
        match v.get_mut("target").and_then(|t| t.as_object_mut()) {
            Some(target) if target.get("tokenizer").is_some_and(|x| *x != t) => {
                return Err("dataset.tokenizer: target.tokenizer says otherwise; give one of them".into());
            }
            Some(target) => {
                target.insert("tokenizer".into(), t);
            }
            None => {}
        }
    }
    // The tagged parts first, so their errors carry the full field path.
    if let Some(w) = v.get("workload") {
        spec::Workload::from_json(w.clone(), "workload")?;
    }
    if let Some(d) = v.get("dataset") {
        spec::Dataset::from_json(d.clone(), "dataset")?;
    }
    crate::typed::from_json(v, "")
}
