//! The proxy ↔ control plane wire contract (DESIGN.md §4): registration under a lease, and the discovery
//! watch stream (NDJSON: one [`WatchEvent`] per line).
//!
//! - `POST /v1/proxies` with a [`Registration`] → 200 with a [`Lease`]. Renewing is the same call.
//! - `DELETE /v1/proxies/{namespace}/{instance}` → the instance leaves its services at once (clean exit).
//! - `GET /v1/watch?namespace=NS&instance=NAME` → NDJSON [`WatchEvent`]s: a full snapshot first, then a full
//!   snapshot for every new version, and a heartbeat line every 5 s. A slow reader gets the latest version,
//!   never a queue of old ones.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::discovery::Snapshot;

/// What a proxy tells the control plane about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub workload: String,
    pub namespace: String,
    /// `<workload>-<index>` in local mode.
    pub instance: String,
    /// Where peers reach this instance (its proxy's inbound listener); absent for outbound-only proxies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub tap: SocketAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<SocketAddr>,
    /// Extra endpoint metadata, exported by callers as `dst_<key>` labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The control plane's answer to a registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// The registration lapses this long after the last renewal (10 s).
    pub ttl_ms: u64,
    /// Renew this often (3 s).
    pub renew_ms: u64,
    /// The bearer token the proxy's tap listener accepts (only the control plane may tap). Changes when the
    /// control plane restarts; every renewal carries the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap_token: Option<String>,
}

/// One line of the watch stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum WatchEvent {
    /// The whole current state. `complete` is false while a restarted control plane still waits for proxies
    /// to re-register (two lease periods): proxies then keep endpoints the snapshot does not list yet.
    #[serde(rename_all = "camelCase")]
    Snapshot { complete: bool, snapshot: Snapshot },
    /// Sent every 5 s; a stream silent for 15 s is dead.
    #[serde(rename_all = "camelCase")]
    Heartbeat { version: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_lines() {
        let line = r#"{"type":"heartbeat","version":7}"#;
        assert_eq!(serde_json::from_str::<WatchEvent>(line).unwrap(), WatchEvent::Heartbeat { version: 7 });
        let ev = WatchEvent::Snapshot { complete: true, snapshot: Snapshot::default() };
        let text = serde_json::to_string(&ev).unwrap();
        assert!(text.starts_with(r#"{"type":"snapshot","complete":true,"snapshot":{"#), "{text}");
        assert_eq!(serde_json::from_str::<WatchEvent>(&text).unwrap(), ev);
    }
}
