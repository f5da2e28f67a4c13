//! Where `/api/v1/stat|routes|edges` get their numbers: the embedded metric store, or Prometheus
//! (`--prometheus-url`). Either way the queries in `statsapi` read a [`MetricStore`], so there is one code
//! path: in Prometheus mode it holds what Prometheus answered for the one window asked about.

use std::sync::Arc;

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
    /// The numbers for a query over `window` (Go-style duration, default `1m`) at this moment: the store
    /// to read and the time to read it at.
    pub async fn window(
        &self,
        window: Option<&str>,
        resources: &Resources,
    ) -> Result<(Arc<MetricStore>, u64), WindowError> {
        match self {
            StatsSource::Embedded(store) => Ok((store.clone(), store.now())),
            StatsSource::Prometheus(prom) => {
                let window_ms = statsapi::window_ms(window, prom.interval_ms()).map_err(WindowError::Invalid)?;
                let peers = scrape::peers(resources);
                let (store, now) = prom.window(window_ms, &peers).await.map_err(WindowError::Prometheus)?;
                Ok((Arc::new(store), now))
            }
        }
    }
}
