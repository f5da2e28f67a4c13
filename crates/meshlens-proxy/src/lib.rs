//! The meshlens data plane: the sidecar proxy every request crosses (DESIGN.md §2).
//!
//! A request's path: [`listen`] accepts → [`detect`] sniffs the protocol → [`outbound`] / [`inbound`]
//! resolve the destination ([`targets`], from [`discovery`]) → [`balance`] picks an endpoint →
//! [`forward`] sends it through the endpoint's pooled [`client`] connection and streams the response back,
//! settling [`metrics`] when it ends. Every response the proxy makes takes one path, `errors::respond`,
//! and every request is accounted for until its response ends (`unanswered`).

pub mod access_log;
pub mod admin;
pub mod app;
pub mod balance;
pub mod client;
pub mod config;
pub mod control;
pub mod ctx;
pub mod detect;
pub mod discovery;
pub mod errors;
pub mod forward;
pub mod http;
pub mod inbound;
pub mod io;
pub mod listen;
pub mod log;
pub mod logical;
pub mod metrics;
pub mod outbound;
pub mod policy;
mod refused;
pub mod shutdown;
pub mod tap;
pub mod targets;
pub mod tcp;
mod unanswered;

pub use app::{Listen, Proxy, StartError, start};
pub use config::Config;
pub use listen::{Bind, TcpBind};
