//! The proxy's effective configuration: listen addresses, identity, timeouts and limits.
//!
//! Built by the `meshlens proxy` command from flags and env vars, or by tests directly. Serialized as-is
//! under the admin `/config` endpoint, so what the operator sees is what the proxy runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// One local upstream listener: connections to `listen` go to `service` (`--upstream SERVICE[:PORT]=HOST:PORT`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UpstreamConfig {
    /// The authority as written, e.g. `users.prod:80` (a missing port means 80).
    pub service: String,
    pub listen: SocketAddr,
}

impl std::str::FromStr for UpstreamConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (service, listen) = s.split_once('=').ok_or_else(|| format!("'{s}' is not SERVICE[:PORT]=HOST:PORT"))?;
        meshlens_api::Authority::parse(service, 80)
            .map_err(|e| format!("'{s}': {e} (expected SERVICE[:PORT]=HOST:PORT)"))?;
        let listen = listen.parse().map_err(|_| format!("'{s}': '{listen}' is not an IP:PORT listen address"))?;
        Ok(UpstreamConfig { service: service.to_string(), listen })
    }
}

/// Timeouts of the proxy. Defaults follow Linkerd's (reference/linkerd.md §5).
#[derive(Clone, Debug, Serialize)]
pub struct Timeouts {
    /// Connecting to an endpoint; on expiry the request gets 504 `connect_timeout`.
    #[serde(with = "duration_ms")]
    pub connect: Duration,
    /// How long requests wait for a ready endpoint before failfast (504, then 503 until one is ready).
    #[serde(with = "duration_ms")]
    pub failfast: Duration,
    /// How long a new connection may stay silent before detection gives up (inbound: forwarded as TCP).
    #[serde(with = "duration_ms")]
    pub detect: Duration,
    /// How long an HTTP/1 client may take to send a request's headers.
    #[serde(with = "duration_ms")]
    pub header_read: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(with = "duration_ms")]
    pub shutdown_grace: Duration,
    /// How long a resolved passthrough host name is reused before it is resolved again.
    #[serde(with = "duration_ms")]
    pub dns_ttl: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(1),
            failfast: Duration::from_secs(3),
            detect: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            dns_ttl: Duration::from_secs(5),
        }
    }
}

/// Limits against bad or abusive input (reference/reliability.md §9).
#[derive(Clone, Debug, Serialize)]
pub struct Limits {
    /// One header-size limit for HTTP/1 and HTTP/2, server and client (DESIGN.md §7).
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Requests waiting for a ready endpoint, per service; beyond it requests are shed (503).
    pub queue_capacity: usize,
    pub h2_max_concurrent_streams: u32,
    /// Distinct unmeshed (passthrough) destinations that get their own metric series.
    pub max_passthrough_series: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            queue_capacity: 10_000,
            h2_max_concurrent_streams: 1000,
            max_passthrough_series: 256,
        }
    }
}

/// Load balancer settings: peak-EWMA over response latency (Linkerd's defaults).
#[derive(Clone, Debug, Serialize)]
pub struct Balancer {
    #[serde(with = "duration_ms")]
    pub default_rtt: Duration,
    #[serde(with = "duration_ms")]
    pub decay: Duration,
}

impl Default for Balancer {
    fn default() -> Self {
        Balancer { default_rtt: Duration::from_millis(30), decay: Duration::from_secs(10) }
    }
}

/// The whole proxy configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub outbound: SocketAddr,
    /// The inbound listener; only bound together with `app`.
    pub inbound: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub tap: SocketAddr,
    /// The local application inbound traffic goes to.
    pub app: Option<SocketAddr>,
    pub upstreams: Vec<UpstreamConfig>,
    pub discovery: Option<PathBuf>,
    pub control: Option<String>,
    pub workload: Option<String>,
    pub namespace: String,
    pub instance: Option<String>,
    /// A bearer token the tap listener accepts besides the control plane's (never shown in `/config`).
    #[serde(skip)]
    pub tap_token: Option<String>,
    /// This instance's credential, sent to the control plane with every call (never shown in `/config`).
    #[serde(skip)]
    pub control_credential: Option<String>,
    /// The bearer token that mutating admin endpoints (`PUT /log-level`) need; without one they are off
    /// (never shown in `/config`).
    #[serde(skip)]
    pub admin_token: Option<String>,
    /// The HTTP access log on stderr; off when `None`.
    pub access_log: Option<crate::access_log::AccessLogFormat>,
    pub timeouts: Timeouts,
    pub limits: Limits,
    pub balancer: Balancer,
}

impl Default for Config {
    /// The pinned defaults of DESIGN.md §10 (the inbound listener is off until an app is given).
    fn default() -> Config {
        Config {
            outbound: SocketAddr::from(([127, 0, 0, 1], 4140)),
            inbound: None,
            admin: SocketAddr::from(([127, 0, 0, 1], 4191)),
            tap: SocketAddr::from(([127, 0, 0, 1], 4190)),
            app: None,
            upstreams: Vec::new(),
            discovery: None,
            control: None,
            workload: None,
            namespace: "default".into(),
            instance: None,
            tap_token: None,
            control_credential: None,
            admin_token: None,
            access_log: None,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            balancer: Balancer::default(),
        }
    }
}

impl Config {
    /// A configuration with every listener on `127.0.0.1:0`, as tests use it.
    pub fn for_test() -> Config {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Config {
            outbound: any,
            admin: any,
            tap: any,
            workload: Some("test".into()),
            instance: Some("test-0".into()),
            timeouts: Timeouts { shutdown_grace: Duration::from_secs(5), ..Timeouts::default() },
            ..Config::default()
        }
    }
}

mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_flag() {
        let u: UpstreamConfig = "users.prod:8080=127.0.0.1:0".parse().unwrap();
        assert_eq!(u.service, "users.prod:8080");
        assert_eq!(u.listen.port(), 0);
        assert!("users.prod".parse::<UpstreamConfig>().is_err());
        assert!("users=localhost:80".parse::<UpstreamConfig>().unwrap_err().contains("not an IP:PORT"));
    }
}
