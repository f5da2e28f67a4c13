//! The stats queries on scraped metric text in the shape the proxies emit (labels.rs): cancellations,
//! refusals under the name asked for, a split's apex and leaves, inbound routes, latency extremes, young
//! and earlier windows, and resources that do not exist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meshlens_api::control::Registration;
use serde_json::{Value, json};

use super::*;
use crate::meshdir::tests::MESH;
use crate::metrics::Metrics;
use crate::metricstore::{Settings, Source};
use crate::store::{LeaseTiming, Store};
use meshlens_api::promtext::parse;
use meshlens_testkit::TempDir;

const SPLIT: &str = "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata:\n  name: orders-split\n  \
    namespace: prod\nspec:\n  service: orders\n  backends:\n    - service: orders\n      weight: 900m\n    \
    - service: orders-v2\n      weight: 100m\n";

const PROFILE: &str = "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata:\n  \
    name: orders.prod.svc.cluster.local\n  namespace: prod\nspec:\n  routes:\n  - name: GET /api/orders\n    \
    condition: {method: GET, pathRegex: /api/orders}\n";

fn resources() -> Resources {
    let files = [("mesh.yaml", MESH), ("split.yaml", SPLIT), ("profiles/orders.yaml", PROFILE)];
    registered(&files, &[("web", "web-0"), ("orders", "orders-0"), ("orders-v2", "orders-v2-0")])
}

/// The resources of a mesh directory made of `files`, with `instances` (workload, instance) registered in
/// `prod` (inbound ports 20001, 20002, …): what the stats and diagnose tests query.
pub(crate) fn registered(files: &[(&str, &str)], instances: &[(&str, &str)]) -> Resources {
    let dir = TempDir::new("registered");
    for (name, text) in files {
        dir.write(name, text);
    }
    let timing = LeaseTiming { ttl: Duration::from_secs(10), renew: Duration::from_secs(3), grace: Duration::ZERO };
    let store = Store::new(crate::meshdir::load(dir.path()).unwrap(), timing, Arc::new(Metrics::new()));
    for (i, (workload, instance)) in instances.iter().enumerate() {
        store
            .register(Registration {
                workload: workload.to_string(),
                namespace: "prod".into(),
                instance: instance.to_string(),
                inbound: Some(format!("127.0.0.1:{}", 20001 + i).parse().unwrap()),
                admin: "127.0.0.1:4191".parse().unwrap(),
                tap: "127.0.0.1:4190".parse().unwrap(),
                app: None,
                labels: BTreeMap::new(),
            })
            .unwrap();
    }
    store.resources()
}

const ORDERS: &str = "authority=\"orders.prod.svc.cluster.local:80\",dst_namespace=\"prod\"";

/// web's outbound after `n` seconds of traffic: per second 8 to the leaf orders, 1 to the leaf orders-v2,
/// 1 given up on (cancelled, no response head), 2 refused (`no_route`: a name no service has); every
/// response to orders took ~5 s (the bucket up to 10 s, with the observed maximum at 5000 ms).
fn web_page(n: u64) -> String {
    let to = |leaf: &str, pod: &str| {
        format!(
            "direction=\"outbound\",{ORDERS},target_addr=\"127.0.0.1:2000\",dst_deployment=\"{leaf}\",dst_pod=\"{pod}\",dst_service=\"{leaf}\""
        )
    };
    let (a, b) = (to("orders", "orders-0"), to("orders-v2", "orders-v2-0"));
    format!(
        "response_total{{{a},status_code=\"200\",classification=\"success\",error=\"\"}} {}\n\
         response_total{{{b},status_code=\"200\",classification=\"success\",error=\"\"}} {n}\n\
         response_total{{{a},status_code=\"\",classification=\"failure\",error=\"cancelled\"}} {n}\n\
         response_total{{direction=\"outbound\",authority=\"recommendations.prod.svc.cluster.local:80\",target_addr=\"\",status_code=\"404\",classification=\"failure\",error=\"no_route\"}} {}\n\
         response_latency_ms_bucket{{{a},status_code=\"200\",le=\"5000\"}} 0\n\
         response_latency_ms_bucket{{{a},status_code=\"200\",le=\"10000\"}} {}\n\
         response_latency_ms_bucket{{{a},status_code=\"200\",le=\"+Inf\"}} {}\n\
         response_latency_ms_max{{{a},status_code=\"200\"}} 5000\n\
         response_latency_ms_min{{{a},status_code=\"200\"}} 4990\n\
         route_response_total{{direction=\"outbound\",dst=\"orders.prod.svc.cluster.local:80\",rt_route=\"GET /api/orders\",status_code=\"200\",classification=\"success\"}} {}\n",
        8 * n,
        2 * n,
        8 * n,
        8 * n,
        9 * n,
    )
}

/// orders-0's inbound: per second 8 served (of which 1 from an unmeshed caller… 9 from every caller in
/// all), 1 the caller gave up on; its inbound route series name the profile's route for every caller.
fn orders_page(n: u64) -> String {
    let route = "direction=\"inbound\",dst=\"orders.prod.svc.cluster.local:80\",rt_route=\"GET /api/orders\"";
    format!(
        "response_total{{direction=\"inbound\",target_addr=\"127.0.0.1:8080\",status_code=\"200\",classification=\"success\",error=\"\"}} {}\n\
         response_total{{direction=\"inbound\",target_addr=\"127.0.0.1:8080\",status_code=\"\",classification=\"failure\",error=\"cancelled\"}} {n}\n\
         route_response_total{{{route},status_code=\"200\",classification=\"success\"}} {}\n\
         route_response_total{{{route},status_code=\"\",classification=\"failure\",error=\"cancelled\"}} {n}\n",
        9 * n,
        9 * n,
    )
}

/// A metric store that scraped web and orders-0 every second from t=10 s (baseline) to t=`until` s.
fn scraped(until: u64) -> MetricStore {
    let ms = MetricStore::new(Settings::new(1000, 3_600_000));
    let src = |w: &str, i: &str| Source { namespace: "prod".into(), workload: w.into(), instance: i.into() };
    let (web, orders) = (src("web", "web-0"), src("orders", "orders-0"));
    let peer = |_: &str| None;
    for t in 10..=until {
        let n = t - 10;
        ms.ingest(&web, t * 1000, &parse(&web_page(n)).0, false, &peer);
        ms.ingest(&orders, t * 1000, &parse(&orders_page(n)).0, false, &peer);
    }
    ms
}

fn q(resource: &str) -> StatQuery {
    StatQuery {
        resource: resource.into(),
        namespace: Some("prod".into()),
        window: Some("1m".into()),
        ..StatQuery::default()
    }
}

fn rows<T: serde::Serialize>(v: Result<T, QueryError>) -> Value {
    serde_json::to_value(v.unwrap()).unwrap()
}

fn named<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name}: {rows}"))
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|v| (v - want).abs() < 1e-6)
}

#[test]
fn cancellations_are_failures_at_both_ends_and_counted() {
    let (res, ms) = (resources(), scraped(30));
    // 20 s of data in a 1m window: rates over the 20 s the store holds, and it says so.
    let inbound = rows(stat(&res, &ms, &q("deploy/orders"), 30_000));
    let orders = named(&inbound, "orders");
    assert_eq!(orders["cancelled"], 20, "{orders}");
    assert!(close(&orders["success"], 0.9), "{orders}");
    assert!(close(&orders["rps"], 10.0), "{orders}");
    assert_eq!((orders["window_s"].as_f64(), orders["covered_s"].as_f64()), (Some(60.0), Some(20.0)));
    assert!(orders.get("proxy_errors").is_none(), "a cancellation is not a proxy-made response: {orders}");

    let mut to = q("deploy/web");
    to.to = Some("svc/orders".into());
    let edge = rows(stat(&res, &ms, &to, 30_000));
    let web = named(&edge, "web");
    assert_eq!(web["cancelled"], 20, "{web}");
    assert!(close(&web["success"], 0.9), "{web}");
}

#[test]
fn refusals_count_under_the_name_asked_for() {
    let (res, ms) = (resources(), scraped(30));
    let stat = rows(stat(&res, &ms, &q("deploy"), 30_000));
    let web = named(&stat, "web");
    assert_eq!(web["proxy_errors"], json!({"no_route": 40}), "web's own refusals: {web}");
    assert_eq!(web["success"], Value::Null, "web served nothing itself: {web}");

    let edges = rows(edges(&res, &ms, &q("deploy"), 30_000));
    let unknown: Vec<&Value> = edges.as_array().unwrap().iter().filter(|e| e["dst_unknown"] == true).collect();
    assert_eq!(unknown.len(), 1, "{edges}");
    assert_eq!(unknown[0]["dst"], "recommendations.prod.svc.cluster.local:80");
    assert_eq!((unknown[0]["src"].as_str(), unknown[0]["dst_meshed"].as_bool()), (Some("web"), Some(false)));
    assert!(edges.as_array().unwrap().iter().any(|e| e["dst"] == "orders" && e["cancelled"] == 20), "{edges}");
    let one = rows(super::edges(&res, &ms, &q("deploy/orders"), 30_000));
    assert!(one.as_array().unwrap().iter().all(|e| e["dst"] == "orders" || e["src"] == "orders"), "{one}");
}

#[test]
fn workloads_without_a_proxy_are_listed_with_unmeshed() {
    // orders-v2 is declared without a command and no proxy of it registered.
    let files = [("mesh.yaml", MESH)];
    let res = registered(&files, &[("web", "web-0"), ("orders", "orders-0")]);
    let ms = scraped(30);
    let names = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
    };
    let listed = rows(stat(&res, &ms, &q("deploy"), 30_000));
    assert_eq!(names(&listed), ["orders", "web"], "{listed}");
    let all = rows(stat(&res, &ms, &StatQuery { unmeshed: Some(true), ..q("deploy") }, 30_000));
    assert_eq!(names(&all), ["orders", "orders-v2", "web"], "{all}");
    assert_eq!(named(&all, "orders-v2")["meshed"], "0/1", "{all}");
    assert_eq!(named(&all, "orders")["meshed"], "1/2", "a meshed workload short of replicas stays: {all}");
    // Named, it is shown either way.
    let one = rows(stat(&res, &ms, &q("deploy/orders-v2"), 30_000));
    assert_eq!(names(&one), ["orders-v2"], "{one}");
}

#[test]
fn a_split_keeps_its_apex_and_shows_shares() {
    let (res, ms) = (resources(), scraped(30));
    let ts = rows(stat(&res, &ms, &q("ts"), 30_000));
    let leaves = ts.as_array().unwrap();
    assert_eq!(leaves.len(), 2, "{ts}");
    assert_eq!((leaves[0]["leaf"].as_str(), leaves[0]["weight"].as_f64()), (Some("orders"), Some(0.9)));
    assert_eq!((leaves[1]["leaf"].as_str(), leaves[1]["weight"].as_f64()), (Some("orders-v2"), Some(0.1)));
    assert!(close(&leaves[0]["share"], 0.9) && close(&leaves[1]["share"], 0.1), "{ts}");
    assert!(close(&leaves[1]["rps"], 1.0), "{ts}");
    // The apex has the traffic of both leaves.
    let apex = rows(stat(&res, &ms, &q("svc/orders"), 30_000));
    assert!(close(&apex[0]["rps"], 10.0), "{apex}");
    let leaf = rows(stat(&res, &ms, &q("svc/orders-v2"), 30_000));
    assert!(close(&leaf[0]["rps"], 1.0), "{leaf}");
}

#[test]
fn routes_without_to_are_what_the_resource_served() {
    let (res, ms) = (resources(), scraped(30));
    let served = rows(routes(&res, &ms, &q("deploy/orders"), 30_000));
    let get = &served["deploy/orders"][0];
    assert_eq!(get["route"], "GET /api/orders", "{served}");
    assert!(close(&get["rps"], 10.0), "every caller, from the inbound route series: {get}");
    assert_eq!(get["cancelled"], 20, "{get}");
    let mut to = q("deploy/web");
    to.to = Some("svc/orders".into());
    let sent = rows(routes(&res, &ms, &to, 30_000));
    let get = &sent["deploy/web"][0];
    assert!(close(&get["effective_rps"], 9.0), "with --to, web's outbound: {get}");
}

#[test]
fn percentiles_stay_inside_what_was_observed() {
    let (res, ms) = (resources(), scraped(30));
    let mut to = q("deploy/web");
    to.to = Some("deploy/orders".into());
    let web = rows(stat(&res, &ms, &to, 30_000));
    // Interpolated inside the 5000–10000 bucket the p99 would be ~9950 ms; every response took ≤ 5000.
    assert_eq!(named(&web, "web")["latency_ms_p99"], 5000, "{web}");
    assert_eq!(named(&web, "web")["latency_ms_p50"], 5000, "{web}");
}

#[test]
fn an_offset_reads_the_same_window_earlier() {
    let (res, ms) = (resources(), scraped(50));
    let mut ten = q("deploy/orders");
    ten.window = Some("10s".into());
    let now = rows(stat(&res, &ms, &ten, 50_000));
    let earlier = rows(stat(&res, &ms, &ten, 50_000 - offset_ms(Some("30s")).unwrap()));
    for r in [&now, &earlier] {
        let o = named(r, "orders");
        assert!(close(&o["rps"], 10.0) && o["cancelled"] == 10 && o["covered_s"] == 10.0, "{o}");
    }
    // Before the first scrape there is nothing.
    let before = rows(stat(&res, &ms, &ten, 5_000));
    assert_eq!(
        (named(&before, "orders")["rps"].clone(), named(&before, "orders")["covered_s"].as_f64()),
        (Value::Null, Some(0.0))
    );
    assert!(offset_ms(Some("soon")).unwrap_err().contains("invalid offset 'soon'"));
}

#[test]
fn resources_that_do_not_exist_are_named() {
    let (res, ms) = (resources(), scraped(12));
    fn missing<T: std::fmt::Debug>(r: Result<T, QueryError>) -> String {
        match r {
            Err(QueryError::NotFound(m)) => m,
            other => panic!("{other:?}"),
        }
    }
    let m = missing(stat(&res, &ms, &q("deploy/nope"), 12_000));
    assert_eq!(m, "deployment 'nope' not found in namespace 'prod'");
    assert!(missing(stat(&res, &ms, &q("ts/nope"), 12_000)).contains("trafficsplit 'nope'"));
    let mut names = q("deploy");
    names.names = Some("web,nope".into());
    assert!(missing(stat(&res, &ms, &names, 12_000)).contains("'nope'"));
    assert!(missing(routes(&res, &ms, &q("deploy/nope"), 12_000)).contains("'nope'"));
    assert!(missing(edges(&res, &ms, &q("deploy/nope"), 12_000)).contains("'nope'"));
    let mut to = q("deploy/web");
    to.to = Some("svc/nope".into());
    assert!(missing(stat(&res, &ms, &to, 12_000)).contains("service 'nope'"));
    assert_eq!(missing(stat(&res, &ms, &q("ns/nope"), 12_000)), "namespace 'nope' not found");
    let mut other = q("ns/prod");
    other.namespace = Some("default".into());
    assert_eq!(rows(stat(&res, &ms, &other, 12_000))[0]["name"], "prod", "a namespace named is found from any -n");
    // An empty namespace is no mistake: no rows (the CLI adds where workloads run).
    let mut default = q("deploy");
    default.namespace = Some("default".into());
    assert_eq!(rows(stat(&res, &ms, &default, 12_000)), json!([]));
}

#[test]
fn stat_ns_lists_every_namespace_whatever_namespace_says() {
    let (res, ms) = (resources(), scraped(12));
    let mut ns = q("ns");
    ns.namespace = Some("default".into());
    let rows = rows(stat(&res, &ms, &ns, 12_000));
    assert_eq!(named(&rows, "prod")["namespace"], "prod", "{rows}");
}

#[test]
fn authorities_are_what_was_served_or_what_a_caller_called() {
    let (res, ms) = (resources(), scraped(30));
    let orders = "orders.prod.svc.cluster.local:80";
    // Served: every caller (meshed or not), by the service the requests named.
    let served = rows(stat(&res, &ms, &q("au"), 30_000));
    assert_eq!(served.as_array().unwrap().len(), 1, "{served}");
    let row = named(&served, orders);
    assert_eq!(
        (row["kind"].as_str(), row["namespace"].as_str(), row["meshed"].as_str()),
        (Some("authority"), Some("prod"), Some("-"))
    );
    assert!(close(&row["rps"], 10.0) && close(&row["success"], 0.9), "{row}");
    assert_eq!(row["tcp_open_connections"], Value::Null, "connections are the client's to count: {row}");

    // From web: what web's app called, by authority, with the names no service has.
    let from = rows(stat(&res, &ms, &StatQuery { from: Some("deploy/web".into()), ..q("au") }, 30_000));
    let row = named(&from, orders);
    assert!(close(&row["rps"], 10.0) && close(&row["success"], 0.9), "both leaves of the split: {row}");
    let refused = named(&from, "recommendations.prod.svc.cluster.local:80");
    assert_eq!((refused["namespace"].as_str(), refused["success"].as_f64()), (Some(""), Some(0.0)), "{refused}");
    assert_eq!(refused["proxy_errors"], json!({"no_route": 40}), "{refused}");

    // Named by host alone or host:port; none served in another namespace.
    let one = rows(stat(&res, &ms, &q("au/orders.prod.svc.cluster.local"), 30_000));
    assert_eq!(one.as_array().unwrap().len(), 1, "{one}");
    let to =
        rows(stat(&res, &ms, &StatQuery { to: Some("deploy/orders".into()), ..q(&format!("au/{orders}")) }, 30_000));
    assert!(close(&named(&to, orders)["rps"], 9.0), "web's requests to the leaf orders: {to}");
    let elsewhere = rows(stat(&res, &ms, &StatQuery { namespace: Some("default".into()), ..q("au") }, 30_000));
    assert_eq!(elsewhere, json!([]));

    let Err(QueryError::Invalid(e)) =
        stat(&res, &ms, &StatQuery { from: Some(format!("au/{orders}")), ..q("deploy") }, 30_000)
    else {
        panic!("--from au/… is refused")
    };
    assert!(e.contains("authorities are not supported"), "{e}");
}

#[test]
fn callers_without_a_proxy_make_the_callers_add_up() {
    let (res, ms) = (resources(), scraped(30));
    let inbound = rows(stat(&res, &ms, &q("deploy/orders"), 30_000));
    assert!(close(&named(&inbound, "orders")["rps"], 10.0), "{inbound}");
    let callers = rows(stat(&res, &ms, &StatQuery { to: Some("deploy/orders".into()), ..q("deploy") }, 30_000));
    let web = named(&callers, "web");
    assert!(close(&web["rps"], 9.0), "{callers}");
    let unmeshed = named(&callers, "");
    assert_eq!((unmeshed["unmeshed"].as_bool(), unmeshed["kind"].as_str()), (Some(true), Some("deployment")));
    assert!(close(&unmeshed["rps"], 1.0) && close(&unmeshed["success"], 1.0), "{unmeshed}");
    assert_eq!(unmeshed["latency_ms_p50"], Value::Null, "{unmeshed}");
    let total: f64 = callers.as_array().unwrap().iter().filter_map(|r| r["rps"].as_f64()).sum();
    assert!((total - 10.0).abs() < 1e-6, "the callers add up to what orders served: {callers}");
    // Callers named: only those.
    let web_only = rows(stat(&res, &ms, &StatQuery { to: Some("deploy/orders".into()), ..q("deploy/web") }, 30_000));
    assert!(web_only.as_array().unwrap().iter().all(|r| r["name"] == "web"), "{web_only}");
    // A destination whose callers are all meshed: no such row.
    let v2 = rows(stat(&res, &ms, &StatQuery { to: Some("deploy/orders-v2".into()), ..q("deploy") }, 30_000));
    assert!(v2.as_array().unwrap().iter().all(|r| r.get("unmeshed").is_none()), "{v2}");
}
