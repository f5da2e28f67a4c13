//! `meshlens diagnostics proxy-metrics` and `endpoints`: output formats pinned by golden files (fixed API
//! answers from the fake control plane of `stats`), the queries the CLI sends, and what it says when there
//! is nothing to show.

use crate::stats::{fake_control, golden, run};
use crate::support::meshlens;

#[test]
fn proxy_metrics_and_endpoints_match_golden_files() {
    let (url, seen) = fake_control();
    golden("diagnostics_proxy_metrics", &run(&url, &["diagnostics", "proxy-metrics", "deploy/web", "-n", "prod"]).0);
    assert_eq!(seen.lock().unwrap().last().unwrap(), "/api/v1/proxy-metrics?resource=deploy%2Fweb&namespace=prod");
    run(&url, &["diagnostics", "proxy-metrics", "po", "web-0", "-n", "prod", "--obfuscate"]);
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        "/api/v1/proxy-metrics?resource=po%2Fweb-0&namespace=prod&obfuscate=true"
    );
    let (out, err) = run(&url, &["diagnostics", "proxy-metrics", "deploy/none"]);
    assert_eq!((out.as_str(), err.as_str()), ("", "No running instances of deploy/none found.\n"));

    let args = ["diagnostics", "endpoints", "web", "db.data.svc.cluster.local:5432", "orders.prod:80", "-n", "prod"];
    golden("diagnostics_endpoints_table", &run(&url, &args).0);
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        "/api/v1/endpoints?authority=web%2Cdb.data.svc.cluster.local%3A5432%2Corders.prod%3A80&namespace=prod"
    );
    golden("diagnostics_endpoints_json", &run(&url, &[&args[..], &["-o", "json"]].concat()).0);
    let (out, err) = run(&url, &["diagnostics", "endpoints", "orders"]);
    assert_eq!((out.as_str(), err.as_str()), ("", "No endpoints found.\n"));

    let out = meshlens().args(["diagnostics", "proxy-metrics", "deploy/a", "b", "--control", &url]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected one resource: TYPE/NAME or TYPE NAME"));
}
