//! Prometheus metrics of the proxy: lock-free counters and histograms, and our own text encoder.
// Temporary shim with the final API; replaced by the real module.
#![allow(dead_code, unused_variables)]
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Registry;
impl Registry {
    pub fn new() -> Self {
        Registry
    }
    pub fn encode(&self, out: &mut String) {}
}
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LabelSet(String);
impl LabelSet {
    pub fn new() -> Self {
        LabelSet(String::new())
    }
    pub fn with(mut self, k: &str, v: &str) -> Self {
        if !self.0.is_empty() {
            self.0.push(',');
        }
        self.0.push_str(&format!("{k}=\"{v}\""));
        self
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
pub struct HttpMetrics;
impl HttpMetrics {
    pub fn register(reg: &Registry) -> Self {
        HttpMetrics
    }
    pub fn target(&self, labels: LabelSet) -> Arc<HttpTargetMetrics> {
        Arc::new(HttpTargetMetrics)
    }
}
pub struct HttpTargetMetrics;
impl HttpTargetMetrics {
    pub fn request(&self) {}
    pub fn response(
        &self,
        status: u16,
        grpc_status: Option<u32>,
        failure: bool,
        error: Option<&str>,
        latency: Option<Duration>,
    ) {
    }
}
pub struct TcpMetrics;
impl TcpMetrics {
    pub fn register(reg: &Registry) -> Self {
        TcpMetrics
    }
    pub fn target(&self, labels: LabelSet) -> Arc<TcpTargetMetrics> {
        Arc::new(TcpTargetMetrics)
    }
}
pub struct TcpTargetMetrics;
impl TcpTargetMetrics {
    pub fn open(self: &Arc<Self>) -> TcpConnGuard {
        TcpConnGuard
    }
}
pub struct TcpConnGuard;
impl TcpConnGuard {
    pub fn read(&self, n: u64) {}
    pub fn wrote(&self, n: u64) {}
}
