//! The `/api/v1/tap` query: which proxies a tap covers (the resource), the filter each of them gets (the
//! [`TapFilter`] keys, plus `to` turned into destination keys) and the rate to divide among them.

use meshlens_api::tap::{StatusFilter, TAP_FILTER_KEYS, TapFilter, TapRequest};

/// `maxRps` when the query has none (Linkerd's default).
pub(crate) const DEFAULT_MAX_RPS: f64 = 100.0;

const REQUEST_KEYS: [&str; 5] = ["resource", "namespace", "to", "toNamespace", "selector"];

/// Why a tap is refused: 400 or 404, with a message naming the parameter or the resource.
#[derive(Debug, PartialEq)]
pub(crate) enum TapError {
    BadRequest(String),
    NotFound(String),
}

fn bad(message: impl Into<String>) -> TapError {
    TapError::BadRequest(message.into())
}

/// Which registered proxies a tap covers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Selector {
    /// Every instance of one workload (`deploy/NAME`).
    Workload { namespace: String, name: String },
    /// One instance (`po/NAME`).
    Instance { namespace: String, name: String },
    /// Every instance of a namespace (`ns/NAME`, or a bare `deploy` / `po`).
    Namespace(String),
}

impl Selector {
    pub fn matches(&self, namespace: &str, workload: &str, instance: &str) -> bool {
        match self {
            Selector::Workload { namespace: ns, name } => ns == namespace && name == workload,
            Selector::Instance { namespace: ns, name } => ns == namespace && name == instance,
            Selector::Namespace(ns) => ns == namespace,
        }
    }
}

/// A parsed tap query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TapPlan {
    pub selector: Selector,
    /// `deploy/web in namespace prod`: how messages name the resource.
    pub described: String,
    /// What every proxy gets, `maxRps` still the total (see [`per_proxy_rps`]).
    pub filter: TapFilter,
    pub max_rps: f64,
    /// Only instances whose labels match (`selector=`); None taps every instance of the resource.
    pub labels: Option<meshlens_api::selector::Selector>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Deployment,
    Pod,
    Namespace,
    Service,
}

impl Kind {
    /// Linkerd's resource words and their short forms.
    fn parse(word: &str) -> Option<Kind> {
        Some(match word.to_ascii_lowercase().as_str() {
            "deploy" | "deployment" | "deployments" => Kind::Deployment,
            "po" | "pod" | "pods" => Kind::Pod,
            "ns" | "namespace" | "namespaces" => Kind::Namespace,
            "svc" | "service" | "services" => Kind::Service,
            _ => return None,
        })
    }

    fn short(self) -> &'static str {
        match self {
            Kind::Deployment => "deploy",
            Kind::Pod => "po",
            Kind::Namespace => "ns",
            Kind::Service => "svc",
        }
    }
}

/// `TYPE[/NAME]` → (kind, name).
fn resource(param: &str, text: &str) -> Result<(Kind, Option<String>), TapError> {
    let text = text.trim();
    let (word, name) = match text.split_once('/') {
        Some((w, n)) => (w, Some(n)),
        None => (text, None),
    };
    let kind = Kind::parse(word).ok_or_else(|| {
        bad(format!(
            "{param}: unsupported resource type {word:?} in {text:?} (expected deploy, po or ns{})",
            if param == "to" { ", or svc" } else { "" }
        ))
    })?;
    match name {
        Some(n) if n.is_empty() || n.contains('/') || n.chars().any(char::is_whitespace) => {
            Err(bad(format!("{param}: invalid resource name in {text:?}")))
        }
        n => Ok((kind, n.map(str::to_string))),
    }
}

/// Parses and checks the query; the message of a refusal names the parameter.
pub(crate) fn parse(query: &str) -> Result<TapPlan, TapError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|e| bad(format!("invalid tap query: {e}")))?;
    for (key, value) in &pairs {
        if !REQUEST_KEYS.contains(&key.as_str()) && !TAP_FILTER_KEYS.contains(&key.as_str()) {
            return Err(bad(format!(
                "unknown tap parameter {key:?} (known: {}, {})",
                REQUEST_KEYS.join(", "),
                TAP_FILTER_KEYS.join(", ")
            )));
        }
        match key.as_str() {
            "failed" | "headers" if value != "true" && value != "false" => {
                return Err(bad(format!("{key}: expected true or false, got {value:?}")));
            }
            "scheme" if !value.eq_ignore_ascii_case("http") && !value.eq_ignore_ascii_case("https") => {
                return Err(bad(format!("scheme: expected http or https, got {value:?}")));
            }
            "maxRps" if !value.parse::<f64>().is_ok_and(|v| v.is_finite() && v > 0.0) => {
                return Err(bad(format!("maxRps: expected a number greater than 0, got {value:?}")));
            }
            _ => {}
        }
    }
    // Both parse now: the keys are known and the typed values checked.
    let req: TapRequest = serde_urlencoded::from_str(query).map_err(|e| bad(format!("invalid tap query: {e}")))?;
    let mut filter: TapFilter =
        serde_urlencoded::from_str(query).map_err(|e| bad(format!("invalid tap query: {e}")))?;

    let namespace = if req.namespace.trim().is_empty() { "default".to_string() } else { req.namespace.clone() };
    if req.resource.trim().is_empty() {
        return Err(bad("resource: missing (deploy/NAME, po/NAME, ns/NAME, deploy or po)"));
    }
    let (kind, name) = resource("resource", &req.resource)?;
    let (selector, described) = match (kind, name) {
        (Kind::Service, _) => {
            return Err(bad(format!(
                "resource: {:?}: services can only be tapped as a destination (--to svc/NAME)",
                req.resource
            )));
        }
        (Kind::Namespace, None) => return Err(bad("resource: ns needs a name (ns/NAME)")),
        (Kind::Namespace, Some(ns)) => (Selector::Namespace(ns.clone()), format!("ns/{ns}")),
        (Kind::Deployment, Some(name)) => (
            Selector::Workload { namespace: namespace.clone(), name: name.clone() },
            format!("deploy/{name} in namespace {namespace}"),
        ),
        (Kind::Pod, Some(name)) => (
            Selector::Instance { namespace: namespace.clone(), name: name.clone() },
            format!("po/{name} in namespace {namespace}"),
        ),
        (kind, None) => (Selector::Namespace(namespace.clone()), format!("{} in namespace {namespace}", kind.short())),
    };

    if let Some(to) = req.to.as_deref().filter(|t| !t.trim().is_empty()) {
        if filter.dst_workload.is_some()
            || filter.dst_pod.is_some()
            || filter.dst_service.is_some()
            || filter.dst_namespace.is_some()
        {
            return Err(bad("to: cannot be combined with dstWorkload, dstPod, dstService or dstNamespace"));
        }
        let (kind, name) = resource("to", to)?;
        let Some(name) = name else {
            return Err(bad(format!("to: {to:?} needs a name (TYPE/NAME)")));
        };
        let to_namespace = req.to_namespace.clone().filter(|n| !n.trim().is_empty()).unwrap_or(namespace.clone());
        match kind {
            Kind::Deployment => filter.dst_workload = Some(name),
            Kind::Pod => filter.dst_pod = Some(name),
            Kind::Service => filter.dst_service = Some(name),
            Kind::Namespace => {
                filter.dst_namespace = Some(name);
            }
        }
        if filter.dst_namespace.is_none() {
            filter.dst_namespace = Some(to_namespace);
        }
    }

    if let Some(d) = &filter.direction
        && d != "inbound"
        && d != "outbound"
    {
        return Err(bad(format!("direction: expected inbound or outbound, got {d:?}")));
    }
    if let Some(status) = &filter.status {
        StatusFilter::parse(status).map_err(|e| bad(format!("status: {e}")))?;
    }
    if let Some(m) = &mut filter.method {
        *m = m.to_ascii_uppercase();
    }
    let max_rps = filter.max_rps.unwrap_or(DEFAULT_MAX_RPS);
    let labels = req
        .selector
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(meshlens_api::selector::Selector::parse)
        .transpose()
        .map_err(|e| bad(format!("selector: {e}")))?;
    let described = match &req.selector {
        Some(s) if labels.is_some() => format!("{described} with labels {s}"),
        _ => described,
    };
    Ok(TapPlan { selector, described, filter, max_rps, labels })
}

/// Each proxy's share of the rate: an even split, but at least 1 per proxy (Linkerd's floor; the whole rate
/// when that is below 1). Many proxies and a low rate may thus add up to more than asked (at most 1 per
/// proxy), so that no proxy is starved to nothing.
pub(crate) fn per_proxy_rps(max_rps: f64, proxies: usize) -> f64 {
    if proxies == 0 {
        return max_rps;
    }
    (max_rps / proxies as f64).max(max_rps.min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(query: &str) -> String {
        match parse(query) {
            Err(TapError::BadRequest(m)) => m,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn resources_and_their_aliases() {
        let p = parse("resource=deploy/web&namespace=prod").unwrap();
        assert_eq!(p.selector, Selector::Workload { namespace: "prod".into(), name: "web".into() });
        assert_eq!(p.described, "deploy/web in namespace prod");
        assert_eq!(p.max_rps, 100.0);
        assert_eq!(p.filter, TapFilter::default());
        for alias in ["deployment/web", "deployments/web", "Deploy/web"] {
            assert_eq!(parse(&format!("resource={alias}&namespace=prod")).unwrap().selector, p.selector);
        }
        let p = parse("resource=pods/web-1").unwrap();
        assert_eq!(p.selector, Selector::Instance { namespace: "default".into(), name: "web-1".into() });
        assert_eq!(parse("resource=namespace/prod").unwrap().selector, Selector::Namespace("prod".into()));
        assert_eq!(parse("resource=po&namespace=prod").unwrap().selector, Selector::Namespace("prod".into()));
        assert_eq!(parse("resource=deploy&namespace=prod").unwrap().described, "deploy in namespace prod");
    }

    #[test]
    fn a_label_selector_narrows_the_instances() {
        let p = parse("resource=deploy&namespace=prod&selector=tier%3Dml%2C%21canary").unwrap();
        let labels = p.labels.expect("parsed selector");
        let of = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(labels.matches(&of(&[("tier", "ml")])));
        assert!(!labels.matches(&of(&[("tier", "ml"), ("canary", "true")])));
        assert_eq!(p.described, "deploy in namespace prod with labels tier=ml,!canary");
        assert!(err("resource=deploy&selector=tier%20in%20(ml").starts_with("selector: "));
        assert!(parse("resource=deploy/web").unwrap().labels.is_none());
    }

    #[test]
    fn to_becomes_destination_keys() {
        let f = parse("resource=deploy/web&namespace=prod&to=deploy/orders").unwrap().filter;
        assert_eq!((f.dst_workload.as_deref(), f.dst_namespace.as_deref()), (Some("orders"), Some("prod")));
        let f = parse("resource=deploy/web&namespace=prod&to=svc/orders&toNamespace=shop").unwrap().filter;
        assert_eq!((f.dst_service.as_deref(), f.dst_namespace.as_deref()), (Some("orders"), Some("shop")));
        let f = parse("resource=deploy/web&namespace=prod&to=po/orders-1").unwrap().filter;
        assert_eq!((f.dst_pod.as_deref(), f.dst_namespace.as_deref()), (Some("orders-1"), Some("prod")));
        let f = parse("resource=deploy/web&namespace=prod&to=ns/shop").unwrap().filter;
        assert_eq!((f.dst_workload, f.dst_namespace.as_deref()), (None, Some("shop")));
    }

    #[test]
    fn filter_keys_pass_through() {
        let p = parse("resource=deploy/web&method=get&path=/api&authority=a:80&status=5xx&failed=true&maxRps=7.5&direction=outbound&headers=true")
            .unwrap();
        assert_eq!(p.filter.method.as_deref(), Some("GET"));
        assert_eq!(p.filter.path.as_deref(), Some("/api"));
        assert_eq!(p.filter.authority.as_deref(), Some("a:80"));
        assert_eq!(p.filter.status.as_deref(), Some("5xx"));
        assert!(p.filter.failed && p.filter.headers);
        assert_eq!(p.max_rps, 7.5);
    }

    #[test]
    fn refusals_name_the_parameter() {
        assert!(err("namespace=prod").starts_with("resource: missing"));
        assert!(err("resource=svc/web").contains("services can only be tapped as a destination"));
        assert!(err("resource=rs/web").starts_with("resource: unsupported resource type \"rs\""));
        assert!(err("resource=ns").starts_with("resource: ns needs a name"));
        assert!(err("resource=deploy/web&to=deploy").starts_with("to: \"deploy\" needs a name"));
        assert!(err("resource=deploy/web&to=cron/x").starts_with("to: unsupported resource type"));
        assert!(err("resource=deploy/web&to=svc/x&dstPod=y").starts_with("to: cannot be combined"));
        assert!(err("resource=deploy/web&status=6xx").starts_with("status: invalid status filter"));
        assert!(err("resource=deploy/web&maxRps=0").starts_with("maxRps: expected a number greater than 0"));
        assert!(err("resource=deploy/web&scheme=ftp").starts_with("scheme: expected http or https"));
        assert_eq!(parse("resource=deploy/web&scheme=HTTPS").unwrap().filter.scheme.as_deref(), Some("HTTPS"));
        assert!(err("resource=deploy/web&maxRps=fast").starts_with("maxRps:"));
        assert!(err("resource=deploy/web&failed=yes").starts_with("failed: expected true or false"));
        assert!(err("resource=deploy/web&direction=sideways").starts_with("direction: expected inbound or outbound"));
        assert!(err("resource=deploy/web&methd=GET").starts_with("unknown tap parameter \"methd\""));
    }

    #[test]
    fn the_rate_is_split_evenly_with_a_floor_of_one() {
        assert_eq!(per_proxy_rps(100.0, 4), 25.0);
        assert_eq!(per_proxy_rps(100.0, 1), 100.0);
        assert_eq!(per_proxy_rps(3.0, 6), 1.0);
        assert_eq!(per_proxy_rps(0.5, 1), 0.5);
        assert_eq!(per_proxy_rps(0.5, 4), 0.5);
    }
}
