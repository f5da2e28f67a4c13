//! Metrics as Prometheus and Grafana see them: exact Linkerd-style lines after known traffic, and output
//! that promtool accepts.

use meshlens_testkit::backend::{echo, fixed};
use meshlens_testkit::{HttpBackend, assert_eventually};

use crate::support::*;

#[tokio::test]
async fn exact_lines_after_known_requests() {
    let ok = HttpBackend::start(echo("users"));
    let failing = HttpBackend::start(fixed(503, "down"));
    let (proxy, _d) = start(
        config(),
        &snapshot(vec![service("users", "prod", &[ok.addr()]), service("orders", "prod", &[failing.addr()])]),
    )
    .await;
    let out = proxy.listen().outbound;
    let mut c = h1(out).await;
    for _ in 0..3 {
        let _ = collect(c.send_request(get("/", "users.prod")).await.unwrap()).await;
    }
    for _ in 0..2 {
        let _ = collect(c.send_request(get("/", "orders.prod")).await.unwrap()).await;
    }
    drop(c);

    let users = format!(
        "direction=\"outbound\",authority=\"users.prod.svc.cluster.local:80\",target_addr=\"{a}\",target_ip=\"127.0.0.1\",target_port=\"{p}\",tls=\"disabled\",dst_deployment=\"users\",dst_namespace=\"prod\",dst_pod=\"users-0\",dst_service=\"users\"",
        a = ok.addr(),
        p = ok.addr().port()
    );
    let orders = format!(
        "direction=\"outbound\",authority=\"orders.prod.svc.cluster.local:80\",target_addr=\"{a}\",target_ip=\"127.0.0.1\",target_port=\"{p}\",tls=\"disabled\",dst_deployment=\"orders\",dst_namespace=\"prod\",dst_pod=\"orders-0\",dst_service=\"orders\"",
        a = failing.addr(),
        p = failing.addr().port()
    );
    let expected = [
        format!("request_total{{{users}}} 3"),
        format!("request_total{{{orders}}} 2"),
        format!(
            "response_total{{{users},status_code=\"200\",classification=\"success\",grpc_status=\"\",error=\"\"}} 3"
        ),
        format!(
            "response_total{{{orders},status_code=\"503\",classification=\"failure\",grpc_status=\"\",error=\"\"}} 2"
        ),
        format!("response_latency_ms_count{{{users},status_code=\"200\"}} 3"),
        format!("response_latency_ms_bucket{{{users},status_code=\"200\",le=\"+Inf\"}} 3"),
        format!("response_latency_ms_count{{{orders},status_code=\"503\"}} 2"),
        format!(
            "proxy_build_info{{date=\"\",git_sha=\"\",profile=\"debug\",vendor=\"meshlens\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ];
    let mut text;
    assert_eventually!(
        {
            text = metrics_text(&proxy).await;
            expected.iter().all(|l| text.lines().any(|t| t == l))
        },
        "expected lines in /metrics; missing: {:?}\n{text}",
        expected.iter().filter(|l| !text.lines().any(|t| t == l.as_str())).collect::<Vec<_>>()
    );
    let families = ["request_total", "response_total", "response_latency_ms", "tcp_open_total", "tcp_close_total"];
    for family in families.into_iter().chain(meshlens_api::process::FAMILIES) {
        assert!(text.contains(&format!("# TYPE {family} ")), "TYPE line for {family}");
        assert!(text.contains(&format!("# HELP {family} ")), "HELP line for {family}");
    }
    // The HTTP connection from the test was accepted (peer="src") and closed.
    let samples = meshlens_testkit::parse_prometheus(&text);
    let opened = meshlens_testkit::prom::sum(&samples, "tcp_open_total", &[("direction", "outbound"), ("peer", "src")]);
    assert!(opened.unwrap_or(0.0) >= 1.0, "accepted connections counted");
    // Connections the proxy opened carry the endpoint's labels, as Linkerd's (edges and TCP panels group by them).
    let dst = [
        ("direction", "outbound"),
        ("peer", "dst"),
        ("authority", "users.prod.svc.cluster.local:80"),
        ("dst_deployment", "users"),
        ("dst_namespace", "prod"),
        ("dst_service", "users"),
    ];
    let opened = meshlens_testkit::prom::sum(&samples, "tcp_open_total", &dst);
    assert!(opened.unwrap_or(0.0) >= 1.0, "connections to users labelled with dst_* and authority\n{text}");
    let rss = meshlens_testkit::prom::sum(&samples, "process_resident_memory_bytes", &[]);
    assert!(rss.unwrap_or(0.0) > 1e6, "resident memory of the proxy process: {rss:?}");
}

#[tokio::test]
async fn promtool_accepts_the_output() {
    let ok = HttpBackend::start(echo("users"));
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[ok.addr()])])).await;
    let _ = send(proxy.listen().outbound, get("/", "users")).await;
    let _ = send(proxy.listen().outbound, get("/", "nosuch")).await;
    let text = metrics_text(&proxy).await;

    let promtool = std::env::var("MESHLENS_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not found ({e}); skipped outside CI — install Debian's prometheus package");
            return;
        }
        Err(e) => panic!("promtool is required in CI: {e}"),
    };
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let findings = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for line in findings.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("_ms") && line.contains("abbreviated units"),
            "promtool finding other than Linkerd's *_ms unit names: {line}\n{text}"
        );
    }
    assert!(matches!(out.status.code(), Some(0) | Some(3)), "promtool failed to parse: {findings}");
}
