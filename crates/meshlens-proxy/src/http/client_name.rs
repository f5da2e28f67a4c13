//! The `meshlens-client` request header: a calling proxy names itself (`<instance>.<workload>.<namespace>`)
//! to the inbound proxy of a meshed destination. A claim, not an identity: nothing verifies it.

use http::{HeaderMap, HeaderName, HeaderValue};
use meshlens_api::discovery::is_dns_label;

/// The header's name. Not Linkerd's `l5d-client-id`, which carries a verified mTLS identity.
pub const CLIENT_HEADER: HeaderName = HeaderName::from_static("meshlens-client");

/// This proxy's own value of the header, built once at start.
#[derive(Debug, Default)]
pub struct OwnName(Option<HeaderValue>);

impl OwnName {
    /// `None` (no header sent, a warning logged) unless instance, workload and namespace are all DNS
    /// labels: only then can the receiver split the value back unambiguously.
    pub fn new(instance: Option<&str>, workload: Option<&str>, namespace: &str) -> OwnName {
        let value = match (instance, workload) {
            (Some(i), Some(w)) if [i, w, namespace].iter().all(|p| is_dns_label(p)) => {
                HeaderValue::from_str(&format!("{i}.{w}.{namespace}")).ok()
            }
            (Some(_), Some(_)) => {
                tracing::warn!(
                    instance,
                    workload,
                    namespace,
                    "instance, workload or namespace is not a DNS label; requests will not name this proxy to peers"
                );
                None
            }
            _ => None,
        };
        OwnName(value)
    }

    /// A request to a meshed destination: the header names this proxy, replacing whatever the app sent
    /// (so a value received from an earlier hop is never passed on). One insert of a shared value.
    #[inline]
    pub fn stamp(&self, headers: &mut HeaderMap) {
        match &self.0 {
            Some(v) => {
                headers.insert(CLIENT_HEADER, v.clone());
            }
            None => Self::clear(headers),
        }
    }

    /// A request to an unmeshed destination: the header is not passed on.
    #[inline]
    pub fn clear(headers: &mut HeaderMap) {
        headers.remove(CLIENT_HEADER);
    }

    #[cfg(test)]
    pub fn value(&self) -> Option<&HeaderValue> {
        self.0.as_ref()
    }
}

/// Who a request's `meshlens-client` header claims sent it.
#[derive(Debug, PartialEq, Eq)]
pub struct Claim<'a> {
    pub instance: &'a str,
    pub workload: &'a str,
    pub namespace: &'a str,
}

/// Reads a header value: exactly three DNS labels joined by dots, else `None`.
pub fn parse(value: &HeaderValue) -> Option<Claim<'_>> {
    let s = value.to_str().ok()?;
    let mut parts = s.split('.');
    let (instance, workload, namespace) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = parts.next().is_none() && [instance, workload, namespace].iter().all(|p| is_dns_label(p));
    valid.then_some(Claim { instance, workload, namespace })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_name_round_trips_through_parse() {
        let own = OwnName::new(Some("traffic-0"), Some("traffic"), "prod");
        let claim = parse(own.value().unwrap()).unwrap();
        assert_eq!(claim, Claim { instance: "traffic-0", workload: "traffic", namespace: "prod" });
    }

    #[test]
    fn no_name_without_instance_and_workload_or_with_ambiguous_parts() {
        assert!(OwnName::new(None, Some("traffic"), "prod").value().is_none());
        assert!(OwnName::new(Some("traffic-0"), None, "prod").value().is_none());
        assert!(OwnName::new(Some("a.b"), Some("traffic"), "prod").value().is_none(), "a dot would be ambiguous");
        assert!(OwnName::new(Some("Traffic_0"), Some("traffic"), "prod").value().is_none());
    }

    #[test]
    fn stamp_replaces_what_the_app_sent_and_a_nameless_proxy_removes_it() {
        let mut h = HeaderMap::new();
        h.append(CLIENT_HEADER, HeaderValue::from_static("forged-0.evil.prod"));
        h.append(CLIENT_HEADER, HeaderValue::from_static("second-0.evil.prod"));
        OwnName::new(Some("web-0"), Some("web"), "prod").stamp(&mut h);
        assert_eq!(h.get_all(CLIENT_HEADER).iter().collect::<Vec<_>>(), ["web-0.web.prod"]);
        OwnName::default().stamp(&mut h);
        assert!(h.get(CLIENT_HEADER).is_none());
    }

    #[test]
    fn parse_refuses_anything_but_three_labels() {
        for bad in ["", "web", "web-0.web", "a.b.c.d", "web-0..prod", "Web-0.web.prod", "web-0.web.prod ", "-a.b.c"] {
            assert_eq!(parse(&HeaderValue::from_str(bad).unwrap()), None, "{bad:?}");
        }
    }
}
