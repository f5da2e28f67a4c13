//! What the numbers and logs say about known traffic: split series keep the apex, inbound routes are named
//! from the profile, latency extremes bound what was observed, routine events are not warnings, and a real
//! failure is a WARN served by `GET /logs` and counted in `log_events_total`.

use std::time::{Duration, Instant};

use meshlens_api::Snapshot;
use meshlens_api::logs::{LogEvent, LogPage};
use meshlens_api::profile::ServiceProfile;
use meshlens_testkit::backend::{delayed, echo};
use meshlens_testkit::prom::{find, sum};
use meshlens_testkit::{HttpBackend, RawTcpBackend, assert_eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test]
async fn split_series_carry_the_apex_authority_and_the_leaf_in_dst_service() {
    let a = HttpBackend::start(echo("a"));
    let b = HttpBackend::start(echo("b"));
    let snap = items_split(&[("a", 500, a.addr()), ("b", 500, b.addr())]);
    let (proxy, _d) = start(config(), &snap).await;
    let mut c = h1(proxy.listen().outbound).await;
    let n = 60;
    for _ in 0..n {
        let (rsp, _) = collect(c.send_request(get("/", "items.prod")).await.unwrap()).await;
        assert_eq!(rsp.status(), 200);
    }
    drop(c);
    let apex = "items.prod.svc.cluster.local:80";
    let leaf = |name: &'static str| [("direction", "outbound"), ("authority", apex), ("dst_service", name)];
    let mut samples;
    assert_eventually!(
        {
            samples = metrics(&proxy).await;
            sum(&samples, "response_total", &leaf("items-a")).unwrap_or(0.0)
                + sum(&samples, "response_total", &leaf("items-b")).unwrap_or(0.0)
                == n as f64
        },
        "every response under the apex, by leaf: {samples:#?}"
    );
    let to_a = sum(&samples, "request_total", &leaf("items-a")).unwrap_or(0.0);
    let to_b = sum(&samples, "request_total", &leaf("items-b")).unwrap_or(0.0);
    assert_eq!(to_a as usize, a.requests(), "leaf a's series count what a received");
    assert_eq!(to_b as usize, b.requests(), "leaf b's series count what b received");
    assert!(to_a > 0.0 && to_b > 0.0, "both leaves chosen: {to_a} {to_b}");
    let pods: Vec<&str> =
        samples.iter().filter(|s| s.name == "request_total").filter_map(|s| s.label("dst_pod")).collect();
    assert!(pods.contains(&"items-a-0") && pods.contains(&"items-b-0"), "endpoint labels kept: {pods:?}");
    for s in samples.iter().filter(|s| s.name == "request_total" && s.label("direction") == Some("outbound")) {
        assert_eq!(s.label("authority"), Some(apex), "no series names a leaf as its authority: {s:?}");
    }

    // The admin view shows each leaf's balancer under the apex, with its endpoints' live state.
    let (_, body) = send(proxy.listen().admin, get("/endpoints", "admin")).await;
    let view: meshlens_api::balancer::ProxyBalancers = serde_json::from_slice(&body).unwrap();
    for (name, backend) in [("items-a", &a), ("items-b", &b)] {
        let leaf = format!("{name}.prod.svc.cluster.local:80");
        let balancer = view
            .destinations
            .iter()
            .find(|d| d.leaf.as_deref() == Some(leaf.as_str()))
            .unwrap_or_else(|| panic!("a balancer for leaf {leaf}: {view:#?}"));
        assert_eq!(balancer.authority, apex);
        let ep = &balancer.endpoints[0];
        assert_eq!(ep.address, backend.addr());
        assert_eq!(ep.requests_total as usize, backend.requests(), "{ep:?}");
        assert!(ep.ewma_ms > 0.0 && ep.in_flight == 0 && ep.breaker.is_none(), "{ep:?}");
    }
}

const PAYMENTS_PROFILE: &str = "apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: payments.prod.svc.cluster.local, namespace: prod}
spec:
  routes:
    - name: POST /charge
      condition: {method: POST, pathRegex: /charge}
      responseClasses:
        - condition: {status: {min: 402, max: 402}}
          isFailure: true
";

#[tokio::test]
async fn inbound_route_series_are_named_from_the_served_service_profile() {
    let app = HttpBackend::start(move |req: http::Request<hyper::body::Incoming>| {
        let status = if req.uri().path() == "/charge" && req.headers().contains_key("x-decline") { 402 } else { 200 };
        async move {
            let mut rsp = http::Response::new(meshlens_testkit::backend::full("ok"));
            *rsp.status_mut() = http::StatusCode::from_u16(status).unwrap();
            rsp
        }
    });
    let mut payments = service("payments", "prod", &[]);
    payments.workload = Some("payments".into());
    let profile: ServiceProfile = serde_saphyr::from_str(PAYMENTS_PROFILE).unwrap();
    let snap = Snapshot { services: vec![payments], profiles: vec![profile], ..Snapshot::default() };
    let mut cfg = config_with_app(app.addr());
    cfg.workload = Some("payments".into());
    cfg.namespace = "prod".into();
    cfg.tap_token = crate::tap::tap_config().tap_token;
    let (proxy, _d) = start(cfg, &snap).await;
    let inbound = proxy.listen().inbound.unwrap();
    let mut tap = crate::tap::TapStream::open(&proxy, "direction=inbound").await;

    // An unmeshed caller naming the service, one naming nothing the proxy knows, and a declined charge.
    let post = |host: &str, decline: bool| {
        let mut req = http::Request::post("/charge").header("host", host);
        if decline {
            req = req.header("x-decline", "1");
        }
        req.body(http_body_util::Full::new(bytes::Bytes::new())).unwrap()
    };
    assert_eq!(send(inbound, post("payments", false)).await.0.status(), 200);
    assert_eq!(send(inbound, post(&inbound.to_string(), false)).await.0.status(), 200);
    assert_eq!(send(inbound, post("payments.prod.svc.cluster.local:80", true)).await.0.status(), 402);
    assert_eq!(send(inbound, get("/health", "payments")).await.0.status(), 200);

    let route = |name: &'static str| {
        [("direction", "inbound"), ("dst", "payments.prod.svc.cluster.local:80"), ("rt_route", name)]
    };
    let mut samples;
    assert_eventually!(
        {
            samples = metrics(&proxy).await;
            sum(&samples, "route_response_total", &route("POST /charge")) == Some(3.0)
                && sum(&samples, "route_response_total", &route("[DEFAULT]")) == Some(1.0)
        },
        "inbound route series: {:#?}",
        samples.iter().filter(|s| s.name.starts_with("route_")).collect::<Vec<_>>()
    );
    assert_eq!(find(&samples, "route_request_total", &route("POST /charge")), Some(3.0));
    let failed = [route("POST /charge").as_slice(), &[("classification", "failure"), ("status_code", "402")]].concat();
    assert_eq!(sum(&samples, "route_response_total", &failed), Some(1.0), "the profile's response class applies");
    assert!(
        sum(&samples, "route_response_latency_ms_count", &route("POST /charge")) == Some(3.0),
        "latency recorded per route"
    );
    // Tap (and so `top --routes`) names the inbound route too: the first request's events.
    let event = tap.next().await.expect("a tap event");
    assert_eq!(event.route_meta.get("route").map(String::as_str), Some("POST /charge"), "{event:?}");
}

#[tokio::test]
async fn latency_extremes_bound_the_observed_latencies() {
    let slow = HttpBackend::start(delayed(Duration::from_millis(120), echo("slow")));
    let (proxy, _d) = start(config(), &snapshot(vec![service("slow", "prod", &[slow.addr()])])).await;
    let mut c = h1(proxy.listen().outbound).await;
    let (mut fastest, mut slowest) = (Duration::MAX, Duration::ZERO);
    for _ in 0..5 {
        let started = Instant::now();
        let (rsp, _) = collect(c.send_request(get("/", "slow.prod")).await.unwrap()).await;
        let took = started.elapsed();
        assert_eq!(rsp.status(), 200);
        (fastest, slowest) = (fastest.min(took), slowest.max(took));
    }
    drop(c);
    let labels = [("authority", "slow.prod.svc.cluster.local:80"), ("status_code", "200")];
    let mut samples;
    assert_eventually!(
        {
            samples = metrics(&proxy).await;
            find(&samples, "response_latency_ms_count", &labels) == Some(5.0)
        },
        "5 responses recorded"
    );
    let max = find(&samples, "response_latency_ms_max", &labels).expect("a _max gauge next to the histogram");
    let min = find(&samples, "response_latency_ms_min", &labels).expect("a _min gauge next to the histogram");
    // The proxy sees each response after the backend's delay and before the client does.
    assert!(min >= 120.0, "min {min} ms covers the backend's 120 ms delay");
    assert!(min <= max, "min {min} <= max {max}");
    assert!(min <= fastest.as_secs_f64() * 1000.0, "min {min} ms within what the client saw ({fastest:?})");
    assert!(max <= slowest.as_secs_f64() * 1000.0 + 1.0, "max {max} ms within what the client saw ({slowest:?})");
    let gauge = samples.iter().find(|s| s.name == "response_latency_ms_max").unwrap();
    assert_eq!(gauge.label("le"), None, "gauges have no bucket label");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closed_at_the_header_read_timeout_logs_no_warning() {
    let app = HttpBackend::start(echo("users"));
    let mut cfg = config();
    cfg.timeouts.header_read = Duration::from_millis(300);
    let (proxy, _d, _log) = start_capturing(cfg, &snapshot(vec![service("users", "prod", &[app.addr()])])).await;

    // One request, then the connection stays open and silent until the proxy closes it.
    let mut conn = tokio::net::TcpStream::connect(proxy.listen().outbound).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nhost: users.prod\r\n\r\n").await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the proxy closes an idle keep-alive connection");
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"), "the request was served first");

    let page = logs(&proxy, "since=0").await;
    assert!(page.events.is_empty(), "no WARN/ERROR for a routine close: {:#?}", page.events);
    let samples = metrics(&proxy).await;
    assert_eq!(sum(&samples, "log_events_total", &[]), None, "nothing counted");
}

#[tokio::test]
async fn a_real_failure_is_a_warn_served_by_logs_and_counted() {
    // A port nothing listens on: the connect is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (proxy, _d, _log) = start_capturing(config(), &snapshot(vec![service("users", "prod", &[dead])])).await;
    let (rsp, _) = send(proxy.listen().outbound, get("/", "users.prod")).await;
    assert_eq!(rsp.status(), 502);

    let page = logs(&proxy, "since=0&level=warn").await;
    let event = with_reason(&page, "connect_error");
    assert_eq!(event.level, "WARN");
    assert!(event.target.starts_with("meshlens_proxy"), "{event:?}");
    assert!(event.timestamp.ends_with('Z'), "{event:?}");
    let text = format!("{} {:?}", event.message, event.fields);
    assert!(text.contains(&dead.to_string()), "the event names the endpoint it affected: {event:?}");
    assert_eq!(page.last_seq, page.events.last().unwrap().seq);
    assert!(logs(&proxy, &format!("since={}", page.last_seq)).await.events.is_empty(), "nothing newer");
    assert!(logs(&proxy, "level=error").await.events.is_empty(), "no ERROR");

    let samples = metrics(&proxy).await;
    let counted = sum(&samples, "log_events_total", &[("level", "warn"), ("reason", "connect_error")]);
    assert!(counted.is_some_and(|n| n >= 1.0), "log_events_total counts it: {counted:?}");
    let total = sum(&samples, "log_events_total", &[]).unwrap_or(0.0);
    assert!(total as usize >= page.events.len(), "every event in the ring is counted: {total}");

    let (rsp, body) = send(proxy.listen().admin, get("/logs?since=x", "admin")).await;
    assert_eq!(rsp.status(), 400);
    let reason: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(reason["error"].as_str().unwrap().contains("since"), "{reason}");
}

#[tokio::test]
async fn the_warn_for_an_invalid_upstream_response_names_the_header_and_why() {
    let upstream = RawTcpBackend::start(|mut stream| async move {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 2\r\n\r\nok").await;
    });
    let snap = snapshot(vec![service("users", "prod", &[upstream.addr()])]);
    let (proxy, _d, _log) = start_capturing(config(), &snap).await;
    let (rsp, _) = send(proxy.listen().outbound, get("/", "users.prod")).await;
    assert_eq!(rsp.status(), 502);
    let page = logs(&proxy, "since=0").await;
    let event = with_reason(&page, "invalid_response");
    let text = format!("{} {:?}", event.message, event.fields);
    assert!(text.contains("X-Bad") && text.contains("control character"), "names the header and why: {text}");
    assert!(text.contains(&upstream.addr().to_string()), "names the endpoint: {text}");
}

/// The event of `page` whose `reason` is `reason`.
fn with_reason<'a>(page: &'a LogPage, reason: &str) -> &'a LogEvent {
    page.events
        .iter()
        .find(|e| e.fields.get("reason").map(String::as_str) == Some(reason))
        .unwrap_or_else(|| panic!("an event with reason {reason}: {:#?}", page.events))
}

#[tokio::test]
async fn a_split_backend_that_does_not_resolve_is_warned_about_once() {
    let apex = HttpBackend::start(echo("apex"));
    let mut snap = items_split(&[("gone", 100, apex.addr())]);
    snap.services.retain(|s| s.name != "items-gone");
    snap.services[0] = service("items", "prod", &[apex.addr()]);
    let (proxy, _d, _log) = start_capturing(config(), &snap).await;
    let mut c = h1(proxy.listen().outbound).await;
    for _ in 0..20 {
        let (rsp, _) = collect(c.send_request(get("/", "items.prod")).await.unwrap()).await;
        assert_eq!(rsp.status(), 200, "the apex serves the missing backend's share");
    }
    let page = logs(&proxy, "since=0").await;
    let event = with_reason(&page, "no_route");
    assert_eq!(event.fields["backend"], "items-gone.prod.svc.cluster.local:80", "{event:?}");
    assert_eq!(page.events.len(), 1, "one WARN, not one per request: {:#?}", page.events);
}
