//! The scraper: every interval, GET each registered proxy's admin `/metrics` (concurrently, with a
//! timeout), parse it and hand it to the metric store with the proxy's identity.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::metricstore::{MetricStore, Peer, Source};
use crate::promtext;
use crate::store::Store;

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
    }
}

/// One round: every registered instance once.
pub(crate) async fn scrape_all(store: &Store, metrics: &MetricStore, timing: ScrapeTiming, warm: bool) {
    let resources = store.resources();
    let mut peers: HashMap<SocketAddr, Peer> = HashMap::new();
    let mut targets = Vec::new();
    for w in &resources.workloads {
        for i in &w.instances {
            let src = Source { namespace: w.namespace.clone(), workload: w.name.clone(), instance: i.instance.clone() };
            if let Some(inbound) = i.inbound {
                let p = Peer { namespace: w.namespace.clone(), workload: w.name.clone(), instance: i.instance.clone() };
                peers.insert(inbound, p.clone());
                if let Some(app) = i.app {
                    peers.insert(app, p);
                }
            }
            let fresh = warm && Duration::from_millis(i.registered_ms) <= timing.fresh;
            targets.push((src, i.admin, fresh));
        }
    }
    let live: HashSet<Source> = targets.iter().map(|t| t.0.clone()).collect();
    metrics.retain_instances(&live);
    let timeout = timing.interval.max(Duration::from_millis(200)).min(Duration::from_secs(5));
    let fetches = targets.into_iter().map(|(src, admin, fresh)| async move {
        let body = tokio::time::timeout(timeout, get_metrics(admin)).await;
        (src, admin, fresh, body)
    });
    let results = futures_util::future::join_all(fetches).await;
    let peer = |addr: &str| addr.parse::<SocketAddr>().ok().and_then(|a| peers.get(&a).cloned());
    for (src, admin, fresh, body) in results {
        match body {
            Ok(Ok(text)) => {
                let (samples, bad) = promtext::parse(&text);
                if bad > 0 {
                    tracing::debug!(instance = %src.instance, bad, "unparsable metric lines");
                }
                metrics.ingest(&src, metrics.now(), &samples, fresh, &peer);
            }
            Ok(Err(e)) => tracing::debug!(instance = %src.instance, %admin, error = %e, "scrape failed"),
            Err(_) => tracing::debug!(instance = %src.instance, %admin, "scrape timed out"),
        }
    }
    metrics.compact(metrics.now());
}

/// `GET /metrics` over HTTP/1.1 with `Connection: close`; the body (chunked or not).
pub(crate) async fn get_metrics(addr: SocketAddr) -> std::io::Result<String> {
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: text/plain\r\n\r\n");
    conn.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    conn.read_to_end(&mut buf).await?;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") && !head.starts_with("http/1.0 200") {
        return Err(bad(head.lines().next().unwrap_or("")));
    }
    let body = &buf[end + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body).ok_or_else(|| bad("bad chunks"))?
    } else {
        body.to_vec()
    };
    String::from_utf8(body).map_err(|_| bad("not UTF-8"))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks() {
        assert_eq!(super::dechunk(b"3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n").unwrap(), b"abcde");
        assert!(super::dechunk(b"5\r\nab").is_none());
    }
}
