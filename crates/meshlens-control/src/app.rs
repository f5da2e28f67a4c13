//! Starting and stopping the control plane: load the mesh directory, bind, spawn the API server, the
//! lease sweeper and the reloader; one shutdown signal ends them all.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::alerts::{self, Alerts};
use crate::api::{self, Shared};
use crate::api_types::Status;
use crate::auth::{Auth, ProxyCredentials, ProxyKey};
use crate::logs::OwnLogs;
use crate::meshdir::{self, ConfigErrors, LoadOptions, MeshConfig};
use crate::metrics::Metrics;
use crate::metricstore::{MetricStore, Settings};
use crate::promquery::Prometheus;
use crate::scrape::{self, ScrapeTiming};
use crate::statsource::StatsSource;
use crate::store::{LeaseTiming, Published, Store};
use crate::{reload, server};

/// Where the control plane listens and reads, and its timing (defaults as DESIGN.md §4 says). Its `Debug`
/// never shows the API token.
#[derive(Clone)]
pub struct Config {
    /// The mesh directory (`mesh.yaml` + profiles and splits).
    pub mesh_dir: PathBuf,
    /// How the directory is read (the namespace of documents that name none).
    pub load: LoadOptions,
    /// The API listener; port 0 picks a free port ([`Running::addr`] tells which).
    pub listen: SocketAddr,
    /// A registration lapses this long after its last renewal (10 s).
    pub lease_ttl: Duration,
    /// Proxies renew this often (3 s).
    pub lease_renew: Duration,
    /// After start, removals are withheld and snapshots say `complete: false` this long (2 × ttl = 20 s).
    pub restart_grace: Duration,
    /// How often lapsed leases are removed (1 s).
    pub sweep_interval: Duration,
    /// Heartbeat line interval of watch streams (5 s).
    pub heartbeat: Duration,
    /// How often the mesh directory is polled for changes (200 ms).
    pub reload_interval: Duration,
    /// How long [`Running::shutdown`] waits for open requests before closing them (5 s).
    pub shutdown_grace: Duration,
    /// How often every registered proxy's `/metrics` is scraped into the metric store (5 s); in Prometheus
    /// mode, how often Prometheus scrapes them (windows must span two intervals).
    pub scrape_interval: Duration,
    /// How long the metric store keeps what it scraped (1 h).
    pub metrics_retention: Duration,
    /// Prometheus mode: `/api/v1/stat|routes|edges` ask this Prometheus (`http://HOST:PORT[/PATH]`), which
    /// scrapes the proxies, and the embedded metric store does not run.
    pub prometheus_url: Option<String>,
    /// The control plane's own recent WARN/ERROR events, served as the resource `control` of `/api/v1/logs`.
    pub own_logs: Option<OwnLogs>,
    /// Checks proxies' credentials: local mode's [`ProxyKey`] (the key `meshlens up` mints them with).
    pub proxy_credentials: Arc<dyn ProxyCredentials>,
    /// The bearer token every `/api/v1/` request needs (the CLI's, from the session file).
    pub api_token: String,
    /// A request head must arrive within this, and a connection idle this long is closed (10 s).
    pub header_read_timeout: Duration,
    /// Connections served at once (256); beyond it, only those whose first request authenticates.
    pub max_connections: usize,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("mesh_dir", &self.mesh_dir)
            .field("load", &self.load)
            .field("listen", &self.listen)
            .field("lease_ttl", &self.lease_ttl)
            .field("lease_renew", &self.lease_renew)
            .field("restart_grace", &self.restart_grace)
            .field("sweep_interval", &self.sweep_interval)
            .field("heartbeat", &self.heartbeat)
            .field("reload_interval", &self.reload_interval)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("scrape_interval", &self.scrape_interval)
            .field("metrics_retention", &self.metrics_retention)
            .field("prometheus_url", &self.prometheus_url)
            .field("own_logs", &self.own_logs)
            .field("proxy_credentials", &self.proxy_credentials)
            .field("api_token", &"<redacted>")
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl Config {
    pub fn new(mesh_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        let lease_ttl = Duration::from_secs(10);
        Config {
            mesh_dir: mesh_dir.into(),
            load: LoadOptions::default(),
            listen,
            lease_ttl,
            lease_renew: Duration::from_secs(3),
            restart_grace: 2 * lease_ttl,
            sweep_interval: Duration::from_secs(1),
            heartbeat: Duration::from_secs(5),
            reload_interval: Duration::from_millis(200),
            shutdown_grace: Duration::from_secs(5),
            scrape_interval: Duration::from_secs(5),
            metrics_retention: Duration::from_secs(3600),
            prometheus_url: None,
            own_logs: None,
            proxy_credentials: Arc::new(ProxyKey::generate()),
            api_token: crate::auth::new_token(),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// Why the control plane did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The mesh directory is invalid; every problem is listed (`file:line: field: message`).
    #[error("the mesh directory is invalid:\n{0}")]
    InvalidConfig(ConfigErrors),
    /// `prometheus_url` is not an `http://HOST[:PORT][/PATH]` URL.
    #[error("{0}")]
    InvalidPrometheusUrl(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// A running control plane. Dropping it stops its tasks at once; [`Running::shutdown`] stops gracefully.
pub struct Running {
    addr: SocketAddr,
    store: Arc<Store>,
    shutdown: watch::Sender<bool>,
    shutdown_grace: Duration,
    server: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Loads and validates the mesh directory, binds the API listener and starts serving.
pub async fn start(mut config: Config) -> Result<Running, StartError> {
    // Absolute, so that status and logs say which directory even when started with a relative path.
    if let Ok(abs) = std::path::absolute(&config.mesh_dir) {
        config.mesh_dir = abs;
    }
    let dir = config.mesh_dir.clone();
    let options = config.load.clone();
    let (seen, loaded) = tokio::task::spawn_blocking(move || {
        // Fingerprint first: a change made while loading is picked up by the first poll.
        let seen = reload::fingerprint(&dir);
        (seen, meshdir::load_with(&dir, &options))
    })
    .await
    .map_err(|e| StartError::Bind { addr: config.listen, source: io::Error::other(e) })?;
    let mesh = loaded.map_err(StartError::InvalidConfig)?;
    let prometheus = config
        .prometheus_url
        .as_deref()
        .map(|url| Prometheus::new(url, config.scrape_interval))
        .transpose()
        .map_err(StartError::InvalidPrometheusUrl)?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;

    let metrics = Arc::new(Metrics::new());
    let timing = LeaseTiming { ttl: config.lease_ttl, renew: config.lease_renew, grace: config.restart_grace };
    let store = Arc::new(Store::new(mesh, timing, metrics.clone()));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let stats = match prometheus {
        Some(prometheus) => StatsSource::Prometheus(prometheus),
        None => StatsSource::Embedded(Arc::new(MetricStore::new(Settings::new(
            config.scrape_interval.as_millis() as u64,
            config.metrics_retention.as_millis() as u64,
        )))),
    };
    let scrape_timing = ScrapeTiming {
        interval: config.scrape_interval,
        fresh: 2 * config.scrape_interval + Duration::from_secs(1),
        warmup: config.lease_ttl,
    };

    let mut tasks = vec![
        tokio::spawn(sweep(store.clone(), config.sweep_interval, shutdown_rx.clone())),
        tokio::spawn(reload::run(
            store.clone(),
            config.mesh_dir.clone(),
            config.load.clone(),
            config.reload_interval,
            seen,
            shutdown_rx.clone(),
        )),
    ];
    let (alerts, notices) = Alerts::new(matches!(stats, StatsSource::Embedded(_)), format!("http://{addr}"));
    let alerts = Arc::new(alerts);
    tasks.push(tokio::spawn(alerts::webhook::run(notices, shutdown_rx.clone())));
    if let StatsSource::Embedded(metric_store) = &stats {
        let scraper =
            scrape::run(store.clone(), metric_store.clone(), alerts.clone(), scrape_timing, shutdown_rx.clone());
        tasks.push(tokio::spawn(scraper));
    }

    let auth = Arc::new(Auth::new(config.proxy_credentials.clone(), config.api_token.clone()));
    let shared = Arc::new(Shared {
        auth: auth.clone(),
        store: store.clone(),
        metrics,
        stats,
        alerts,
        heartbeat: config.heartbeat,
        own_logs: config.own_logs.clone(),
        shutdown: shutdown_rx.clone(),
    });
    let app = api::router(shared);
    let limits =
        server::Limits { header_read_timeout: config.header_read_timeout, max_connections: config.max_connections };
    let server = tokio::spawn(server::serve(listener, app, auth, limits, shutdown_rx));
    tracing::info!(
        api = %addr,
        mesh_dir = %config.mesh_dir.display(),
        prometheus = config.prometheus_url.as_deref().unwrap_or("-"),
        version = store.current().version,
        "control plane started"
    );
    Ok(Running { addr, store, shutdown, shutdown_grace: config.shutdown_grace, server: Some(server), tasks })
}

async fn sweep(store: Arc<Store>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => store.sweep(),
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

impl Running {
    /// The bound API address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The start-up line: `{"message":"listening","api":"127.0.0.1:PORT"}`.
    pub fn listening_message(&self) -> String {
        #[derive(serde::Serialize)]
        struct Listening {
            message: &'static str,
            api: SocketAddr,
        }
        serde_json::to_string(&Listening { message: "listening", api: self.addr }).unwrap_or_default()
    }

    /// The mesh configuration serving now; changes on every accepted reload (e.g. for `up` to scale).
    pub fn configs(&self) -> watch::Receiver<Arc<MeshConfig>> {
        self.store.configs()
    }

    /// The discovery versions served to proxies.
    pub fn snapshots(&self) -> watch::Receiver<Arc<Published>> {
        self.store.subscribe()
    }

    /// What `GET /api/v1/status` answers.
    pub fn status(&self) -> Status {
        self.store.status()
    }

    /// Stops accepting, ends watch streams, waits up to the shutdown grace for open requests.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(self.shutdown_grace, &mut server).await.is_err()
        {
            tracing::warn!("shutdown grace over: closing the connections that are left");
            server.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        tracing::info!("control plane stopped");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

#[cfg(test)]
mod debug_tests {
    #[test]
    fn debug_output_never_shows_the_api_token() {
        let mut c = super::Config::new("/tmp/mesh", "127.0.0.1:0".parse().unwrap());
        c.api_token = "s3cret-token-value".into();
        let text = format!("{c:?}");
        assert!(!text.contains("s3cret-token-value") && text.contains("<redacted>"), "{text}");
    }
}
