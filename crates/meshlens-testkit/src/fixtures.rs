//! Documents the control plane's tests start from: a proxy's registration.

use std::collections::BTreeMap;

use meshlens_api::control::Registration;

/// Instance `instance` of workload `workload` in namespace prod registering with inbound address `inbound`
/// (admin 127.0.0.1:4191, tap 127.0.0.1:4190, app 127.0.0.1:8080, no labels).
pub fn registration(workload: &str, instance: &str, inbound: &str) -> Registration {
    Registration {
        workload: workload.into(),
        namespace: "prod".into(),
        instance: instance.into(),
        inbound: Some(inbound.parse().unwrap_or_else(|e| panic!("{inbound:?}: {e}"))),
        admin: "127.0.0.1:4191".parse().unwrap(),
        tap: "127.0.0.1:4190".parse().unwrap(),
        app: Some("127.0.0.1:8080".parse().unwrap()),
        labels: BTreeMap::new(),
    }
}
