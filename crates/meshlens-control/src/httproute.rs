//! HTTPRoute and GRPCRoute documents checked (file:line) and compiled into the ServiceProfile form proxies
//! already apply: one profile per parent Service, its routes in Linkerd's precedence, its backends as
//! `dstOverrides`, Linkerd's `retry.linkerd.io/*` and `timeout.linkerd.io/request` annotations as route
//! retries and timeouts. A ServiceProfile with routes or `dstOverrides` wins over routes (Linkerd's proxy);
//! a GRPCRoute wins over the HTTPRoutes of the same Service (Linkerd's policy controller).

use std::collections::BTreeMap;

use meshlens_api::duration;
use meshlens_api::httproute::{BackendRef, GrpcRoute, HttpRoute, ParentRef, Route};
use meshlens_api::meta::ObjectMeta;
use meshlens_api::profile::{
    Quantity, RequestMatch, RouteRetry, RouteSpec, SERVICE_PROFILE_API_VERSION, ServiceProfile, ServiceProfileSpec,
    StatusRange, ValueMatch, WeightedDst,
};

use crate::meshdir::{Errors, Parsed, Sourced};
use crate::validate::{Index, check_regex, check_value_match};

/// Linkerd's annotations on a route (retry family and timeout family).
const RETRY_HTTP: &str = "retry.linkerd.io/http";
const RETRY_GRPC: &str = "retry.linkerd.io/grpc";
const RETRY_LIMIT: &str = "retry.linkerd.io/limit";
const RETRY_TIMEOUT: &str = "retry.linkerd.io/timeout";
const TIMEOUT_REQUEST: &str = "timeout.linkerd.io/request";
const TIMEOUT_RESPONSE: &str = "timeout.linkerd.io/response";
const TIMEOUT_IDLE: &str = "timeout.linkerd.io/idle";

/// The routes of a mesh directory, as read.
#[derive(Default)]
pub(crate) struct RouteDocs {
    pub http: Vec<Parsed<HttpRoute>>,
    pub grpc: Vec<Parsed<GrpcRoute>>,
}

/// One match of a rule, compiled, with what orders it among the Service's routes.
struct Compiled {
    /// Path characters a request must match (Linkerd orders by them first), then whether a method is set,
    /// then the number of header matches, then of query parameter matches (the Gateway API's precedence).
    rank: (usize, bool, usize, usize),
    origin: String,
    route: RouteSpec,
    backends: Vec<(String, u32)>,
    /// `file:line` of the rule's backendRefs, for conflicts.
    backends_at: (String, u32),
}

/// What the compilation adds to the directory's profiles: `(index of the profile it completes, profile)`,
/// the index `None` for a Service without one.
pub(crate) type CompiledProfiles = Vec<(Option<usize>, Sourced<ServiceProfile>)>;

/// Checks every route and compiles those that apply. Notes (ignored parents, annotations, routes a profile
/// overrides) go to `notes`.
pub(crate) fn compile(
    index: Option<&Index>,
    profiles: &[Parsed<ServiceProfile>],
    docs: &RouteDocs,
    errors: &mut Errors,
    notes: &mut Vec<String>,
) -> CompiledProfiles {
    let mut per_service: BTreeMap<(String, String), (bool, Vec<Compiled>)> = BTreeMap::new();
    for r in &docs.grpc {
        compile_route(r, index, errors, notes, &mut per_service, true, grpc_rules(r));
    }
    for r in &docs.http {
        compile_route(r, index, errors, notes, &mut per_service, false, http_rules(r));
    }
    let Some(index) = index else { return Vec::new() };
    let mut out = Vec::new();
    for ((ns, name), (_, mut compiled)) in per_service {
        let fqdn = format!("{name}.{ns}.svc.{}", index.cluster_domain);
        let existing = profiles.iter().position(|p| p.value.metadata.name == fqdn);
        if let Some(i) = existing {
            let sp = &profiles[i];
            if !sp.value.spec.routes.is_empty() || !sp.value.spec.dst_overrides.is_empty() {
                for c in &compiled {
                    let note = format!(
                        "{}: route '{}' of {name}.{ns} ignored: the ServiceProfile at {}:{} has routes or dstOverrides, and wins",
                        c.origin, c.route.name, sp.file, sp.doc.line
                    );
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                continue;
            }
        }
        // Most path characters first, then a method, headers, query parameters; ties keep file and rule order (a stable sort).
        compiled.sort_by_key(|c| std::cmp::Reverse(c.rank));
        let backends = compiled[0].backends.clone();
        for c in &compiled[1..] {
            if c.backends != backends {
                errors.at(
                    &c.backends_at.0,
                    c.backends_at.1,
                    format!(
                        "backendRefs: differ from those of route '{}' ({}): meshlens sends one Service's traffic to one set of backends",
                        compiled[0].route.name, compiled[0].origin
                    ),
                );
            }
        }
        let parent = format!("{fqdn}:{}", index.services.get(&(ns.clone(), name.clone())).map_or(80, |s| s.port));
        let dst_overrides = if backends.len() == 1 && backends[0].0 == parent {
            Vec::new()
        } else {
            backends
                .iter()
                .map(|(a, w)| WeightedDst { authority: a.clone(), weight: Quantity::Int((*w).into()) })
                .collect()
        };
        let (file, line) = compiled[0]
            .origin
            .rsplit_once(':')
            .map_or((String::new(), 1), |(f, l)| (f.to_string(), l.parse().unwrap_or(1)));
        let base = existing.map(|i| profiles[i].value.clone());
        let mut value = base.unwrap_or_else(|| ServiceProfile {
            api_version: SERVICE_PROFILE_API_VERSION.to_string(),
            kind: "ServiceProfile".to_string(),
            metadata: ObjectMeta { name: fqdn.clone(), namespace: Some(ns.clone()), ..Default::default() },
            spec: ServiceProfileSpec::default(),
        });
        value.spec.routes = compiled.into_iter().map(|c| c.route).collect();
        value.spec.dst_overrides = dst_overrides;
        out.push((existing, Sourced { file, line, value }));
    }
    out
}

/// A rule's matches as `(condition, path characters)`, its backendRefs and timeout.
struct Rule<'a> {
    path: String,
    matches: Vec<(RequestMatch, usize)>,
    backends: &'a [BackendRef],
    timeout: Option<String>,
}

fn compile_route<S>(
    r: &Parsed<Route<S>>,
    index: Option<&Index>,
    errors: &mut Errors,
    notes: &mut Vec<String>,
    per_service: &mut BTreeMap<(String, String), (bool, Vec<Compiled>)>,
    grpc: bool,
    rules: Result<Vec<Rule<'_>>, Vec<(String, String)>>,
) where
    S: HasParents,
{
    let kind = if grpc { "GRPCRoute" } else { "HTTPRoute" };
    let file = r.file.as_str();
    let doc = &r.doc;
    let ns = r.value.metadata.namespace.clone().unwrap_or_default();
    let name = &r.value.metadata.name;
    let origin = format!("{file}:{}", doc.line);
    let mut ok = true;
    let mut bad = |path: &str, message: String| {
        errors.field(file, doc, path, message);
    };
    let rules = match rules {
        Ok(rules) => rules,
        Err(problems) => {
            for (path, message) in problems {
                bad(&path, message);
            }
            return;
        }
    };
    let annotations = match annotations(&r.value.metadata.annotations, grpc, notes, &origin) {
        Ok(a) => a,
        Err((key, message)) => {
            bad(&format!("metadata.annotations.{key}"), message);
            return;
        }
    };
    let Some(index) = index else { return };
    if !index.namespaces.contains(&ns) {
        bad("metadata.namespace", format!("namespace '{ns}' is not declared in mesh.yaml"));
        return;
    }
    let mut parents = Vec::new();
    for (i, p) in r.value.spec.parent_refs().iter().enumerate() {
        let path = format!("spec.parentRefs[{i}]");
        if !p.is_service() {
            notes.push(format!(
                "{file}:{}: {kind} '{name}': parentRefs[{i}] ({} '{}') ignored: only a Service parent routes traffic",
                doc.line_of(&path),
                p.kind.as_deref().unwrap_or("Gateway, the default kind"),
                p.name
            ));
            continue;
        }
        let pns = p.namespace.clone().unwrap_or_else(|| ns.clone());
        if pns != ns {
            bad(
                &format!("{path}.namespace"),
                format!(
                    "'{pns}': a route for another namespace's Service applies to its own namespace's clients in Linkerd; meshlens supports routes in the Service's namespace only"
                ),
            );
            ok = false;
            continue;
        }
        match index.services.get(&(ns.clone(), p.name.clone())) {
            None => {
                bad(
                    &format!("{path}.name"),
                    format!("no service '{}' in namespace '{ns}' is declared in mesh.yaml", p.name),
                );
                ok = false;
            }
            Some(svc) if p.port.is_some_and(|port| port != svc.port) => {
                bad(
                    &format!("{path}.port"),
                    format!("service {}.{ns} has port {}, not {}", p.name, svc.port, p.port.unwrap_or(0)),
                );
                ok = false;
            }
            Some(svc) => parents.push((p.name.clone(), svc.port)),
        }
    }
    let mut compiled_rules = Vec::new();
    for (j, rule) in rules.iter().enumerate() {
        let mut backends = Vec::new();
        for (k, b) in rule.backends.iter().enumerate() {
            let path = format!("{}[{j}].backendRefs[{k}]", rule.path);
            match backend(index, &ns, b) {
                Ok(Some(dst)) => backends.push(dst),
                Ok(None) => {}
                Err((field, message)) => {
                    bad(&format!("{path}{field}"), message);
                    ok = false;
                }
            }
        }
        let backends_at = doc.line_of(&format!("{}[{j}].backendRefs", rule.path));
        compiled_rules.push((rule, backends, backends_at));
    }
    if !ok {
        return;
    }
    for (parent, port) in parents {
        let entry = per_service.entry((ns.clone(), parent.clone())).or_insert((grpc, Vec::new()));
        if entry.0 != grpc {
            if grpc {
                // The first GRPCRoute of a Service drops the HTTPRoutes compiled before.
                *entry = (true, Vec::new());
            } else {
                notes.push(format!(
                    "{origin}: HTTPRoute '{name}' of {parent}.{ns} ignored: a GRPCRoute routes this Service, and wins"
                ));
                continue;
            }
        }
        let parent_authority = format!("{parent}.{ns}.svc.{}:{port}", index.cluster_domain);
        for (rule, backends, backends_at) in &compiled_rules {
            let backends = if backends.is_empty() { vec![(parent_authority.clone(), 1)] } else { backends.clone() };
            let timeout = annotations.request_timeout.clone().or_else(|| rule.timeout.clone());
            for (condition, chars) in &rule.matches {
                entry.1.push(Compiled {
                    rank: (*chars, condition.method.is_some(), condition.headers.len(), condition.query_params.len()),
                    origin: origin.clone(),
                    route: RouteSpec {
                        name: name.clone(),
                        condition: condition.clone(),
                        response_classes: Vec::new(),
                        is_retryable: false,
                        timeout: timeout.clone(),
                        retry: annotations.retry.clone(),
                    },
                    backends: backends.clone(),
                    backends_at: (file.to_string(), *backends_at),
                });
            }
        }
    }
}

/// The spec's parentRefs, for either route kind.
pub(crate) trait HasParents {
    fn parent_refs(&self) -> &[ParentRef];
}

impl HasParents for meshlens_api::httproute::HttpRouteSpec {
    fn parent_refs(&self) -> &[ParentRef] {
        &self.parent_refs
    }
}

impl HasParents for meshlens_api::httproute::GrpcRouteSpec {
    fn parent_refs(&self) -> &[ParentRef] {
        &self.parent_refs
    }
}

/// A backendRef as `(authority with port, weight)`; `None` for a zero weight (no traffic, as the Gateway
/// API says); `Err((field suffix, message))`.
fn backend(index: &Index, ns: &str, b: &BackendRef) -> Result<Option<(String, u32)>, (String, String)> {
    let weight = b.weight.unwrap_or(1);
    if weight > 1_000_000 {
        return Err((".weight".into(), format!("{weight} is above 1000000")));
    }
    if !b.filters.is_empty() {
        return Err((".filters".into(), "backend filters are not supported".into()));
    }
    if !matches!(b.kind.as_deref(), None | Some("Service")) || !matches!(b.group.as_deref(), None | Some("" | "core")) {
        return Err((".kind".into(), "only a Service backend is supported".into()));
    }
    if weight == 0 {
        return Ok(None);
    }
    let bns = b.namespace.as_deref().unwrap_or(ns);
    let svc = index.services.get(&(bns.to_string(), b.name.clone())).ok_or_else(|| {
        (".name".to_string(), format!("no service '{}' in namespace '{bns}' is declared in mesh.yaml", b.name))
    })?;
    if let Some(port) = b.port
        && port != svc.port
    {
        return Err((".port".into(), format!("service {}.{bns} has port {}, not {port}", b.name, svc.port)));
    }
    Ok(Some((format!("{}.{bns}.svc.{}:{}", b.name, index.cluster_domain, svc.port), weight)))
}

fn http_rules(r: &Parsed<HttpRoute>) -> Result<Vec<Rule<'_>>, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut rules = Vec::new();
    for (j, rule) in r.value.spec.rules.iter().enumerate() {
        let at = format!("spec.rules[{j}]");
        if !rule.filters.is_empty() {
            problems.push((format!("{at}.filters"), "filters are not supported".to_string()));
        }
        let mut timeout = None;
        if let Some(t) = &rule.timeouts {
            if let Some(req) = &t.request {
                match duration::parse(req) {
                    Ok(_) => timeout = Some(req.clone()),
                    Err(e) => problems.push((format!("{at}.timeouts.request"), e)),
                }
            }
            if let Some(b) = &t.backend_request
                && let Err(e) = duration::parse(b)
            {
                problems.push((format!("{at}.timeouts.backendRequest"), e));
            }
        }
        let mut matches = Vec::new();
        if rule.matches.is_empty() {
            matches.push((path_match("/.*", None), 1));
        }
        for (m, mt) in rule.matches.iter().enumerate() {
            let mat = format!("{at}.matches[{m}]");
            let headers = value_matches(&mat, "headers", &mt.headers, &mut problems);
            let query_params = value_matches(&mat, "queryParams", &mt.query_params, &mut problems);
            let method = match &mt.method {
                Some(method) if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) => {
                    problems
                        .push((format!("{mat}.method"), format!("'{method}' is not an HTTP method (GET, POST, …)")));
                    None
                }
                m => m.clone(),
            };
            let (kind, value) = match &mt.path {
                None => ("PathPrefix", "/"),
                Some(p) => (p.kind.as_deref().unwrap_or("PathPrefix"), p.value.as_deref().unwrap_or("/")),
            };
            let regex = match kind {
                "Exact" | "PathPrefix" if !value.starts_with('/') => {
                    problems.push((format!("{mat}.path.value"), format!("'{value}' must start with '/'")));
                    continue;
                }
                "Exact" => regex::escape(value),
                "PathPrefix" => match value.trim_end_matches('/') {
                    "" => "/.*".to_string(),
                    prefix => format!("{}(?:/.*)?", regex::escape(prefix)),
                },
                "RegularExpression" => match check_regex(value) {
                    Ok(_) => value.to_string(),
                    Err(e) => {
                        problems.push((
                            format!("{mat}.path.value"),
                            format!("'{value}' is not a valid regular expression: {e}"),
                        ));
                        continue;
                    }
                },
                other => {
                    problems.push((
                        format!("{mat}.path.type"),
                        format!("'{other}' is not Exact, PathPrefix or RegularExpression"),
                    ));
                    continue;
                }
            };
            let condition =
                RequestMatch { path_regex: Some(regex), method, headers, query_params, ..Default::default() };
            matches.push((condition, value.len()));
        }
        rules.push(Rule { path: "spec.rules".into(), matches, backends: &rule.backend_refs, timeout });
    }
    if problems.is_empty() { Ok(rules) } else { Err(problems) }
}

fn path_match(path_regex: &str, method: Option<&str>) -> RequestMatch {
    RequestMatch { path_regex: Some(path_regex.into()), method: method.map(str::to_string), ..Default::default() }
}

/// A match's `headers` or `queryParams`, checked; of several with the same name only the first counts (as
/// the Gateway API says), header names compared case-insensitively.
fn value_matches(mat: &str, field: &str, list: &[ValueMatch], problems: &mut Vec<(String, String)>) -> Vec<ValueMatch> {
    let header = field == "headers";
    let mut kept: Vec<ValueMatch> = Vec::new();
    for (i, v) in list.iter().enumerate() {
        if let Err((part, e)) = check_value_match(v, header) {
            problems.push((format!("{mat}.{field}[{i}].{part}"), e));
        } else if !kept.iter().any(|k| if header { k.name.eq_ignore_ascii_case(&v.name) } else { k.name == v.name }) {
            kept.push(v.clone());
        }
    }
    kept
}

fn grpc_rules(r: &Parsed<GrpcRoute>) -> Result<Vec<Rule<'_>>, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut rules = Vec::new();
    for (j, rule) in r.value.spec.rules.iter().enumerate() {
        let at = format!("spec.rules[{j}]");
        if !rule.filters.is_empty() {
            problems.push((format!("{at}.filters"), "filters are not supported".to_string()));
        }
        let mut matches = Vec::new();
        if rule.matches.is_empty() {
            matches.push((path_match("/.*", Some("POST")), 1));
        }
        for (m, mt) in rule.matches.iter().enumerate() {
            let mat = format!("{at}.matches[{m}]");
            let headers = value_matches(&mat, "headers", &mt.headers, &mut problems);
            let Some(method) = &mt.method else {
                matches.push((RequestMatch { headers, ..path_match("/.*", Some("POST")) }, 1));
                continue;
            };
            if method.kind.as_deref().is_some_and(|k| k != "Exact") {
                problems.push((format!("{mat}.method.type"), "only Exact is supported (as in Linkerd)".into()));
                continue;
            }
            let part = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(regex::escape);
            let (service, name) = (part(&method.service), part(&method.method));
            if service.is_none() && name.is_none() {
                problems.push((format!("{mat}.method"), "set service, method or both".into()));
                continue;
            }
            let chars = method.service.as_deref().map_or(0, str::len) + method.method.as_deref().map_or(0, str::len);
            let regex =
                format!("/{}/{}", service.unwrap_or_else(|| "[^/]+".into()), name.unwrap_or_else(|| "[^/]+".into()));
            matches.push((RequestMatch { headers, ..path_match(&regex, Some("POST")) }, chars));
        }
        rules.push(Rule { path: "spec.rules".into(), matches, backends: &rule.backend_refs, timeout: None });
    }
    if problems.is_empty() { Ok(rules) } else { Err(problems) }
}

/// Linkerd's annotations of one route, compiled.
struct Annotations {
    retry: Option<RouteRetry>,
    request_timeout: Option<String>,
}

/// Reads the retry and timeout annotations; `Err((key, message))` for a bad value (Linkerd drops the route).
fn annotations(
    a: &BTreeMap<String, String>,
    grpc: bool,
    notes: &mut Vec<String>,
    origin: &str,
) -> Result<Annotations, (String, String)> {
    let mut retry = RouteRetry { limit: 1, ..Default::default() };
    if let Some(v) = a.get(RETRY_HTTP) {
        if grpc {
            return Err((RETRY_HTTP.into(), "not valid on a GRPCRoute (use retry.linkerd.io/grpc)".into()));
        }
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            retry.http.push(status_range(item).ok_or_else(|| {
                (RETRY_HTTP.to_string(), format!("'{item}' is not a status, a range (500-504), 5xx or gateway-error"))
            })?);
        }
    }
    if let Some(v) = a.get(RETRY_GRPC) {
        if !grpc {
            return Err((RETRY_GRPC.into(), "not valid on an HTTPRoute (use retry.linkerd.io/http)".into()));
        }
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let code = match item.to_ascii_lowercase().as_str() {
                "cancelled" => 1,
                "deadline-exceeded" => 4,
                "resource-exhausted" => 8,
                "internal" => 13,
                "unavailable" => 14,
                _ => {
                    return Err((
                        RETRY_GRPC.into(),
                        format!(
                            "'{item}' is not one of cancelled, deadline-exceeded, internal, resource-exhausted, unavailable"
                        ),
                    ));
                }
            };
            retry.grpc.push(code);
        }
    }
    if let Some(v) = a.get(RETRY_LIMIT) {
        let n: u32 =
            v.trim().parse().map_err(|_| (RETRY_LIMIT.to_string(), format!("'{v}' is not a non-negative integer")))?;
        // `0` counts as unset (Linkerd): the default, 1.
        retry.limit = if n == 0 { 1 } else { n };
    }
    let mut durations = BTreeMap::new();
    for key in [RETRY_TIMEOUT, TIMEOUT_REQUEST, TIMEOUT_RESPONSE, TIMEOUT_IDLE] {
        if let Some(v) = a.get(key) {
            duration::parse(v.trim()).map_err(|e| (key.to_string(), e))?;
            durations.insert(key, v.trim().to_string());
        }
    }
    for key in [RETRY_TIMEOUT, TIMEOUT_RESPONSE, TIMEOUT_IDLE] {
        if durations.contains_key(key) {
            notes.push(format!("{origin}: annotation {key} ignored: not supported yet"));
        }
    }
    let retries = !retry.http.is_empty() || !retry.grpc.is_empty();
    Ok(Annotations { retry: retries.then_some(retry), request_timeout: durations.remove(TIMEOUT_REQUEST) })
}

/// `504`, `500-504`, `5xx`, `gateway-error` (502–504).
fn status_range(item: &str) -> Option<StatusRange> {
    let range = |min: u16, max: u16| {
        ((100..=599).contains(&min) && (min..=599).contains(&max))
            .then_some(StatusRange { min: Some(min), max: Some(max) })
    };
    match item.to_ascii_lowercase().as_str() {
        "gateway-error" => range(502, 504),
        s if s.len() == 3 && s.ends_with("xx") => {
            let hundreds: u16 = s[..1].parse().ok()?;
            range(hundreds * 100, hundreds * 100 + 99)
        }
        s => match s.split_once('-') {
            Some((a, b)) => range(a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let code = s.parse().ok()?;
                range(code, code)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_statuses() {
        assert_eq!(status_range("5xx"), Some(StatusRange { min: Some(500), max: Some(599) }));
        assert_eq!(status_range("gateway-error"), Some(StatusRange { min: Some(502), max: Some(504) }));
        assert_eq!(status_range("500-504"), Some(StatusRange { min: Some(500), max: Some(504) }));
        assert_eq!(status_range("504"), Some(StatusRange { min: Some(504), max: Some(504) }));
        assert_eq!(status_range("6xx"), None);
        assert_eq!(status_range("504-500"), None);
        assert_eq!(status_range("soon"), None);
    }
}
