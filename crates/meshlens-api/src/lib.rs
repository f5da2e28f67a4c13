//! Shared vocabulary of meshlens: the serde types that the proxy, the control plane and the CLI exchange.
//!
//! This crate depends on serde only. Nothing here does I/O, except [`process`] reading `/proc/self` at scrape time.

pub mod alerts;
pub mod authority;
pub mod balancer;
pub mod check;
pub mod control;
pub mod diagnose;
pub mod diagnostics;
pub mod discovery;
pub mod duration;
pub mod errors;
pub mod httproute;
pub mod labels;
pub mod logs;
pub mod mesh;
pub mod meta;
pub mod process;
pub mod profile;
pub mod promtext;
pub mod selector;
pub mod stats;
pub mod tap;
pub mod time;

pub use authority::Authority;
pub use discovery::{Endpoint, Service, ServicePort, Snapshot};
pub use errors::ProxyErrorReason;
