//! The meshlens control plane: holds the mesh's desired state, serves proxies a discovery watch stream and
//! answers the CLI and dashboard (DESIGN.md §2).
//!
//! ```no_run
//! # async fn run() -> Result<(), meshlens_control::StartError> {
//! // Proxies register with credentials minted by `config.proxy_credentials`' key; the CLI sends
//! // `config.api_token`.
//! let config = meshlens_control::Config::new("examples/shop", "127.0.0.1:8086".parse().unwrap());
//! let running = meshlens_control::start(config).await?;
//! println!("{}", running.listening_message());
//! running.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`meshdir`] | the mesh directory source: files → documents → [`MeshConfig`], or every error with file:line |
//! | `validate` | semantic checks (names, references, durations, regexes, budgets, weights) |
//! | `httproute` | HTTPRoute/GRPCRoute checked and compiled into the profiles proxies apply |
//! | `yaml` | YAML documents with the line of every field |
//! | [`duration`] | Go-style durations |
//! | `store` | config + registrations → versioned snapshots shared by all watchers; leases, restart rule |
//! | `reload` | polls the directory, reloads on change |
//! | `api` | the HTTP API (axum) |
//! | `server` | its HTTP/1 server: header-read and idle timeout, connection cap with a JSON 503 |
//! | [`auth`] | proxy credentials ([`auth::ProxyCredentials`], local mode's [`auth::ProxyKey`]), the API token, tap tokens |
//! | `metrics` | the control plane's own `/metrics` |
//! | [`api_types`] | JSON shapes of `/api/v1/status` and `/api/v1/resources` |
//! | `scrape` | scrapes every registered proxy into the metric store |
//! | `metricstore` | per-scrape deltas rolled up at ingest, in time slots; window queries |
//! | `statsapi` | `/api/v1/stat`, `/routes`, `/edges` from resources + the metric store |
//! | `statsource` | the embedded store or Prometheus: where statsapi's numbers come from |
//! | `promquery` | Prometheus mode: PromQL `increase` over the window, rolled up like scrapes |
//! | `promsd` | `/api/v1/prometheus/targets`: Prometheus HTTP service discovery of the proxies |
//! | `httpget` | one HTTP/1.1 GET with a deadline (scrapes, proxies' admin pages, Prometheus queries) |
//! | [`check`] | `/api/v1/check` and `check --pre`: install health, audits of the configuration against traffic |
//! | [`drift`] | the differences between two meshes' configurations (`check --compare`) |
//! | `diagnose` | `/api/v1/diagnose`: ranked findings with evidence over the metric store and the configuration |
//! | `diagnostics` | `/api/v1/proxy-metrics` (relays proxies' raw metrics), `/api/v1/endpoints` (discovery, balancers) |
//! | `logs` | `/api/v1/logs`: proxies' (or its own) recent WARN/ERROR events, merged; `follow` streams them |
//! | `tap` | `/api/v1/tap`: the resource's proxies tapped with the control plane's token, events merged |

mod alerts;
mod api;
pub mod api_types;
mod app;
pub mod auth;
pub mod check;
mod clock;
mod dashboard;
mod diagnose;
mod diagnostics;
pub mod drift;
mod httpget;
mod httproute;
mod logs;
pub mod meshdir;
mod metrics;
mod metricstore;
mod promquery;
mod promsd;
mod reload;
mod scrape;
mod server;
mod statsapi;
mod statsource;
mod store;
mod tap;
mod validate;
mod yaml;

pub use app::{Config, Running, StartError, start};
pub use logs::OwnLogs;
pub use meshdir::{ConfigError, ConfigErrors, LoadOptions, MeshConfig, load, load_with};
pub use store::Published;
