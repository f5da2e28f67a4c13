//! `meshlens profile`: the template, OpenAPI 3 and Swagger 2 documents (golden output, regexes matching
//! example requests), a tap of a fake control plane, each checked by loading the output with the control
//! plane's loader and routing requests with the proxy's compiled profile.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshlens_api::profile::ServiceProfile;
use meshlens_api::tap::{ProxyDirection, RequestInit, ResponseInit, StreamId, TapEndpoint, TapEvent};
use meshlens_proxy::policy::profile::Policy;
use meshlens_proxy::policy::route::RequestHead;
use meshlens_testkit::ChildGuard;
use meshlens_testkit::eventually::Poller;
use meshlens_testkit::process::Stream;

use crate::support::{GroupReaper, TempDir, descendants, meshlens, read_request_target};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/profile").join(name)
}

fn golden(name: &str, actual: &str) {
    meshlens_testkit::assert_golden(testdata(&format!("{name}.golden")), actual);
}

/// Runs the command to its end, within the test patience (killed, and the test failed, past it).
fn run_bounded(cmd: &mut Command) -> Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(meshlens_testkit::patience()) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{cmd:?} did not finish within {:?}", meshlens_testkit::patience());
        }
    }
}

/// Runs `meshlens profile ARGS`, expecting success: (stdout, stderr).
fn profile(args: &[&str]) -> (String, String) {
    profile_in(None, args)
}

/// [`profile`] as the user of a session: its state directory holds the session file with the API token.
fn profile_in(state: Option<&Path>, args: &[&str]) -> (String, String) {
    let mut cmd = meshlens();
    cmd.arg("profile").args(args).env_remove("MESHLENS_CONTROL");
    if let Some(state) = state {
        cmd.env("XDG_STATE_HOME", state);
    }
    let out = run_bounded(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// Loads `profile_yaml` with the control plane's own loader, in a mesh declaring `service` in `namespace`.
fn control_plane_loads(service: &str, namespace: &str, domain: &str, profile_yaml: &str) -> ServiceProfile {
    let dir = TempDir::new("profile-load");
    dir.write(
        "mesh.yaml",
        &format!(
            "apiVersion: meshlens.io/v1alpha1\nkind: Mesh\nmetadata: {{name: t}}\nspec:\n  clusterDomain: {domain}\n  \
             namespaces: [{namespace}]\n  workloads:\n    - {{name: {service}, namespace: {namespace}}}\n  services:\n    \
             - {{name: {service}, namespace: {namespace}, workload: {service}, port: 80}}\n"
        ),
    );
    dir.write(&format!("{service}.profile.yaml"), profile_yaml);
    match meshlens_control::load(dir.path()) {
        Ok(config) => config.profiles.into_iter().next().expect("the profile").value,
        Err(e) => panic!("the control plane refuses the profile:\n{e}\n---\n{profile_yaml}"),
    }
}

/// Asserts the proxy sends each `(method, path)` to the named route.
fn assert_routes(profile: &ServiceProfile, cases: &[(&str, &str, &str)]) {
    let policy = Policy::compile(profile).unwrap_or_else(|e| panic!("the proxy refuses the profile: {e}"));
    for (method, path, route) in cases {
        let m = http::Method::from_bytes(method.as_bytes()).unwrap();
        let headers = http::HeaderMap::new();
        let head = RequestHead { method: &m, path_and_query: path, headers: &headers };
        assert_eq!(policy.route(&head).name, *route, "{method} {path}");
    }
}

#[test]
fn the_template_is_a_profile_the_control_plane_loads() {
    let (yaml, _) = profile(&["--template", "web", "-n", "prod"]);
    assert!(yaml.starts_with("# ServiceProfile of web in namespace prod."), "{yaml}");
    assert!(yaml.contains("# isRetryable: true") && yaml.contains("# retryBudget:"), "{yaml}");
    let loaded = control_plane_loads("web", "prod", "cluster.local", &yaml);
    assert_eq!(loaded.metadata.name, "web.prod.svc.cluster.local");
    assert_routes(&loaded, &[("GET", "/users/7", "GET /users/{id}"), ("POST", "/users/7", "[DEFAULT]")]);

    let (json, _) = profile(&["--template", "web", "-n", "prod", "-o", "json"]);
    let from_json: ServiceProfile = serde_json::from_str(&json).unwrap();
    assert_eq!(from_json, loaded);

    let (yaml, _) = profile(&["--template", "web", "--cluster-domain", "corp.example"]);
    assert!(yaml.contains("name: web.default.svc.corp.example\n"), "{yaml}");
}

#[test]
fn open_api_from_stdin_and_grpc_services_from_a_proto_file() {
    let file = testdata("bookstore.openapi3.yaml");
    let (from_file, _) = profile(&["--open-api", file.to_str().unwrap(), "books", "-n", "shop"]);
    let mut cmd = meshlens();
    cmd.args(["profile", "--open-api", "-", "books", "-n", "shop"]).env_remove("MESHLENS_CONTROL");
    let child = cmd
        .stdin(Stdio::from(std::fs::File::open(&file).unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), from_file, "stdin reads as the file does");

    let dir = TempDir::new("profile-proto");
    dir.write(
        "emoji.proto",
        "syntax = \"proto3\";\npackage emojivoto.v1;\nservice EmojiService {\n  \
         rpc ListAll (ListAllEmojiRequest) returns (ListAllEmojiResponse);\n  \
         rpc FindByShortcode (FindByShortcodeRequest) returns (FindByShortcodeResponse) {\n    \
         option idempotency_level = NO_SIDE_EFFECTS;\n  }\n}\n",
    );
    let proto = dir.path().join("emoji.proto");
    let (yaml, _) = profile(&["--proto", proto.to_str().unwrap(), "emoji-svc", "-n", "emojivoto"]);
    let loaded = control_plane_loads("emoji-svc", "emojivoto", "cluster.local", &yaml);
    assert_routes(
        &loaded,
        &[
            ("POST", "/emojivoto.v1.EmojiService/ListAll", "ListAll"),
            ("POST", "/emojivoto.v1.EmojiService/FindByShortcode", "FindByShortcode"),
            ("GET", "/emojivoto.v1.EmojiService/ListAll", "[DEFAULT]"),
            ("POST", "/emojivoto.v1xEmojiService/ListAll", "[DEFAULT]"),
        ],
    );
    let retryable: Vec<(&str, bool)> = loaded.spec.routes.iter().map(|r| (r.name.as_str(), r.is_retryable)).collect();
    assert_eq!(retryable, [("FindByShortcode", true), ("ListAll", false)]);
}

#[test]
fn an_openapi_3_document_becomes_a_golden_profile_whose_regexes_match() {
    let file = testdata("bookstore.openapi3.yaml");
    let (yaml, _) = profile(&["--open-api", file.to_str().unwrap(), "books", "-n", "shop"]);
    golden("bookstore.profile.yaml", &yaml);
    let loaded = control_plane_loads("books", "shop", "cluster.local", &yaml);
    assert_eq!(loaded.spec.routes.len(), 13);
    let uuid = "/v2/books/123e4567-e89b-12d3-a456-426614174000";
    assert_routes(
        &loaded,
        &[
            ("GET", "/v2/books", "GET /v2/books"),
            ("POST", "/v2/books", "POST /v2/books"),
            ("GET", uuid, "GET /v2/books/{bookId}"),
            ("HEAD", "/v2/books/b-1", "HEAD /v2/books/{bookId}"),
            ("PUT", "/v2/books/b-1", "PUT /v2/books/{bookId}"),
            ("PATCH", "/v2/books/b-1", "PATCH /v2/books/{bookId}"),
            ("DELETE", "/v2/books/b-1", "DELETE /v2/books/{bookId}"),
            ("GET", "/v2/books/b-1/reviews", "GET /v2/books/{bookId}/reviews"),
            ("POST", "/v2/books/b-1/reviews", "POST /v2/books/{bookId}/reviews"),
            ("DELETE", "/v2/books/b-1/reviews/r-9", "DELETE /v2/books/{bookId}/reviews/{reviewId}"),
            ("GET", "/v2/authors/le-guin/books.json", "GET /v2/authors/{authorId}/books.json"),
            ("GET", "/v2/health", "GET /v2/health"),
            ("OPTIONS", "/v2/health", "OPTIONS /v2/health"),
            // Not declared: the dot is literal, the base path is required, TRACE is no route, a parameter
            // never spans segments.
            ("GET", "/v2/authors/le-guin/books-json", "[DEFAULT]"),
            ("GET", "/books", "[DEFAULT]"),
            ("TRACE", "/v2/health", "[DEFAULT]"),
            ("GET", "/v2/books/a/b", "[DEFAULT]"),
        ],
    );
    let by_name: BTreeMap<&str, _> = loaded.spec.routes.iter().map(|r| (r.name.as_str(), r)).collect();
    let get_book = by_name["GET /v2/books/{bookId}"];
    assert!(get_book.is_retryable);
    assert_eq!(get_book.timeout.as_deref(), Some("500ms"));
    let classes: Vec<(Option<u16>, Option<u16>, bool)> = get_book
        .response_classes
        .iter()
        .map(|c| (c.condition.status.unwrap().min, c.condition.status.unwrap().max, c.is_failure))
        .collect();
    assert_eq!(classes, [(Some(200), Some(200), false), (Some(404), Some(404), false), (Some(500), Some(599), true)]);
    assert!(!by_name["DELETE /v2/books/{bookId}"].is_retryable);
}

#[test]
fn a_swagger_2_document_becomes_a_golden_profile_whose_regexes_match() {
    let file = testdata("petstore.swagger2.json");
    let (yaml, _) = profile(&["--open-api", file.to_str().unwrap(), "pets", "-n", "shop"]);
    golden("petstore.profile.yaml", &yaml);
    let loaded = control_plane_loads("pets", "shop", "cluster.local", &yaml);
    assert_routes(
        &loaded,
        &[
            ("GET", "/api/v1/pets", "GET /api/v1/pets"),
            ("POST", "/api/v1/pets", "POST /api/v1/pets"),
            ("GET", "/api/v1/pets/42", "GET /api/v1/pets/{petId}"),
            ("DELETE", "/api/v1/pets/42", "DELETE /api/v1/pets/{petId}"),
            ("GET", "/api/v1/pets/42/photos/7.jpg", "GET /api/v1/pets/{petId}/photos/{photoId}.jpg"),
            ("GET", "/api/v1/store/inventory", "GET /api/v1/store/inventory"),
            ("GET", "/api/v1/store/order/9", "GET /api/v1/store/order/{orderId}"),
            ("DELETE", "/api/v1/store/order/9", "DELETE /api/v1/store/order/{orderId}"),
            ("GET", "/api/v1/user/login", "GET /api/v1/user/login"),
            ("GET", "/api/v1/pets/42/photos/7.png", "[DEFAULT]"),
            ("PUT", "/api/v1/pets/42", "[DEFAULT]"),
        ],
    );
    // JSON output is the same profile.
    let (json, _) = profile(&["--open-api", file.to_str().unwrap(), "pets", "-n", "shop", "-o", "json"]);
    assert_eq!(serde_json::from_str::<ServiceProfile>(&json).unwrap(), loaded);
}

#[test]
fn bad_input_gets_an_error_naming_the_file_and_line() {
    let dir = TempDir::new("profile-bad");
    dir.write("broken.yaml", "openapi: 3.0.0\npaths:\n  /a:\n    get: [\n");
    dir.write(
        "timeout.json",
        "{\"swagger\": \"2.0\", \"paths\": {\"/a\": {\"get\": {\"x-linkerd-timeout\": \"soon\"}}}}",
    );
    let cases: [(Vec<String>, String); 4] = [
        (
            vec!["--open-api".into(), dir.path().join("broken.yaml").display().to_string(), "web".into()],
            format!("meshlens: {}:4:10: invalid YAML: ", dir.path().join("broken.yaml").display()),
        ),
        (
            vec!["--open-api".into(), dir.path().join("timeout.json").display().to_string(), "web".into()],
            format!(
                "meshlens: {}: paths./a.get.x-linkerd-timeout: 'soon' is not a duration",
                dir.path().join("timeout.json").display()
            ),
        ),
        (vec!["--template".into(), "Web_1".into()], "'Web_1' is not a valid service name".into()),
        (
            vec!["--tap".into(), "deploy/web".into(), "web".into(), "--tap-duration".into(), "10".into()],
            "--tap-duration: '10' is not a duration".into(),
        ),
    ];
    for (args, expected) in cases {
        let out = run_bounded(meshlens().arg("profile").args(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&expected), "{args:?}: {stderr:?} lacks {expected:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

fn inbound_request(stream: u64, method: &str, path: &str) -> TapEvent {
    let at = |port| TapEndpoint { ip: "127.0.0.1".into(), port, metadata: BTreeMap::new() };
    TapEvent {
        request_init_event: Some(RequestInit {
            id: StreamId { base: 0, stream },
            method: method.into(),
            scheme: "http".into(),
            authority: "web.prod.svc.example.org".into(),
            path: path.into(),
            headers: vec![],
        }),
        ..TapEvent::new(ProxyDirection::Inbound, at(40000), at(8080))
    }
}

/// The tap stream the fake control plane serves: inbound requests (ids, a UUID, a static sibling, a query
/// string, `/`), and what must be ignored (responses, outbound requests, an error line).
fn tap_stream_lines() -> Vec<String> {
    let mut events = Vec::new();
    for (i, id) in [1, 2, 3, 17, 12345].iter().enumerate() {
        events.push(inbound_request(i as u64, "GET", &format!("/users/{id}")));
    }
    events.push(inbound_request(10, "GET", "/users/42?fields=name"));
    events.push(inbound_request(11, "GET", "/users/me"));
    events.push(inbound_request(12, "POST", "/users"));
    events.push(inbound_request(13, "GET", "/orders/123e4567-e89b-12d3-a456-426614174000/items"));
    events.push(inbound_request(14, "GET", "/"));
    let mut response = inbound_request(1, "GET", "/ignored");
    response.request_init_event = None;
    response.response_init_event = Some(ResponseInit {
        id: StreamId { base: 0, stream: 1 },
        since_request_init: std::time::Duration::from_millis(3).into(),
        http_status: 200,
        headers: vec![],
    });
    events.push(response);
    let mut outbound = inbound_request(15, "GET", "/outbound/call");
    outbound.proxy_direction = ProxyDirection::Outbound;
    events.push(outbound);
    let mut lines: Vec<String> = events.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    lines.insert(3, r#"{"error":"proxy prod/web-1 did not answer"}"#.into());
    lines
}

/// A fake control plane: `/api/v1/resources` reports the cluster domain; `/api/v1/tap` streams
/// [`tap_stream_lines`] and then holds the stream open (`deploy/web`), closes it (`deploy/brief`), or answers
/// 404 (anything else). Returns its URL and the paths it was asked for.
fn fake_control() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let log = log.clone();
            std::thread::spawn(move || serve(conn, &log));
        }
    });
    (url, seen)
}

fn serve(mut conn: TcpStream, log: &Mutex<Vec<String>>) {
    let path = read_request_target(&conn);
    log.lock().unwrap().push(path.clone());
    let reply = |conn: &mut TcpStream, status: &str, body: &str| {
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    if path == "/api/v1/resources" {
        return reply(&mut conn, "200 OK", r#"{"clusterDomain":"example.org","namespaces":["prod"]}"#);
    }
    let Some(query) = path.strip_prefix("/api/v1/tap?") else {
        return reply(&mut conn, "404 Not Found", r#"{"error":"no such endpoint"}"#);
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let resource = pairs.iter().find(|(k, _)| k == "resource").map(|(_, v)| v.as_str()).unwrap_or_default();
    if resource != "deploy/web" && resource != "deploy/brief" {
        return reply(
            &mut conn,
            "404 Not Found",
            &format!(r#"{{"error":"no workload {resource} in namespace prod"}}"#),
        );
    }
    let _ = write!(conn, "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n");
    for line in tap_stream_lines() {
        // Each line in two writes: the client must join lines split across reads.
        let (a, b) = line.split_at(line.len() / 2);
        let _ = conn.write_all(a.as_bytes());
        let _ = conn.flush();
        let _ = conn.write_all(format!("{b}\n").as_bytes());
        let _ = conn.flush();
    }
    if resource == "deploy/web" {
        // Hold the stream open until the client goes away.
        let _ = conn.read_to_end(&mut Vec::new());
    }
}

#[test]
fn tap_folds_the_observed_requests_into_routes() {
    let (url, seen) = fake_control();
    let started = std::time::Instant::now();
    let (yaml, stderr) =
        profile(&["--tap", "deploy/web", "web", "-n", "prod", "--tap-duration", "1s", "--control", &url]);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "the tap lasts --tap-duration");
    assert!(stderr.contains("tap: proxy prod/web-1 did not answer"), "{stderr}");
    assert!(stderr.contains("10 requests seen in 1s; 4 routes"), "{stderr}");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["/api/v1/resources", "/api/v1/tap?resource=deploy%2Fweb&namespace=prod&direction=inbound&maxRps=100"]
    );
    let loaded = control_plane_loads("web", "prod", "example.org", &yaml);
    assert_eq!(loaded.metadata.name, "web.prod.svc.example.org");
    let names: Vec<&str> = loaded.spec.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["GET /orders/{id}/items", "GET /users/me", "GET /users/{id}", "POST /users"]);
    assert_routes(
        &loaded,
        &[
            ("GET", "/users/1", "GET /users/{id}"),
            ("GET", "/users/12345", "GET /users/{id}"),
            ("GET", "/users/42", "GET /users/{id}"),
            ("GET", "/users/me", "GET /users/me"),
            ("POST", "/users", "POST /users"),
            ("GET", "/orders/123e4567-e89b-12d3-a456-426614174000/items", "GET /orders/{id}/items"),
            ("GET", "/", "[DEFAULT]"),
            ("GET", "/outbound/call", "[DEFAULT]"),
        ],
    );

    // A route limit keeps the busiest; JSON output.
    let (json, _) = profile(&[
        "--tap",
        "deploy/web",
        "web",
        "-n",
        "prod",
        "--tap-duration",
        "1s",
        "--tap-route-limit",
        "1",
        "-o",
        "json",
        "--cluster-domain",
        "cluster.local",
        "--control",
        &url,
    ]);
    let limited: ServiceProfile = serde_json::from_str(&json).unwrap();
    assert_eq!(limited.metadata.name, "web.prod.svc.cluster.local");
    let names: Vec<&str> = limited.spec.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["GET /users/{id}"]);
}

#[test]
fn tap_reports_a_stream_that_ends_early_and_a_refused_resource() {
    let (url, _) = fake_control();
    let (yaml, stderr) =
        profile(&["--tap", "deploy/brief", "web", "-n", "prod", "--tap-duration", "1m", "--control", &url]);
    assert!(stderr.contains("10 requests seen before the tap stream ended after"), "{stderr}");
    assert_eq!(control_plane_loads("web", "prod", "example.org", &yaml).spec.routes.len(), 4);

    let out = run_bounded(meshlens().args(["profile", "--tap", "deploy/nope", "web", "-n", "prod", "--control", &url]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the control plane answered 404 Not Found: no workload deploy/nope in namespace prod"),
        "{stderr}"
    );

    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out =
        run_bounded(meshlens().args(["profile", "--tap", "deploy/web", "web", "--control", &format!("http://{dead}")]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach the control plane"), "{stderr}");
}

/// The whole loop on the demo shop without user-service's profile: `profile --tap` on user-service's
/// inbound traffic yields `GET /users/{id}` (the ids api-gateway asks for, folded); written into the mesh
/// directory, the control plane loads it and `meshlens routes` shows the traffic on that route.
#[test]
fn a_tapped_profile_carries_the_demo_traffic() {
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    let dir = TempDir::new("profile-e2e");
    let shop = dir.path().join("shop");
    let out = run_bounded(meshlens().args(["demo", "--export"]).arg(&shop).args(["--rps", "20"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(shop.join("user-service.profile.yaml")).unwrap();

    let state = TempDir::new("profile-e2e-state");
    let mut cmd = meshlens();
    cmd.args(["up", "-f"]).arg(&shop).args(["--control-port", "0", "--stop-grace", "5"]);
    cmd.env("XDG_STATE_HOME", state.path()).env("NO_COLOR", "1");
    let mut reaper = GroupReaper(BTreeSet::new());
    let up = ChildGuard::spawn(&mut cmd).unwrap();
    let ready = up.wait_for_line(Stream::Stdout, |l| l.contains("apps accept connections"));
    reaper.0.extend(descendants(up.id()).iter().map(|p| p.pgid));
    assert!(ready.contains("all 16 apps accept connections"), "{ready}");
    let stdout = up.stdout_text();
    let control = stdout
        .lines()
        .find_map(|l| l.split("control plane listening at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no control plane address in\n{stdout}"))
        .to_string();

    // Tap until user-service has been called (the load starts with the shop).
    let mut poller = Poller::with_patience(Duration::from_secs(90));
    let yaml = loop {
        let (yaml, stderr) = profile_in(
            Some(state.path()),
            &[
                "--tap",
                "deploy/user-service",
                "user-service",
                "-n",
                "prod",
                "--tap-duration",
                "5s",
                "--control",
                &control,
            ],
        );
        if yaml.contains("name: GET /users/{id}") {
            eprintln!("[e2e] profile --tap on the demo: {}", stderr.trim());
            break yaml;
        }
        assert!(poller.wait_blocking(), "no GET /users/{{id}} route from the tap: {stderr}\n{yaml}");
    };
    let profile_doc: ServiceProfile = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(profile_doc.metadata.name, "user-service.prod.svc.cluster.local");
    let names: Vec<&str> = profile_doc.spec.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["GET /users/{id}"], "{yaml}");

    std::fs::write(shop.join("user-service.profile.yaml"), &yaml).unwrap();
    // The control plane loads it, and api-gateway's requests to user-service then count on the route.
    let routes = || -> serde_json::Value {
        let out = run_bounded(meshlens().env("XDG_STATE_HOME", state.path()).args([
            "routes",
            "deploy/user-service",
            "-n",
            "prod",
            "-o",
            "json",
            "--control",
            &control,
        ]));
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let rps_of = |routes: &serde_json::Value, name: &str| -> f64 {
        routes["deploy/user-service"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["route"] == name)
            .and_then(|r| r["rps"].as_f64())
            .unwrap_or(0.0)
    };
    let mut poller = Poller::with_patience(Duration::from_secs(90));
    let last = loop {
        let now = routes();
        if rps_of(&now, "GET /users/{id}") > 0.0 {
            break now;
        }
        assert!(poller.wait_blocking(), "the tapped route never carried traffic: {now}");
    };
    eprintln!(
        "[e2e] routes deploy/user-service after the tapped profile: GET /users/{{id}} {:.2} rps, [DEFAULT] {:.2} rps",
        rps_of(&last, "GET /users/{id}"),
        rps_of(&last, "[DEFAULT]")
    );
    drop(up);
    drop(reaper);
}
