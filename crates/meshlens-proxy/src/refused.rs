//! The outbound series of requests refused before an endpoint was chosen (`no_route`, `loop`,
//! `bad_request`, the request guard's 400/431): counted under the authority the app asked for — canonical
//! when it names a mesh service shape, else `host:port` as sent — with empty `target_addr` and no `dst_*`
//! labels (meshlens-api `labels::DST_SERVICE`). Names are bounded like passthrough destinations; past the
//! cap they share `_other`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use meshlens_api::Authority;
use meshlens_api::authority::canonical;

use crate::metrics::{HttpMetrics, HttpTargetMetrics, LabelSet};
use crate::shared::with_target;

/// The authority label of what a request asked for, when it asked for nothing readable.
const UNREADABLE: &str = "";
const OTHER: &str = "_other";

pub(crate) struct Refused {
    family: HttpMetrics,
    cap: usize,
    by_name: Mutex<HashMap<String, Arc<HttpTargetMetrics>>>,
}

impl Refused {
    pub(crate) fn new(family: HttpMetrics, cap: usize) -> Refused {
        Refused { family, cap, by_name: Mutex::new(HashMap::new()) }
    }

    /// The series of requests that asked for `asked` (as the request wrote it, if it did).
    pub(crate) fn series(&self, asked: Option<&str>, namespace: &str, cluster_domain: &str) -> Arc<HttpTargetMetrics> {
        let name = asked.map_or_else(|| UNREADABLE.to_string(), |a| label(a, namespace, cluster_domain));
        let mut by_name = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = by_name.get(&name) {
            return m.clone();
        }
        let name = if by_name.len() >= self.cap { OTHER.to_string() } else { name };
        let labels = LabelSet::new().with("direction", "outbound").with("authority", &name);
        let metrics = self.family.target(with_target(labels, None).with("tls", "disabled"));
        by_name.insert(name, metrics.clone());
        metrics
    }
}

/// `users` → `users.<ns>.svc.<domain>:80`; `users.prod:8080` → `users.prod.svc.<domain>:8080`;
/// `example.com` → `example.com:80`; unparseable text is kept as sent (at most 253 characters).
fn label(asked: &str, namespace: &str, cluster_domain: &str) -> String {
    let Ok(auth) = Authority::parse(asked, 80) else {
        return asked.chars().take(253).collect();
    };
    let dots = auth.host.matches('.').count();
    let mesh_shape = dots == 0 || auth.host.contains(".svc");
    match auth.service_name(namespace, cluster_domain) {
        Some((svc, ns)) if mesh_shape => canonical(svc, ns, cluster_domain, auth.port),
        _ => auth.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Refused, label};
    use crate::metrics::{HttpMetrics, Registry};

    #[test]
    fn names_are_bounded() {
        let reg = Registry::new();
        let refused = Refused::new(HttpMetrics::register(&reg), 2);
        for asked in ["a", "b", "c", "d", "a"] {
            refused.series(Some(asked), "prod", "cluster.local").request();
        }
        let mut text = String::new();
        reg.encode(&mut text);
        let authority = |a: &str| format!("authority=\"{a}\"");
        let line = |a: &str| text.lines().find(|l| l.starts_with("request_total") && l.contains(&authority(a)));
        assert!(line("a.prod.svc.cluster.local:80").is_some_and(|l| l.ends_with(" 2")), "{text}");
        assert!(line("b.prod.svc.cluster.local:80").is_some_and(|l| l.ends_with(" 1")), "{text}");
        assert!(line("_other").is_some_and(|l| l.ends_with(" 2")), "past the cap: {text}");
        assert!(line("c.prod.svc.cluster.local:80").is_none(), "{text}");
    }

    #[test]
    fn names_asked_for() {
        let l = |a| label(a, "prod", "cluster.local");
        assert_eq!(l("recommendations"), "recommendations.prod.svc.cluster.local:80");
        assert_eq!(l("users.web.svc:8080"), "users.web.svc.cluster.local:8080");
        assert_eq!(l("Example.com"), "example.com:80");
        assert_eq!(l("10.0.0.1:81"), "10.0.0.1:81");
        assert_eq!(l("bad host"), "bad host");
    }
}
