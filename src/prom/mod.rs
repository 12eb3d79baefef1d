//! Prometheus: the exposition-format parser, the HTTP API client, and
//! configuration rendering.

pub mod client;
pub mod config;
pub mod expfmt;
