//! The tap stream as the CLI reads it: the resource and filter flags `tap` and `top` share, and
//! `GET /api/v1/tap` opened on the control plane and read as [`TapEvent`]s (also for `profile --tap`).

use anyhow::{Context, anyhow};
use clap::Args;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use meshlens_api::tap::{StatusFilter, TapEvent, TapFilter, TapRequest};

use super::client;

/// What to tap: the resource and the filters (Linkerd's flags, plus the response filters).
#[derive(Args, Debug, Clone)]
pub struct TapTargetArgs {
    /// TYPE/NAME or TYPE NAME: deploy, po or ns; `deploy` or `po` alone taps the whole namespace.
    #[arg(required = true, num_args = 1..=2, value_name = "RESOURCE")]
    pub resource: Vec<String>,
    /// The namespace of the resource.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Only requests to this resource: deploy/NAME, po/NAME, svc/NAME or ns/NAME.
    #[arg(long, value_name = "RESOURCE")]
    pub to: Option<String>,
    /// The namespace of the --to resource (default: --namespace).
    #[arg(long, value_name = "NAMESPACE")]
    pub to_namespace: Option<String>,
    /// Only requests with this HTTP method.
    #[arg(long)]
    pub method: Option<String>,
    /// Only requests whose path starts with this prefix.
    #[arg(long)]
    pub path: Option<String>,
    /// Only requests with exactly this :authority.
    #[arg(long)]
    pub authority: Option<String>,
    /// At most this many requests per second, divided among the resource's proxies.
    #[arg(long, default_value_t = 100.0, value_parser = positive)]
    pub max_rps: f64,
    /// Only responses with these HTTP statuses: a code (504), a class (5xx) or a range (500-503),
    /// comma-separated.
    #[arg(long, value_parser = status)]
    pub status: Option<String>,
    /// Only failed requests: HTTP 5xx, a failing grpc-status, a reset, or a response the proxy made.
    #[arg(long)]
    pub failed: bool,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a number greater than 0, got {text:?}")),
    }
}

fn status(text: &str) -> Result<String, String> {
    StatusFilter::parse(text).map(|_| text.to_string())
}

impl TapTargetArgs {
    /// The request and filter for `/api/v1/tap`.
    pub fn request(&self) -> anyhow::Result<(TapRequest, TapFilter)> {
        let resource = match self.resource.as_slice() {
            [one] => one.clone(),
            [kind, name] if !kind.contains('/') => format!("{kind}/{name}"),
            _ => anyhow::bail!("expected one resource: TYPE/NAME, TYPE NAME or TYPE"),
        };
        let request = TapRequest {
            resource,
            namespace: self.namespace.clone(),
            to: self.to.clone(),
            to_namespace: self.to_namespace.clone(),
        };
        let filter = TapFilter {
            method: self.method.clone(),
            path: self.path.clone(),
            authority: self.authority.clone(),
            status: self.status.clone(),
            failed: self.failed,
            max_rps: Some(self.max_rps),
            ..TapFilter::default()
        };
        Ok((request, filter))
    }
}

/// The query string of `/api/v1/tap`: the request keys, then the filter keys.
pub fn query(request: &TapRequest, filter: &TapFilter) -> anyhow::Result<String> {
    let mut q = serde_urlencoded::to_string(request).context("cannot encode the tap request")?;
    let f = serde_urlencoded::to_string(filter).context("cannot encode the tap filter")?;
    if !f.is_empty() {
        q.push('&');
        q.push_str(&f);
    }
    Ok(q)
}

/// An open `/api/v1/tap` stream.
pub struct TapStream {
    body: Incoming,
    buf: Vec<u8>,
}

/// Opens the tap on the control plane at `base`: unreachable, or refused (4xx with the reason), is an error.
pub async fn open(base: &str, request: &TapRequest, filter: &TapFilter) -> anyhow::Result<TapStream> {
    let url = format!("{base}/api/v1/tap?{}", query(request, filter)?);
    let uri: hyper::Uri = url.parse().map_err(|e| anyhow!("invalid control plane URL {base}: {e}"))?;
    let resp = client::request(base, uri).await?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Err(client::api_error(status, &body));
    }
    Ok(TapStream { body: resp.into_body(), buf: Vec::new() })
}

impl TapStream {
    /// The next event; `None` when the control plane ended the stream.
    pub async fn next(&mut self) -> Option<anyhow::Result<TapEvent>> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(serde_json::from_slice(&line).map_err(|e| {
                    anyhow!(
                        "the control plane sent a line that is no tap event ({e}): {}",
                        String::from_utf8_lossy(&line)
                    )
                }));
            }
            match self.body.frame().await? {
                Err(e) => return Some(Err(anyhow!("the tap stream broke: {e}"))),
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
