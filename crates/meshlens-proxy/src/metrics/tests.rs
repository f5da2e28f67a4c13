//! Unit tests of the metrics module: exact text output, escaping, ordering, buckets, concurrency, promtool.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use meshlens_api::ProxyErrorReason;
use meshlens_api::labels::LINKERD_LATENCY_BOUNDS_MS;

use super::encode::write_micros_as_ms;
use super::histogram::BOUNDS_US;
use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn outbound_web() -> LabelSet {
    LabelSet::new()
        .with("direction", "outbound")
        .with("authority", "web.default.svc.cluster.local:80")
        .with("target_addr", "10.0.0.1:8080")
        .with("tls", "disabled")
}

/// Compares with `testdata/<name>`; `UPDATE_GOLDEN=1` rewrites the file instead.
fn assert_golden(name: &str, actual: &str) {
    meshlens_testkit::assert_golden(format!("{}/src/metrics/testdata/{name}", env!("CARGO_MANIFEST_DIR")), actual);
}

fn assert_line(text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "missing line {line:?} in:\n{text}");
}

fn position(text: &str, line: &str) -> usize {
    text.lines().position(|l| l == line).unwrap_or_else(|| panic!("missing line {line:?} in:\n{text}"))
}

#[test]
fn http_text_after_known_observations() {
    let reg = Registry::new();
    let http = HttpMetrics::register(&reg);
    let web = http.target(outbound_web());
    for _ in 0..3 {
        web.request();
    }
    web.response(200, None, false, None, Some(ms(1)));
    web.response(200, None, false, None, Some(Duration::from_micros(7_500)));
    web.response(503, None, true, None, Some(ms(120)));
    let text = reg.render();

    let t = r#"direction="outbound",authority="web.default.svc.cluster.local:80",target_addr="10.0.0.1:8080",tls="disabled""#;
    assert_line(&text, "# HELP request_total Total count of HTTP requests.");
    assert_line(&text, "# TYPE request_total counter");
    assert_line(&text, &format!("request_total{{{t}}} 3"));
    assert_line(&text, "# TYPE response_latency_ms histogram");
    assert_line(&text, &format!(r#"response_latency_ms_bucket{{{t},status_code="200",le="0.5"}} 0"#));
    assert_line(&text, &format!(r#"response_latency_ms_bucket{{{t},status_code="200",le="1"}} 1"#));
    assert_line(&text, &format!(r#"response_latency_ms_bucket{{{t},status_code="200",le="5"}} 1"#));
    assert_line(&text, &format!(r#"response_latency_ms_bucket{{{t},status_code="200",le="7.5"}} 2"#));
    assert_line(&text, &format!(r#"response_latency_ms_bucket{{{t},status_code="200",le="+Inf"}} 2"#));
    assert_line(&text, &format!(r#"response_latency_ms_sum{{{t},status_code="200"}} 8.5"#));
    assert_line(&text, &format!(r#"response_latency_ms_count{{{t},status_code="200"}} 2"#));
    assert_line(&text, &format!(r#"response_latency_ms_bucket{{{t},status_code="503",le="100"}} 0"#));
    assert_line(&text, &format!(r#"response_latency_ms_bucket{{{t},status_code="503",le="150"}} 1"#));
    assert_line(&text, &format!(r#"response_latency_ms_sum{{{t},status_code="503"}} 120"#));
    assert_line(&text, "# TYPE response_total counter");
    let ok = format!(r#"response_total{{{t},status_code="200",classification="success",grpc_status="",error=""}} 2"#);
    let bad = format!(r#"response_total{{{t},status_code="503",classification="failure",grpc_status="",error=""}} 1"#);
    assert!(position(&text, &ok) < position(&text, &bad));
    assert_golden("http.txt", &text);
}

#[test]
fn grpc_and_error_responses_get_their_own_series() {
    let reg = Registry::new();
    let http = HttpMetrics::register(&reg);
    let t = http.target(LabelSet::new().with("direction", "inbound"));
    let timeout = ProxyErrorReason::Timeout;
    t.response(200, Some(0), false, None, Some(ms(2)));
    t.response(200, Some(0), false, None, None);
    t.response(200, Some(14), true, None, None);
    t.response(200, Some(99), true, None, None); // unknown gRPC code: slow path
    t.response(timeout.http_status(), None, true, Some(timeout.as_str()), None);
    t.response(504, None, true, Some("peer:timeout"), None);
    t.response(504, None, true, Some("peer:timeout"), None);
    t.response(200, Some(timeout.grpc_status()), true, Some(timeout.as_str()), None);
    t.response(999, None, false, None, Some(ms(3))); // outside 100..=599: slow path
    let text = reg.render();
    for line in [
        r#"response_total{direction="inbound",status_code="200",classification="success",grpc_status="0",error=""} 2"#,
        r#"response_total{direction="inbound",status_code="200",classification="failure",grpc_status="14",error=""} 1"#,
        r#"response_total{direction="inbound",status_code="200",classification="failure",grpc_status="99",error=""} 1"#,
        r#"response_total{direction="inbound",status_code="504",classification="failure",grpc_status="",error="timeout"} 1"#,
        r#"response_total{direction="inbound",status_code="504",classification="failure",grpc_status="",error="peer:timeout"} 2"#,
        r#"response_total{direction="inbound",status_code="200",classification="failure",grpc_status="4",error="timeout"} 1"#,
        r#"response_total{direction="inbound",status_code="999",classification="success",grpc_status="",error=""} 1"#,
        r#"response_latency_ms_count{direction="inbound",status_code="200"} 1"#,
        r#"response_latency_ms_count{direction="inbound",status_code="999"} 1"#,
    ] {
        assert_line(&text, line);
    }
    // Latency is per status code only, and only for statuses that had one.
    assert_eq!(text.lines().filter(|l| l.starts_with("response_latency_ms_count")).count(), 2);
    assert_eq!(http.series_count(), 7);
    assert_eq!(http.target_count(), 1);
}

#[test]
fn label_values_are_escaped() {
    let l = LabelSet::new().with("a", "x\"y\\z\nw").with("b", "plain");
    assert_eq!(l.as_str(), r#"a="x\"y\\z\nw",b="plain""#);
    let reg = Registry::new();
    reg.counter_family("odd_total", "Help with \\ and\nnewline.").get_or_create(&l).inc();
    assert_eq!(
        reg.render(),
        "# HELP odd_total Help with \\\\ and\\nnewline.\n# TYPE odd_total counter\n\
         odd_total{a=\"x\\\"y\\\\z\\nw\",b=\"plain\"} 1\n"
    );
}

#[test]
fn label_sets_compose_and_compare() {
    assert!(LabelSet::new().is_empty());
    assert_eq!(LabelSet::new().as_str(), "");
    let a = LabelSet::new().with("x", "1");
    let b = LabelSet::new().with("y", "2");
    assert_eq!(a.clone().extend(&b).as_str(), r#"x="1",y="2""#);
    assert_eq!(a.clone().extend(&LabelSet::new()), a);
    assert_eq!(LabelSet::new().extend(&a), a);
    assert_eq!(a, LabelSet::new().with("x", "1"));
    // No labels: no braces.
    let reg = Registry::new();
    HttpMetrics::register(&reg).target(LabelSet::new()).request();
    assert_line(&reg.render(), "request_total 1");
}

#[test]
fn output_order_is_creation_order_and_stable() {
    let reg = Registry::new();
    let http = HttpMetrics::register(&reg);
    let b = http.target(LabelSet::new().with("t", "b"));
    let a = http.target(LabelSet::new().with("t", "a"));
    assert!(Arc::ptr_eq(&a, &http.target(LabelSet::new().with("t", "a"))));
    a.response(503, None, true, None, None);
    a.response(200, None, false, None, None);
    b.response(404, None, false, None, None);
    let first = reg.render();
    let responses: Vec<&str> = first.lines().filter(|l| l.starts_with("response_total{")).collect();
    assert_eq!(
        responses,
        [
            r#"response_total{t="b",status_code="404",classification="success",grpc_status="",error=""} 1"#,
            r#"response_total{t="a",status_code="503",classification="failure",grpc_status="",error=""} 1"#,
            r#"response_total{t="a",status_code="200",classification="success",grpc_status="",error=""} 1"#,
        ]
    );
    a.response(200, None, false, None, None);
    let second = reg.render();
    assert_eq!(first.replace("} 1\n", "} N\n"), second.replace("} 1\n", "} N\n").replace("} 2\n", "} N\n"));
}

#[test]
fn bucket_bounds_are_inclusive() {
    let bucket_of = |d: Duration| {
        let h = Histogram::new();
        h.observe(d);
        let mut out = String::new();
        h.encode_series(&mut out, "h", "", "");
        // The first bucket line with a count of 1 names the bucket.
        let line = out.lines().find(|l| l.ends_with("} 1")).unwrap().to_owned();
        line.split('"').nth(1).unwrap().to_owned()
    };
    assert_eq!(bucket_of(Duration::ZERO), "0.5");
    assert_eq!(bucket_of(Duration::from_micros(500)), "0.5");
    assert_eq!(bucket_of(Duration::from_nanos(500_001)), "1");
    assert_eq!(bucket_of(ms(1)), "1");
    assert_eq!(bucket_of(ms(1) + Duration::from_nanos(1)), "1.5");
    assert_eq!(bucket_of(ms(7) + Duration::from_micros(500)), "7.5");
    assert_eq!(bucket_of(ms(50_000)), "50000");
    assert_eq!(bucket_of(ms(50_000) + Duration::from_nanos(1)), "+Inf");
    assert_eq!(bucket_of(Duration::MAX), "+Inf");
}

#[test]
fn histogram_sum_and_count() {
    let h = Histogram::new();
    h.observe(Duration::from_micros(1_234));
    h.observe(Duration::from_nanos(1_499)); // rounds to 1 µs
    h.observe(Duration::from_secs(60));
    assert_eq!(h.count(), 3);
    assert_eq!(h.sum_micros(), 60_001_235);
    let mut out = String::new();
    h.encode_series(&mut out, "x_ms", r#"a="1""#, "");
    assert_line(&out, r#"x_ms_sum{a="1"} 60001.235"#);
    assert_line(&out, r#"x_ms_count{a="1"} 3"#);
    assert_line(&out, r#"x_ms_bucket{a="1",le="50000"} 2"#);
    assert_line(&out, r#"x_ms_bucket{a="1",le="+Inf"} 3"#);
    assert_eq!(out.lines().count(), LATENCY_BOUNDS_MS.len() + 3);
}

#[test]
fn bounds_are_linkerds_plus_finer_and_render_without_trailing_zeros() {
    for (ms, us) in LATENCY_BOUNDS_MS.iter().zip(BOUNDS_US) {
        assert_eq!(ms * 1000.0, us as f64);
    }
    assert!(BOUNDS_US.windows(2).all(|w| w[0] < w[1]));
    for b in LINKERD_LATENCY_BOUNDS_MS {
        assert!(LATENCY_BOUNDS_MS.contains(&b), "Linkerd bound {b} missing");
    }
    let render = |us| {
        let mut s = String::new();
        write_micros_as_ms(&mut s, us);
        s
    };
    let rendered: Vec<String> = [0, 1, 10, 500, 1_000, 1_234, 1_500, 7_500, 50_000_000].map(render).into();
    assert_eq!(rendered, ["0", "0.001", "0.01", "0.5", "1", "1.234", "1.5", "7.5", "50000"]);
}

#[test]
fn concurrent_updates_sum_correctly() {
    const THREADS: u64 = 4;
    const N: u64 = 10_000;
    let reg = Registry::new();
    let http = HttpMetrics::register(&reg);
    let target = http.target(LabelSet::new().with("t", "x"));
    let counter = reg.counter("c_total", "c");
    let gauge = reg.gauge("g", "g");
    let hist = Arc::new(Histogram::new());
    std::thread::scope(|s| {
        for i in 0..THREADS {
            let (target, counter, gauge, hist) = (&target, &counter, &gauge, &hist);
            s.spawn(move || {
                for j in 0..N {
                    counter.inc();
                    gauge.inc();
                    gauge.dec();
                    hist.observe(Duration::from_micros(j % 3_000));
                    target.request();
                    // Every thread races to create the same lazily created series.
                    target.response(200, None, false, None, Some(ms(1)));
                    target.response(200, Some(2), true, None, None);
                    target.response(502, None, true, Some("connect_error"), None);
                    target.response(1000 + (i as u16), None, true, None, Some(ms(1)));
                }
            });
        }
    });
    assert_eq!(counter.get(), THREADS * N);
    assert_eq!(gauge.get(), 0);
    assert_eq!(hist.count(), THREADS * N);
    let text = reg.render();
    let total = THREADS * N;
    assert_line(&text, &format!(r#"request_total{{t="x"}} {total}"#));
    assert_line(
        &text,
        &format!(
            r#"response_total{{t="x",status_code="200",classification="success",grpc_status="",error=""}} {total}"#
        ),
    );
    assert_line(
        &text,
        &format!(
            r#"response_total{{t="x",status_code="200",classification="failure",grpc_status="2",error=""}} {total}"#
        ),
    );
    assert_line(
        &text,
        &format!(
            r#"response_total{{t="x",status_code="502",classification="failure",grpc_status="",error="connect_error"}} {total}"#
        ),
    );
    assert_line(&text, &format!(r#"response_latency_ms_bucket{{t="x",status_code="200",le="1"}} {total}"#));
    assert_eq!(http.series_count(), 3 + THREADS as usize);
    assert_eq!(text.lines().filter(|l| l.starts_with("response_latency_ms_count")).count(), 1 + THREADS as usize);
}

#[test]
fn tcp_connections_open_flow_and_close() {
    let reg = Registry::new();
    let tcp = TcpMetrics::register(&reg);
    let t = tcp.target(LabelSet::new().with("direction", "inbound").with("peer", "src").with("tls", "disabled"));
    let c1 = t.open();
    let c2 = t.open();
    c1.read(100);
    c1.wrote(40);
    c2.read(1);
    let l = r#"direction="inbound",peer="src",tls="disabled""#;
    let open = reg.render();
    assert_line(&open, &format!("tcp_open_total{{{l}}} 2"));
    assert_line(&open, &format!("tcp_open_connections{{{l}}} 2"));
    assert_line(&open, &format!("tcp_read_bytes_total{{{l}}} 101"));
    assert_line(&open, &format!("tcp_write_bytes_total{{{l}}} 40"));
    assert_line(&open, &format!(r#"tcp_close_total{{{l},errno=""}} 0"#));
    c2.set_io_error(&std::io::Error::from_raw_os_error(104));
    drop(c2);
    drop(c1);
    let closed = reg.render();
    assert_line(&closed, &format!("tcp_open_connections{{{l}}} 0"));
    assert_line(&closed, &format!(r#"tcp_close_total{{{l},errno=""}} 1"#));
    let reset = if cfg!(target_os = "linux") { "ECONNRESET" } else { "104" };
    assert_line(&closed, &format!(r#"tcp_close_total{{{l},errno="{reset}"}} 1"#));
    assert_golden("tcp.txt", &closed);
}

#[test]
fn generic_families_share_series_and_count_them() {
    let reg = Registry::new();
    let queue = reg.gauge_family("outbound_http_balancer_queue_length", "Requests waiting for an endpoint.");
    let reloads = reg.counter_family("config_reload_failures_total", "Configuration reloads that failed.");
    let waits = reg.histogram_family("queue_wait_ms", "Time requests waited in the queue.");
    let svc = LabelSet::new().with("service", "web");
    let q = queue.get_or_create(&svc);
    assert!(Arc::ptr_eq(&q, &queue.get_or_create(&svc)));
    q.add(3);
    queue.get_or_create(&LabelSet::new().with("service", "api")).set(-1);
    assert_eq!(queue.series_count(), 2);
    assert_eq!(reloads.series_count(), 0);
    waits.get_or_create(&svc).observe(ms(2));
    let text = reg.render();
    assert!(text.starts_with(
        "# HELP outbound_http_balancer_queue_length Requests waiting for an endpoint.\n\
         # TYPE outbound_http_balancer_queue_length gauge\n\
         outbound_http_balancer_queue_length{service=\"web\"} 3\n\
         outbound_http_balancer_queue_length{service=\"api\"} -1\n\
         # HELP config_reload_failures_total Configuration reloads that failed.\n\
         # TYPE config_reload_failures_total counter\n\
         # HELP queue_wait_ms Time requests waited in the queue.\n\
         # TYPE queue_wait_ms histogram\n\
         queue_wait_ms_bucket{service=\"web\",le=\"0.5\"} 0\n"
    ));
    assert_line(&text, r#"queue_wait_ms_count{service="web"} 1"#);
}

#[test]
#[should_panic(expected = "registered twice")]
fn registering_a_name_twice_panics() {
    let reg = Registry::new();
    let _http = HttpMetrics::register(&reg);
    let _again = reg.counter_family("response_total", "again");
}

#[test]
fn prefixed_http_families_for_routes() {
    let reg = Registry::new();
    let route = HttpMetrics::register_prefixed(&reg, "route_", true);
    let actual = HttpMetrics::register_prefixed(&reg, "route_actual_", false);
    let labels = LabelSet::new().with("direction", "outbound").with("dst", "web:80").with("rt_route", "GET /");
    route.target(labels.clone()).response(200, None, false, None, Some(ms(1)));
    actual.target(labels).response(200, None, false, None, Some(ms(1)));
    let text = reg.render();
    assert_line(&text, "# TYPE route_response_latency_ms histogram");
    assert_line(&text, "# TYPE route_actual_request_total counter");
    assert!(!text.contains("route_actual_response_latency_ms"));
    assert_line(
        &text,
        r#"route_actual_response_total{direction="outbound",dst="web:80",rt_route="GET /",status_code="200",classification="success",grpc_status="",error=""} 1"#,
    );
}

/// Every family type, with and without series, as promtool sees it.
fn everything() -> String {
    let reg = Registry::new();
    let http = HttpMetrics::register(&reg);
    let _route = HttpMetrics::register_prefixed(&reg, "route_", true);
    let tcp = TcpMetrics::register(&reg);
    let t = http.target(outbound_web().with("dst_pod", "we\"ird\\pod\nname"));
    t.request();
    t.response(200, None, false, None, Some(ms(3)));
    t.response(200, Some(0), false, None, Some(ms(3)));
    t.response(504, None, true, Some("timeout"), None);
    let conn = tcp.target(LabelSet::new().with("direction", "outbound").with("peer", "dst")).open();
    conn.wrote(10);
    conn.set_errno(111);
    drop(conn);
    reg.counter("config_reload_failures_total", "Configuration reloads that failed.").inc();
    reg.gauge("outbound_http_balancer_queue_length", "Requests waiting for an endpoint.").set(2);
    reg.histogram_family("queue_wait_ms", "Time requests waited.").get_or_create(&LabelSet::new()).observe(ms(1));
    reg.counter_family("tap_dropped_events_total", "Tap events dropped.");
    reg.render()
}

fn find_promtool() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("MESHLENS_PROMTOOL") {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("promtool")).find(|p| p.is_file())
}

#[test]
fn promtool_reports_only_unit_notes() {
    let Some(promtool) = find_promtool() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool not found: set MESHLENS_PROMTOOL or put promtool on PATH (required when CI is set)"
        );
        eprintln!("skipping: promtool not found (set MESHLENS_PROMTOOL or put it on PATH)");
        return;
    };
    let text = everything();
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", promtool.display()));
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Exit 3 means lint findings only; 1 would be a parse error.
    assert!(matches!(out.status.code(), Some(0 | 3)), "promtool failed ({}):\n{report}\ninput:\n{text}", out.status);
    let findings: Vec<&str> = report.lines().filter(|l| !l.trim().is_empty()).collect();
    let unexpected: Vec<&&str> = findings
        .iter()
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or("");
            let unit = ["_ms", "_ms_max", "_ms_min"].iter().any(|u| name.ends_with(u));
            !(unit && l.ends_with("metric names should not contain abbreviated units"))
        })
        .collect();
    assert!(unexpected.is_empty(), "unexpected promtool findings: {unexpected:#?}\ninput:\n{text}");
    assert!(findings.iter().any(|l| l.starts_with("response_latency_ms ")), "expected the unit note: {report}");
}
