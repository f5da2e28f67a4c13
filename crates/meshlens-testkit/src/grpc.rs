//! A real gRPC `test.Echo` server and client (tonic 0.14 + prost 0.14, hand-written: no build.rs, no protoc).
//!
//! The service, as it would read in a `.proto`:
//!
//! ```proto
//! package test;
//! service Echo {
//!   rpc Unary(EchoRequest) returns (EchoReply);
//!   rpc ServerStream(EchoRequest) returns (stream EchoReply);
//! }
//! message EchoRequest { string message = 1; int32 fail_code = 2; string fail_message = 3;
//!                       uint32 count = 4; uint32 delay_ms = 5; }
//! message EchoReply { string message = 1; string authority = 2; }
//! ```
//!
//! The server side is what tonic's codegen would produce: a `tower::Service<http::Request<B>>` that
//! dispatches on the path to `tonic::server::Grpc::{unary, server_streaming}`. It is served by
//! hyper-util directly, so tonic only needs its `channel` feature (for the client).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream;
use http::uri::PathAndQuery;
use hyper::body::Incoming;
use tonic::server::{Grpc, ServerStreamingService, UnaryService};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, IntoRequest, Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

use crate::BoxError;
use crate::backend::{Ledger, SeenRequest, serve_http};
use crate::tcp::{Server, loopback_any};

/// Path of the unary method.
pub const UNARY_PATH: &str = "/test.Echo/Unary";
/// Path of the server-streaming method.
pub const SERVER_STREAM_PATH: &str = "/test.Echo/ServerStream";

// === Messages ===

/// Request of both methods.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// Echoed back (`Unary`), or the prefix of each streamed message (`"{message} {i}"`).
    #[prost(string, tag = "1")]
    pub message: String,
    /// Non-zero: fail with this gRPC code (`Unary`: instead of replying; `ServerStream`: in the
    /// trailers, after `count` messages).
    #[prost(int32, tag = "2")]
    pub fail_code: i32,
    /// The `grpc-message` of the failure.
    #[prost(string, tag = "3")]
    pub fail_message: String,
    /// `ServerStream`: how many messages to send.
    #[prost(uint32, tag = "4")]
    pub count: u32,
    /// Wait this long before answering (for deadline and timeout tests).
    #[prost(uint32, tag = "5")]
    pub delay_ms: u32,
}

/// Reply of both methods.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    #[prost(string, tag = "1")]
    pub message: String,
    /// The `:authority` the server received.
    #[prost(string, tag = "2")]
    pub authority: String,
}

// === Server ===

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The `test.Echo` service as a tower service (the shape tonic's codegen produces).
#[derive(Clone, Debug, Default)]
pub struct EchoService {
    _priv: (),
}

fn failure(req: &EchoRequest) -> Option<Status> {
    (req.fail_code != 0).then(|| {
        let message = if req.fail_message.is_empty() { "requested failure" } else { &req.fail_message };
        Status::new(Code::from_i32(req.fail_code), message)
    })
}

async fn delay(req: &EchoRequest) {
    if req.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(req.delay_ms.into())).await;
    }
}

struct Unary {
    authority: String,
}

impl UnaryService<EchoRequest> for Unary {
    type Response = EchoReply;
    type Future = BoxFuture<Result<Response<EchoReply>, Status>>;

    fn call(&mut self, request: Request<EchoRequest>) -> Self::Future {
        let authority = self.authority.clone();
        Box::pin(async move {
            let req = request.into_inner();
            delay(&req).await;
            match failure(&req) {
                Some(status) => Err(status),
                None => Ok(Response::new(EchoReply { message: req.message, authority })),
            }
        })
    }
}

struct ServerStream {
    authority: String,
}

impl ServerStreamingService<EchoRequest> for ServerStream {
    type Response = EchoReply;
    type ResponseStream = stream::Iter<std::vec::IntoIter<Result<EchoReply, Status>>>;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<EchoRequest>) -> Self::Future {
        let authority = self.authority.clone();
        Box::pin(async move {
            let req = request.into_inner();
            delay(&req).await;
            let mut items: Vec<_> = (0..req.count)
                .map(|i| Ok(EchoReply { message: format!("{} {i}", req.message), authority: authority.clone() }))
                .collect();
            items.extend(failure(&req).map(Err));
            Ok(Response::new(stream::iter(items)))
        })
    }
}

impl<B> tower_service::Service<http::Request<B>> for EchoService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<BoxError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .or_else(|| req.headers().get("host").and_then(|h| h.to_str().ok()).map(String::from))
            .unwrap_or_default();
        match req.uri().path() {
            UNARY_PATH => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
                Ok(grpc.unary(Unary { authority }, req).await)
            }),
            SERVER_STREAM_PATH => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
                Ok(grpc.server_streaming(ServerStream { authority }, req).await)
            }),
            path => {
                let status = Status::unimplemented(format!("no method {path}"));
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

/// A gRPC server for `test.Echo` on `127.0.0.1:0` (h2c). Stopped when dropped.
///
/// ```no_run
/// # async fn t() {
/// use meshlens_testkit::{GrpcBackend, GrpcClient};
/// let backend = GrpcBackend::start();
/// let client = GrpcClient::connect(backend.addr(), None).await.unwrap();
/// assert_eq!(client.unary("hi").await.unwrap(), "hi");
/// # }
/// ```
#[derive(Debug)]
pub struct GrpcBackend {
    server: Server,
    ledger: Arc<Ledger>,
}

impl GrpcBackend {
    /// Starts on `127.0.0.1:0`. Must be called inside a tokio runtime.
    pub fn start() -> Self {
        Self::start_on(loopback_any())
    }

    /// Starts on a given address (e.g. the port of a stopped backend).
    pub fn start_on(addr: SocketAddr) -> Self {
        let ledger = Arc::new(Ledger::default());
        let server = Server::start(addr, {
            let ledger = ledger.clone();
            move |stream, peer, tasks| {
                let ledger = ledger.clone();
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    ledger.record(SeenRequest::new(&req, peer));
                    tower_service::Service::call(&mut EchoService::default(), req)
                });
                serve_http(stream, tasks, service)
            }
        });
        Self { server, ledger }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Requests (calls) seen so far.
    pub fn requests(&self) -> usize {
        self.ledger.requests()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    /// Every request seen so far (path, `:authority`, headers such as `grpc-timeout`), oldest first.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.ledger.seen()
    }

    /// Stops and waits until the port and all connections are closed.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

// === Client ===

/// A `test.Echo` client over a tonic [`Channel`]. Cheap to clone; calls may run concurrently.
#[derive(Clone, Debug)]
pub struct GrpcClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl GrpcClient {
    /// An endpoint that connects to `addr` and sends `:authority` = `authority` (default: `addr`).
    ///
    /// To reach `users.prod.svc.cluster.local:80` through a proxy's upstream listener, pass the
    /// listener's address and that authority. Customize (timeouts, …) and use [`Self::from_channel`].
    pub fn endpoint(addr: SocketAddr, authority: Option<&str>) -> Endpoint {
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("valid address URI");
        match authority {
            Some(authority) => {
                endpoint.origin(format!("http://{authority}").parse().expect("authority must be host[:port]"))
            }
            None => endpoint,
        }
    }

    /// Connects now; fails if nothing accepts at `addr`.
    pub async fn connect(addr: SocketAddr, authority: Option<&str>) -> Result<Self, tonic::transport::Error> {
        Ok(Self::from_channel(Self::endpoint(addr, authority).connect().await?))
    }

    /// Connects on first use (errors then surface as `UNAVAILABLE` statuses of the calls).
    pub fn connect_lazy(addr: SocketAddr, authority: Option<&str>) -> Self {
        Self::from_channel(Self::endpoint(addr, authority).connect_lazy())
    }

    /// Wraps an existing channel.
    pub fn from_channel(channel: Channel) -> Self {
        Self { grpc: tonic::client::Grpc::new(channel) }
    }

    async fn ready(&self) -> Result<tonic::client::Grpc<Channel>, Status> {
        let mut grpc = self.grpc.clone();
        grpc.ready().await.map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
        Ok(grpc)
    }

    /// `Unary` with `message`; returns the echoed message.
    pub async fn unary(&self, message: &str) -> Result<String, Status> {
        let req = EchoRequest { message: message.to_owned(), ..EchoRequest::default() };
        Ok(self.call_unary(req).await?.into_inner().message)
    }

    /// `Unary` with a full request (failure code, delay) and optional metadata or timeout, e.g.
    /// `let mut r = tonic::Request::new(req); r.set_timeout(d);`.
    pub async fn call_unary(&self, request: impl IntoRequest<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let codec = ProstCodec::<EchoRequest, EchoReply>::default();
        let path = PathAndQuery::from_static(UNARY_PATH);
        self.ready().await?.unary(request.into_request(), path, codec).await
    }

    /// `ServerStream` of `n` messages (`"item 0"` … `"item {n-1}"`), collected.
    pub async fn server_stream(&self, n: u32) -> Result<Vec<String>, Status> {
        let req = EchoRequest { message: "item".into(), count: n, ..EchoRequest::default() };
        let (items, end) = self.server_stream_collect(req).await;
        end.map(|()| items)
    }

    /// `ServerStream` with a full request; returns the messages received and how the stream ended
    /// (`Err` with the status from the trailers, or from the headers if the call failed early).
    pub async fn server_stream_collect(
        &self,
        request: impl IntoRequest<EchoRequest>,
    ) -> (Vec<String>, Result<(), Status>) {
        let mut stream = match self.call_server_stream(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return (Vec::new(), Err(status)),
        };
        let mut items = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(reply)) => items.push(reply.message),
                Ok(None) => return (items, Ok(())),
                Err(status) => return (items, Err(status)),
            }
        }
    }

    /// `ServerStream`, returning the raw response stream.
    pub async fn call_server_stream(
        &self,
        request: impl IntoRequest<EchoRequest>,
    ) -> Result<Response<Streaming<EchoReply>>, Status> {
        let codec = ProstCodec::<EchoRequest, EchoReply>::default();
        let path = PathAndQuery::from_static(SERVER_STREAM_PATH);
        self.ready().await?.server_streaming(request.into_request(), path, codec).await
    }
}
