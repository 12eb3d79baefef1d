//! The native load generator: a declarative spec in, a report out. The hot
//! loop is plain tokio and never calls Lua (`run.rs` says how a run goes;
//! a new workload pattern is a new driver beside `closed.rs` and `open.rs`).

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
pub mod spec;
pub mod sse;
pub mod stats;
mod ticker;
pub mod timer;

pub use ctx::RunError;
pub use progress::Progress;
pub use report::Report;
pub use run::{Control, run};
pub use spec::BenchSpec;

/// Parses a spec from its JSON form (from a Lua table or a recipe), with
/// errors that name the field (`workload.users: invalid type ...`).
pub fn spec_from_json(v: serde_json::Value) -> Result<BenchSpec, String> {
    // The tagged parts first, so their errors carry the full field path.
    if let Some(w) = v.get("workload") {
        spec::Workload::from_json(w.clone(), "workload")?;
    }
    if let Some(d) = v.get("dataset") {
        spec::Dataset::from_json(d.clone(), "dataset")?;
    }
    crate::typed::from_json(v, "")
}
