//! Loading and validating mesh directories: every error kind, with its exact `file:line: field: message`.

use super::*;
use meshlens_api::profile::{RequestMatch, ValueMatch};
use meshlens_testkit::TempDir;

pub(crate) const MESH: &str = "\
apiVersion: meshlens.io/v1alpha1
kind: Mesh
metadata:
  name: shop
spec:
  namespaces: [prod]
  workloads:
    - name: web
      namespace: prod
      calls: [orders]
    - name: orders
      namespace: prod
      replicas: 2
    - name: orders-v2
      namespace: prod
  services:
    - name: web
      namespace: prod
      workload: web
    - name: orders
      namespace: prod
      workload: orders
    - name: orders-v2
      namespace: prod
      workload: orders-v2
";

const PROFILE: &str = "\
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: orders.prod.svc.cluster.local
  namespace: prod
spec:
  routes:
  - name: GET /api/orders
    condition: {method: GET, pathRegex: /api/orders}
  - name: POST /api/orders
    condition: {method: POST, pathRegex: /api/orders}
  - name: GET /api/orders/{id}
    condition: {method: GET, pathRegex: '/api/orders/[^/]+'}
    timeout: 5 seconds
";

const SPLIT: &str = "\
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata:
  name: orders-split
  namespace: prod
spec:
  service: orders
  backends:
  - service: orders
    weight: 900
  - service: orders-v2
    weight: 100
";

fn dir_with(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new("meshdir");
    for (name, text) in files {
        dir.write(name, text);
    }
    dir
}

fn load_ok(files: &[(&str, &str)]) -> MeshConfig {
    let dir = dir_with(files);
    load(dir.path()).unwrap_or_else(|e| panic!("expected valid, got:\n{e}"))
}

fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let dir = dir_with(files);
    match load(dir.path()) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.lines(),
    }
}

/// The mesh with one profile document (a ServiceProfile of `orders` whose spec is `spec`).
fn profile(spec: &str) -> String {
    format!(
        "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata:\n  name: orders.prod.svc.cluster.local\n  namespace: prod\nspec:\n{spec}"
    )
}

fn profile_errors(spec: &str) -> Vec<String> {
    errors(&[("mesh.yaml", MESH), ("sp.yaml", &profile(spec))])
}

fn split(spec: &str) -> String {
    format!(
        "apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata:\n  name: s\n  namespace: prod\nspec:\n{spec}"
    )
}

fn split_errors(spec: &str) -> Vec<String> {
    errors(&[("mesh.yaml", MESH), ("ts.yaml", &split(spec))])
}

fn mesh_with(replace: &str, with: &str) -> String {
    assert!(MESH.contains(replace), "{replace}");
    MESH.replacen(replace, with, 1)
}

#[test]
fn a_valid_directory_loads_in_file_order() {
    let good_profile = PROFILE.replace("    timeout: 5 seconds\n", "    timeout: 5s\n");
    let cfg = load_ok(&[
        ("mesh.yaml", MESH),
        ("profiles/orders.yaml", &good_profile),
        ("splits.yml", SPLIT),
        ("notes.txt", "not yaml, ignored"),
        (".hidden/x.yaml", "kind: Whatever"),
        (".mesh.yaml.swp", "garbage"),
    ]);
    assert_eq!(cfg.mesh.metadata.name, "shop");
    assert_eq!(cfg.mesh.spec.services.len(), 3);
    assert_eq!(cfg.profiles.len(), 1);
    assert_eq!(cfg.profiles[0].origin(), "profiles/orders.yaml:1");
    assert_eq!(cfg.profiles[0].value.spec.routes[2].timeout.as_deref(), Some("5s"));
    assert_eq!(cfg.traffic_splits.len(), 1);
    assert_eq!(cfg.traffic_splits[0].value.spec.backends[0].weight.milli_value(), Some(900_000));
}

#[test]
fn calls_resolve_to_services() {
    let cfg = load_ok(&[("mesh.yaml", MESH)]);
    let name =
        |call: &str| cfg.service_for_call("prod", call).map(|s| format!("{}.{}:{}", s.name, s.namespace, s.port));
    assert_eq!(name("orders").as_deref(), Some("orders.prod:80"));
    assert_eq!(name("orders.prod:80").as_deref(), Some("orders.prod:80"));
    assert_eq!(name("orders.prod.svc.cluster.local").as_deref(), Some("orders.prod:80"));
    assert_eq!(name("payments"), None);
    assert_eq!(cfg.service_for_call("default", "orders"), None);
}

#[test]
fn many_documents_per_file_and_both_split_versions() {
    let text = format!(
        "# profiles and splits\n{}---\n{}---\n{}",
        PROFILE.replace("5 seconds", "5s"),
        SPLIT,
        split("  service: web\n  backends:\n  - service: web\n    weight: 500m\n")
    );
    let cfg = load_ok(&[("mesh.yaml", MESH), ("all.yaml", &text)]);
    assert_eq!(cfg.profiles.len(), 1);
    assert_eq!(cfg.profiles[0].line, 2);
    assert_eq!(cfg.traffic_splits.len(), 2);
    assert_eq!(cfg.traffic_splits[0].line, 17);
    assert_eq!(cfg.traffic_splits[1].value.api_version, "split.smi-spec.io/v1alpha1");
}

#[test]
fn the_example_from_the_issue() {
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("profiles/orders.yaml", PROFILE)]),
        ["profiles/orders.yaml:14: spec.routes[2].timeout: '5 seconds' is not a duration (e.g. 5s, 300ms)"]
    );
}

#[test]
fn errors_are_all_reported_in_file_and_line_order() {
    let bad = profile(
        "  routes:\n  - name: a\n    condition: {pathRegex: '/x/('}\n    timeout: soon\n  - name: a\n    condition: {method: GET}\n",
    );
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("b.yaml", &bad), ("a.yaml", "kind: Gadget\napiVersion: linkerd.io/v1\n")]),
        [
            "a.yaml:1: kind: unknown kind 'Gadget' in linkerd.io (expected ServiceProfile, TrafficSplit, HTTPRoute or GRPCRoute)",
            "b.yaml:9: spec.routes[0].condition.pathRegex: '/x/(' is not a valid regular expression: unclosed group",
            "b.yaml:10: spec.routes[0].timeout: 'soon' is not a duration (e.g. 5s, 300ms)",
            "b.yaml:11: spec.routes[1].name: duplicate route name 'a' (first at line 8)",
        ]
    );
}

#[test]
fn missing_empty_and_broken_mesh_files() {
    assert_eq!(
        errors(&[("sp.yaml", &PROFILE.replace("5 seconds", "5s"))]),
        ["mesh.yaml: not found: a mesh directory needs mesh.yaml with a Mesh document"]
    );
    assert_eq!(
        errors(&[("mesh.yaml", "")]),
        ["mesh.yaml:1: the file is empty: it must hold a Mesh document (apiVersion: meshlens.io/v1alpha1, kind: Mesh)"]
    );
    assert_eq!(
        errors(&[("mesh.yaml", "# just a comment\n")]),
        ["mesh.yaml:1: the file is empty: it must hold a Mesh document (apiVersion: meshlens.io/v1alpha1, kind: Mesh)"]
    );
    assert_eq!(
        errors(&[("mesh.yaml", &PROFILE.replace("5 seconds", "5s"))]),
        [
            "mesh.yaml:1: no Mesh document (apiVersion: meshlens.io/v1alpha1, kind: Mesh)",
            // Without a mesh, the profile's references cannot be checked, but its own fields are.
        ]
    );
    let dir = TempDir::new("meshdir-missing");
    let gone = dir.path().join("nope");
    let errs = load(&gone).unwrap_err().lines();
    assert_eq!(errs, [format!("{}: not a directory (the mesh directory must hold mesh.yaml)", gone.display())]);
}

#[test]
fn yaml_syntax_errors_name_the_line() {
    let truncated = &MESH[..MESH.find("    - name: orders\n").unwrap() + 12];
    let errs = errors(&[("mesh.yaml", &format!("{truncated}\n  bad: [\n"))]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("mesh.yaml:") && errs[0].contains(": invalid YAML: "), "{errs:?}");
    let errs = errors(&[("mesh.yaml", MESH), ("x.yaml", "a: 1\n b: 2\n")]);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("x.yaml:2: invalid YAML: "), "{errs:?}");
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("x.yaml", "kind: TrafficSplit\nkind: TrafficSplit\n")]),
        ["x.yaml:2: invalid YAML: duplicate key 'kind'"]
    );
}

#[test]
fn kinds_and_api_versions() {
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("x.yaml", "apiVersion: linkerd.io/v1beta1\nkind: ServiceProfile\n")]),
        [
            "x.yaml:1: apiVersion: 'linkerd.io/v1beta1' is not a supported apiVersion for ServiceProfile (expected linkerd.io/v1alpha2 or linkerd.io/v1alpha1)"
        ]
    );
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("x.yaml", "metadata: {}\n---\nkind: TrafficSplit\n")]),
        [
            "x.yaml:1: kind: missing (every document needs apiVersion and kind)",
            "x.yaml:3: apiVersion: missing (expected split.smi-spec.io/v1alpha1 or split.smi-spec.io/v1alpha2)",
        ]
    );
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("x.yaml", "- a\n- b\n")]),
        ["x.yaml:1: a document must be a mapping with apiVersion, kind, metadata and spec"]
    );
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("sub/x.yaml", MESH)]),
        ["sub/x.yaml:2: kind: a Mesh document belongs in mesh.yaml"]
    );
    assert_eq!(
        errors(&[("mesh.yaml", &format!("{MESH}---\n{MESH}"))]),
        ["mesh.yaml:28: kind: a second Mesh document (the first is at line 1)"]
    );
    assert_eq!(
        errors(&[("mesh.yaml", &MESH.replace("meshlens.io/v1alpha1", "meshlens.io/v2"))]),
        [
            "mesh.yaml:1: apiVersion: 'meshlens.io/v2' is not a supported apiVersion for Mesh (expected meshlens.io/v1alpha1)"
        ]
    );
}

#[test]
fn unknown_fields_and_wrong_types() {
    assert_eq!(
        errors(&[("mesh.yaml", &mesh_with("      replicas: 2\n", "      replica: 2\n"))]),
        [
            "mesh.yaml:13: spec.workloads[1].replica: unknown field `replica`, expected one of `name`, `namespace`, `replicas`, `command`, `port`, `env`, `calls`, `labels`"
        ]
    );
    assert_eq!(
        errors(&[("mesh.yaml", &mesh_with("      replicas: 2\n", "      replicas: two\n"))]),
        ["mesh.yaml:13: spec.workloads[1].replicas: invalid type: string \"two\", expected u32"]
    );
    assert_eq!(
        profile_errors("  routes:\n  - name: a\n    condition: {pathregex: /x}\n"),
        [
            "sp.yaml:9: spec.routes[0].condition.pathregex: unknown field `pathregex`, expected one of `all`, `any`, `not`, `pathRegex`, `method`, `headers`, `queryParams`"
        ]
    );
    assert_eq!(
        profile_errors("  routes:\n  - condition: {method: GET}\n"),
        ["sp.yaml:8: spec.routes[0]: missing field `name`"]
    );
}

#[test]
fn mesh_names_and_references() {
    let m = |a: &str, b: &str| errors(&[("mesh.yaml", &mesh_with(a, b))]);
    assert_eq!(
        m(
            "    - name: orders-v2\n      namespace: prod\n  services",
            "    - name: Orders_V2\n      namespace: prod\n  services"
        ),
        [
            "mesh.yaml:14: spec.workloads[2].name: 'Orders_V2' is not a valid workload name (lowercase letters, digits and '-', at most 63 characters)",
            "mesh.yaml:25: spec.services[2].workload: no workload 'orders-v2' is declared in namespace 'prod'",
        ]
    );
    assert_eq!(
        m(
            "    - name: orders-v2\n      namespace: prod\n  services",
            "    - name: orders\n      namespace: prod\n  services"
        ),
        [
            "mesh.yaml:14: spec.workloads[2].name: workload 'orders' is declared twice in namespace 'prod'",
            "mesh.yaml:25: spec.services[2].workload: no workload 'orders-v2' is declared in namespace 'prod'",
        ]
    );
    assert_eq!(
        m(
            "    - name: orders-v2\n      namespace: prod\n      workload",
            "    - name: orders\n      namespace: prod\n      workload"
        ),
        ["mesh.yaml:23: spec.services[2].name: service 'orders' is declared twice in namespace 'prod'"]
    );
    assert_eq!(
        m(
            "    - name: web\n      namespace: prod\n      workload",
            "    - name: web\n      namespace: staging\n      workload"
        ),
        [
            "mesh.yaml:18: spec.services[0].namespace: namespace 'staging' is not declared in spec.namespaces",
            "mesh.yaml:19: spec.services[0].workload: no workload 'web' is declared in namespace 'staging'",
        ]
    );
    assert_eq!(
        m(
            "      calls: [orders]\n",
            "      calls: [orders, payments.prod, 'orders:8080', orders.prod.svc.cluster.local:80]\n"
        ),
        [
            "mesh.yaml:10: spec.workloads[0].calls[1]: 'payments.prod' names no declared service (no payments.prod)",
            "mesh.yaml:10: spec.workloads[0].calls[2]: 'orders:8080': service orders.prod has port 80, not 8080",
        ]
    );
    assert_eq!(
        m("  namespaces: [prod]\n", "  namespaces: [prod, prod, Dev]\n"),
        [
            "mesh.yaml:6: spec.namespaces[1]: namespace 'prod' is declared twice",
            "mesh.yaml:6: spec.namespaces[2]: 'Dev' is not a valid namespace name (lowercase letters, digits and '-', at most 63 characters)",
        ]
    );
    assert_eq!(
        m("      workload: web\n", "      workload: web\n      port: 0\n      opaquePorts: [5432]\n"),
        [
            "mesh.yaml:20: spec.services[0].port: 0 is not a valid port",
            "mesh.yaml:21: spec.services[0].opaquePorts[0]: 5432 is not a port of this service (port: 0)",
        ]
    );
    assert_eq!(
        m("      replicas: 2\n", "      replicas: 2\n      command: []\n      env: {GOOD: x, bad-name: y}\n"),
        [
            "mesh.yaml:14: spec.workloads[1].command: must name a program to run",
            "mesh.yaml:15: spec.workloads[1].env.bad-name: 'bad-name' is not a valid environment variable name",
        ]
    );
    assert_eq!(
        m(
            "      replicas: 2\n",
            "      replicas: 2\n      labels:\n        app: orders\n        app.kubernetes.io/part-of: shop\n        -bad: x\n        tier: 'a b'\n"
        ),
        [
            "mesh.yaml:17: spec.workloads[1].labels.-bad: '-bad' is not a valid label key ([prefix/]name; the name at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)",
            "mesh.yaml:18: spec.workloads[1].labels.tier: 'a b' is not a valid label value (at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)",
        ]
    );
    assert_eq!(
        m("  namespaces: [prod]\n", "  namespaces: [prod]\n  clusterDomain: cluster..local\n"),
        ["mesh.yaml:7: spec.clusterDomain: 'cluster..local' is not a valid DNS domain"]
    );
    assert_eq!(
        m(
            "  namespaces: [prod]\n",
            "  namespaces: [prod]\n  objectives:\n    successRate: 150\n    services:\n      prod/web: {retryRate: -1}\n"
        ),
        [
            "mesh.yaml:8: spec.objectives.successRate: 150 must be a percent in (0, 100]",
            "mesh.yaml:10: spec.objectives.services.prod/web.retryRate: -1 must be a percent >= 0",
        ]
    );
    assert_eq!(
        m(
            "  namespaces: [prod]\n",
            "  namespaces: [prod]\n  alerts:\n    window: soon\n    rules:\n      latency: {for: 5 min}\n    receivers:\n      - {name: ops, url: 'https://x'}\n"
        ),
        [
            "mesh.yaml:8: spec.alerts.window: 'soon' is not a duration (e.g. 5s, 300ms)",
            "mesh.yaml:10: spec.alerts.rules.latency.for: '5 min' is not a duration (e.g. 5s, 300ms)",
            "mesh.yaml:12: spec.alerts.receivers[0].url: 'https://x' must be an http:// URL",
        ]
    );
}

#[test]
fn objectives_default_mesh_wide_and_a_service_overrides_what_it_names() {
    let text = "apiVersion: meshlens.io/v1alpha1\nkind: Mesh\nmetadata: {name: m}\nspec:\n  namespaces: [prod]\n  objectives:\n    retryRate: 10\n    services:\n      prod/pay: {successRate: 99.9}\n      web: {latencyFactor: 3}\n  workloads: [{name: a, namespace: prod, command: 'sleep 1'}]\n";
    let cfg = load_ok(&[("mesh.yaml", text)]);
    let o = &cfg.mesh.spec.objectives;
    let pay = o.for_service("prod", "pay");
    assert_eq!((pay.success_rate, pay.latency_factor, pay.retry_rate), (99.9, 2.0, 10.0));
    let web = o.for_service("staging", "web");
    assert_eq!((web.success_rate, web.latency_factor, web.retry_rate), (99.5, 3.0, 10.0));
    assert_eq!(o.for_service("prod", "other").success_rate, 99.5);
}

#[test]
fn workloads_in_the_default_namespace_need_no_declaration() {
    let text = "apiVersion: meshlens.io/v1alpha1\nkind: Mesh\nmetadata: {name: m}\nspec:\n  workloads: [{name: a, command: 'sleep 1'}]\n  services: [{name: a, workload: a, port: 8080, opaquePorts: [8080]}]\n";
    let cfg = load_ok(&[("mesh.yaml", text)]);
    assert_eq!(cfg.mesh.spec.services[0].namespace, "default");
}

#[test]
fn profile_names_must_be_declared_service_fqdns() {
    let with_name = |name: &str| {
        errors(&[
            ("mesh.yaml", MESH),
            ("sp.yaml", &PROFILE.replace("orders.prod.svc.cluster.local", name).replace("5 seconds", "5s")),
        ])
    };
    assert_eq!(
        with_name("orders"),
        ["sp.yaml:4: metadata.name: 'orders' is not a service FQDN (expected <service>.<namespace>.svc.cluster.local)"]
    );
    assert_eq!(
        with_name("payments.prod.svc.cluster.local"),
        ["sp.yaml:4: metadata.name: no service 'payments' in namespace 'prod' is declared in mesh.yaml"]
    );
    let twice = format!("{}---\n{}", PROFILE.replace("5 seconds", "5s"), PROFILE.replace("5 seconds", "5s"));
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("sp.yaml", &twice)]),
        [
            "sp.yaml:19: metadata.name: a ServiceProfile for orders.prod.svc.cluster.local in namespace 'prod' is already defined at sp.yaml:1"
        ]
    );
    assert_eq!(
        errors(&[
            ("mesh.yaml", MESH),
            ("sp.yaml", &PROFILE.replace("namespace: prod", "namespace: qa").replace("5 seconds", "5s"))
        ]),
        ["sp.yaml:5: metadata.namespace: namespace 'qa' is not declared in mesh.yaml"]
    );
}

#[test]
fn route_conditions() {
    assert_eq!(
        profile_errors("  routes:\n  - name: a\n    condition: {}\n"),
        [
            "sp.yaml:9: spec.routes[0].condition: a condition needs at least one of pathRegex, method, headers, queryParams, all, any, not"
        ]
    );
    assert_eq!(
        profile_errors(
            "  routes:\n  - name: a\n    condition:\n      headers:\n      - {name: x-user, value: a}\n      queryParams:\n      - {name: q, type: Prefix, value: a}\n"
        ),
        ["sp.yaml:13: spec.routes[0].condition.queryParams[0].type: 'Prefix' is not Exact or RegularExpression"]
    );
    assert_eq!(
        profile_errors(
            "  routes:\n  - name: a\n    condition:\n      any:\n      - method: 'G ET'\n      - not:\n          pathRegex: '[z-a]'\n"
        ),
        [
            "sp.yaml:11: spec.routes[0].condition.any[0].method: 'G ET' is not an HTTP method",
            "sp.yaml:13: spec.routes[0].condition.any[1].not.pathRegex: '[z-a]' is not a valid regular expression: invalid character class range, the start must be <= the end",
        ]
    );
    assert_eq!(
        profile_errors("  routes:\n  - name: ''\n    condition: {method: GET}\n"),
        ["sp.yaml:8: spec.routes[0].name: a route needs a name"]
    );
}

#[test]
fn response_classes() {
    let classes = |cond: &str| {
        profile_errors(&format!(
            "  routes:\n  - name: a\n    condition: {{method: GET}}\n    responseClasses:\n    - condition:\n{cond}\n      isFailure: true\n"
        ))
    };
    assert_eq!(
        classes("        status: {min: 500, max: 600}"),
        ["sp.yaml:12: spec.routes[0].responseClasses[0].condition.status.max: 600 is not an HTTP status (100..599)"]
    );
    assert_eq!(
        classes("        status: {min: 99}"),
        ["sp.yaml:12: spec.routes[0].responseClasses[0].condition.status.min: 99 is not an HTTP status (100..599)"]
    );
    assert_eq!(
        classes("        status:\n          min: 504\n          max: 500"),
        ["sp.yaml:14: spec.routes[0].responseClasses[0].condition.status.max: 500 is less than min 504"]
    );
    assert_eq!(
        classes("        status: {}"),
        ["sp.yaml:12: spec.routes[0].responseClasses[0].condition.status: set min, max or both"]
    );
    assert_eq!(
        classes("        not: {}"),
        [
            "sp.yaml:12: spec.routes[0].responseClasses[0].condition.not: a condition needs at least one of status, all, any, not"
        ]
    );
}

#[test]
fn timeouts_budgets_overrides() {
    // `0s` is no timeout, as Linkerd reads a zero timeout.
    let cfg = load_ok(&[
        ("mesh.yaml", MESH),
        ("sp.yaml", &profile("  routes:\n  - name: a\n    condition: {method: GET}\n    timeout: 0s\n")),
    ]);
    assert_eq!(cfg.profiles[0].value.spec.routes[0].timeout.as_deref(), Some("0s"));
    assert_eq!(
        profile_errors("  retryBudget:\n    retryRatio: 1001\n    minRetriesPerSecond: 10\n    ttl: 90s\n"),
        [
            "sp.yaml:8: spec.retryBudget.retryRatio: 1001 is not in [0, 1000]",
            "sp.yaml:10: spec.retryBudget.ttl: '90s' is not between 1s and 60s",
        ]
    );
    assert_eq!(
        profile_errors("  retryBudget:\n    retryRatio: 0.2\n    minRetriesPerSecond: 10\n    ttl: ten\n"),
        ["sp.yaml:10: spec.retryBudget.ttl: 'ten' is not a duration (e.g. 5s, 300ms)"]
    );
    assert_eq!(
        profile_errors(
            "  dstOverrides:\n  - authority: orders.prod.svc.cluster.local:80\n    weight: 900m\n  - authority: 'a b'\n    weight: -5\n"
        ),
        [
            "sp.yaml:10: spec.dstOverrides[1].authority: 'a b' is not a valid authority (host[:port])",
            "sp.yaml:11: spec.dstOverrides[1].weight: '-5' is not a valid weight (a quantity ≥ 0 such as 500, 500m, 1)",
        ]
    );
}

#[test]
fn traffic_splits() {
    assert_eq!(
        split_errors(
            "  service: orders\n  backends:\n  - service: payments\n    weight: 1\n  - service: orders-v2\n    weight: lots\n"
        ),
        [
            "ts.yaml:9: spec.backends[0].service: no service 'payments' in namespace 'prod' is declared in mesh.yaml",
            "ts.yaml:12: spec.backends[1].weight: 'lots' is not a valid weight (a quantity ≥ 0 such as 500, 500m, 1)",
        ]
    );
    assert_eq!(
        split_errors("  service: payments\n  backends:\n  - service: orders\n    weight: 1\n"),
        ["ts.yaml:7: spec.service: no service 'payments' in namespace 'prod' is declared in mesh.yaml"]
    );
    assert_eq!(
        split_errors(
            "  service: orders.default\n  backends:\n  - service: orders.prod.svc.cluster.local\n    weight: 1\n"
        ),
        ["ts.yaml:7: spec.service: 'orders.default' is not in the split's namespace 'prod'"]
    );
    assert_eq!(
        split_errors("  service: orders\n  backends: []\n"),
        ["ts.yaml:8: spec.backends: a TrafficSplit needs at least one backend"]
    );
    assert_eq!(
        split_errors(
            "  service: orders\n  backends:\n  - service: orders\n    weight: 0\n  - service: orders\n    weight: 0m\n"
        ),
        ["ts.yaml:8: spec.backends: every weight is 0, so the split sends traffic nowhere"]
    );
    let two = format!("{SPLIT}---\n{}", SPLIT.replace("name: orders-split", "name: other"));
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("ts.yaml", &two)]),
        ["ts.yaml:20: spec.service: service 'orders' already has a TrafficSplit at ts.yaml:1"]
    );
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("ts.yaml", &SPLIT.replace("namespace: prod", "namespace: qa"))]),
        [
            "ts.yaml:5: metadata.namespace: namespace 'qa' is not declared in mesh.yaml",
            "ts.yaml:7: spec.service: no service 'orders' in namespace 'qa' is declared in mesh.yaml",
            "ts.yaml:9: spec.backends[0].service: no service 'orders' in namespace 'qa' is declared in mesh.yaml",
            "ts.yaml:11: spec.backends[1].service: no service 'orders-v2' in namespace 'qa' is declared in mesh.yaml",
        ]
    );
}

#[test]
fn listing_follows_symlinks_like_a_configmap() {
    let dir = TempDir::new("configmap");
    dir.write("..2026_01_01/mesh.yaml", MESH);
    std::os::unix::fs::symlink("..2026_01_01", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/mesh.yaml", dir.path().join("mesh.yaml")).unwrap();
    std::os::unix::fs::symlink("..data/gone.yaml", dir.path().join("gone.yaml")).unwrap();
    let files = list_files(dir.path()).unwrap();
    assert_eq!(files.iter().map(|f| f.rel.as_str()).collect::<Vec<_>>(), ["mesh.yaml"]);
    assert_eq!(load(dir.path()).unwrap().mesh.spec.workloads.len(), 3);
}

const MIXED: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: orders
  annotations:
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders}
spec: {replicas: 2}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: orders-http}
---
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata:
  name: orders-split
  annotations:
spec:
  service: orders
  backends:
  - service: orders
    weight: 1
  - service: orders-canary
    weight: 0m
  - weight: 0
";

#[test]
fn real_manifests_load_foreign_kinds_skipped_zero_weights_and_the_default_namespace() {
    let cfg = load_ok(&[("mesh.yaml", MESH), ("app.yaml", MIXED)]);
    assert_eq!(
        cfg.skipped,
        [
            "app.yaml:1: skipped Service 'orders' (v1): not a mesh kind",
            "app.yaml:7: skipped Deployment 'orders' (apps/v1): not a mesh kind",
            "app.yaml:12: skipped Server 'orders-http' (policy.linkerd.io/v1beta3): not supported by meshlens",
        ]
    );
    // No namespace: the mesh's first namespace (prod), where the services are.
    let split = &cfg.traffic_splits[0].value;
    assert_eq!(split.metadata.namespace.as_deref(), Some("prod"));
    assert!(split.metadata.annotations.is_empty());
    assert_eq!(split.spec.backends.len(), 3);
    // `-n default` would put it where no `orders` service is declared.
    let dir = dir_with(&[("mesh.yaml", MESH), ("app.yaml", MIXED)]);
    let options = LoadOptions { default_namespace: Some("default".into()) };
    let errs = load_with(dir.path(), &options).unwrap_err().lines();
    assert_eq!(
        errs,
        [
            "app.yaml:22: spec.service: no service 'orders' in namespace 'default' is declared in mesh.yaml",
            "app.yaml:24: spec.backends[0].service: no service 'orders' in namespace 'default' is declared in mesh.yaml",
        ]
    );
}

#[test]
fn lists_are_unpacked_with_the_lines_of_their_items() {
    let list = format!(
        "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n{}- apiVersion: linkerd.io/v1alpha1\n  kind: ServiceProfile\n  metadata:\n    name: web.prod.svc.cluster.local\n    namespace: prod\n  spec:\n    routes:\n    - name: x\n      condition: {{pathRegex: '/('}}\n",
        PROFILE
            .replace("5 seconds", "5s")
            .lines()
            .map(|l| if l.starts_with("apiVersion") { format!("- {l}\n") } else { format!("  {l}\n") })
            .collect::<String>()
    );
    let errs = errors(&[("mesh.yaml", MESH), ("sp.yaml", &list)]);
    assert_eq!(
        errs,
        ["sp.yaml:28: spec.routes[0].condition.pathRegex: '/(' is not a valid regular expression: unclosed group"]
    );
    let cfg = load_ok(&[("mesh.yaml", MESH), ("sp.yaml", &list.replace("'/('", "/x"))]);
    assert_eq!(cfg.profiles.len(), 2);
    assert_eq!((cfg.profiles[0].line, cfg.profiles[1].line), (6, 20));
    assert_eq!(cfg.profiles[1].value.api_version, "linkerd.io/v1alpha1");
}

#[test]
fn unknown_kinds_of_mesh_groups_stay_errors() {
    let typo = "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplits\nmetadata: {name: s}\n";
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("x.yaml", typo)]),
        [
            "x.yaml:2: kind: unknown kind 'TrafficSplits' in split.smi-spec.io (expected ServiceProfile, TrafficSplit, HTTPRoute or GRPCRoute)"
        ]
    );
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("x.yaml", "kind: ConfigMap\nmetadata: {name: c}\n")]),
        ["x.yaml:1: apiVersion: missing (every document needs apiVersion and kind)"]
    );
    assert_eq!(
        errors(&[
            ("mesh.yaml", MESH),
            ("x.yaml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n")
        ]),
        ["x.yaml:5: items[0].kind: a List inside a List"]
    );
}

fn corpus(name: &str) -> MeshConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(name);
    load(&dir).unwrap_or_else(|e| panic!("corpus {name} does not load:\n{e}"))
}

fn profile_of<'a>(cfg: &'a MeshConfig, fqdn: &str) -> &'a ServiceProfile {
    &cfg.profiles.iter().find(|p| p.value.metadata.name == fqdn).unwrap_or_else(|| panic!("no profile {fqdn}")).value
}

#[test]
fn corpus_booksapp_loads_lists_mixed_kinds_and_v1alpha1() {
    let cfg = corpus("booksapp");
    assert_eq!(cfg.profiles.len(), 3);
    let books = profile_of(&cfg, "books.booksapp.svc.cluster.local");
    assert_eq!(books.api_version, "linkerd.io/v1alpha1");
    assert_eq!(books.spec.routes[3].timeout.as_deref(), Some("0s"));
    assert_eq!(
        cfg.skipped,
        [
            "app.yaml:3: skipped Service 'webapp' (v1): not a mesh kind",
            "app.yaml:17: skipped Deployment 'webapp' (apps/v1): not a mesh kind",
            "app.yaml:39: skipped ConfigMap 'booksapp-config' (v1): not a mesh kind",
        ]
    );
}

#[test]
fn corpus_emojivoto_compiles_a_grpc_route_with_retries_and_a_timeout() {
    let cfg = corpus("emojivoto");
    let voting = profile_of(&cfg, "voting-svc.emojivoto.svc.cluster.local");
    let routes = &voting.spec.routes;
    assert_eq!(routes.len(), 2);
    // The longer match (service and method) first.
    assert_eq!(routes[0].condition.path_regex.as_deref(), Some(r"/emojivoto\.v1\.VotingService/VoteDoughnut"));
    assert_eq!(routes[1].condition.path_regex.as_deref(), Some(r"/emojivoto\.v1\.VotingService/[^/]+"));
    assert!(routes.iter().all(|r| r.name == "voting-grpc" && r.condition.method.as_deref() == Some("POST")));
    assert_eq!(routes[0].timeout.as_deref(), Some("2s"));
    let retry = routes[0].retry.as_ref().unwrap();
    assert_eq!((retry.grpc.as_slice(), retry.limit), (&[14, 13][..], 2));
    assert!(voting.spec.dst_overrides.is_empty());
}

#[test]
fn corpus_howtos_retries_timeouts_and_traffic_shifting() {
    let cfg = corpus("howtos");
    let smiley = profile_of(&cfg, "smiley.faces.svc.cluster.local");
    let retry = smiley.spec.routes[0].retry.as_ref().unwrap();
    assert_eq!((retry.http[0].min, retry.http[0].max, retry.limit), (Some(500), Some(599), 2));
    let rule = smiley.spec.routes[0].rule.as_ref().unwrap();
    assert_eq!(rule.attempt_timeout.as_deref(), Some("300ms"), "retry.linkerd.io/timeout bounds each attempt");
    assert!(smiley.spec.unmatched_not_found);
    assert_eq!(smiley.spec.routes[0].condition.path_regex.as_deref(), Some("/.*"));

    let color = profile_of(&cfg, "color.faces.svc.cluster.local");
    let got: Vec<_> = color
        .spec
        .routes
        .iter()
        .map(|r| (r.condition.path_regex.as_deref().unwrap(), r.condition.method.as_deref(), r.timeout.as_deref()))
        .collect();
    // The annotation beats timeouts.request; most path characters first.
    assert_eq!(
        got,
        [("/edge/[0-9]+", None, Some("1s")), ("/center", Some("GET"), Some("1s")), ("/edge(?:/.*)?", None, Some("1s")),]
    );

    let podinfo = profile_of(&cfg, "podinfo.podinfo.svc.cluster.local");
    assert!(podinfo.spec.dst_overrides.is_empty());
    let rule = podinfo.spec.routes[0].rule.as_ref().unwrap();
    let shift: Vec<_> = rule.backends.iter().map(|d| (d.authority.as_str(), d.weight.milli_value())).collect();
    assert_eq!(
        shift,
        [
            ("podinfo.podinfo.svc.cluster.local:9898", Some(90_000)),
            ("podinfo-v2.podinfo.svc.cluster.local:9898", Some(10_000))
        ]
    );
    // Header and query parameter matches pick the route before the plain one of the same path.
    let face = profile_of(&cfg, "face.faces.svc.cluster.local");
    let got: Vec<_> = face
        .spec
        .routes
        .iter()
        .map(|r| (r.name.as_str(), r.condition.headers.len(), r.condition.query_params.len(), r.timeout.as_deref()))
        .collect();
    assert_eq!(
        got,
        [("face-testers", 1, 0, Some("10s")), ("face-testers", 0, 1, Some("10s")), ("face", 0, 0, Some("2s"))]
    );
    assert_eq!(face.spec.routes[1].condition.query_params[0].kind.as_deref(), Some("RegularExpression"));
    let testers = face.spec.routes[0].rule.as_ref().unwrap();
    assert_eq!(testers.request_headers.as_ref().unwrap().set[0].value, "tester");
    assert_eq!(testers.response_headers.as_ref().unwrap().add[0].name, "x-faces-route");
    assert_eq!(testers.attempt_timeout.as_deref(), Some("3s"));
    assert!(testers.backends.is_empty(), "no backendRefs: the parent Service");
    let plain = face.spec.routes[2].rule.as_ref().unwrap();
    assert_eq!((plain.route_kind.as_str(), plain.route_group.as_str()), ("HTTPRoute", "gateway.networking.k8s.io"));
    // A zero-weight backend naming no declared service is no backend: the parent keeps its traffic.
    assert!(profile_of(&cfg, "smiley2.faces.svc.cluster.local").spec.dst_overrides.is_empty());
    // The TrafficSplit without a namespace lands in the mesh's first namespace.
    assert_eq!(cfg.traffic_splits[0].value.metadata.namespace.as_deref(), Some("faces"));
    assert_eq!(
        cfg.skipped,
        [
            "traffic-shifting.yaml:34: HTTPRoute 'smiley2-canary': parentRefs[1] (Gateway, the default kind 'faces-gateway') ignored: only a Service parent routes traffic",
        ]
    );
}

const ROUTE: &str = "\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: orders-route
  namespace: prod
spec:
  parentRefs:
  - {name: orders, kind: Service, group: core, port: 80}
  rules:
  - matches:
    - path: {type: PathPrefix, value: /api}
";

#[test]
fn invalid_routes_are_rejected_with_file_and_line() {
    let bad = format!(
        "{ROUTE}      headers:\n      - {{name: 'x user', value: a}}\n    - path: {{type: Regex, value: /x}}\n    - path: {{type: RegularExpression, value: '/('}}\n      method: get\n    timeouts: {{request: soon}}\n    backendRefs:\n    - {{name: payments, port: 80}}\n"
    );
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("r.yaml", &bad)]),
        [
            "r.yaml:13: spec.rules[0].matches[0].headers[0].name: 'x user' is not a header name",
            "r.yaml:14: spec.rules[0].matches[1].path.type: 'Regex' is not Exact, PathPrefix or RegularExpression",
            "r.yaml:15: spec.rules[0].matches[2].path.value: '/(' is not a valid regular expression: unclosed group",
            "r.yaml:16: spec.rules[0].matches[2].method: 'get' is not an HTTP method (GET, POST, …)",
            "r.yaml:17: spec.rules[0].timeouts.request: 'soon' is not a duration (e.g. 5s, 300ms)",
        ]
    );
    let bad = format!("{ROUTE}    backendRefs:\n    - {{name: payments, port: 80}}\n");
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("r.yaml", &bad.replace("port: 80}", "port: 81}"))]),
        [
            "r.yaml:8: spec.parentRefs[0].port: service orders.prod has port 80, not 81",
            "r.yaml:13: spec.rules[0].backendRefs[0].name: no service 'payments' in namespace 'prod' is declared in mesh.yaml",
        ]
    );
    let annotated =
        ROUTE.replace("  namespace: prod\n", "  namespace: prod\n  annotations:\n    retry.linkerd.io/http: 5xx,6xx\n");
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("r.yaml", &annotated)]),
        [
            "r.yaml:7: metadata.annotations.retry.linkerd.io/http: '6xx' is not a status, a range (500-504), 5xx or gateway-error"
        ]
    );
    let typo = ROUTE.replace("kind: HTTPRoute", "kind: HTTPRoutes");
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("r.yaml", &typo)]),
        [
            "r.yaml:2: kind: unknown kind 'HTTPRoutes' in gateway.networking.k8s.io (expected ServiceProfile, TrafficSplit, HTTPRoute or GRPCRoute)"
        ]
    );
}

#[test]
fn each_rule_keeps_its_own_weighted_backends_and_filters() {
    let doc = format!(
        "{ROUTE}    backendRefs:\n    - {{name: orders-v2, port: 80, weight: 3}}\n    - {{name: orders, weight: 1}}\n    - {{name: web, weight: 0}}\n  - filters:\n    - type: RequestRedirect\n      requestRedirect: {{scheme: https, statusCode: 301}}\n  - matches:\n    - path: {{type: Exact, value: /health}}\n    backendRefs:\n    - {{name: orders, port: 80}}\n"
    );
    let cfg = load_ok(&[("mesh.yaml", MESH), ("r.yaml", &doc)]);
    let sp = &profile_of(&cfg, "orders.prod.svc.cluster.local").spec;
    let rules: Vec<_> = sp
        .routes
        .iter()
        .map(|r| {
            let rule = r.rule.clone().unwrap_or_default();
            let backends: Vec<_> = rule.backends.iter().map(|b| (b.authority.clone(), b.weight.to_string())).collect();
            (r.condition.path_regex.clone().unwrap(), backends, rule.redirect.map(|r| r.status_code))
        })
        .collect();
    assert_eq!(
        rules,
        [
            // The most path characters first; the parent alone as backend is no override.
            ("/health".to_string(), vec![], None),
            (
                "/api(?:/.*)?".to_string(),
                vec![
                    ("orders-v2.prod.svc.cluster.local:80".to_string(), "3".to_string()),
                    ("orders.prod.svc.cluster.local:80".to_string(), "1".to_string())
                ],
                None
            ),
            ("/.*".to_string(), vec![], Some(Some(301))),
        ]
    );
    assert!(sp.dst_overrides.is_empty());
    assert!(sp.unmatched_not_found, "requests no rule matches get a 404");
}

#[test]
fn unsupported_filters_and_timeouts_are_rejected_with_file_and_line() {
    let with = |rule: &str| errors(&[("mesh.yaml", MESH), ("r.yaml", &format!("{ROUTE}{rule}"))]);
    assert_eq!(
        with(
            "    filters:\n    - type: URLRewrite\n      urlRewrite: {hostname: x}\n    - type: RequestMirror\n      requestMirror: {backendRef: {name: web}}\n    - type: Fancy\n"
        ),
        [
            "r.yaml:13: spec.rules[0].filters[0].type: URLRewrite is not supported (Linkerd drops a route with it); use RequestHeaderModifier, ResponseHeaderModifier or RequestRedirect",
            "r.yaml:15: spec.rules[0].filters[1].type: RequestMirror is not supported (Linkerd drops a route with it); use RequestHeaderModifier, ResponseHeaderModifier or RequestRedirect",
            "r.yaml:17: spec.rules[0].filters[2].type: 'Fancy' is not a filter type (RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect)",
        ]
    );
    assert_eq!(
        with(
            "    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier: {set: [{name: 'a b', value: x}]}\n    - type: RequestRedirect\n      requestRedirect: {statusCode: 200}\n    - type: ResponseHeaderModifier\n"
        ),
        [
            "r.yaml:14: spec.rules[0].filters[0].requestHeaderModifier.set: 'a b' is not a header name",
            "r.yaml:16: spec.rules[0].filters[1].requestRedirect.statusCode: 200 is not 301, 302, 303, 307 or 308",
            "r.yaml:17: spec.rules[0].filters[2].type: ResponseHeaderModifier needs its field",
        ]
    );
    assert_eq!(
        with("    timeouts: {request: 1s, backendRequest: 2s}\n"),
        [
            "r.yaml:12: spec.rules[0].timeouts.backendRequest: '2s' is longer than request '1s', which covers every attempt"
        ]
    );
    let exact = ROUTE.replace("PathPrefix", "Exact");
    let redirect = format!(
        "{exact}    filters:\n    - type: RequestRedirect\n      requestRedirect: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}}\n"
    );
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("r.yaml", &redirect)]),
        [
            "r.yaml:12: spec.rules[0].filters: RequestRedirect: ReplacePrefixMatch needs every match of the rule to be a PathPrefix"
        ]
    );
    let grpc = "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g, namespace: prod}\nspec:\n  parentRefs: [{name: orders, kind: Service, group: core}]\n  rules:\n  - filters: [{type: RequestRedirect, requestRedirect: {}}]\n    timeouts: {request: 1s}\n";
    assert_eq!(
        errors(&[("mesh.yaml", MESH), ("g.yaml", grpc)]),
        [
            "g.yaml:7: spec.rules[0].filters[0].type: RequestRedirect is not supported on a GRPCRoute (Linkerd takes only the header modifiers)",
            "g.yaml:8: spec.rules[0].timeouts: a GRPCRoute has no timeouts (use timeout.linkerd.io/request)",
        ]
    );
    assert_eq!(
        profile_errors(
            "  unmatchedNotFound: true\n  routes:\n  - name: r\n    condition: {pathRegex: /}\n    rule: {attemptTimeout: 1s}\n"
        ),
        [
            "sp.yaml:7: spec.unmatchedNotFound: not a ServiceProfile field (compiled from HTTPRoutes)",
            "sp.yaml:11: spec.routes[0].rule: not a ServiceProfile field (compiled from an HTTPRoute's rules)",
        ]
    );
}

#[test]
fn header_and_query_matches_compile_into_route_conditions() {
    let doc = format!(
        "{ROUTE}    - path: {{type: PathPrefix, value: /api}}\n      headers:\n      - {{name: X-Canary, value: beta}}\n      - {{name: x-canary, value: ignored}}\n      queryParams:\n      - {{name: v, type: RegularExpression, value: '[0-9]+'}}\n"
    );
    let cfg = load_ok(&[("mesh.yaml", MESH), ("r.yaml", &doc)]);
    let routes = &profile_of(&cfg, "orders.prod.svc.cluster.local").spec.routes;
    let canary = ValueMatch { kind: None, name: "X-Canary".into(), value: "beta".into() };
    let version = ValueMatch { kind: Some("RegularExpression".into()), name: "v".into(), value: "[0-9]+".into() };
    // Same path: the match with headers and query parameters first; of two equal header names the first.
    assert_eq!(
        routes.iter().map(|r| &r.condition).collect::<Vec<_>>(),
        [
            &RequestMatch {
                path_regex: Some("/api(?:/.*)?".into()),
                headers: vec![canary],
                query_params: vec![version],
                ..Default::default()
            },
            &RequestMatch { path_regex: Some("/api(?:/.*)?".into()), ..Default::default() },
        ]
    );
}

#[test]
fn a_profile_with_routes_wins_over_routes_and_one_without_is_completed() {
    let cfg = load_ok(&[("mesh.yaml", MESH), ("r.yaml", ROUTE), ("sp.yaml", &PROFILE.replace("5 seconds", "5s"))]);
    assert_eq!(profile_of(&cfg, "orders.prod.svc.cluster.local").spec.routes.len(), 3);
    assert_eq!(
        cfg.skipped,
        [
            "r.yaml:1: route 'orders-route' of orders.prod ignored: the ServiceProfile at sp.yaml:1 has routes or dstOverrides, and wins"
        ]
    );
    let budget_only = profile("  retryBudget: {retryRatio: 0.5, minRetriesPerSecond: 1, ttl: 5s}\n");
    let cfg = load_ok(&[("mesh.yaml", MESH), ("r.yaml", ROUTE), ("sp.yaml", &budget_only)]);
    assert_eq!(cfg.profiles.len(), 1);
    let sp = &cfg.profiles[0];
    assert_eq!((sp.origin(), sp.value.spec.routes[0].name.as_str()), ("sp.yaml:1".to_string(), "orders-route"));
    assert_eq!(sp.value.spec.retry_budget.as_ref().map(|b| b.retry_ratio), Some(0.5));
}
