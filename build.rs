//! Links the `aibench` binary as a position-dependent executable on Linux:
//! a PIE makes the dynamic loader apply ~36,000 relative relocations at
//! every start, writing (and so copying) some 160 pages of `.data.rel.ro`
//! before `main`: 45% of a start's page faults. Without them a short
//! command (`aibench eval`, a recipe check on a login node) starts faster,
//! and reads less of the binary from disk when the page cache is cold
//! (BENCHMARKS.md, cold start). The trade: the binary's own code loses
//! address randomisation (its shared libraries keep it).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
