//! Calls to other services, the way an app in the mesh makes them: through `HTTP_PROXY` (absolute-form
//! requests to the sidecar's outbound listener), or to the sidecar's upstream listener for the service
//! (`MESHLENS_UPSTREAM_<SERVICE>`), or straight to the host. Connections are pooled and kept alive.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::app::Via;

/// How one call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    /// The client's own timeout fired.
    Timeout,
    /// No response (refused, reset, malformed).
    Error(String),
}

#[derive(Clone, Debug)]
pub struct CallResult {
    pub service: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
    /// The `l5d-proxy-error` header of the response, if any.
    pub proxy_error: Option<String>,
}

impl CallResult {
    pub fn ok(&self) -> bool {
        matches!(self.outcome, Outcome::Status(s) if s < 400)
    }
}

/// Where calls go, read once from the environment.
#[derive(Clone)]
pub struct Downstream {
    no_proxy: Vec<String>,
    upstreams: Arc<HashMap<String, SocketAddr>>,
    via_proxy: Option<Client<Connector, Full<Bytes>>>,
    direct: Client<Connector, Full<Bytes>>,
}

impl Downstream {
    /// From HTTP_PROXY/http_proxy, NO_PROXY/no_proxy and MESHLENS_UPSTREAM_* variables.
    pub fn from_env() -> Self {
        let var = |a: &str, b: &str| std::env::var(a).or_else(|_| std::env::var(b)).ok().filter(|v| !v.is_empty());
        let proxy = var("HTTP_PROXY", "http_proxy").and_then(|p| parse_proxy(&p));
        let no_proxy = var("NO_PROXY", "no_proxy")
            .map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let upstreams = std::env::vars()
            .filter_map(|(k, v)| Some((k.strip_prefix("MESHLENS_UPSTREAM_")?.to_owned(), v.parse().ok()?)))
            .collect();
        Self::new(proxy, no_proxy, upstreams)
    }

    pub fn new(proxy: Option<SocketAddr>, no_proxy: Vec<String>, upstreams: HashMap<String, SocketAddr>) -> Self {
        let build =
            |c: Connector| Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(c);
        Downstream {
            no_proxy,
            upstreams: Arc::new(upstreams),
            via_proxy: proxy.map(|p| build(Connector::Proxy(p))),
            direct: build(Connector::Direct),
        }
    }

    /// Sends one request to `service` (an authority: `name[.ns][:port]`) and reads the whole response.
    pub async fn call(
        &self,
        service: &str,
        method: http::Method,
        path: &str,
        body: Option<&str>,
        via: Via,
        timeout: Duration,
    ) -> CallResult {
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, self.send(service, method, path, body, via)).await;
        let (outcome, proxy_error) = match result {
            Err(_) => (Outcome::Timeout, None),
            Ok(Err(e)) => (Outcome::Error(e), None),
            Ok(Ok((status, proxy_error))) => (Outcome::Status(status), proxy_error),
        };
        CallResult { service: service.to_owned(), outcome, elapsed: started.elapsed(), proxy_error }
    }

    async fn send(
        &self,
        service: &str,
        method: http::Method,
        path: &str,
        body: Option<&str>,
        via: Via,
    ) -> Result<(u16, Option<String>), String> {
        let host = service.rsplit_once(':').map_or(service, |(h, _)| h);
        let upstream = || {
            let name = host.split('.').next().unwrap_or(host);
            let key: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
            self.upstreams.get(&key).copied()
        };
        let proxied = self.via_proxy.as_ref().filter(|_| !self.no_proxy(host));
        let (client, uri) = match via {
            Via::Proxy => match &self.via_proxy {
                Some(c) => (c, format!("http://{service}{path}")),
                None => return Err("via proxy, but HTTP_PROXY is not set".into()),
            },
            Via::Upstream => match upstream() {
                Some(addr) => (&self.direct, format!("http://{addr}{path}")),
                None => return Err(format!("via upstream, but no MESHLENS_UPSTREAM_ variable names {service}")),
            },
            Via::Direct => (&self.direct, format!("http://{service}{path}")),
            Via::Auto => match (proxied, upstream()) {
                (Some(c), _) => (c, format!("http://{service}{path}")),
                (None, Some(addr)) => (&self.direct, format!("http://{addr}{path}")),
                (None, None) => (&self.direct, format!("http://{service}{path}")),
            },
        };
        let mut req = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(http::header::HOST, service)
            .header(http::header::USER_AGENT, "meshlens-demo-app");
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
            .map_err(|e| format!("bad request {uri}: {e}"))?;
        let rsp = client.request(req).await.map_err(|e| error_chain(&e))?;
        let status = rsp.status().as_u16();
        let proxy_error = rsp.headers().get("l5d-proxy-error").and_then(|v| v.to_str().ok()).map(str::to_owned);
        rsp.into_body().collect().await.map_err(|e| format!("reading the response body: {e}"))?;
        Ok((status, proxy_error))
    }

    fn no_proxy(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.no_proxy.iter().any(|n| {
            n == "*"
                || host == *n
                || n.strip_prefix('.').map_or(host.ends_with(&format!(".{n}")), |s| host.ends_with(s))
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// `http://127.0.0.1:4140`, `127.0.0.1:4140`, `http://localhost:4140/`.
pub fn parse_proxy(p: &str) -> Option<SocketAddr> {
    let hostport = p.trim().trim_start_matches("http://").trim_end_matches('/');
    hostport.parse().ok().or_else(|| {
        use std::net::ToSocketAddrs;
        hostport.to_socket_addrs().ok()?.next()
    })
}

/// Connects to the proxy for every request (marking the connection proxied, so requests are sent in
/// absolute form), or to the request's own host.
#[derive(Clone, Debug)]
pub enum Connector {
    Proxy(SocketAddr),
    Direct,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Conn>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (stream, proxied) = match this {
                Connector::Proxy(addr) => (TcpStream::connect(addr).await?, true),
                Connector::Direct => {
                    let host = uri.host().ok_or_else(|| io::Error::other("no host in the URI"))?;
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    let port = uri.port_u16().unwrap_or(80);
                    (TcpStream::connect((host, port)).await?, false)
                }
            };
            let _ = stream.set_nodelay(true);
            Ok(Conn { io: TokioIo::new(stream), proxied })
        })
    }
}

/// A client connection that knows whether it leads to a proxy.
pub struct Conn {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new().proxy(self.proxied)
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_addresses_and_no_proxy() {
        assert_eq!(parse_proxy("http://127.0.0.1:4140"), Some("127.0.0.1:4140".parse().unwrap()));
        assert_eq!(parse_proxy("127.0.0.1:4140/"), Some("127.0.0.1:4140".parse().unwrap()));
        let d = Downstream::new(None, vec!["localhost".into(), ".internal".into()], HashMap::new());
        assert!(d.no_proxy("localhost") && d.no_proxy("db.internal"));
        assert!(!d.no_proxy("frontend"));
    }
}
