//! The JSON shapes of `/api/v1/stat`, `/api/v1/routes` and `/api/v1/edges`, which are also the CLI's
//! `-o json` output (DESIGN.md §10): Linkerd's field names, `success` a 0..1 fraction, `null` when there is
//! no data, latencies in whole milliseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The query of `/api/v1/stat`, `/api/v1/routes` and `/api/v1/edges` (URL-encoded; every key but
/// `resource` optional). The CLI builds it, the control plane parses it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatQuery {
    /// `deploy`, `deploy/NAME`, `po`, `svc`, `ns`, `ts`, `au` (authority), `all`; several separated by
    /// commas (stat).
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Go-style duration, default `1m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Go-style duration: the same window, this much earlier (default none: ending now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// Names, comma-separated (the `TYPE NAME…` form of stat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_namespaces: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_namespace: Option<String>,
    /// A Kubernetes label selector (`app=web,tier!=db`): only resources whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Also list workloads declared without a proxy (external, none registered): MESHED `0/N` (stat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmeshed: Option<bool>,
}

/// The time an answer covers, on every row: the window asked for and how much of it the metric store
/// holds (less while the control plane is younger than the window); rates are over `covered_s`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Coverage {
    pub window_s: f64,
    pub covered_s: f64,
}

impl Coverage {
    /// True when the store holds less than the window.
    pub fn partial(&self) -> bool {
        self.covered_s < self.window_s
    }
}

/// One row of `stat`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatRow {
    pub namespace: String,
    /// `deployment`, `pod`, `service`, `namespace`, `trafficsplit`, `authority` (`name` is then the
    /// authority as `host:port`; `namespace` that of the mesh service it names, empty when none).
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
    /// Added: requests whose caller closed, reset or timed out before the response completed, in the
    /// window (failures in `success`); `null` without HTTP data.
    #[serde(default)]
    pub cancelled: Option<u64>,
    /// Added: responses the proxy made (not the app) in the window, by reason (`timeout`,
    /// `connect_error`, `peer:…`), with — for a workload or pod — the requests its own proxy refused
    /// before choosing an endpoint (`no_route`, `loop`, `bad_request`, …); absent when there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_errors: Option<BTreeMap<String, u64>>,
    /// TrafficSplit rows (`kind: "trafficsplit"`): the apex service, one leaf, its weight (the
    /// Quantity's value: `900m` → 0.9) and its actual share of the split's requests in the window (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// Added (with `to`): the row of requests the destination served that no meshed client sent (callers
    /// without a proxy), inferred as the destination's inbound minus its meshed callers' requests; `name`
    /// is empty, latencies `null`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmeshed: bool,
    #[serde(flatten)]
    pub coverage: Coverage,
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
    /// Added: cancelled requests (the caller gave up) in the window; `null` without data.
    #[serde(default)]
    pub cancelled: Option<u64>,
    /// Added (with `--to`): responses the proxy made because the route timeout fired, in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<u64>,
    /// Added (with `--to`): how original requests' retries ended in the window (`succeeded_first`,
    /// `succeeded_after_retry`, `failed_no_budget`, `failed_not_retryable`, `failed_body_too_large`,
    /// `failed_timeout`, `failed_retries_exhausted`); only fates seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_fates: Option<BTreeMap<String, u64>>,
    #[serde(flatten)]
    pub coverage: Coverage,
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
    /// Added: cancelled requests on the edge in the window, as the source's proxy counted them; `null`
    /// for TCP and for unmeshed sources.
    #[serde(default)]
    pub cancelled: Option<u64>,
    /// Added: the destination is no known service: the source's proxy refused the requests before
    /// choosing an endpoint (`no_route`, …); `dst` is the name the app asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dst_unknown: bool,
    #[serde(flatten)]
    pub coverage: Coverage,
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
            cancelled: None,
            timeouts: None,
            retry_fates: None,
            coverage: Coverage { window_s: 60.0, covered_s: 41.0 },
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

    #[test]
    fn coverage_is_flattened_into_rows() {
        let row = RouteRow {
            route: "[DEFAULT]".into(),
            authority: "a".into(),
            numbers: RouteNumbers::Plain { success: None, rps: None },
            latency_ms_p50: None,
            latency_ms_p95: None,
            latency_ms_p99: None,
            cancelled: Some(3),
            timeouts: None,
            retry_fates: None,
            coverage: Coverage { window_s: 60.0, covered_s: 41.0 },
        };
        let v: serde_json::Value = serde_json::to_value(&row).unwrap();
        assert_eq!(
            (v["window_s"].as_f64(), v["covered_s"].as_f64(), v["cancelled"].as_u64()),
            (Some(60.0), Some(41.0), Some(3))
        );
        assert!(row.coverage.partial());
    }
}
