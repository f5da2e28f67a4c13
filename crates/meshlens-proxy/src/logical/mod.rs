//! The logical tier of the outbound path: a request to a service, before a backend and an endpoint are
//! chosen. ServiceProfile routes (classification, timeouts, retries within a budget) and traffic splits
//! apply here; without a profile or split the request goes straight to the service's balancer.

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::forward::forward;
use crate::http::body::ProxyBody;
use crate::http::request_body::RequestBody;
use crate::shutdown::Drain;
use crate::targets::Target;

/// Serves one request to `target`.
pub async fn serve(target: &Arc<Target>, req: Request<Incoming>, grpc: bool, drain: &Drain) -> Response<ProxyBody> {
    forward(&target.balancer, req.map(RequestBody::Stream), grpc, drain).await
}
