//! What the listeners and the targets of one proxy share: configuration, discovery, metric families, the
//! tap observers, client and server settings (everything of [`crate::ctx::Ctx`] but the targets).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use crate::client::ClientSettings;
use crate::config::Config;
use crate::discovery::Discovery;
use crate::http::client_name::OwnName;
use crate::http::server::ServerSettings;
use crate::metrics::{HttpMetrics, LabelSet, Registry, TcpMetrics};

pub struct Shared {
    pub config: Arc<Config>,
    pub discovery: Arc<Discovery>,
    pub registry: Registry,
    pub http_metrics: HttpMetrics,
    pub tcp_metrics: TcpMetrics,
    pub routes: crate::logical::metrics::RouteFamilies,
    /// Circuit-breaker transitions by endpoint and state entered.
    pub breaker_transitions: crate::metrics::CounterFamily,
    /// Requests refused before an endpoint was chosen, by the authority asked for.
    pub(crate) refused: crate::refused::Refused,
    /// Tap subscriptions and the access log: what every request checks once.
    pub observers: Arc<crate::tap::Observers>,
    pub client: Arc<ClientSettings>,
    pub server: ServerSettings,
    /// The `meshlens-client` value this proxy puts on requests to meshed destinations.
    pub own_name: OwnName,
    /// Addresses of the listeners that accept the app's outbound traffic; a request to one of them loops.
    local: OnceLock<Vec<SocketAddr>>,
}

impl Shared {
    pub fn new(config: Arc<Config>, discovery: Arc<Discovery>, registry: Registry) -> Shared {
        crate::metrics::register_process(&registry);
        let http_metrics = HttpMetrics::register(&registry);
        let tcp_metrics = TcpMetrics::register(&registry);
        let routes = crate::logical::metrics::RouteFamilies::register(&registry);
        let breaker_transitions = registry.counter_family(
            "endpoint_breaker_transitions_total",
            "Circuit-breaker transitions of an endpoint, by the state entered (open, probation, closed).",
        );
        let client = Arc::new(ClientSettings {
            connect_timeout: config.timeouts.connect,
            max_header_bytes: config.limits.max_header_bytes,
            max_idle_per_endpoint: 64,
            resends: registry.counter_family(
                "endpoint_transparent_retries_total",
                "Requests sent again on a fresh connection because the endpoint provably did not process them \
                 (reason: goaway, refused_stream, closed_before_write, closed_before_response).",
            ),
        });
        let server = ServerSettings {
            max_header_bytes: config.limits.max_header_bytes,
            max_headers: config.limits.max_headers,
            header_read_timeout: config.timeouts.header_read,
            h2_max_concurrent_streams: config.limits.h2_max_concurrent_streams,
            h2c_upgrades_stripped: registry.counter(
                "h2c_upgrades_stripped_total",
                "HTTP/1 requests whose Upgrade: h2c offer the proxy removed (they go on as HTTP/1).",
            ),
        };
        let observers = crate::tap::Observers::new(&config, &registry);
        let own_name = OwnName::new(config.instance.as_deref(), config.workload.as_deref(), &config.namespace);
        Shared {
            refused: crate::refused::Refused::new(http_metrics.clone(), config.limits.max_passthrough_series),
            observers,
            config,
            discovery,
            registry,
            http_metrics,
            tcp_metrics,
            routes,
            breaker_transitions,
            client,
            server,
            own_name,
            local: OnceLock::new(),
        }
    }

    pub fn set_local_addrs(&self, addrs: Vec<SocketAddr>) {
        let _ = self.local.set(addrs);
    }

    /// Would connecting to `addr` reach one of this proxy's own outbound listeners?
    pub fn is_local_listener(&self, addr: SocketAddr) -> bool {
        self.local.get().is_some_and(|local| {
            local.iter().any(|l| {
                l.port() == addr.port() && (l.ip() == addr.ip() || (l.ip().is_unspecified() && is_own_ip(addr.ip())))
            })
        })
    }
}

fn is_own_ip(ip: std::net::IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

/// Turns an endpoint metadata key into a Prometheus label name with the `dst_` prefix.
pub fn dst_label_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 4);
    name.push_str(meshlens_api::labels::DST_PREFIX);
    name.extend(key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }));
    name
}

/// `target_addr`, `target_ip` and `target_port` labels of an address.
pub fn with_target(labels: LabelSet, addr: Option<SocketAddr>) -> LabelSet {
    match addr {
        Some(a) => labels
            .with("target_addr", &a.to_string())
            .with("target_ip", &a.ip().to_string())
            .with("target_port", &a.port().to_string()),
        None => labels.with("target_addr", "").with("target_ip", "").with("target_port", ""),
    }
}
