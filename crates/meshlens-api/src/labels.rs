//! Metric family names and label keys shared by the proxy (which emits them) and the control plane
//! (which scrapes and queries them). Names follow Linkerd's proxy metrics.

pub const REQUEST_TOTAL: &str = "request_total";
pub const RESPONSE_TOTAL: &str = "response_total";
pub const RESPONSE_LATENCY_MS: &str = "response_latency_ms";
pub const TCP_OPEN_TOTAL: &str = "tcp_open_total";
pub const TCP_OPEN_CONNECTIONS: &str = "tcp_open_connections";
pub const TCP_READ_BYTES_TOTAL: &str = "tcp_read_bytes_total";
pub const TCP_WRITE_BYTES_TOTAL: &str = "tcp_write_bytes_total";
pub const TCP_CLOSE_TOTAL: &str = "tcp_close_total";
/// `proxy_build_info{date,git_sha,profile,vendor,version} 1` (Linkerd's labels), on the proxy's /metrics.
pub const PROXY_BUILD_INFO: &str = "proxy_build_info";

pub const DIRECTION: &str = "direction";
pub const AUTHORITY: &str = "authority";
pub const TARGET_ADDR: &str = "target_addr";
pub const TARGET_IP: &str = "target_ip";
pub const TARGET_PORT: &str = "target_port";
pub const TLS: &str = "tls";
pub const STATUS_CODE: &str = "status_code";
pub const CLASSIFICATION: &str = "classification";
pub const GRPC_STATUS: &str = "grpc_status";
pub const ERROR: &str = "error";
/// Transport series: `peer="src"` (connections accepted) or `peer="dst"` (opened by the proxy). Outbound
/// `peer="dst"` series carry the endpoint's labels as its HTTP series do (`authority`, `target_*`, `tls`,
/// `dst_*`), as Linkerd's do.
pub const PEER: &str = "peer";
/// Endpoint metadata labels are exported with this prefix (`dst_deployment`, `dst_namespace`, …).
pub const DST_PREFIX: &str = "dst_";

/// Linkerd's `response_latency_ms` bucket bounds (ms).
pub const LINKERD_LATENCY_BOUNDS_MS: [f64; 25] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 1000.0, 2000.0, 3000.0,
    4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];

/// The `error` label of a request whose caller closed, reset or timed out before its response completed
/// (DESIGN.md §5: counted on both proxies of an edge, classification `failure`). Its `status_code` is the
/// response's status when the response head had already been sent to the caller, else empty (`""`); its
/// elapsed time (request received → caller gone) is recorded in the latency histogram under that same
/// `status_code`. Every proxy keeps the law requests = responses + cancellations + in flight.
pub const ERROR_CANCELLED: &str = "cancelled";

/// Gauges next to every latency histogram series (same labels, no `le`): the largest and the smallest
/// latency (ms) observed in that series over a recent window of at least 2× the default scrape interval
/// (the proxy keeps two rotating windows of 10 s and reports both together: 10–20 s of history). The
/// control plane keeps the max of `_max` and the min of `_min` per series and time slot, and clamps
/// interpolated quantiles to them, so a percentile never leaves what was observed. Absent when the series
/// observed nothing in the recent window.
pub const LATENCY_MAX_SUFFIX: &str = "_max";
pub const LATENCY_MIN_SUFFIX: &str = "_min";

/// Route families: `route_request_total`, `route_response_total`, `route_response_latency_ms`
/// (effective, per original request), `route_actual_*` (per attempt), `route_retry_fate_total`.
/// Outbound route series carry `direction="outbound"` and `dst` = the apex authority the app called;
/// inbound route series carry `direction="inbound"` and `dst` = the canonical authority of the service
/// the inbound proxy serves (the one the request named, else the workload's first service), with
/// `rt_route` from that service's profile (`[DEFAULT]` when none matches).
pub const RT_ROUTE: &str = "rt_route";
pub const DST: &str = "dst";

/// Outbound HTTP series of a traffic split: `authority` stays the apex the app called; the leaf service
/// chosen by the split is in `dst_service` (with the endpoint's `dst_deployment`, `dst_pod`, …).
/// A request the proxy refused before choosing an endpoint (no_route, loop, bad_request, …) is counted
/// under `authority` = what the app asked for (canonical when it parses, else as sent, bounded in number
/// like passthrough destinations), with empty `target_addr` and no `dst_*` labels.
pub const DST_SERVICE: &str = "dst_service";

/// `log_events_total{level="warn"|"error",target="…",reason="…"}`: every WARN/ERROR event a process logged
/// (`reason` empty when the event has none). The same events are kept in a bounded ring (the newest
/// [`crate::logs::RING_CAPACITY`]) served on the proxy's admin port as `GET /logs`.
pub const LOG_EVENTS_TOTAL: &str = "log_events_total";
