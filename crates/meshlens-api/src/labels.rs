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
pub const PEER: &str = "peer";
/// Endpoint metadata labels are exported with this prefix (`dst_deployment`, `dst_namespace`, …).
pub const DST_PREFIX: &str = "dst_";

/// Linkerd's `response_latency_ms` bucket bounds (ms).
pub const LINKERD_LATENCY_BOUNDS_MS: [f64; 25] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 1000.0, 2000.0, 3000.0,
    4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];
