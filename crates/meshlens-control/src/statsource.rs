//! Where `/api/v1/stat|routes|edges` get their numbers: the embedded metric store, or Prometheus
//! (`--prometheus-url`). Either way the queries in `statsapi` read a [`MetricStore`], so there is one code
//! path: in Prometheus mode it holds what Prometheus answered for the one window asked about (and
//! [`StatsSource::earlier`] reads the earlier windows diagnosis compares with, a store each).

use std::sync::Arc;

use meshlens_api::stats::StatQuery;

use crate::api_types::Resources;
use crate::metricstore::MetricStore;
use crate::promquery::{PromError, Prometheus};
use crate::{scrape, statsapi};

/// The source of traffic numbers.
pub(crate) enum StatsSource {
    /// What the control plane scraped itself.
    Embedded(Arc<MetricStore>),
    /// A Prometheus that scrapes the proxies (the embedded store does not run).
    Prometheus(Prometheus),
}

/// Why a window could not be read.
#[derive(Debug, PartialEq)]
pub(crate) enum WindowError {
    /// The window itself is invalid (400).
    Invalid(String),
    /// Prometheus is down or failed (503 / 502).
    Prometheus(PromError),
}

impl StatsSource {
    /// The numbers for a query's `window` (Go-style duration, default `1m`) ending `offset` before now:
    /// the store to read and the time the window ends at in it.
    pub async fn window(&self, q: &StatQuery, resources: &Resources) -> Result<(Arc<MetricStore>, u64), WindowError> {
        let offset = statsapi::offset_ms(q.offset.as_deref()).map_err(WindowError::Invalid)?;
        match self {
            StatsSource::Embedded(store) => Ok((store.clone(), store.now().saturating_sub(offset))),
            StatsSource::Prometheus(prom) => {
                let window_ms =
                    statsapi::window_ms(q.window.as_deref(), prom.interval_ms()).map_err(WindowError::Invalid)?;
                let peers = scrape::peers(resources);
                let (store, end) = prom.window(window_ms, offset, &peers).await.map_err(WindowError::Prometheus)?;
                Ok((Arc::new(store), end))
            }
        }
    }

    /// `count` earlier windows of `window_ms` back to back, the newest ending `offset_ms` before now, newest
    /// first: each a store and the time its window ends at in it. None: the embedded store holds them
    /// itself (`diagnose::History::held`).
    pub async fn earlier(
        &self,
        window_ms: u64,
        (offset_ms, count): (u64, usize),
        resources: &Resources,
    ) -> Result<Option<Vec<(Arc<MetricStore>, u64)>>, WindowError> {
        match self {
            StatsSource::Embedded(_) => Ok(None),
            StatsSource::Prometheus(prom) => {
                let windows = prom
                    .earlier(window_ms, (offset_ms, count), &scrape::peers(resources))
                    .await
                    .map_err(WindowError::Prometheus)?;
                Ok(Some(windows.into_iter().map(|(store, end)| (Arc::new(store), end)).collect()))
            }
        }
    }
}
