//! The web dashboard, served by the control plane at `/` (ARCHITECTURE.md, docs/api.md): HTML and SVG
//! rendered here from the same queries as the API, a small script for live updates, a login by code.
//!
//! | module | what |
//! |---|---|
//! | `balancers` | one reading of the proxies' balancers shared by the workload pages for a few seconds |
//! | `session` | one-time login codes → session cookies; what a session may read |
//! | `history` | a workload's RPS, success and p99 over time, from the metric store, as SVG lines |
//! | `html` | the page frame, escaping, number formats |
//! | `overview` | namespaces and workloads (`/`) |
//! | `graph` | the topology's nodes and edges from one read of the window |
//! | `layout` | layered layout and the SVG of the graph (`/topology`) |
//! | `config` | validation and reload status, splits (weights and actual shares), profiles (`/config`) |
//! | `edge` | one caller → callee edge (`/edge/NS/SRC/NS/DST`): its numbers and routes |
//! | `findings` | the diagnosis panel: findings linked to the workloads they name |
//! | `firing` | the overview's alerts panel: firing and pending alerts linked to their pages |
//! | `workload` | one workload (`/workload/NS/NAME`): stats, routes, instances, logs, diagnosis |

mod balancers;
mod config;
mod edge;
mod findings;
mod firing;
mod graph;
mod history;
mod html;
mod layout;
mod overview;
mod route;
pub(crate) mod session;
mod workload;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use meshlens_api::mesh::Objectives;
use meshlens_api::stats::StatQuery;
use serde::Deserialize;

use crate::api::Shared;
use crate::api_types::Resources;
use crate::meshdir::MeshConfig;
use crate::metricstore::MetricStore;
use crate::statsource::WindowError;

const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// The dashboard's routes: pages need a session (or the API token); `/login` and the assets do not.
pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let pages = Router::new()
        .route("/", get(overview_page))
        .route("/topology", get(topology_page))
        .route("/config", get(config_page))
        .route("/edge/{src_namespace}/{src}/{dst_namespace}/{dst}", get(edge_page))
        .route("/workload/{namespace}/{name}", get(workload_page))
        .route("/route/{namespace}/{name}", get(route_page))
        .route_layer(middleware::from_fn_with_state(shared, require_session))
        .layer(Extension(Arc::new(balancers::SharedReading::default())));
    Router::new()
        .merge(pages)
        .route("/login", get(login))
        .route("/assets/dashboard.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/assets/dashboard.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
}

/// `POST /api/v1/dashboard/login-code` (API token): a one-time code for `/login?code=`.
pub(crate) async fn login_code(State(s): State<Arc<Shared>>) -> Response {
    let code = s.auth.sessions.new_code();
    let body = serde_json::json!({ "code": code, "expires_in_s": session::CODE_TTL.as_secs() });
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::HeaderName::from_static("x-frame-options"), "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    ];
    (status, headers, body).into_response()
}

fn log_in_first() -> Response {
    html(
        StatusCode::UNAUTHORIZED,
        html::message(
            "Log in with meshlens dashboard",
            "Run `meshlens dashboard`: it prints a login link for this browser.",
        ),
    )
}

async fn require_session(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if s.auth.sessions.may_read(req.method(), req.headers()) || s.auth.api(req.headers()).is_ok() {
        next.run(req).await
    } else {
        log_in_first()
    }
}

#[derive(Debug, Default, Deserialize)]
struct LoginQuery {
    code: Option<String>,
}

/// `GET /login?code=`: a valid code sets the session cookie and goes to `/`.
async fn login(State(s): State<Arc<Shared>>, Query(q): Query<LoginQuery>) -> Response {
    match q.code.as_deref().and_then(|c| s.auth.sessions.redeem(c)) {
        Some(session) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, "/".to_string()), (header::SET_COOKIE, session::set_cookie(&session))],
        )
            .into_response(),
        None => html(
            StatusCode::UNAUTHORIZED,
            html::message(
                "Login link expired",
                "A login link works once, within a minute: run `meshlens dashboard` for a new one.",
            ),
        ),
    }
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    window: Option<String>,
    /// Compare with the same window this long ago (overview).
    offset: Option<String>,
    /// Only this namespace (topology).
    namespace: Option<String>,
    /// The route's name (route page).
    route: Option<String>,
}

impl PageQuery {
    fn window(&self) -> &str {
        self.window.as_deref().filter(|w| !w.is_empty()).unwrap_or("1m")
    }
}

/// One read of the window every page builds on.
struct Window {
    res: Resources,
    store: Arc<MetricStore>,
    end: u64,
    /// The same window `offset` ago, when the page compares: the offset, its store and end.
    then: Option<(String, Arc<MetricStore>, u64)>,
    config: Arc<MeshConfig>,
    window: String,
}

impl Window {
    async fn read(s: &Shared, window: &str) -> Result<Window, Response> {
        Window::read_compared(s, window, None).await
    }

    /// The window, and with an offset also the same window that long ago.
    async fn read_compared(s: &Shared, window: &str, offset: Option<&str>) -> Result<Window, Response> {
        let res = s.store.resources();
        let q = StatQuery { resource: "deploy".into(), window: Some(window.into()), ..StatQuery::default() };
        let failed = |e: WindowError| {
            let (status, text) = match e {
                WindowError::Invalid(e) => (StatusCode::BAD_REQUEST, e),
                WindowError::Prometheus(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e:?}")),
            };
            html(status, html::message("Cannot read the window", &text))
        };
        let (store, end) = s.stats.window(&q, &res).await.map_err(failed)?;
        let then = match offset.filter(|o| !o.is_empty()) {
            Some(o) => {
                let q = StatQuery { offset: Some(o.into()), ..q };
                let (store, end) = s.stats.window(&q, &res).await.map_err(failed)?;
                Some((o.to_string(), store, end))
            }
            None => None,
        };
        let config = s.store.configs().borrow().clone();
        Ok(Window { res, store, end, then, config, window: window.to_string() })
    }

    /// A stats query over this window.
    fn query(&self, resource: &str) -> StatQuery {
        StatQuery {
            resource: resource.into(),
            window: Some(self.window.clone()),
            all_namespaces: Some(true),
            unmeshed: Some(true),
            ..StatQuery::default()
        }
    }

    /// A stats query over this window in namespace `ns`.
    fn query_in(&self, ns: &str, resource: &str) -> StatQuery {
        StatQuery {
            resource: resource.into(),
            namespace: Some(ns.into()),
            window: Some(self.window.clone()),
            ..StatQuery::default()
        }
    }

    /// The success objective of a workload or service, as a fraction.
    fn objective(&self, namespace: &str, name: &str) -> f64 {
        self.objectives().for_service(namespace, name).success_rate / 100.0
    }

    fn objectives(&self) -> &Objectives {
        &self.config.mesh.spec.objectives
    }
}

fn query_failed(e: crate::diagnostics::QueryError) -> Response {
    html(StatusCode::BAD_REQUEST, html::message("Query failed", &format!("{e:?}")))
}

async fn overview_page(State(s): State<Arc<Shared>>, Query(q): Query<PageQuery>) -> Response {
    match Window::read_compared(&s, q.window(), q.offset.as_deref()).await {
        Ok(w) => overview::render(&w, &s.alerts.report(&w.config).alerts)
            .map(|b| html(StatusCode::OK, b))
            .unwrap_or_else(query_failed),
        Err(rsp) => rsp,
    }
}

async fn topology_page(State(s): State<Arc<Shared>>, Query(q): Query<PageQuery>) -> Response {
    match Window::read(&s, q.window()).await {
        Ok(w) => {
            let only = q.namespace.as_deref().filter(|n| !n.is_empty());
            graph::Graph::read(&w, only)
                .map(|g| html(StatusCode::OK, layout::render(&w, &g, only)))
                .unwrap_or_else(query_failed)
        }
        Err(rsp) => rsp,
    }
}

async fn config_page(State(s): State<Arc<Shared>>, Query(q): Query<PageQuery>) -> Response {
    match Window::read(&s, q.window()).await {
        Ok(w) => html(StatusCode::OK, config::render(&w, &s.store.status())),
        Err(rsp) => rsp,
    }
}

async fn edge_page(
    State(s): State<Arc<Shared>>,
    Path((src_ns, src, dst_ns, dst)): Path<(String, String, String, String)>,
    Query(q): Query<PageQuery>,
) -> Response {
    let w = match Window::read(&s, q.window()).await {
        Ok(w) => w,
        Err(rsp) => return rsp,
    };
    for (ns, name) in [(&src_ns, &src), (&dst_ns, &dst)] {
        if !w.res.workloads.iter().any(|x| &x.namespace == ns && &x.name == name) {
            return html(StatusCode::NOT_FOUND, html::message("No such workload", &format!("{ns}/{name}")));
        }
    }
    html(StatusCode::OK, edge::render(&w, (&src_ns, &src), (&dst_ns, &dst)))
}

async fn workload_page(
    State(s): State<Arc<Shared>>,
    Extension(reading): Extension<Arc<balancers::SharedReading>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Response {
    let w = match Window::read(&s, q.window()).await {
        Ok(w) => w,
        Err(rsp) => return rsp,
    };
    if !w.res.workloads.iter().any(|x| x.namespace == namespace && x.name == name) {
        return html(StatusCode::NOT_FOUND, html::message("No such workload", &format!("{namespace}/{name}")));
    }
    let balancers = workload::balancers(&s, &reading, &w, &namespace, &name).await;
    html(StatusCode::OK, workload::render(&w, &namespace, &name, &balancers))
}

async fn route_page(
    State(s): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(route) = q.route.as_deref().filter(|r| !r.is_empty()) else {
        return html(StatusCode::BAD_REQUEST, html::message("Which route?", "Add ?route=NAME (e.g. GET /users/{id})."));
    };
    let w = match Window::read(&s, q.window()).await {
        Ok(w) => w,
        Err(rsp) => return rsp,
    };
    if !w.res.workloads.iter().any(|x| x.namespace == namespace && x.name == name) {
        return html(StatusCode::NOT_FOUND, html::message("No such workload", &format!("{namespace}/{name}")));
    }
    html(StatusCode::OK, route::render(&w, &namespace, &name, route))
}
