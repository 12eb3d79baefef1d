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
pub mod gang;
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
pub use spec::{BenchSpec, ValidSpec};

/// Parses a spec from its JSON form (from a Lua table or a recipe), with
/// errors that name the field (`workload.users: invalid type ...`).
/// [`ValidSpec::from_json`] also validates it, as a run needs.
pub fn spec_from_json(v: serde_json::Value) -> Result<BenchSpec, crate::typed::FieldError> {
    spec::parse(v)
}
