//! Integration tests of the control plane: the real server on 127.0.0.1:0 with a temporary mesh directory,
//! driven over HTTP as proxies, the CLI and curl use it. One binary.

mod api;
mod auth;
mod diagnostics;
mod hardening;
mod logs;
mod prometheus;
mod reload;
mod stats;
mod support;
mod tap;
mod watch;
