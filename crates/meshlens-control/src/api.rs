//! The HTTP API (axum): proxy registration and the discovery watch stream (`/v1/…`, DESIGN.md §4), the
//! CLI/dashboard API (`/api/v1/status`, `/api/v1/resources`, stats, the tap stream) and the control plane's
//! own `/metrics`.
//! Every error is JSON `{"error": "…"}` with a fitting status code.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use meshlens_api::control::{Registration, WatchEvent};
use meshlens_api::stats::StatQuery;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::alerts::Alerts;
use crate::api_types::{ErrorBody, Resources};
use crate::auth::{Auth, CredentialError, ProxyIdentity};
use crate::diagnostics::{self, QueryError};
use crate::logs::{self, OwnLogs};
use crate::metrics::Metrics;
use crate::metricstore::MetricStore;
use crate::promquery::PromError;
use crate::statsource::{StatsSource, WindowError};
use crate::store::{Published, Store};
use crate::tap::{self, TapError};
use crate::{promsd, statsapi};

/// The largest request body accepted (registrations); larger ones get 413.
const MAX_BODY: usize = 64 * 1024;

/// What every handler shares.
pub(crate) struct Shared {
    /// Proxy credentials and the API token.
    pub auth: Arc<Auth>,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// Where traffic numbers come from: the embedded metric store (what the scraper saw) or Prometheus.
    pub stats: StatsSource,
    pub alerts: Arc<Alerts>,
    pub heartbeat: Duration,
    /// The control plane's own WARN/ERROR events (`/api/v1/logs?resource=control`).
    pub own_logs: Option<OwnLogs>,
    /// Turns true when the server stops; open watch streams end then.
    pub shutdown: watch::Receiver<bool>,
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    // Every /api/v1/ endpoint needs the API token (the CLI's, from the session file).
    let api = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/resources", get(resources))
        .route("/api/v1/stat", get(stat))
        .route("/api/v1/routes", get(routes))
        .route("/api/v1/edges", get(edges))
        .route("/api/v1/metricstore", get(metricstore))
        .route("/api/v1/prometheus/targets", get(prometheus_targets))
        .route("/api/v1/proxy-metrics", get(proxy_metrics))
        .route("/api/v1/endpoints", get(endpoints))
        .route("/api/v1/tap", get(tap))
        .route("/api/v1/logs", get(logs))
        .route("/api/v1/diagnose", get(diagnose))
        .route("/api/v1/check", get(check))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/dashboard/login-code", post(crate::dashboard::login_code))
        .route_layer(middleware::from_fn_with_state(shared.clone(), require_api_token));
    Router::new()
        .route("/v1/proxies", post(register))
        .route("/v1/proxies/{namespace}/{instance}", delete(deregister))
        .route("/v1/watch", get(watch_stream))
        .merge(api)
        .merge(crate::dashboard::router(shared.clone()))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the response: {e}")),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::to_vec(&ErrorBody { error: message.into() }).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    error(StatusCode::NOT_FOUND, format!("no such endpoint: {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, format!("method {method} is not allowed on {}", uri.path()))
}

/// 401 with the reason, and how to authenticate.
fn unauthorized(what: &str, e: CredentialError) -> Response {
    let mut rsp = error(StatusCode::UNAUTHORIZED, format!("{what}: {e}"));
    rsp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    rsp
}

/// The API token; or, for the dashboard's own reads (same-origin GETs), its session cookie.
async fn require_api_token(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    match s.auth.api(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(_) if s.auth.sessions.may_read(req.method(), req.headers()) => next.run(req).await,
        Err(e) => unauthorized("the API needs the token of the session file (meshlens up writes it)", e),
    }
}

/// The proxy credential of a request; when there is none (or a bad one), the 401 to answer.
fn proxy_identity(s: &Shared, headers: &HeaderMap) -> Result<ProxyIdentity, Box<Response>> {
    s.auth.proxy(headers).map_err(|e| {
        Metrics::inc(&s.metrics.registrations_rejected);
        Box::new(unauthorized("proxies need the credential meshlens up hands them", e))
    })
}

/// The 403 when the credential does not name this instance.
fn covers(id: &ProxyIdentity, namespace: &str, workload: Option<&str>, instance: &str) -> Result<(), Box<Response>> {
    if id.namespace == namespace && id.instance == instance && workload.is_none_or(|w| w == id.workload) {
        return Ok(());
    }
    Err(Box::new(error(
        StatusCode::FORBIDDEN,
        format!(
            "the credential is for {}/{} (workload {}), not for {namespace}/{instance}{}",
            id.namespace,
            id.instance,
            id.workload,
            workload.map(|w| format!(" (workload {w})")).unwrap_or_default()
        ),
    )))
}

/// The JSON error for a body that could not be read (413 when over the limit).
fn body_error(e: BytesRejection) -> Response {
    error(e.status(), format!("cannot read the request body: {}", e.body_text()))
}

/// `POST /v1/proxies`: register or renew with the instance's credential; answers the lease.
async fn register(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let id = match proxy_identity(&s, &headers) {
        Ok(id) => id,
        Err(rsp) => return *rsp,
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let reg: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            Metrics::inc(&s.metrics.registrations_rejected);
            return error(StatusCode::BAD_REQUEST, format!("invalid registration: {e}"));
        }
    };
    if let Err(rsp) = covers(&id, &reg.namespace, Some(&reg.workload), &reg.instance) {
        Metrics::inc(&s.metrics.registrations_rejected);
        return *rsp;
    }
    match s.store.register(reg) {
        Ok(lease) => json(StatusCode::OK, &lease),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("invalid registration: {e}")),
    }
}

/// `DELETE /v1/proxies/{namespace}/{instance}` with the instance's credential: it leaves its services at once.
async fn deregister(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((namespace, instance)): Path<(String, String)>,
) -> Response {
    let checked = proxy_identity(&s, &headers).and_then(|id| covers(&id, &namespace, None, &instance));
    if let Err(rsp) = checked {
        return *rsp;
    }
    if s.store.deregister(&namespace, &instance) {
        json(StatusCode::OK, &serde_json::json!({ "removed": true }))
    } else {
        error(StatusCode::NOT_FOUND, format!("no proxy '{instance}' is registered in namespace '{namespace}'"))
    }
}

#[derive(Debug, Deserialize)]
struct WatchQuery {
    namespace: Option<String>,
    instance: Option<String>,
}

/// `GET /v1/watch?namespace=NS&instance=NAME` with a proxy credential (or the API token): NDJSON, the
/// current snapshot at once, then every new version, and a heartbeat line every `heartbeat`.
async fn watch_stream(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<WatchQuery>, QueryRejection>,
) -> Response {
    if let (Err(e), Err(_)) = (s.auth.proxy(&headers), s.auth.api(&headers)) {
        return unauthorized("the watch stream needs a proxy credential or the API token", e);
    }
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid watch query: {e}")),
    };
    let who = format!("{}/{}", q.namespace.as_deref().unwrap_or("-"), q.instance.as_deref().unwrap_or("-"));
    tracing::debug!(watcher = %who, "watch stream opened");
    let watcher = Watcher::new(&s, who);
    let stream = futures_util::stream::unfold(watcher, |mut w| async move {
        let line = w.next_line().await?;
        Some((Ok::<_, Infallible>(line), w))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// One open watch stream.
struct Watcher {
    rx: watch::Receiver<Arc<Published>>,
    heartbeat: tokio::time::Interval,
    shutdown: watch::Receiver<bool>,
    first: bool,
    _guard: WatcherGuard,
}

impl Watcher {
    fn new(s: &Shared, who: String) -> Self {
        Metrics::inc(&s.metrics.watch_streams);
        s.metrics.watchers.fetch_add(1, Ordering::Relaxed);
        let mut heartbeat = tokio::time::interval_at(Instant::now() + s.heartbeat, s.heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Watcher {
            rx: s.store.subscribe(),
            heartbeat,
            shutdown: s.shutdown.clone(),
            first: true,
            _guard: WatcherGuard { metrics: s.metrics.clone(), who },
        }
    }

    /// The next line to send: the latest version when there is a new one (older ones are skipped, so a
    /// slow reader never builds a queue), else a heartbeat when it is due; `None` ends the stream.
    async fn next_line(&mut self) -> Option<Bytes> {
        if *self.shutdown.borrow() {
            return None;
        }
        if self.first {
            self.first = false;
            return Some(self.rx.borrow_and_update().line.clone());
        }
        tokio::select! {
            biased;
            _ = self.shutdown.wait_for(|stop| *stop) => None,
            changed = self.rx.changed() => {
                changed.ok()?;
                Some(self.rx.borrow_and_update().line.clone())
            }
            _ = self.heartbeat.tick() => {
                let version = self.rx.borrow().version;
                Some(heartbeat_line(version))
            }
        }
    }
}

fn heartbeat_line(version: u64) -> Bytes {
    let mut line = serde_json::to_vec(&WatchEvent::Heartbeat { version }).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Counts open streams; logs when one ends.
struct WatcherGuard {
    metrics: Arc<Metrics>,
    who: String,
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.metrics.watchers.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(watcher = %self.who, "watch stream closed");
    }
}

async fn status(State(s): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &s.store.status())
}

async fn resources(State(s): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &s.store.resources())
}

/// The answer of a stats query over the window (and offset) the query names: 400 for a bad query, 404 for
/// a resource that does not exist, 503 when Prometheus cannot be reached, 502 when it answers an error.
async fn stats_answer<T: serde::Serialize>(
    s: &Shared,
    q: &StatQuery,
    query: impl FnOnce(&Resources, &MetricStore, u64) -> Result<T, QueryError>,
) -> Response {
    let resources = s.store.resources();
    match s.stats.window(q, &resources).await {
        Ok((store, end)) => match query(&resources, &store, end) {
            Ok(v) => json(StatusCode::OK, &v),
            Err(e) => query_error(e),
        },
        Err(e) => window_error(e),
    }
}

/// 400 for a bad window, 503 when Prometheus cannot be reached, 502 when it answers an error.
fn window_error(e: WindowError) -> Response {
    match e {
        WindowError::Invalid(e) => error(StatusCode::BAD_REQUEST, e),
        WindowError::Prometheus(PromError::Unreachable(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e),
        WindowError::Prometheus(PromError::Failed(e)) => error(StatusCode::BAD_GATEWAY, e),
    }
}

/// `GET /api/v1/stat?resource=deploy[/NAME][,…]&names=&namespace=&all_namespaces=&window=&offset=&to=&from=`.
async fn stat(State(s): State<Arc<Shared>>, query: Result<Query<StatQuery>, QueryRejection>) -> Response {
    match query {
        Ok(Query(q)) => stats_answer(&s, &q, |res, ms, end| statsapi::stat(res, ms, &q, end)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, format!("invalid stat query: {e}")),
    }
}

/// `GET /api/v1/routes?resource=deploy/NAME&namespace=&window=&offset=&to=&to_namespace=`.
async fn routes(State(s): State<Arc<Shared>>, query: Result<Query<StatQuery>, QueryRejection>) -> Response {
    match query {
        Ok(Query(q)) => stats_answer(&s, &q, |res, ms, end| statsapi::routes(res, ms, &q, end)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, format!("invalid routes query: {e}")),
    }
}

/// `GET /api/v1/edges?resource=deploy|po[/NAME]&namespace=&all_namespaces=&window=&offset=`.
async fn edges(State(s): State<Arc<Shared>>, query: Result<Query<StatQuery>, QueryRejection>) -> Response {
    match query {
        Ok(Query(q)) => stats_answer(&s, &q, |res, ms, end| statsapi::edges(res, ms, &q, end)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, format!("invalid edges query: {e}")),
    }
}

fn query_error(e: QueryError) -> Response {
    match e {
        QueryError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        QueryError::Invalid(m) => error(StatusCode::BAD_REQUEST, m),
    }
}

/// `GET /api/v1/proxy-metrics?resource=deploy/NAME&namespace=&obfuscate=`: each selected instance's raw
/// `/metrics`, fetched from its proxy now.
async fn proxy_metrics(
    State(s): State<Arc<Shared>>,
    query: Result<Query<diagnostics::ProxyMetricsQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid proxy-metrics query: {e}")),
    };
    let ns = q.namespace.as_deref().unwrap_or("default");
    match diagnostics::instances_of(&s.store.resources(), &q.resource, ns) {
        Ok(instances) => json(StatusCode::OK, &diagnostics::fetch_all(instances, q.obfuscate.unwrap_or(false)).await),
        Err(e) => query_error(e),
    }
}

/// `GET /api/v1/endpoints?authority=A[,B…]&namespace=&balancers=&window=`: what discovery resolves each
/// authority to; with `balancers=true`, per endpoint each calling proxy's balancer state and request share.
async fn endpoints(
    State(s): State<Arc<Shared>>,
    query: Result<Query<diagnostics::EndpointsQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid endpoints query: {e}")),
    };
    let snapshot = s.store.current().snapshot.clone();
    let mut resolved = match diagnostics::endpoints(&snapshot, &q) {
        Ok(v) => v,
        Err(e) => return query_error(e),
    };
    if q.balancers.unwrap_or(false)
        && let Err(e) =
            diagnostics::add_balancers(&s.stats, &s.store.resources(), &snapshot, &mut resolved, q.window).await
    {
        return error(StatusCode::BAD_REQUEST, e);
    }
    json(StatusCode::OK, &resolved)
}

/// `GET /api/v1/metricstore`: the embedded metric store's size (slots, rolled-up keys, bytes).
async fn metricstore(State(s): State<Arc<Shared>>) -> Response {
    match &s.stats {
        StatsSource::Embedded(store) => json(StatusCode::OK, &store.memory()),
        StatsSource::Prometheus(p) => error(
            StatusCode::NOT_FOUND,
            format!("the embedded metric store is off: this control plane asks Prometheus at {}", p.url()),
        ),
    }
}

/// `GET /api/v1/prometheus/targets`: every registered proxy for Prometheus' `http_sd_configs`.
async fn prometheus_targets(State(s): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &promsd::targets(&s.store.resources()))
}

/// `GET /api/v1/tap?resource=deploy/NAME&namespace=NS&to=…&toNamespace=…&<TapFilter keys>`: NDJSON tap
/// events of every proxy of the resource, streamed as they arrive (docs/api.md).
async fn tap(State(s): State<Arc<Shared>>, uri: Uri) -> Response {
    let started =
        tap::parse(uri.query().unwrap_or("")).and_then(|plan| tap::start(s.store.clone(), plan, s.shutdown.clone()));
    let events = match started {
        Ok(rx) => rx,
        Err(TapError::BadRequest(m)) => return error(StatusCode::BAD_REQUEST, m),
        Err(TapError::NotFound(m)) => return error(StatusCode::NOT_FOUND, m),
    };
    ndjson(events)
}

/// A stream of NDJSON lines as they come; when the client leaves, `lines`' receiver is dropped.
fn ndjson(lines: tokio::sync::mpsc::Receiver<Bytes>) -> Response {
    let stream = futures_util::stream::unfold(lines, |mut rx| async move {
        let line = rx.recv().await?;
        Some((Ok::<_, Infallible>(line), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `GET /api/v1/logs?resource=deploy/NAME|control&namespace=&level=warn|error&since=DURATION&follow=`: the
/// recent WARN/ERROR events of every instance of the resource, merged by time; `follow=true` streams NDJSON.
async fn logs(State(s): State<Arc<Shared>>, query: Result<Query<logs::LogsQuery>, QueryRejection>) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid logs query: {e}")),
    };
    let plan = match logs::Plan::new(&s.store.resources(), s.own_logs.as_ref(), &q) {
        Ok(plan) => plan,
        Err(e) => return query_error(e),
    };
    if q.follow.unwrap_or(false) {
        let (store, own) = (s.store.clone(), s.own_logs.clone());
        let instances = move || logs::Plan::new(&store.resources(), own.as_ref(), &q).ok();
        ndjson(logs::follow(plan, instances, s.shutdown.clone()))
    } else {
        json(StatusCode::OK, &logs::once(&plan).await)
    }
}

/// `GET /api/v1/diagnose?namespace=&window=&offset=&budget=`: ranked findings with evidence (docs/diagnose.md).
async fn diagnose(
    State(s): State<Arc<Shared>>,
    query: Result<Query<crate::diagnose::DiagnoseQuery>, QueryRejection>,
) -> Response {
    match query {
        Ok(Query(q)) => {
            let sample = match q.sample_duration() {
                Ok(d) => d,
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            };
            let resources = s.store.resources();
            let objectives = s.store.configs().borrow().mesh.spec.objectives.clone();
            let (store, end) = match s.stats.window(&q.stat_query(), &resources).await {
                Ok(w) => w,
                Err(e) => return window_error(e),
            };
            let found = match q.plan(store.settings().interval_ms) {
                Ok((window, plan)) => match s.stats.earlier(window, (plan.offset_ms, plan.count), &resources).await {
                    Ok(None) => crate::diagnose::diagnose_counted(&resources, &objectives, &store, &q, end),
                    Ok(Some(earlier)) => {
                        let history = crate::diagnose::History::read(&earlier, plan);
                        crate::diagnose::diagnose_over(&resources, &objectives, (&store, end), &q, &history)
                    }
                    Err(e) => return window_error(e),
                },
                Err(e) => Err(e),
            };
            match found {
                Ok((mut report, counters)) => {
                    crate::diagnose::attach_sample(&mut report, &s.store, &s.shutdown, sample, &counters).await;
                    crate::diagnose::attach_logs(&mut report, &resources).await;
                    json(StatusCode::OK, &report)
                }
                Err(e) => query_error(e),
            }
        }
        Err(e) => error(StatusCode::BAD_REQUEST, format!("invalid diagnose query: {e}")),
    }
}

/// `GET /api/v1/check?window=`: install health and the configuration against traffic (`meshlens check`).
async fn check(
    State(s): State<Arc<Shared>>,
    query: Result<Query<crate::check::CheckQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid check query: {e}")),
    };
    let (status, resources, config) = (s.store.status(), s.store.resources(), s.store.configs().borrow().clone());
    let (store, end) = match s.stats.window(&q.stat_query(), &resources).await {
        Ok(w) => w,
        Err(e) => return window_error(e),
    };
    let embedded = matches!(s.stats, StatsSource::Embedded(_));
    let tap = Some(crate::check::TapAccess { store: s.store.clone(), shutdown: s.shutdown.clone() });
    let (resources, config) = (&resources, &config);
    let live = crate::check::Live { status: &status, resources, config, store: &store, end, embedded, tap };
    match crate::check::live(&live, &q).await {
        Ok(report) => json(StatusCode::OK, &report),
        Err(e) => query_error(e),
    }
}

/// `GET /api/v1/alerts`: pending, firing and recently resolved alerts with their evidence (docs/api.md).
async fn alerts(State(s): State<Arc<Shared>>) -> Response {
    let config = s.store.configs().borrow().clone();
    json(StatusCode::OK, &s.alerts.report(&config))
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let text = s.metrics.encode(&s.store.gauges());
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    use meshlens_api::control::Registration;

    use super::*;
    use crate::meshdir::tests::MESH;
    use crate::store::LeaseTiming;
    use meshlens_testkit::TempDir;

    fn shared() -> (Arc<Shared>, watch::Sender<bool>) {
        let dir = TempDir::new("api");
        dir.write("mesh.yaml", MESH);
        let metrics = Arc::new(Metrics::new());
        let timing = LeaseTiming { ttl: Duration::from_secs(10), renew: Duration::from_secs(3), grace: Duration::ZERO };
        let store = Arc::new(Store::new(crate::meshdir::load(dir.path()).unwrap(), timing, metrics.clone()));
        let (tx, rx) = watch::channel(false);
        let stats = StatsSource::Embedded(Arc::new(crate::metricstore::MetricStore::new(
            crate::metricstore::Settings::new(5000, 3_600_000),
        )));
        let auth = Arc::new(Auth::new(Arc::new(crate::auth::ProxyKey::generate()), "token".into()));
        let heartbeat = Duration::from_secs(5);
        let alerts = Arc::new(Alerts::new(true, "http://127.0.0.1:8086".into()).0);
        (Arc::new(Shared { auth, store, metrics, stats, alerts, heartbeat, own_logs: None, shutdown: rx }), tx)
    }

    fn parse(line: &Bytes) -> WatchEvent {
        assert!(line.ends_with(b"\n"));
        serde_json::from_slice(line).unwrap()
    }

    fn reg(i: usize) -> Registration {
        Registration {
            workload: "orders".into(),
            namespace: "prod".into(),
            instance: format!("orders-{i}"),
            inbound: Some(SocketAddr::from(([127, 0, 0, 1], 5000 + i as u16))),
            admin: "127.0.0.1:4191".parse().unwrap(),
            tap: "127.0.0.1:4190".parse().unwrap(),
            app: None,
            labels: BTreeMap::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_gets_the_latest_version_then_heartbeats() {
        let (s, stop) = shared();
        let mut w = Watcher::new(&s, "test".into());
        let first = parse(&w.next_line().await.unwrap());
        let WatchEvent::Snapshot { snapshot: first, .. } = first else { panic!("{first:?}") };
        for i in 0..5 {
            s.store.register(reg(i)).unwrap();
        }
        // Five versions were published while the reader was away: it gets only the last one.
        let WatchEvent::Snapshot { snapshot, .. } = parse(&w.next_line().await.unwrap()) else { panic!() };
        assert_eq!(snapshot.version, first.version + 5);
        assert_eq!(snapshot.services[1].endpoints.len(), 5);
        // Nothing new: the next line is a heartbeat, 5 s later.
        let before = Instant::now();
        assert_eq!(parse(&w.next_line().await.unwrap()), WatchEvent::Heartbeat { version: first.version + 5 });
        assert_eq!(before.elapsed(), Duration::from_secs(5));
        assert_eq!(s.metrics.watchers.load(Ordering::Relaxed), 1);
        stop.send_replace(true);
        assert!(w.next_line().await.is_none(), "shutdown ends the stream");
        drop(w);
        assert_eq!(s.metrics.watchers.load(Ordering::Relaxed), 0);
    }
}
