//! Route metrics of the inbound side (`direction="inbound"`): each request is classified by the profile
//! of the service this proxy serves that its authority names, else of the workload's first service, and
//! counted in the route families with `dst` = that service's canonical authority and `rt_route` from its
//! profile (`[DEFAULT]` when no route matches, or the service has no profile). Every caller is counted,
//! meshed or not. The route tables are compiled once per discovery change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Response, header};
use meshlens_api::Authority;

use crate::ctx::Ctx;
use crate::errors::{Caller, L5D_PROXY_ERROR};
use crate::http::body::{BodyEnd, OnEnd, ProxyBody, grpc_status};
use crate::metrics::HttpTargetMetrics;
use crate::policy::classify::ResponseClassifier;
use crate::policy::profile::{Policy, RouteConfig};
use crate::policy::route::{RequestHead, RequestMatcher};
use crate::unanswered::Unanswered;

/// The inbound route tables of one proxy, swapped whole on every discovery change.
pub struct InboundRoutes {
    table: ArcSwap<Table>,
}

#[derive(Default)]
struct Table {
    /// Every way a request may name a served service port (`users`, `users.prod:80`, the canonical
    /// authority, …) → its index in `services`.
    by_host: HashMap<String, usize>,
    /// The workload's service ports, the first one taking requests that name none of them.
    services: Vec<ServiceRoutes>,
}

struct ServiceRoutes {
    routes: Vec<Arc<Route>>,
    default: Arc<Route>,
}

/// One route of a served service, with its metric handles.
struct Route {
    /// The name tap shows in `routeMeta` (`None` for `[DEFAULT]`).
    tap_name: Option<Arc<str>>,
    matcher: Option<RequestMatcher>,
    classifier: ResponseClassifier,
    metrics: Arc<HttpTargetMetrics>,
}

impl InboundRoutes {
    pub fn new(ctx: &Ctx) -> Arc<InboundRoutes> {
        Arc::new(InboundRoutes { table: ArcSwap::from_pointee(Table::build(ctx)) })
    }

    /// Recompiles the tables from the current discovery snapshot.
    pub fn refresh(&self, ctx: &Ctx) {
        self.table.store(Arc::new(Table::build(ctx)));
    }

    /// Counts a request on its route; settle its response with [`RouteRequest::respond`] (dropped before,
    /// the request counts as cancelled). `None` when this workload serves no known service.
    pub fn request<B>(&self, req: &Request<B>, caller: &Caller) -> Option<RouteRequest> {
        let table = self.table.load();
        let first = table.services.first()?;
        let service = request_host(req).and_then(|h| table.by_host.get(h)).map_or(first, |&i| &table.services[i]);
        let route = service.route(&RequestHead::of(req)).clone();
        let unanswered = Unanswered::start(&route.metrics, caller);
        Some(RouteRequest { route, unanswered })
    }
}

impl ServiceRoutes {
    fn route(&self, head: &RequestHead<'_>) -> &Arc<Route> {
        self.routes.iter().find(|r| r.matcher.as_ref().is_some_and(|m| m.matches(head))).unwrap_or(&self.default)
    }
}

/// A request counted on its route, waiting for its response.
pub struct RouteRequest {
    route: Arc<Route>,
    unanswered: Unanswered,
}

impl RouteRequest {
    /// The route's name as tap shows it (`None` for `[DEFAULT]`).
    pub fn tap_name(&self) -> Option<Arc<str>> {
        self.route.tap_name.clone()
    }

    /// Counts the response when its body ends (its latency is the time to its head).
    pub fn respond(mut self, rsp: Response<ProxyBody>) -> Response<ProxyBody> {
        let status = rsp.status().as_u16();
        self.unanswered.head(status);
        let end = RouteEnd {
            status,
            grpc_status: grpc_status(rsp.headers()),
            // Only this proxy's own responses carry the header here (a peer's was renamed and removed).
            error: rsp.headers().get(L5D_PROXY_ERROR).and_then(|v| v.to_str().ok()).map(Box::from),
            latency: self.unanswered.elapsed(),
            route: self.route,
            unanswered: self.unanswered,
        };
        rsp.map(|b| b.on_end(Box::new(end)))
    }
}

struct RouteEnd {
    route: Arc<Route>,
    status: u16,
    grpc_status: Option<u32>,
    error: Option<Box<str>>,
    latency: Duration,
    unanswered: Unanswered,
}

impl OnEnd for RouteEnd {
    fn on_end(self: Box<Self>, end: &BodyEnd<'_>) {
        if end.cancelled {
            // The caller left before the response was complete: `cancelled`, with its elapsed time.
            return self.unanswered.cancel();
        }
        let grpc = end.grpc_status.or(self.grpc_status);
        let failure =
            !end.complete || self.error.is_some() || self.route.classifier.classify(self.status, grpc).is_failure();
        self.unanswered.settle(self.status, grpc, failure, self.error.as_deref(), Some(self.latency));
    }
}

/// The authority a request names: `:authority` / absolute-form URI, else the Host header.
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    match req.uri().authority() {
        Some(a) => Some(a.as_str()),
        None => req.headers().get(header::HOST).and_then(|h| h.to_str().ok()),
    }
}

impl Table {
    fn build(ctx: &Ctx) -> Table {
        let Some(workload) = ctx.config.workload.as_deref() else {
            return Table::default();
        };
        let index = ctx.discovery.load();
        let snapshot = &index.snapshot;
        let ns = ctx.config.namespace.as_str();
        let mut table = Table::default();
        let served = snapshot.services.iter().filter(|s| {
            s.namespace == ns
                && (s.workload.as_deref() == Some(workload)
                    || s.endpoints.iter().any(|e| e.labels.get("deployment").map(String::as_str) == Some(workload)))
        });
        for svc in served {
            for port in &svc.ports {
                let canonical =
                    meshlens_api::authority::canonical(&svc.name, &svc.namespace, &snapshot.cluster_domain, port.port);
                let profile = Authority::parse(&canonical, 80)
                    .ok()
                    .and_then(|a| index.resolve(&a, ns))
                    .and_then(|sp| sp.profile)
                    .and_then(|p| Policy::compile_for_port(&p, port.port).ok());
                let route = |config: &RouteConfig| {
                    Arc::new(Route {
                        tap_name: (config.name != crate::policy::profile::DEFAULT_ROUTE_NAME)
                            .then(|| Arc::from(config.name.as_str())),
                        matcher: config.matcher.clone(),
                        classifier: config.classifier.clone(),
                        metrics: ctx.routes.inbound(&canonical, &config.name),
                    })
                };
                let default = match &profile {
                    Some(p) => route(&p.default_route),
                    None => route(&RouteConfig::default_route()),
                };
                let routes = profile.as_ref().map_or_else(Vec::new, |p| p.routes.iter().map(route).collect());
                let i = table.services.len();
                table.services.push(ServiceRoutes { routes, default });
                let bases = [
                    svc.name.clone(),
                    format!("{}.{}", svc.name, svc.namespace),
                    format!("{}.{}.svc", svc.name, svc.namespace),
                    format!("{}.{}.svc.{}", svc.name, svc.namespace, snapshot.cluster_domain),
                ];
                for base in bases {
                    if port.port == 80 {
                        table.by_host.entry(base.clone()).or_insert(i);
                    }
                    table.by_host.entry(format!("{base}:{}", port.port)).or_insert(i);
                }
            }
        }
        table
    }
}
