//! `meshlens check`: the installation's health and the configuration against traffic
//! (`/api/v1/check`), or a mesh directory before `up` ([`pre`]), as sections of √ / ‼ / × checks
//! (`meshlens_api::check`).
//!
//! | module | section |
//! |---|---|
//! | `install` | `configuration` (the last reload), `data-plane` (every declared instance's proxy), `leases` |
//! | `statics` | `audits` from the configuration alone: split weights, split families, objectives |
//! | `traffic` | `traffic` audits: observed split shares, timeouts below p99, unprofiled services, diagnose's config rules |

mod install;
mod statics;
mod traffic;

use std::path::Path;

use meshlens_api::check::{Check, CheckReport, Section};
use meshlens_api::stats::StatQuery;
use serde::Deserialize;

use crate::api_types::{Resources, Status};
use crate::diagnostics::QueryError;
use crate::meshdir::MeshConfig;
use crate::metricstore::MetricStore;
use crate::statsapi;

/// Query parameters of `/api/v1/check`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct CheckQuery {
    /// Go-style duration, default `1m`: the window traffic is judged over.
    #[serde(default)]
    pub window: Option<String>,
}

impl CheckQuery {
    pub fn stat_query(&self) -> StatQuery {
        StatQuery { resource: "deploy".into(), window: self.window.clone(), ..StatQuery::default() }
    }
}

/// What a live check reads.
pub(crate) struct Live<'a> {
    pub status: &'a Status,
    pub resources: &'a Resources,
    pub config: &'a MeshConfig,
    pub store: &'a MetricStore,
    /// The end of the window in the store's time.
    pub end: u64,
    /// The control plane scrapes the proxies itself (not Prometheus mode).
    pub embedded: bool,
    /// Taps the proxies for sample paths (absent: no samples).
    pub tap: Option<TapAccess>,
}

/// What tapping needs: the registrations, and the server's stop signal.
pub(crate) struct TapAccess {
    pub store: std::sync::Arc<crate::store::Store>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// `/api/v1/check`.
pub(crate) async fn live(l: &Live<'_>, q: &CheckQuery) -> Result<CheckReport, QueryError> {
    let interval = l.store.settings().interval_ms;
    let window = statsapi::window_ms(q.window.as_deref(), interval).map_err(QueryError::Invalid)?;
    let mut sections = vec![
        Section { name: "configuration".into(), checks: install::configuration(l.status, l.config) },
        Section { name: "data-plane".into(), checks: install::data_plane(l, interval).await },
        Section { name: "leases".into(), checks: install::leases(l.status, l.resources) },
    ];
    let served = traffic::served(l, window);
    sections.push(Section { name: "audits".into(), checks: statics::audits(l.config, &served) });
    sections.push(Section { name: "traffic".into(), checks: traffic::audits(l, window).await });
    Ok(CheckReport {
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        window_s: Some(window as f64 / 1000.0),
        sections,
    })
}

/// `meshlens check --pre DIR`: the directory validated (every error with `file:line`), then the audits
/// that need no traffic. No control plane is involved.
pub fn pre(dir: &Path) -> CheckReport {
    let mut sections = Vec::new();
    match crate::meshdir::load(dir) {
        Ok(config) => {
            sections.push(Section {
                name: "configuration".into(),
                checks: vec![Check::ok(format!(
                    "mesh directory {} is valid ({} workloads, {} services, {} profiles, {} splits)",
                    dir.display(),
                    config.mesh.spec.workloads.len(),
                    config.mesh.spec.services.len(),
                    config.profiles.len(),
                    config.traffic_splits.len()
                ))],
            });
            let mut audits = statics::audits(&config, &statics::Served::new());
            audits.extend(statics::families(&config));
            sections.push(Section { name: "audits".into(), checks: audits });
        }
        Err(errors) => sections.push(Section {
            name: "configuration".into(),
            checks: vec![
                Check::failure(
                    format!("mesh directory {} is invalid: {} problem(s)", dir.display(), errors.0.len()),
                    "fix each file:line listed; `meshlens up` refuses the directory until then",
                )
                .with_detail(errors.lines()),
            ],
        }),
    }
    CheckReport { version: None, window_s: None, sections }
}
