//! The JSON shapes of `/api/v1/stat`, `/api/v1/routes` and `/api/v1/edges`, which are also the CLI's
//! `-o json` output (DESIGN.md §10): Linkerd's field names, `success` a 0..1 fraction, `null` when there is
//! no data, latencies in whole milliseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One row of `stat`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatRow {
    pub namespace: String,
    /// `deployment`, `pod`, `service`, `namespace`.
    pub kind: String,
    pub name: String,
    /// `meshed/running`, or `-` for services.
    pub meshed: String,
    pub success: Option<f64>,
    pub rps: Option<f64>,
    pub latency_ms_p50: Option<u64>,
    pub latency_ms_p95: Option<u64>,
    pub latency_ms_p99: Option<u64>,
    pub tcp_open_connections: Option<u64>,
    pub tcp_read_bytes_rate: Option<f64>,
    pub tcp_write_bytes_rate: Option<f64>,
    /// Added: responses the proxy made (not the app) in the window, by reason (`timeout`,
    /// `connect_error`, `peer:…`); absent when there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_errors: Option<BTreeMap<String, u64>>,
    /// TrafficSplit rows (`kind: "trafficsplit"`): the apex service, one leaf and its weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<String>,
}

/// `routes`: rows per resource, keyed `"deploy/NAME"`.
pub type RoutesResponse = BTreeMap<String, Vec<RouteRow>>;

/// One row of `routes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteRow {
    pub route: String,
    pub authority: String,
    #[serde(flatten)]
    pub numbers: RouteNumbers,
    pub latency_ms_p50: Option<u64>,
    pub latency_ms_p95: Option<u64>,
    pub latency_ms_p99: Option<u64>,
    /// Added (with `--to`): responses the proxy made because the route timeout fired, in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<u64>,
    /// Added (with `--to`): how original requests' retries ended in the window (`succeeded_first`,
    /// `succeeded_after_retry`, `failed_no_budget`, `failed_not_retryable`, `failed_body_too_large`,
    /// `failed_timeout`, `failed_retries_exhausted`); only fates seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_fates: Option<BTreeMap<String, u64>>,
}

/// With `--to`: effective (as the caller sees requests) and actual (every attempt); without: `success`, `rps`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RouteNumbers {
    ToTarget {
        effective_success: Option<f64>,
        effective_rps: Option<f64>,
        actual_success: Option<f64>,
        actual_rps: Option<f64>,
    },
    Plain {
        success: Option<f64>,
        rps: Option<f64>,
    },
}

impl<'de> Deserialize<'de> for RouteNumbers {
    /// `ToTarget` when any `effective_*`/`actual_*` key is present (even `null`), else `Plain`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
            Option::<f64>::deserialize(d).map(Some)
        }
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default, deserialize_with = "present")]
            effective_success: Option<Option<f64>>,
            #[serde(default, deserialize_with = "present")]
            effective_rps: Option<Option<f64>>,
            #[serde(default, deserialize_with = "present")]
            actual_success: Option<Option<f64>>,
            #[serde(default, deserialize_with = "present")]
            actual_rps: Option<Option<f64>>,
            #[serde(default)]
            success: Option<f64>,
            #[serde(default)]
            rps: Option<f64>,
        }
        let r = Raw::deserialize(d)?;
        let to = [&r.effective_success, &r.effective_rps, &r.actual_success, &r.actual_rps];
        Ok(if to.iter().any(|v| v.is_some()) {
            RouteNumbers::ToTarget {
                effective_success: r.effective_success.flatten(),
                effective_rps: r.effective_rps.flatten(),
                actual_success: r.actual_success.flatten(),
                actual_rps: r.actual_rps.flatten(),
            }
        } else {
            RouteNumbers::Plain { success: r.success, rps: r.rps }
        })
    }
}

/// One row of `edges`. An unmeshed peer has an empty namespace and `*_meshed: false`: an unmeshed source
/// has an empty `src`, an unmeshed destination is named by the authority (or address) it was called by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeRow {
    pub src: String,
    pub src_namespace: String,
    pub dst: String,
    pub dst_namespace: String,
    pub client_id: String,
    pub server_id: String,
    /// `disabled` between meshed peers until mTLS lands; `not_provided_by_remote` from an unmeshed source,
    /// `not_provided_by_service_discovery` to an unmeshed destination.
    pub no_tls_reason: String,
    /// Added: `http` when HTTP requests were seen on the edge, else `tcp`.
    pub protocol: String,
    /// Added: false when the source is not a meshed workload (requests its destination served that no
    /// meshed client sent).
    #[serde(default = "yes")]
    pub src_meshed: bool,
    /// Added: false when the destination is not a mesh service (passthrough).
    #[serde(default = "yes")]
    pub dst_meshed: bool,
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_numbers_keep_linkerd_keys() {
        let row = RouteRow {
            route: "[DEFAULT]".into(),
            authority: "a.prod.svc.cluster.local:80".into(),
            numbers: RouteNumbers::Plain { success: None, rps: Some(0.5) },
            latency_ms_p50: None,
            latency_ms_p95: None,
            latency_ms_p99: None,
            timeouts: None,
            retry_fates: None,
        };
        let text = serde_json::to_string(&row).unwrap();
        assert!(text.contains(r#""success":null,"rps":0.5"#), "{text}");
        assert_eq!(serde_json::from_str::<RouteRow>(&text).unwrap(), row);
        let to = RouteNumbers::ToTarget {
            effective_success: Some(1.0),
            effective_rps: Some(1.0),
            actual_success: Some(0.5),
            actual_rps: Some(2.0),
        };
        let text = serde_json::to_string(&to).unwrap();
        assert_eq!(serde_json::from_str::<RouteNumbers>(&text).unwrap(), to);
    }
}
