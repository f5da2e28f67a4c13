//! The meshlens data plane: the sidecar proxy every request crosses (DESIGN.md §2).
//!
//! A request's path: [`listen`] accepts → [`detect`] sniffs the protocol → [`outbound`] / [`inbound`]
//! resolve the destination ([`targets`], from [`discovery`]) → [`balance`] picks an endpoint →
//! [`forward`] sends it through the endpoint's pooled [`client`] connection and streams the response back,
//! settling [`metrics`] when it ends. Every response the proxy makes takes one path, `errors::respond`,
//! and every request is accounted for until its response ends (`unanswered`).

pub(crate) mod access_log;
pub(crate) mod admin;
pub(crate) mod app;
pub(crate) mod balance;
pub(crate) mod client;
pub mod config;
pub(crate) mod control;
pub(crate) mod ctx;
pub(crate) mod detect;
pub(crate) mod discovery;
pub(crate) mod errors;
pub(crate) mod forward;
pub(crate) mod http;
pub(crate) mod inbound;
pub(crate) mod inbound_routes;
pub(crate) mod io;
pub(crate) mod listen;
pub mod log;
pub(crate) mod logical;
pub(crate) mod metrics;
pub(crate) mod outbound;
pub mod policy;
mod refused;
pub(crate) mod shared;
pub(crate) mod shutdown;
pub(crate) mod tap;
pub(crate) mod targets;
pub(crate) mod tcp;
mod unanswered;

pub use app::{Listen, Proxy, StartError, start};
pub use config::Config;
pub use listen::{Bind, TcpBind};
pub use metrics::LATENCY_BOUNDS_MS;
