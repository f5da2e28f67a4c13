//! gRPC through the proxy with a real client and server (tonic): unary and server-streaming calls give
//! the same results as calling the server directly, error statuses arrive as sent (also mid-stream, in
//! the trailers), an `--upstream` listener carries calls without any proxy configuration in the client,
//! one client connection spreads over every endpoint, and a service whose endpoints are all down
//! answers `UNAVAILABLE` (a gRPC response from the proxy, not a broken connection).

use std::time::Duration;

use futures_util::future::join_all;
use meshlens_testkit::grpc::EchoRequest;
use meshlens_testkit::{GrpcBackend, GrpcClient, find};

use crate::support::*;

/// gRPC status codes (tonic's `Code` as `i32`: this crate does not depend on tonic).
const NOT_FOUND: i32 = 5;
const FAILED_PRECONDITION: i32 = 9;
const UNAVAILABLE: i32 = 14;

fn failing(message: &str, count: u32, code: i32, why: &str) -> EchoRequest {
    EchoRequest { message: message.into(), count, fail_code: code, fail_message: why.into(), ..EchoRequest::default() }
}

#[tokio::test]
async fn unary_and_server_streaming_match_a_direct_call() {
    let backend = GrpcBackend::start();
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[backend.addr()])])).await;
    let direct = GrpcClient::connect(backend.addr(), None).await.unwrap();

    for authority in ["users.default.svc.cluster.local:80", "users"] {
        let client = GrpcClient::connect(proxy.listen().outbound, Some(authority)).await.unwrap();

        let via = client.unary("hello mesh").await.unwrap();
        assert_eq!(via, direct.unary("hello mesh").await.unwrap(), "{authority}: unary");

        let via = client.server_stream(25).await.unwrap();
        assert_eq!(via, direct.server_stream(25).await.unwrap(), "{authority}: server streaming");
        assert_eq!(via.len(), 25);

        // A failure status from the server arrives with its code and message.
        let req = failing("x", 0, NOT_FOUND, "no such user");
        let via = client.call_unary(req.clone()).await.unwrap_err();
        let dir = direct.call_unary(req).await.unwrap_err();
        assert_eq!(i32::from(via.code()), NOT_FOUND, "{authority}: {via:?}");
        assert_eq!((via.code(), via.message()), (dir.code(), dir.message()), "{authority}: unary failure");
        assert!(via.metadata().get("l5d-proxy-error").is_none(), "{authority}: the server's error, not the proxy's");

        // Mid-stream: three messages, then the status in the trailers.
        let req = failing("item", 3, FAILED_PRECONDITION, "stopped after three");
        let (items, end) = client.server_stream_collect(req.clone()).await;
        let (direct_items, direct_end) = direct.server_stream_collect(req).await;
        assert_eq!(items, ["item 0", "item 1", "item 2"], "{authority}");
        assert_eq!(items, direct_items);
        let (status, direct_status) = (end.unwrap_err(), direct_end.unwrap_err());
        assert_eq!(i32::from(status.code()), FAILED_PRECONDITION, "{authority}: {status:?}");
        assert_eq!((status.code(), status.message()), (direct_status.code(), direct_status.message()));
    }
    assert_eq!(backend.requests(), 16, "8 calls through the proxy, 8 direct");
}

#[tokio::test]
async fn grpc_through_an_upstream_listener() {
    let backend = GrpcBackend::start();
    let mut config = config();
    config.upstreams = vec!["users:80=127.0.0.1:0".parse().unwrap()];
    let (proxy, _d) = start(config, &snapshot(vec![service("users", "default", &[backend.addr()])])).await;
    let upstream = proxy.listen().upstreams["users:80"];

    // The client knows nothing of the mesh: whatever authority it sends, the listener means `users`.
    for authority in [None, Some("anything.example:1234")] {
        let client = GrpcClient::connect(upstream, authority).await.unwrap();
        assert_eq!(client.unary("via upstream").await.unwrap(), "via upstream", "{authority:?}");
        assert_eq!(client.server_stream(3).await.unwrap(), ["item 0", "item 1", "item 2"], "{authority:?}");
        let (_, end) = client.server_stream_collect(failing("item", 1, NOT_FOUND, "gone")).await;
        assert_eq!(i32::from(end.unwrap_err().code()), NOT_FOUND, "{authority:?}");
    }
    assert_eq!(backend.requests(), 6);
}

#[tokio::test]
async fn one_client_connection_spreads_over_every_endpoint() {
    let backends: Vec<GrpcBackend> = (0..3).map(|_| GrpcBackend::start()).collect();
    let addrs: Vec<_> = backends.iter().map(GrpcBackend::addr).collect();
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &addrs)])).await;
    let client = GrpcClient::connect(proxy.listen().outbound, Some("users")).await.unwrap();

    // 60 calls in flight together on the one HTTP/2 connection (a short server delay keeps them so).
    let calls = (0..60).map(|i| {
        let client = client.clone();
        async move {
            let req = EchoRequest { message: format!("call {i}"), delay_ms: 20, ..EchoRequest::default() };
            client.call_unary(req).await.map(|r| r.into_inner().message)
        }
    });
    let replies = join_all(calls).await;
    for (i, reply) in replies.into_iter().enumerate() {
        assert_eq!(reply.unwrap(), format!("call {i}"));
    }

    let counts: Vec<usize> = backends.iter().map(GrpcBackend::requests).collect();
    assert_eq!(counts.iter().sum::<usize>(), 60, "{counts:?}");
    assert!(counts.iter().all(|n| *n > 0), "every endpoint gets some of the calls: {counts:?}");
    let samples = metrics(&proxy).await;
    let opened = find(&samples, "tcp_open_total", &[("direction", "outbound"), ("peer", "src")]);
    assert_eq!(opened, Some(1.0), "all calls came over one client connection");
}

#[tokio::test]
async fn concurrent_calls_share_one_connection_per_endpoint() {
    let backend = GrpcBackend::start();
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[backend.addr()])])).await;
    let client = GrpcClient::connect(proxy.listen().outbound, Some("users")).await.unwrap();

    // A burst of 50 calls as the first traffic to the endpoint: HTTP/2 multiplexes them on one connection.
    let calls = (0..50).map(|i| {
        let client = client.clone();
        async move {
            let req = EchoRequest { message: format!("call {i}"), delay_ms: 20, ..EchoRequest::default() };
            client.call_unary(req).await.map(|r| r.into_inner().message)
        }
    });
    for (i, reply) in join_all(calls).await.into_iter().enumerate() {
        assert_eq!(reply.unwrap(), format!("call {i}"));
    }
    assert_eq!(backend.requests(), 50);
    assert_eq!(backend.connections(), 1, "one multiplexed HTTP/2 connection to the endpoint");
}

#[tokio::test]
async fn every_endpoint_down_gives_unavailable() {
    let down: Vec<GrpcBackend> = (0..2).map(|_| GrpcBackend::start()).collect();
    let addrs: Vec<_> = down.iter().map(GrpcBackend::addr).collect();
    for backend in down {
        backend.stop().await;
    }
    let mut config = config();
    config.timeouts.failfast = Duration::from_millis(500);
    let (proxy, _d) = start(config, &snapshot(vec![service("users", "default", &addrs)])).await;
    let client = GrpcClient::connect(proxy.listen().outbound, Some("users")).await.unwrap();

    // Connection refused, then failfast, then load shedding: each is UNAVAILABLE, made by the proxy.
    for attempt in 1..=4 {
        let status = client.unary("anyone?").await.unwrap_err();
        assert_eq!(i32::from(status.code()), UNAVAILABLE, "call {attempt}: {status:?}");
        let reason = status.metadata().get("l5d-proxy-error").and_then(|v| v.to_str().ok());
        assert!(
            matches!(reason, Some("connect_error" | "failfast" | "load_shed")),
            "call {attempt}: a gRPC response from the proxy saying why, got {status:?}"
        );
    }
    let (items, end) = client.server_stream_collect(failing("item", 3, 0, "")).await;
    assert!(items.is_empty());
    assert_eq!(i32::from(end.unwrap_err().code()), UNAVAILABLE, "server streaming");
}
