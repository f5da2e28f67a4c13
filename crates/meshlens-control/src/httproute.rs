//! HTTPRoute and GRPCRoute documents checked (file:line) and compiled into the ServiceProfile form proxies
//! already apply: one profile per parent Service, its routes in Linkerd's precedence, each with its rule's
//! weighted backends, filters and per-attempt timeout, Linkerd's `retry.linkerd.io/*` and
//! `timeout.linkerd.io/request` annotations as route retries and timeouts, and a 404 for requests no route
//! matches. A ServiceProfile with routes or `dstOverrides` wins over routes (Linkerd's proxy); a GRPCRoute
//! wins over the HTTPRoutes of the same Service (Linkerd's policy controller).

use std::collections::BTreeMap;

use meshlens_api::duration;
use meshlens_api::httproute::{
    BackendRef, Filter, GrpcRoute, GrpcRouteMatch, HeaderModifier, HttpRoute, HttpRouteMatch, Route,
};
use meshlens_api::meta::ObjectMeta;
use meshlens_api::profile::{
    Quantity, RequestMatch, RouteRetry, RouteRule, RouteSpec, SERVICE_PROFILE_API_VERSION, ServiceProfile,
    ServiceProfileSpec, StatusRange, ValueMatch, WeightedDst,
};

use crate::meshdir::{Errors, Parsed, Sourced};
use crate::validate::{Index, check_regex, check_value_match, is_token};

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
        compile_route(r, index, errors, notes, &mut per_service);
    }
    for r in &docs.http {
        compile_route(r, index, errors, notes, &mut per_service);
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
        value.spec.unmatched_not_found = true;
        out.push((existing, Sourced { file, line, value }));
    }
    out
}

/// One match of a rule: its condition, the path characters it matches (its rank) and its `PathPrefix`.
struct Match {
    condition: RequestMatch,
    chars: usize,
    prefix: Option<String>,
}

/// A rule, checked: its matches, backendRefs, timeouts and filters (`rule.backends` still empty).
struct Checked<'a> {
    matches: Vec<Match>,
    backends: &'a [BackendRef],
    timeout: Option<String>,
    rule: RouteRule,
}

/// What differs between the two route kinds: their matches.
trait RouteMatch: Sized {
    const KIND: &'static str;
    const GRPC: bool;
    /// The match of a rule that lists none.
    fn match_all() -> Match;
    /// One entry of `matches` (at `at`), or `None` with the problems pushed.
    fn compile(&self, at: &str, problems: &mut Vec<(String, String)>) -> Option<Match>;
}

fn compile_route<M: RouteMatch>(
    r: &Parsed<Route<M>>,
    index: Option<&Index>,
    errors: &mut Errors,
    notes: &mut Vec<String>,
    per_service: &mut BTreeMap<(String, String), (bool, Vec<Compiled>)>,
) {
    let grpc = M::GRPC;
    let rules = check_rules(r);
    let kind = M::KIND;
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
    for (i, p) in r.value.spec.parent_refs.iter().enumerate() {
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
            let path = format!("spec.rules[{j}].backendRefs[{k}]");
            match backend(index, &ns, b) {
                Ok(Some(dst)) => backends.push(dst),
                Ok(None) => {}
                Err((field, message)) => {
                    bad(&format!("{path}{field}"), message);
                    ok = false;
                }
            }
        }
        compiled_rules.push((rule, backends));
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
        for (rule, backends) in &compiled_rules {
            // No backendRefs, or only the parent itself: the Service's own endpoints.
            let backends =
                if backends.len() == 1 && backends[0].0 == parent_authority { &[][..] } else { &backends[..] };
            let timeout = annotations.request_timeout.clone().or_else(|| rule.timeout.clone());
            let mut extras = RouteRule {
                route_kind: kind.to_string(),
                route_group: r.value.api_version.split('/').next().unwrap_or_default().to_string(),
                backends: backends
                    .iter()
                    .map(|(a, w)| WeightedDst { authority: a.clone(), weight: Quantity::Int((*w).into()) })
                    .collect(),
                ..rule.rule.clone()
            };
            if let Some(t) = &annotations.attempt_timeout {
                extras.attempt_timeout = Some(t.clone());
            }
            for m in &rule.matches {
                let condition = &m.condition;
                // The prefix is only read by a redirect's ReplacePrefixMatch.
                let path_prefix = extras.redirect.as_ref().and(m.prefix.clone());
                let rule = RouteRule { path_prefix, ..extras.clone() };
                entry.1.push(Compiled {
                    rank: (m.chars, condition.method.is_some(), condition.headers.len(), condition.query_params.len()),
                    origin: origin.clone(),
                    route: RouteSpec {
                        name: name.clone(),
                        condition: condition.clone(),
                        response_classes: Vec::new(),
                        is_retryable: false,
                        timeout: timeout.clone(),
                        retry: annotations.retry.clone(),
                        rule: Some(rule),
                    },
                });
            }
        }
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
        return Err((".filters".into(), "backend filters are not supported (set them on the rule)".into()));
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

/// Checks the rules of a route of either kind: filters, timeouts and matches.
fn check_rules<M: RouteMatch>(r: &Parsed<Route<M>>) -> Result<Vec<Checked<'_>>, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut rules = Vec::new();
    for (j, rule) in r.value.spec.rules.iter().enumerate() {
        let at = format!("spec.rules[{j}]");
        let mut extras = filters(&at, &rule.filters, M::GRPC, &mut problems);
        let mut timeout = None;
        if let Some(t) = &rule.timeouts {
            if M::GRPC {
                problems.push((
                    format!("{at}.timeouts"),
                    "a GRPCRoute has no timeouts (use timeout.linkerd.io/request)".into(),
                ));
            }
            let mut parse = |field: &str, v: &Option<String>| match v.as_deref().map(|v| (v, duration::parse(v))) {
                None => None,
                Some((v, Ok(d))) => Some((v.to_string(), d)),
                Some((_, Err(e))) => {
                    problems.push((format!("{at}.timeouts.{field}"), e));
                    None
                }
            };
            let request = parse("request", &t.request);
            let backend = parse("backendRequest", &t.backend_request);
            if let (Some((r, rd)), Some((b, bd))) = (&request, &backend)
                && !rd.is_zero()
                && (bd.is_zero() || bd > rd)
            {
                problems.push((
                    format!("{at}.timeouts.backendRequest"),
                    format!("'{b}' is longer than request '{r}', which covers every attempt"),
                ));
            }
            timeout = request.map(|(v, _)| v);
            extras.attempt_timeout = backend.map(|(v, _)| v);
        }
        let mut matches = Vec::new();
        if rule.matches.is_empty() {
            matches.push(M::match_all());
        }
        for (m, mt) in rule.matches.iter().enumerate() {
            matches.extend(mt.compile(&format!("{at}.matches[{m}]"), &mut problems));
        }
        let prefix_redirect =
            extras.redirect.as_ref().and_then(|r| r.path.as_ref()).is_some_and(|p| p.kind == "ReplacePrefixMatch");
        if prefix_redirect && matches.iter().any(|m| m.prefix.is_none()) {
            problems.push((
                format!("{at}.filters"),
                "RequestRedirect: ReplacePrefixMatch needs every match of the rule to be a PathPrefix".into(),
            ));
        }
        rules.push(Checked { matches, backends: &rule.backend_refs, timeout, rule: extras });
    }
    if problems.is_empty() { Ok(rules) } else { Err(problems) }
}

/// A rule's filters, checked: the ones Linkerd applies (`RequestHeaderModifier`, `ResponseHeaderModifier`,
/// `RequestRedirect`; a GRPCRoute only the header modifiers), each at most once. `URLRewrite`,
/// `RequestMirror` and `ExtensionRef` make Linkerd's policy controller drop the whole route with a warning
/// (reference/linkerd-routes.md §1.4); meshlens refuses the document instead, so the change is not applied
/// half.
fn filters(at: &str, list: &[Filter], grpc: bool, problems: &mut Vec<(String, String)>) -> RouteRule {
    let mut rule = RouteRule::default();
    for (i, f) in list.iter().enumerate() {
        let here = format!("{at}.filters[{i}]");
        match f.kind.as_str() {
            "RequestHeaderModifier" => {
                let checked = checked(&f.request_header_modifier, "requestHeaderModifier", check_header_modifier);
                let taken = rule.request_headers.is_some();
                if let Some(v) = place(problems, &here, &f.kind, checked, taken) {
                    rule.request_headers = Some(v);
                }
            }
            "ResponseHeaderModifier" => {
                let checked = checked(&f.response_header_modifier, "responseHeaderModifier", check_header_modifier);
                let taken = rule.response_headers.is_some();
                if let Some(v) = place(problems, &here, &f.kind, checked, taken) {
                    rule.response_headers = Some(v);
                }
            }
            "RequestRedirect" if grpc => problems.push((
                format!("{here}.type"),
                "RequestRedirect is not supported on a GRPCRoute (Linkerd takes only the header modifiers)".into(),
            )),
            "RequestRedirect" => {
                let checked = checked(&f.request_redirect, "requestRedirect", check_redirect);
                let taken = rule.redirect.is_some();
                if let Some(v) = place(problems, &here, &f.kind, checked, taken) {
                    rule.redirect = Some(v);
                }
            }
            kind @ ("URLRewrite" | "RequestMirror" | "ExtensionRef") => problems.push((
                format!("{here}.type"),
                format!("{kind} is not supported (Linkerd drops a route with it); use RequestHeaderModifier, ResponseHeaderModifier or RequestRedirect"),
            )),
            other => problems.push((
                format!("{here}.type"),
                format!("'{other}' is not a filter type (RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect)"),
            )),
        }
    }
    rule
}

/// Where a checked filter goes: `None` (with the problem pushed) when the type is given twice, its field
/// is missing or wrong.
fn place<T>(
    problems: &mut Vec<(String, String)>,
    here: &str,
    kind: &str,
    checked: Result<Option<T>, (String, String)>,
    taken: bool,
) -> Option<T> {
    let problem = match checked {
        _ if taken => (format!("{here}.type"), format!("{kind} is given twice in the rule")),
        Ok(None) => (format!("{here}.type"), format!("{kind} needs its field")),
        Ok(v) => return v,
        Err((part, e)) => (format!("{here}.{part}"), e),
    };
    problems.push(problem);
    None
}

/// A filter's field checked: `Ok(None)` when it is missing; errors name the field (`requestRedirect.port`).
fn checked<T: Clone>(
    value: &Option<T>,
    field: &str,
    check: fn(&T) -> Result<(), (String, String)>,
) -> Result<Option<T>, (String, String)> {
    match value {
        None => Ok(None),
        Some(v) => check(v).map(|()| Some(v.clone())).map_err(|(part, e)| (format!("{field}{part}"), e)),
    }
}

/// Header names are tokens, values have no control characters, and a name appears once in the modifier.
fn check_header_modifier(m: &HeaderModifier) -> Result<(), (String, String)> {
    let mut seen: Vec<String> = Vec::new();
    let names = m
        .set
        .iter()
        .map(|h| ("set", &h.name, Some(&h.value)))
        .chain(m.add.iter().map(|h| ("add", &h.name, Some(&h.value))));
    for (field, name, value) in names.chain(m.remove.iter().map(|n| ("remove", n, None))) {
        let at = format!(".{field}");
        if !is_token(name) {
            return Err((at, format!("'{name}' is not a header name")));
        }
        if value.is_some_and(|v| v.bytes().any(|b| b.is_ascii_control() && b != b'\t')) {
            return Err((at, format!("the value of {name} has a control character")));
        }
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err((at, format!("header '{name}' is modified twice")));
        }
        seen.push(lower);
    }
    Ok(())
}

fn check_redirect(r: &meshlens_api::httproute::RequestRedirect) -> Result<(), (String, String)> {
    if let Some(s) = r.scheme.as_deref().filter(|s| !matches!(*s, "http" | "https")) {
        return Err((".scheme".into(), format!("'{s}' is not http or https")));
    }
    if let Some(h) = r
        .hostname
        .as_deref()
        .filter(|h| h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
    {
        return Err((".hostname".into(), format!("'{h}' is not a hostname")));
    }
    if let Some(code) = r.status_code.filter(|c| !matches!(c, 301 | 302 | 303 | 307 | 308)) {
        return Err((".statusCode".into(), format!("{code} is not 301, 302, 303, 307 or 308")));
    }
    if let Some(p) = &r.path {
        let value = match p.kind.as_str() {
            "ReplaceFullPath" => &p.replace_full_path,
            "ReplacePrefixMatch" => &p.replace_prefix_match,
            other => {
                return Err((".path.type".into(), format!("'{other}' is not ReplaceFullPath or ReplacePrefixMatch")));
            }
        };
        match value.as_deref() {
            Some(v) if v.starts_with('/') && !v.bytes().any(|b| b.is_ascii_control() || b == b' ') => {}
            Some(v) => return Err((".path".into(), format!("'{v}' is not a path starting with '/'"))),
            None => return Err((".path".into(), format!("type {} needs its value", p.kind))),
        }
    }
    Ok(())
}

impl RouteMatch for HttpRouteMatch {
    const KIND: &'static str = "HTTPRoute";
    const GRPC: bool = false;

    fn match_all() -> Match {
        Match { condition: path_match("/.*", None), chars: 1, prefix: Some("/".into()) }
    }

    fn compile(&self, mat: &str, problems: &mut Vec<(String, String)>) -> Option<Match> {
        let headers = value_matches(mat, "headers", &self.headers, problems);
        let query_params = value_matches(mat, "queryParams", &self.query_params, problems);
        let method = match &self.method {
            Some(method) if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) => {
                problems.push((format!("{mat}.method"), format!("'{method}' is not an HTTP method (GET, POST, …)")));
                None
            }
            m => m.clone(),
        };
        let (kind, value) = match &self.path {
            None => ("PathPrefix", "/"),
            Some(p) => (p.kind.as_deref().unwrap_or("PathPrefix"), p.value.as_deref().unwrap_or("/")),
        };
        let mut prefix = None;
        let regex = match kind {
            "Exact" | "PathPrefix" if !value.starts_with('/') => {
                problems.push((format!("{mat}.path.value"), format!("'{value}' must start with '/'")));
                return None;
            }
            "Exact" => regex::escape(value),
            "PathPrefix" => {
                prefix = Some(value.to_string());
                match value.trim_end_matches('/') {
                    "" => "/.*".to_string(),
                    p => format!("{}(?:/.*)?", regex::escape(p)),
                }
            }
            "RegularExpression" => match check_regex(value) {
                Ok(_) => value.to_string(),
                Err(e) => {
                    problems.push((
                        format!("{mat}.path.value"),
                        format!("'{value}' is not a valid regular expression: {e}"),
                    ));
                    return None;
                }
            },
            other => {
                problems.push((
                    format!("{mat}.path.type"),
                    format!("'{other}' is not Exact, PathPrefix or RegularExpression"),
                ));
                return None;
            }
        };
        let condition = RequestMatch { path_regex: Some(regex), method, headers, query_params, ..Default::default() };
        Some(Match { condition, chars: value.len(), prefix })
    }
}

impl RouteMatch for GrpcRouteMatch {
    const KIND: &'static str = "GRPCRoute";
    const GRPC: bool = true;

    fn match_all() -> Match {
        Match { condition: path_match("/.*", Some("POST")), chars: 1, prefix: None }
    }

    fn compile(&self, mat: &str, problems: &mut Vec<(String, String)>) -> Option<Match> {
        let headers = value_matches(mat, "headers", &self.headers, problems);
        let Some(method) = &self.method else {
            let condition = RequestMatch { headers, ..path_match("/.*", Some("POST")) };
            return Some(Match { condition, chars: 1, prefix: None });
        };
        if method.kind.as_deref().is_some_and(|k| k != "Exact") {
            problems.push((format!("{mat}.method.type"), "only Exact is supported (as in Linkerd)".into()));
            return None;
        }
        let part = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(regex::escape);
        let (service, name) = (part(&method.service), part(&method.method));
        if service.is_none() && name.is_none() {
            problems.push((format!("{mat}.method"), "set service, method or both".into()));
            return None;
        }
        let chars = method.service.as_deref().map_or(0, str::len) + method.method.as_deref().map_or(0, str::len);
        let regex =
            format!("/{}/{}", service.unwrap_or_else(|| "[^/]+".into()), name.unwrap_or_else(|| "[^/]+".into()));
        Some(Match { condition: RequestMatch { headers, ..path_match(&regex, Some("POST")) }, chars, prefix: None })
    }
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

/// Linkerd's annotations of one route, compiled.
struct Annotations {
    retry: Option<RouteRetry>,
    request_timeout: Option<String>,
    /// `retry.linkerd.io/timeout`: each attempt's.
    attempt_timeout: Option<String>,
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
    for key in [TIMEOUT_RESPONSE, TIMEOUT_IDLE] {
        if durations.contains_key(key) {
            notes.push(format!("{origin}: annotation {key} ignored: not supported yet"));
        }
    }
    let retries = !retry.http.is_empty() || !retry.grpc.is_empty();
    Ok(Annotations {
        retry: retries.then_some(retry),
        request_timeout: durations.remove(TIMEOUT_REQUEST),
        attempt_timeout: durations.remove(RETRY_TIMEOUT),
    })
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
