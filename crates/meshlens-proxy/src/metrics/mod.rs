//! Prometheus metrics of the proxy: lock-free counters and histograms, and our own text encoder.
//!
//! Design (DESIGN.md §7): a [`Registry`] is created by the caller and passed down (no globals).
//! Handles are resolved once, when a target appears ([`HttpMetrics::target`], [`TcpMetrics::target`],
//! [`Family::get_or_create`]); counting on them is relaxed atomics only: no lock, no hashing of label
//! strings, no allocation. [`Registry::encode`] writes the classic text format 0.0.4 with `# HELP`
//! and `# TYPE` for every registered family, even one without series yet; series appear in creation
//! order, so output is stable between scrapes.

mod counter;
mod encode;
mod extremes;
mod histogram;
mod http;
mod labels;
mod process;
mod registry;
mod series_list;
mod tcp;

pub use counter::{Counter, Gauge};
pub use encode::CONTENT_TYPE;
pub use histogram::{Histogram, LATENCY_BOUNDS_MS};
pub use http::{HttpMetrics, HttpTargetMetrics};
pub use labels::LabelSet;
pub use process::register_process;
pub(crate) use registry::Collect;
pub use registry::{CounterFamily, Family, Metric, Registry};
pub use tcp::{TcpConnGuard, TcpMetrics, TcpTargetMetrics};

#[cfg(test)]
mod tests;
