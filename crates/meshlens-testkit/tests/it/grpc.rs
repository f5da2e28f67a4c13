//! The gRPC test.Echo server and client, directly against each other.

use meshlens_testkit::grpc::EchoRequest;
use meshlens_testkit::{GrpcBackend, GrpcClient};
use tonic::Code;

#[tokio::test]
async fn unary_and_errors() {
    let backend = GrpcBackend::start();
    let client = GrpcClient::connect(backend.addr(), None).await.unwrap();
    assert_eq!(client.unary("hello").await.unwrap(), "hello");

    let req = EchoRequest { fail_code: Code::NotFound as i32, fail_message: "no user".into(), ..Default::default() };
    let status = client.call_unary(req).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::NotFound, "no user"));
    assert_eq!(backend.requests(), 2);
    assert_eq!(backend.seen()[0].path(), "/test.Echo/Unary");
    assert_eq!(backend.seen()[0].header("content-type"), Some("application/grpc"));
}

#[tokio::test]
async fn server_stream_ok_and_error_in_trailers() {
    let backend = GrpcBackend::start();
    let client = GrpcClient::connect(backend.addr(), None).await.unwrap();
    assert_eq!(client.server_stream(3).await.unwrap(), ["item 0", "item 1", "item 2"]);
    assert_eq!(client.server_stream(0).await.unwrap(), Vec::<String>::new());

    let req = EchoRequest { message: "m".into(), count: 2, fail_code: Code::Unavailable as i32, ..Default::default() };
    let (items, end) = client.server_stream_collect(req).await;
    assert_eq!(items, ["m 0", "m 1"]);
    assert_eq!(end.unwrap_err().code(), Code::Unavailable);
}

#[tokio::test]
async fn authority_override_reaches_the_server() {
    let backend = GrpcBackend::start();
    let authority = "users.prod.svc.cluster.local:80";
    let client = GrpcClient::connect(backend.addr(), Some(authority)).await.unwrap();
    let reply = client.call_unary(EchoRequest { message: "x".into(), ..Default::default() }).await.unwrap();
    assert_eq!(reply.get_ref().authority, authority);
    assert_eq!(backend.seen()[0].authority(), Some(authority));

    let default = GrpcClient::connect(backend.addr(), None).await.unwrap();
    let reply = default.call_unary(EchoRequest::default()).await.unwrap();
    assert_eq!(reply.get_ref().authority, backend.addr().to_string());
}

#[tokio::test]
async fn lazy_client_to_a_closed_port_is_unavailable() {
    let backend = GrpcBackend::start();
    let addr = backend.addr();
    backend.stop().await;
    let client = GrpcClient::connect_lazy(addr, None);
    assert_eq!(client.unary("x").await.unwrap_err().code(), Code::Unavailable);
}
