//! Semantic checks of a mesh directory: names, references between documents, durations, regexes,
//! status ranges, budgets and weights. Every error points at the line of the offending field.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use meshlens_api::Authority;
use meshlens_api::discovery::is_dns_label;
use meshlens_api::mesh::{Command, Mesh, MeshService};
use meshlens_api::profile::{Quantity, RequestMatch, ResponseMatch, ServiceProfile, TrafficSplit, ValueMatch};
use meshlens_api::selector;

use crate::meshdir::{Errors, Parsed};
use crate::yaml::Document;
use meshlens_api::duration;

/// The namespace every mesh has without declaring it.
pub const DEFAULT_NAMESPACE: &str = "default";

const NAME_RULE: &str = "lowercase letters, digits and '-', at most 63 characters";

/// Checks everything; cross-document checks only run when the mesh itself parsed. Returns what other
/// documents may refer to, when the mesh parsed.
pub(crate) fn all(
    mesh: Option<&Parsed<Mesh>>,
    profiles: &[Parsed<ServiceProfile>],
    splits: &[Parsed<TrafficSplit>],
    errors: &mut Errors,
) -> Option<Index> {
    let index = mesh.map(|m| check_mesh(m, errors));
    let mut seen_profiles: BTreeMap<(String, String), String> = BTreeMap::new();
    for p in profiles {
        check_profile(p, index.as_ref(), &mut seen_profiles, errors);
    }
    let mut seen_apex: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut seen_names: BTreeMap<(String, String), String> = BTreeMap::new();
    for s in splits {
        check_split(s, index.as_ref(), &mut seen_apex, &mut seen_names, errors);
    }
    index
}

/// What other documents may refer to.
pub(crate) struct Index {
    pub cluster_domain: String,
    pub namespaces: BTreeSet<String>,
    /// (namespace, name) → service
    pub services: BTreeMap<(String, String), MeshService>,
}

impl Index {
    fn has_namespace(&self, ns: &str) -> bool {
        self.namespaces.contains(ns)
    }

    fn service(&self, ns: &str, name: &str) -> Option<&MeshService> {
        self.services.get(&(ns.to_string(), name.to_string()))
    }
}

/// A field-error helper bound to one document.
struct At<'a> {
    file: &'a str,
    doc: &'a Document,
    errors: &'a mut Errors,
}

impl At<'_> {
    fn err(&mut self, path: &str, message: impl std::fmt::Display) {
        self.errors.field(self.file, self.doc, path, message);
    }
}

fn check_mesh(m: &Parsed<Mesh>, errors: &mut Errors) -> Index {
    let mut at = At { file: &m.file, doc: &m.doc, errors };
    let spec = &m.value.spec;
    if !is_dns_domain(&spec.cluster_domain) {
        at.err("spec.clusterDomain", format!("'{}' is not a valid DNS domain", spec.cluster_domain));
    }

    for (path, message) in spec.objectives.problems().into_iter().chain(spec.alerts.problems()) {
        at.err(&format!("spec.{path}"), message);
    }

    let mut namespaces = BTreeSet::from([DEFAULT_NAMESPACE.to_string()]);
    let mut declared = BTreeSet::new();
    for (i, ns) in spec.namespaces.iter().enumerate() {
        let path = format!("spec.namespaces[{i}]");
        if !is_dns_label(ns) {
            at.err(&path, format!("'{ns}' is not a valid namespace name ({NAME_RULE})"));
        }
        if !declared.insert(ns.clone()) {
            at.err(&path, format!("namespace '{ns}' is declared twice"));
        }
        namespaces.insert(ns.clone());
    }

    let mut workloads = BTreeSet::new();
    for (i, w) in spec.workloads.iter().enumerate() {
        let path = format!("spec.workloads[{i}]");
        if !is_dns_label(&w.name) {
            at.err(&format!("{path}.name"), format!("'{}' is not a valid workload name ({NAME_RULE})", w.name));
        }
        check_namespace(&mut at, &namespaces, &format!("{path}.namespace"), &w.namespace);
        if !workloads.insert((w.namespace.clone(), w.name.clone())) {
            at.err(
                &format!("{path}.name"),
                format!("workload '{}' is declared twice in namespace '{}'", w.name, w.namespace),
            );
        }
        match &w.command {
            Some(Command::Argv(argv)) if argv.is_empty() || argv[0].trim().is_empty() => {
                at.err(&format!("{path}.command"), "must name a program to run");
            }
            Some(Command::Shell(s)) if s.trim().is_empty() => {
                at.err(&format!("{path}.command"), "must name a program to run");
            }
            _ => {}
        }
        for key in w.env.keys() {
            if !is_env_name(key) {
                at.err(&format!("{path}.env.{key}"), format!("'{key}' is not a valid environment variable name"));
            }
        }
        check_labels(&mut at, &path, &w.labels);
    }

    let mut services = BTreeMap::new();
    for (i, s) in spec.services.iter().enumerate() {
        let path = format!("spec.services[{i}]");
        if !is_dns_label(&s.name) {
            at.err(&format!("{path}.name"), format!("'{}' is not a valid service name ({NAME_RULE})", s.name));
        }
        check_namespace(&mut at, &namespaces, &format!("{path}.namespace"), &s.namespace);
        if !workloads.contains(&(s.namespace.clone(), s.workload.clone())) {
            at.err(
                &format!("{path}.workload"),
                format!("no workload '{}' is declared in namespace '{}'", s.workload, s.namespace),
            );
        }
        if s.port == 0 {
            at.err(&format!("{path}.port"), "0 is not a valid port");
        }
        check_labels(&mut at, &path, &s.labels);
        for (j, p) in s.opaque_ports.iter().enumerate() {
            if *p != s.port {
                at.err(
                    &format!("{path}.opaquePorts[{j}]"),
                    format!("{p} is not a port of this service (port: {})", s.port),
                );
            }
        }
        if let Some(cb) = &s.circuit_breaker {
            let cb_path = format!("{path}.circuitBreaker");
            if cb.consecutive_failures == 0 {
                at.err(&format!("{cb_path}.consecutiveFailures"), "must be at least 1");
            }
            let min = duration::parse(&cb.min_penalty).map_err(|e| at.err(&format!("{cb_path}.minPenalty"), e)).ok();
            let max = duration::parse(&cb.max_penalty).map_err(|e| at.err(&format!("{cb_path}.maxPenalty"), e)).ok();
            if let (Some(min), Some(max)) = (min, max)
                && (max.is_zero() || max < min)
            {
                at.err(&format!("{cb_path}.maxPenalty"), "must be greater than 0 and at least minPenalty");
            }
            if !(cb.jitter_ratio.is_finite() && (0.0..=100.0).contains(&cb.jitter_ratio)) {
                at.err(&format!("{cb_path}.jitterRatio"), format!("{} is not in [0, 100]", cb.jitter_ratio));
            }
        }
        let key = (s.namespace.clone(), s.name.clone());
        match services.entry(key) {
            Entry::Occupied(_) => at.err(
                &format!("{path}.name"),
                format!("service '{}' is declared twice in namespace '{}'", s.name, s.namespace),
            ),
            Entry::Vacant(v) => {
                v.insert(s.clone());
            }
        }
    }

    let index = Index { cluster_domain: spec.cluster_domain.clone(), namespaces, services };
    // `calls` refer to services, so they are checked once all services are known.
    for (i, w) in spec.workloads.iter().enumerate() {
        for (j, call) in w.calls.iter().enumerate() {
            if let Err(message) = resolve_call(&index, &w.namespace, call) {
                at.err(&format!("spec.workloads[{i}].calls[{j}]"), message);
            }
        }
    }
    index
}

/// Label keys and values as Kubernetes allows them (what `-l/--selector` can name).
fn check_labels(at: &mut At<'_>, path: &str, labels: &BTreeMap<String, String>) {
    for (key, value) in labels {
        if !selector::is_label_key(key) {
            at.err(
                &format!("{path}.labels.{key}"),
                format!("'{key}' is not a valid label key ([prefix/]name; the name at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)"),
            );
        } else if !selector::is_label_value(value) {
            at.err(
                &format!("{path}.labels.{key}"),
                format!("'{value}' is not a valid label value (at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)"),
            );
        }
    }
}

/// Resolves a `calls` entry (`name`, `name.namespace`, FQDN, optional `:port`) to a declared service.
pub(crate) fn resolve_call<'a>(index: &'a Index, caller_ns: &str, call: &str) -> Result<&'a MeshService, String> {
    let explicit_port = call.contains(':');
    let auth = Authority::parse(call, 80)
        .map_err(|_| format!("'{call}' is not a service name (name, name.namespace, optional :port)"))?;
    let (name, ns) = auth
        .service_name(caller_ns, &index.cluster_domain)
        .ok_or_else(|| format!("'{call}' is not a service name (name, name.namespace, optional :port)"))?;
    let svc = index.service(ns, name).ok_or_else(|| format!("'{call}' names no declared service (no {name}.{ns})"))?;
    if explicit_port && auth.port != svc.port {
        return Err(format!("'{call}': service {name}.{ns} has port {}, not {}", svc.port, auth.port));
    }
    Ok(svc)
}

fn check_namespace(at: &mut At<'_>, namespaces: &BTreeSet<String>, path: &str, ns: &str) {
    if !namespaces.contains(ns) {
        at.err(path, format!("namespace '{ns}' is not declared in spec.namespaces"));
    }
}

fn check_profile(
    p: &Parsed<ServiceProfile>,
    index: Option<&Index>,
    seen: &mut BTreeMap<(String, String), String>,
    errors: &mut Errors,
) {
    let mut at = At { file: &p.file, doc: &p.doc, errors };
    let sp = &p.value;
    if let Some(index) = index {
        let name = &sp.metadata.name;
        match parse_fqdn(name, &index.cluster_domain) {
            None => at.err(
                "metadata.name",
                format!("'{name}' is not a service FQDN (expected <service>.<namespace>.svc.{})", index.cluster_domain),
            ),
            Some((svc, ns)) => {
                if index.service(ns, svc).is_none() {
                    at.err("metadata.name", format!("no service '{svc}' in namespace '{ns}' is declared in mesh.yaml"));
                }
                let client_ns = sp.metadata.namespace.clone().unwrap_or_else(|| ns.to_string());
                if let Some(ns) = &sp.metadata.namespace
                    && !index.has_namespace(ns)
                {
                    at.err("metadata.namespace", format!("namespace '{ns}' is not declared in mesh.yaml"));
                }
                let key = (client_ns.clone(), name.clone());
                if let Some(first) = seen.get(&key) {
                    at.err(
                        "metadata.name",
                        format!("a ServiceProfile for {name} in namespace '{client_ns}' is already defined at {first}"),
                    );
                } else {
                    seen.insert(key, format!("{}:{}", p.file, p.doc.line));
                }
            }
        }
    }

    if sp.spec.unmatched_not_found {
        at.err("spec.unmatchedNotFound", "not a ServiceProfile field (compiled from HTTPRoutes)");
    }
    let mut names: BTreeMap<&str, u32> = BTreeMap::new();
    for (i, route) in sp.spec.routes.iter().enumerate() {
        let path = format!("spec.routes[{i}]");
        if route.name.trim().is_empty() {
            at.err(&format!("{path}.name"), "a route needs a name");
        } else if let Some(line) = names.get(route.name.as_str()) {
            at.err(&format!("{path}.name"), format!("duplicate route name '{}' (first at line {line})", route.name));
        } else {
            names.insert(&route.name, p.doc.line_of(&format!("{path}.name")));
        }
        check_request_match(&mut at, &format!("{path}.condition"), &route.condition);
        if route.retry.is_some() {
            at.err(
                &format!("{path}.retry"),
                "not a ServiceProfile field (use isRetryable, or an HTTPRoute's retry.linkerd.io annotations)",
            );
        }
        if route.rule.is_some() {
            at.err(&format!("{path}.rule"), "not a ServiceProfile field (compiled from an HTTPRoute's rules)");
        }
        for (j, class) in route.response_classes.iter().enumerate() {
            check_response_match(&mut at, &format!("{path}.responseClasses[{j}].condition"), &class.condition);
        }
        if let Some(t) = &route.timeout {
            // `0s` is accepted and means no timeout (Linkerd's `0` turns a route timeout off).
            if let Err(e) = duration::parse(t) {
                at.err(&format!("{path}.timeout"), e);
            }
        }
    }

    if let Some(budget) = &sp.spec.retry_budget {
        let ratio = budget.retry_ratio;
        if !(ratio.is_finite() && (0.0..=1000.0).contains(&ratio)) {
            at.err("spec.retryBudget.retryRatio", format!("{ratio} is not in [0, 1000]"));
        }
        match duration::parse(&budget.ttl) {
            Err(e) => at.err("spec.retryBudget.ttl", e),
            Ok(d) if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_secs(60) => {
                at.err("spec.retryBudget.ttl", format!("'{}' is not between 1s and 60s", budget.ttl))
            }
            Ok(_) => {}
        }
    }

    for (i, dst) in sp.spec.dst_overrides.iter().enumerate() {
        let path = format!("spec.dstOverrides[{i}]");
        if Authority::parse(&dst.authority, 80).is_err() {
            at.err(&format!("{path}.authority"), format!("'{}' is not a valid authority (host[:port])", dst.authority));
        }
        check_weight(&mut at, &format!("{path}.weight"), &dst.weight);
    }
    for (i, port) in sp.spec.opaque_ports.iter().enumerate() {
        if *port == 0 {
            at.err(&format!("spec.opaquePorts[{i}]"), "0 is not a valid port");
        }
    }
}

fn check_request_match(at: &mut At<'_>, path: &str, m: &RequestMatch) {
    if m.all.is_none()
        && m.any.is_none()
        && m.not.is_none()
        && m.path_regex.is_none()
        && m.method.is_none()
        && m.headers.is_empty()
        && m.query_params.is_empty()
    {
        at.err(path, "a condition needs at least one of pathRegex, method, headers, queryParams, all, any, not");
        return;
    }
    for (field, list, header) in [("headers", &m.headers, true), ("queryParams", &m.query_params, false)] {
        for (i, v) in list.iter().enumerate() {
            if let Err((part, e)) = check_value_match(v, header) {
                at.err(&format!("{path}.{field}[{i}].{part}"), e);
            }
        }
    }
    if let Some(re) = &m.path_regex
        && let Err(e) = check_regex(re)
    {
        at.err(&format!("{path}.pathRegex"), format!("'{re}' is not a valid regular expression: {e}"));
    }
    if let Some(method) = &m.method
        && !is_token(method)
    {
        at.err(&format!("{path}.method"), format!("'{method}' is not an HTTP method"));
    }
    for (i, sub) in m.all.iter().flatten().enumerate() {
        check_request_match(at, &format!("{path}.all[{i}]"), sub);
    }
    for (i, sub) in m.any.iter().flatten().enumerate() {
        check_request_match(at, &format!("{path}.any[{i}]"), sub);
    }
    if let Some(sub) = &m.not {
        check_request_match(at, &format!("{path}.not"), sub);
    }
}

/// A header (`header`) or query parameter match: a name (an HTTP token for a header), type `Exact` or
/// `RegularExpression`, a regex that compiles. `Err((field, message))`.
pub(crate) fn check_value_match(v: &ValueMatch, header: bool) -> Result<(), (&'static str, String)> {
    if v.name.is_empty() || (header && !is_token(&v.name)) {
        let what = if header { "header" } else { "query parameter" };
        return Err(("name", format!("'{}' is not a {what} name", v.name)));
    }
    match v.kind.as_deref() {
        None | Some("Exact") => Ok(()),
        Some("RegularExpression") => check_regex(&v.value)
            .map(|_| ())
            .map_err(|e| ("value", format!("'{}' is not a valid regular expression: {e}", v.value))),
        Some(other) => Err(("type", format!("'{other}' is not Exact or RegularExpression"))),
    }
}

/// The regex must compile alone and anchored as the proxy uses it (`^(?:re)$`).
pub(crate) fn check_regex(re: &str) -> Result<regex::Regex, String> {
    let short = |e: regex::Error| match e {
        regex::Error::Syntax(text) => text
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .map_or_else(|| text.lines().last().unwrap_or_default().to_string(), str::to_string),
        other => other.to_string(),
    };
    regex::Regex::new(re).map_err(short)?;
    regex::Regex::new(&format!("^(?:{re})$")).map_err(short)
}

fn check_response_match(at: &mut At<'_>, path: &str, m: &ResponseMatch) {
    if m.all.is_none() && m.any.is_none() && m.not.is_none() && m.status.is_none() {
        at.err(path, "a condition needs at least one of status, all, any, not");
        return;
    }
    if let Some(status) = &m.status {
        let spath = format!("{path}.status");
        let mut ok = true;
        for (name, v) in [("min", status.min), ("max", status.max)] {
            if let Some(v) = v
                && !(100..=599).contains(&v)
            {
                at.err(&format!("{spath}.{name}"), format!("{v} is not an HTTP status (100..599)"));
                ok = false;
            }
        }
        match (status.min, status.max) {
            (None, None) => at.err(&spath, "set min, max or both"),
            (Some(min), Some(max)) if ok && max < min => {
                at.err(&format!("{spath}.max"), format!("{max} is less than min {min}"));
            }
            _ => {}
        }
    }
    for (i, sub) in m.all.iter().flatten().enumerate() {
        check_response_match(at, &format!("{path}.all[{i}]"), sub);
    }
    for (i, sub) in m.any.iter().flatten().enumerate() {
        check_response_match(at, &format!("{path}.any[{i}]"), sub);
    }
    if let Some(sub) = &m.not {
        check_response_match(at, &format!("{path}.not"), sub);
    }
}

fn check_weight(at: &mut At<'_>, path: &str, w: &Quantity) -> Option<i64> {
    match w.milli_value() {
        Some(v) if v >= 0 => Some(v),
        _ => {
            at.err(path, format!("'{w}' is not a valid weight (a quantity ≥ 0 such as 500, 500m, 1)"));
            None
        }
    }
}

fn check_split(
    s: &Parsed<TrafficSplit>,
    index: Option<&Index>,
    seen_apex: &mut BTreeMap<(String, String), String>,
    seen_names: &mut BTreeMap<(String, String), String>,
    errors: &mut Errors,
) {
    let mut at = At { file: &s.file, doc: &s.doc, errors };
    let ts = &s.value;
    let origin = format!("{}:{}", s.file, s.doc.line);
    let ns = ts.metadata.namespace.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    if let Some(index) = index {
        if !index.has_namespace(&ns) {
            at.err("metadata.namespace", format!("namespace '{ns}' is not declared in mesh.yaml"));
        }
        match split_service(index, &ns, &ts.spec.service) {
            Err(e) => at.err("spec.service", e),
            Ok(apex) => {
                let key = (ns.clone(), apex.to_string());
                if let Some(first) = seen_apex.get(&key) {
                    at.err("spec.service", format!("service '{apex}' already has a TrafficSplit at {first}"));
                } else {
                    seen_apex.insert(key, origin.clone());
                }
            }
        }
    }
    let name_key = (ns.clone(), ts.metadata.name.clone());
    if let Some(first) = seen_names.get(&name_key) {
        at.err(
            "metadata.name",
            format!("a TrafficSplit named '{}' in namespace '{ns}' is already defined at {first}", ts.metadata.name),
        );
    } else {
        seen_names.insert(name_key, origin);
    }

    if ts.spec.backends.is_empty() {
        at.err("spec.backends", "a TrafficSplit needs at least one backend");
        return;
    }
    let mut total = 0i64;
    let mut all_valid = true;
    let mut backends = BTreeSet::new();
    for (i, b) in ts.spec.backends.iter().enumerate() {
        let path = format!("spec.backends[{i}]");
        let weight = check_weight(&mut at, &format!("{path}.weight"), &b.weight);
        match weight {
            Some(w) => total = total.saturating_add(w),
            None => all_valid = false,
        }
        // A zero-weight backend gets no traffic, so it may name a service that does not exist (yet), or
        // none: Linkerd copies such backends as they are and its proxy drops them.
        if weight == Some(0) {
            continue;
        }
        if let Some(index) = index {
            match split_service(index, &ns, &b.service) {
                Err(e) => at.err(&format!("{path}.service"), e),
                Ok(name) => {
                    if !backends.insert(name.to_string()) {
                        at.err(&format!("{path}.service"), format!("backend '{name}' is listed twice"));
                    }
                }
            }
        }
    }
    if all_valid && total == 0 {
        at.err("spec.backends", "every weight is 0, so the split sends traffic nowhere");
    }
}

/// A TrafficSplit's service reference: a name in the split's namespace (or its FQDN form).
fn split_service<'a>(index: &Index, split_ns: &str, reference: &'a str) -> Result<&'a str, String> {
    let (name, ns) = match reference.split('.').collect::<Vec<_>>().as_slice() {
        [name] => (*name, split_ns),
        _ => parse_fqdn(reference, &index.cluster_domain)
            .or_else(|| match reference.split('.').collect::<Vec<_>>().as_slice() {
                [name, ns] | [name, ns, "svc"] => Some((*name, *ns)),
                _ => None,
            })
            .ok_or_else(|| format!("'{reference}' is not a service name"))?,
    };
    if ns != split_ns {
        return Err(format!("'{reference}' is not in the split's namespace '{split_ns}'"));
    }
    if index.service(ns, name).is_none() {
        return Err(format!("no service '{name}' in namespace '{ns}' is declared in mesh.yaml"));
    }
    Ok(name)
}

/// `svc.ns.svc.<domain>` → `(svc, ns)`.
pub(crate) fn parse_fqdn<'a>(name: &'a str, cluster_domain: &str) -> Option<(&'a str, &'a str)> {
    let rest = name.strip_suffix(cluster_domain)?.strip_suffix(".svc.")?;
    let (svc, ns) = rest.split_once('.')?;
    (is_dns_label(svc) && is_dns_label(ns)).then_some((svc, ns))
}

fn is_dns_domain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An HTTP token (RFC 9110 §5.6.2), what a method must be.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdns() {
        assert_eq!(parse_fqdn("orders.prod.svc.cluster.local", "cluster.local"), Some(("orders", "prod")));
        assert_eq!(parse_fqdn("orders.prod.svc.example.org", "example.org"), Some(("orders", "prod")));
        assert_eq!(parse_fqdn("orders.prod.svc.cluster.local", "example.org"), None);
        assert_eq!(parse_fqdn("orders.prod", "cluster.local"), None);
        assert_eq!(parse_fqdn("a.b.prod.svc.cluster.local", "cluster.local"), None);
    }

    #[test]
    fn regexes_compile_alone_and_anchored() {
        assert!(check_regex("/api/orders/[^/]+").is_ok());
        assert_eq!(check_regex("/api/(").unwrap_err(), "unclosed group");
        assert!(check_regex("a)(b").is_err());
        let re = check_regex("/a|/b").unwrap();
        assert!(re.is_match("/b") && !re.is_match("/a/b"));
    }

    #[test]
    fn tokens_and_env_names() {
        assert!(is_token("GET") && is_token("PURGE") && !is_token("G ET") && !is_token(""));
        assert!(is_env_name("LOG_LEVEL") && is_env_name("_x1") && !is_env_name("1X") && !is_env_name("A-B"));
    }
}
