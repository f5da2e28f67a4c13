//! `GET /api/v1/prometheus/targets`: Prometheus HTTP service discovery (`http_sd_configs`) of every
//! registered proxy's admin listener, labelled with the proxy's namespace, workload (`deployment`) and
//! instance (`pod`), the labels Prometheus mode groups by.

use serde::Serialize;

use crate::api_types::Resources;

/// One target group of Prometheus' HTTP SD format.
#[derive(Debug, PartialEq, Serialize)]
pub(crate) struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: Labels,
}

/// The target labels (`promquery::SOURCE_LABELS`).
#[derive(Debug, PartialEq, Serialize)]
pub(crate) struct Labels {
    pub namespace: String,
    pub deployment: String,
    pub pod: String,
}

/// One group per registered proxy, in workload then instance order.
pub(crate) fn targets(resources: &Resources) -> Vec<TargetGroup> {
    let mut out = Vec::new();
    for w in &resources.workloads {
        for i in &w.instances {
            out.push(TargetGroup {
                targets: vec![i.admin.to_string()],
                labels: Labels { namespace: w.namespace.clone(), deployment: w.name.clone(), pod: i.instance.clone() },
            });
        }
    }
    out
}
