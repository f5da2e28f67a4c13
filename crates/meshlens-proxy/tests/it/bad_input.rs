//! Bad input is refused at the proxy and never reaches the app (DESIGN.md §5, §8; issue 2 "Bad input").
//!
//! Every client-side case runs against both ways in: the outbound listener (the app's calls, routed by
//! `Host: users`) and the inbound listener (peers' calls to the local app). Both lead to the same
//! backend, which must see none of the refused requests (only the good ones sent afterwards):
//!
//! - ambiguous HTTP/1 framing (Content-Length with Transfer-Encoding, conflicting lengths) → 400, close;
//! - malformed request lines → 400, close; `CONNECT` without an authority-form target → 400;
//! - oversize headers or too many of them → 431, close (HTTP/1), 431 on the stream (HTTP/2), while
//!   headers just under the 64 KiB limit pass whole;
//! - a malformed upstream response → 502 `invalid_response`, and that upstream connection is not reused;
//! - a request to the proxy's own outbound address → 508 `loop`; an unknown name → 404 `no_route`.

use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use meshlens_proxy::Proxy;
use meshlens_testkit::backend::echo;
use meshlens_testkit::{HttpBackend, RawResponse, RawTcpBackend, raw_http1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;
use meshlens_testkit::TempDir;

const KIB: usize = 1024;

/// A proxy in front of `app`: outbound, `users` resolves to it; inbound forwards to it.
async fn proxy_to(app: SocketAddr) -> (Proxy, TempDir) {
    start(config_with_app(app), &snapshot(vec![service("users", "default", &[app])])).await
}

/// The two ways into the proxy: (name, listener address, a `Host` that reaches the app that way).
fn ways_in(proxy: &Proxy) -> [(&'static str, SocketAddr, &'static str); 2] {
    [("outbound", proxy.listen().outbound, "users"), ("inbound", proxy.listen().inbound.unwrap(), "app")]
}

/// Asserts a raw HTTP/1 response: its status, that the proxy closed the connection, and (when given) the
/// `l5d-proxy-error` reason.
fn assert_refused(rsp: &RawResponse, status: u16, reason: Option<&str>, case: &str) {
    let raw = String::from_utf8_lossy(&rsp.raw[..rsp.raw.len().min(400)]).into_owned();
    assert_eq!(rsp.status, Some(status), "{case}: got {raw:?}");
    if let Some(reason) = reason {
        assert_eq!(rsp.header("l5d-proxy-error"), Some(reason), "{case}: got {raw:?}");
    }
    assert!(rsp.closed, "{case}: the proxy must close the connection after {status}");
}

/// Sends a normal request each way in and checks that only these reached the app, so a count of 0
/// before meant "refused" and not "the app was unreachable".
async fn assert_only_good_requests_arrived(proxy: &Proxy, backend: &HttpBackend) {
    assert_eq!(backend.requests(), 0, "bad input reached the app: {:?}", backend.seen());
    for (way, addr, host) in ways_in(proxy) {
        let (rsp, _) = send(addr, get("/good", host)).await;
        assert_eq!(rsp.status(), 200, "{way}: a good request after the bad ones");
    }
    let paths: Vec<String> = backend.seen().iter().map(|s| s.path().to_string()).collect();
    assert_eq!(paths, ["/good", "/good"], "only the good requests reach the app");
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused_in_either_order() {
    let backend = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(backend.addr()).await;
    for (way, addr, host) in ways_in(&proxy) {
        // Framed by Content-Length, the body is a chunked terminator plus a whole second request; framed
        // as chunked, the body is empty and the second request is smuggled in behind it.
        let body = format!("0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let cl = format!("Content-Length: {}", body.len());
        let te = "Transfer-Encoding: chunked";
        for (order, framing) in [("CL then TE", format!("{cl}\r\n{te}")), ("TE then CL", format!("{te}\r\n{cl}"))] {
            let req = format!("POST /upload HTTP/1.1\r\nHost: {host}\r\n{framing}\r\n\r\n{body}");
            let rsp = raw_http1(addr, req).await;
            assert_refused(&rsp, 400, Some("bad_request"), &format!("{way}, {order}"));
            assert_eq!(backend.requests(), 0, "{way}, {order}: reached the app: {:?}", backend.seen());
        }
    }
    assert_only_good_requests_arrived(&proxy, &backend).await;
}

#[tokio::test]
async fn conflicting_content_lengths_are_refused() {
    let backend = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(backend.addr()).await;
    for (way, addr, host) in ways_in(&proxy) {
        let smuggled = format!("GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let req = format!(
            "POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\nContent-Length: {}\r\n\r\nabc{smuggled}",
            3 + smuggled.len()
        );
        let rsp = raw_http1(addr, req).await;
        assert_refused(&rsp, 400, Some("bad_request"), &format!("{way}, conflicting Content-Length"));
        assert_eq!(backend.requests(), 0, "{way}: reached the app: {:?}", backend.seen());
    }
    assert_only_good_requests_arrived(&proxy, &backend).await;
}

#[tokio::test]
async fn malformed_request_lines_are_refused() {
    let backend = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(backend.addr()).await;
    for (way, addr, host) in ways_in(&proxy) {
        for line in ["GET  / HTTP/1.1", "G\0T / HTTP/1.1", "GET / HTTP/1.2", "GET /\x7f HTTP/1.1", "GET /"] {
            let rsp = raw_http1(addr, format!("{line}\r\nHost: {host}\r\n\r\n")).await;
            assert_refused(&rsp, 400, Some("bad_request"), &format!("{way}, {line:?}"));
            assert_eq!(backend.requests(), 0, "{way}, {line:?}: reached the app");
        }
        for (case, head) in [
            ("no Host", "GET / HTTP/1.1\r\n\r\n".to_string()),
            ("two Hosts", format!("GET / HTTP/1.1\r\nHost: {host}\r\nHost: other\r\n\r\n")),
            ("bare CR in a value", format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-A: a\rb\r\n\r\n")),
            ("space before the colon", format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-A : b\r\n\r\n")),
            ("obsolete line folding", format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-A: b\r\n c\r\n\r\n")),
            ("bare LF line ends", format!("GET / HTTP/1.1\nHost: {host}\n\n")),
        ] {
            let rsp = raw_http1(addr, head).await;
            assert_refused(&rsp, 400, Some("bad_request"), &format!("{way}, {case}"));
            assert_eq!(backend.requests(), 0, "{way}, {case}: reached the app");
        }
    }
    assert_only_good_requests_arrived(&proxy, &backend).await;
}

#[tokio::test]
async fn oversize_http1_headers_get_431() {
    let backend = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(backend.addr()).await;
    let many = |n: usize| (0..n).map(|i| format!("X-H-{i}: {i}\r\n")).collect::<String>();
    // Over the proxy's 64 KiB / 100 headers: refused by the proxy itself, which says why.
    let moderate = [("one 70 KiB header", format!("X-Big: {}\r\n", "a".repeat(70 * KIB))), ("101 headers", many(101))];
    // Far over: refused the same way, without waiting for the end of the head.
    let huge = [("one 200 KiB header", format!("X-Big: {}\r\n", "a".repeat(200 * KIB))), ("300 headers", many(300))];
    for (way, addr, host) in ways_in(&proxy) {
        for (case, headers) in &moderate {
            let rsp = raw_http1(addr, format!("GET /big HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n")).await;
            assert_refused(&rsp, 431, Some("headers_too_large"), &format!("{way}, {case}"));
        }
        for (case, headers) in &huge {
            let rsp = raw_http1(addr, format!("GET /big HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n")).await;
            assert_refused(&rsp, 431, Some("headers_too_large"), &format!("{way}, {case}"));
        }
        assert_eq!(backend.requests(), 0, "{way}: reached the app");
    }
    assert_only_good_requests_arrived(&proxy, &backend).await;
}

#[tokio::test]
async fn headers_under_the_limit_pass_both_protocols() {
    let backend = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(backend.addr()).await;
    let big = "a".repeat(60 * KIB);
    for (way, addr, host) in ways_in(&proxy) {
        let req = Request::get("/h1").header("host", host).header("x-big", &big).body(Full::new(Bytes::new())).unwrap();
        let (rsp, _) = send(addr, req).await;
        assert_eq!(rsp.status(), 200, "{way}, HTTP/1, 60 KiB header: {:?}", rsp.headers());
        let mut c = h2(addr).await;
        let req =
            Request::get(format!("http://{host}/h2")).header("x-big", &big).body(Full::new(Bytes::new())).unwrap();
        let rsp = c.send_request(req).await.unwrap();
        assert_eq!(rsp.status(), 200, "{way}, HTTP/2, 60 KiB header: {:?}", rsp.headers());
    }
    let seen = backend.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.header("x-big").map(str::len) == Some(60 * KIB)), "the header arrives whole");
}

#[tokio::test]
async fn oversize_http2_headers_get_431_and_new_connections_still_work() {
    let backend = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(backend.addr()).await;
    for (way, addr, host) in ways_in(&proxy) {
        let mut c = h2(addr).await;
        let req = Request::get(format!("http://{host}/big"))
            .header("x-big", "a".repeat(70 * KIB))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let rsp = c.send_request(req).await.unwrap_or_else(|e| panic!("{way}: no 431 response: {e}"));
        assert_eq!(rsp.status(), 431, "{way}: {:?}", rsp.headers());
        if let Some(reason) = rsp.headers().get("l5d-proxy-error") {
            assert_eq!(reason, "headers_too_large", "{way}");
        }
        assert!(backend.seen().iter().all(|s| s.path() != "/big"), "{way}: reached the app");

        let mut fresh = h2(addr).await;
        let rsp =
            fresh.send_request(Request::get(format!("http://{host}/after")).body(Full::new(Bytes::new())).unwrap());
        let rsp = rsp.await.unwrap();
        assert_eq!(rsp.status(), 200, "{way}: a normal request on a fresh connection");
    }
    let paths: Vec<String> = backend.seen().iter().map(|s| s.path().to_string()).collect();
    assert_eq!(paths, ["/after", "/after"]);
}

#[tokio::test]
async fn connect_without_an_authority_is_refused() {
    let backend = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(backend.addr()).await;
    for (way, addr, host) in ways_in(&proxy) {
        for target in ["/x", "*"] {
            let rsp = raw_http1(addr, format!("CONNECT {target} HTTP/1.1\r\nHost: {host}\r\n\r\n")).await;
            assert_refused(&rsp, 400, Some("bad_request"), &format!("{way}, CONNECT {target}"));
        }
    }
    assert_only_good_requests_arrived(&proxy, &backend).await;
}

/// An upstream that answers every request on a connection with `response`, keeping the connection
/// open: if the proxy sent another request on it, that request would be answered there.
fn bad_upstream(response: &'static [u8]) -> RawTcpBackend {
    RawTcpBackend::start(move |mut stream| async move {
        while read_request_head(&mut stream).await {
            if stream.write_all(response).await.is_err() {
                return;
            }
        }
    })
}

/// Reads up to the end of one request head (the proxy sends bodiless GETs); `false` at EOF.
async fn read_request_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

#[tokio::test]
async fn malformed_upstream_response_gets_502_and_its_connection_is_dropped() {
    let cases: [(&str, &'static [u8]); 2] = [
        ("bare CR in a header value", b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 2\r\n\r\nok"),
        (
            "conflicting Content-Length",
            b"HTTP/1.1 200 OK\r\nX-Bad: b\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        ),
    ];
    for (case, response) in cases {
        for way in ["outbound", "inbound"] {
            let upstream = bad_upstream(response);
            let (proxy, _d) = proxy_to(upstream.addr()).await;
            let (_, addr, host) = ways_in(&proxy).into_iter().find(|w| w.0 == way).unwrap();
            for attempt in 1..=2 {
                let (rsp, body) = send(addr, get("/", host)).await;
                assert_eq!(rsp.status(), 502, "{way}, {case}, request {attempt}: {:?}", rsp.headers());
                assert_eq!(rsp.headers().get("l5d-proxy-error").unwrap(), "invalid_response", "{way}, {case}");
                assert!(rsp.headers().get("x-bad").is_none(), "{way}, {case}: the bad response leaked through");
                assert!(body.is_empty(), "{way}, {case}: the bad body leaked through: {body:?}");
                assert_eq!(
                    upstream.connections(),
                    attempt,
                    "{way}, {case}: each request needs a new upstream connection (the bad one is never reused)"
                );
            }
        }
    }
}

#[tokio::test]
async fn request_to_the_proxy_itself_gets_508() {
    let backend = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(backend.addr()).await;
    let out = proxy.listen().outbound;
    for (uri, host) in [
        ("/".to_string(), out.to_string()),
        (format!("http://{out}/"), out.to_string()),
        ("/".to_string(), format!("localhost:{}", out.port())),
    ] {
        let (rsp, _) = send(out, get(&uri, &host)).await;
        assert_eq!(rsp.status(), 508, "{uri} Host: {host}: {:?}", rsp.headers());
        assert_eq!(rsp.headers().get("l5d-proxy-error").unwrap(), "loop", "{uri} Host: {host}");
    }
    assert_only_good_requests_arrived(&proxy, &backend).await;
}

#[tokio::test]
async fn unknown_name_gets_404_no_route() {
    let backend = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(backend.addr()).await;
    let out = proxy.listen().outbound;
    for host in ["nosuch.default.svc.cluster.local", "nosuch.default.svc.cluster.local:80", "nosuch"] {
        let (rsp, _) = send(out, get("/", host)).await;
        assert_eq!(rsp.status(), 404, "Host: {host}: {:?}", rsp.headers());
        assert_eq!(rsp.headers().get("l5d-proxy-error").unwrap(), "no_route", "Host: {host}");
    }
    assert_only_good_requests_arrived(&proxy, &backend).await;
}

#[tokio::test]
async fn pipelined_requests_stop_at_the_first_malformed_one() {
    let backend = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(backend.addr()).await;
    for (way, addr, host) in ways_in(&proxy) {
        let before = backend.requests();
        let ok = |p: &str| format!("GET /{p} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let pipeline = format!("{}{}GET  /bad HTTP/1.1\r\nHost: {host}\r\n\r\n{}", ok("one"), ok("two"), ok("never"));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(pipeline.as_bytes()).await.unwrap();
        let mut all = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut all))
            .await
            .expect("the proxy closes the connection after refusing")
            .unwrap();
        let text = String::from_utf8_lossy(&all);
        let statuses: Vec<&str> = text.lines().filter(|l| l.starts_with("HTTP/1.1 ")).collect();
        assert_eq!(statuses, ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"], "{way}: {text}");
        assert!(text.contains("l5d-proxy-error: bad_request"), "{way}: {text}");
        assert_eq!(backend.requests() - before, 2, "{way}: the request after the malformed one never runs");
        assert!(backend.seen().iter().all(|r| r.path() != "/never"), "{way}");
    }
}
