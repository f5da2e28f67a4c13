//! The scraper: every interval, GET each registered proxy's admin `/metrics` (concurrently, with a
//! timeout), parse it and hand it to the metric store with the proxy's identity.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::alerts::Alerts;
use crate::api_types::Resources;
use crate::httpget;
use crate::metricstore::{MetricStore, Peer, Source};
use crate::store::Store;
use meshlens_api::promtext;

/// Scrape timing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScrapeTiming {
    pub interval: Duration,
    /// A registration younger than this when first scraped counts from 0.
    pub fresh: Duration,
    /// For this long after start, first scrapes are baselines (proxies re-registering after a control plane
    /// restart ran before).
    pub warmup: Duration,
}

pub(crate) async fn run(
    store: Arc<Store>,
    metrics: Arc<MetricStore>,
    alerts: Arc<Alerts>,
    timing: ScrapeTiming,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(timing.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        scrape_all(&store, &metrics, timing, started.elapsed() >= timing.warmup).await;
        // Alerts are judged on what each round brought.
        let config = store.configs().borrow().clone();
        alerts.evaluate(&config, &metrics);
    }
}

/// The meshed instance behind each inbound (and app) address: how a TCP target address names its peer.
pub(crate) fn peers(resources: &Resources) -> HashMap<SocketAddr, Peer> {
    let mut peers = HashMap::new();
    for w in &resources.workloads {
        for i in &w.instances {
            if let Some(inbound) = i.inbound {
                let p = Peer { namespace: w.namespace.clone(), workload: w.name.clone(), instance: i.instance.clone() };
                peers.insert(inbound, p.clone());
                if let Some(app) = i.app {
                    peers.insert(app, p);
                }
            }
        }
    }
    peers
}

/// One round: every registered instance once.
pub(crate) async fn scrape_all(store: &Store, metrics: &MetricStore, timing: ScrapeTiming, warm: bool) {
    let resources = store.resources();
    let peers = peers(&resources);
    let mut targets = Vec::new();
    for w in &resources.workloads {
        for i in &w.instances {
            let src = Source { namespace: w.namespace.clone(), workload: w.name.clone(), instance: i.instance.clone() };
            let fresh = warm && Duration::from_millis(i.registered_ms) <= timing.fresh;
            targets.push((src, i.admin, fresh));
        }
    }
    let live: HashSet<Source> = targets.iter().map(|t| t.0.clone()).collect();
    metrics.retain_instances(&live);
    let timeout = timing.interval.max(Duration::from_millis(200)).min(Duration::from_secs(5));
    let fetches = targets.into_iter().map(|(src, admin, fresh)| async move {
        let body = get_metrics(admin, timeout).await;
        (src, admin, fresh, body)
    });
    let results = futures_util::future::join_all(fetches).await;
    let peer = |addr: &str| addr.parse::<SocketAddr>().ok().and_then(|a| peers.get(&a).cloned());
    for (src, admin, fresh, body) in results {
        match body {
            Ok(text) => {
                let (samples, bad) = promtext::parse(&text);
                if bad > 0 {
                    tracing::debug!(instance = %src.instance, bad, "unparsable metric lines");
                }
                metrics.ingest(&src, metrics.now(), &samples, fresh, &peer);
            }
            Err(e) => tracing::debug!(instance = %src.instance, %admin, error = %e, "scrape failed"),
        }
    }
    metrics.compact(metrics.now());
}

/// `GET /metrics` within `timeout`: the body of a 200 answer.
pub(crate) async fn get_metrics(addr: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let reply = httpget::get(&addr.to_string(), "/metrics", "text/plain", timeout).await?;
    if reply.status != 200 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("status {}", reply.status)));
    }
    Ok(reply.body)
}
