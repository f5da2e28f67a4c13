//! The tap stream as the CLI reads it: the resource and filter flags `tap` and `top` share, and
//! `GET /api/v1/tap` opened on the control plane and read as [`TapEvent`]s ([`tap_for`]: for a while, as
//! `profile --tap` reads it).

use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use http_body_util::BodyExt;
use meshlens_api::tap::{ProxyDirection, StatusFilter, TapEvent, TapFilter, TapRequest};
use tokio::time::Instant;

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
    /// Only requests with this scheme: http or https.
    ///
    /// Apps send requests through the mesh in origin form (`GET /path`), which is http; https only for
    /// requests in absolute form (`GET https://…`).
    #[arg(long, value_parser = ["http", "https"], ignore_case = true)]
    pub scheme: Option<String>,
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
    /// Only instances whose labels match this selector (Kubernetes syntax, as `stat -l`).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
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
        let resource = client::resource(&self.resource)
            .ok_or_else(|| anyhow!("expected one resource: TYPE/NAME, TYPE NAME or TYPE"))?;
        let request = TapRequest {
            resource,
            namespace: self.namespace.clone(),
            to: self.to.clone(),
            to_namespace: self.to_namespace.clone(),
            selector: super::stat::checked_selector(self.selector.as_deref())?,
        };
        let filter = TapFilter {
            method: self.method.clone(),
            path: self.path.clone(),
            authority: self.authority.clone(),
            scheme: self.scheme.as_ref().map(|s| s.to_ascii_lowercase()),
            status: self.status.clone(),
            failed: self.failed,
            max_rps: Some(self.max_rps),
            ..TapFilter::default()
        };
        Ok((request, filter))
    }
}

/// The query string of `/api/v1/tap`: the request keys, then the filter keys (numbers without a needless
/// `.0`).
pub fn query(request: &TapRequest, filter: &TapFilter) -> anyhow::Result<String> {
    let mut pairs = Vec::new();
    for part in [serde_urlencoded::to_string(request)?, serde_urlencoded::to_string(filter)?] {
        for (key, value) in serde_urlencoded::from_str::<Vec<(String, String)>>(&part)? {
            // `100.0` → `100`: the float as Rust prints it.
            let value = value.parse::<f64>().ok().filter(|_| key == "maxRps").map_or(value, |f| f.to_string());
            pairs.push((key, value));
        }
    }
    Ok(client::query(&pairs))
}

/// An open `/api/v1/tap` stream.
pub struct TapStream {
    lines: client::NdjsonLines,
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
    Ok(TapStream { lines: client::NdjsonLines::new(resp.into_body()) })
}

impl TapStream {
    /// The next event; `None` when the control plane ended the stream.
    pub async fn next(&mut self) -> Option<anyhow::Result<TapEvent>> {
        loop {
            let line = match self.lines.next().await? {
                Ok(line) => line,
                Err(e) => return Some(Err(anyhow!("tap: {e}"))),
            };
            match serde_json::from_slice::<TapEvent>(&line) {
                Ok(event) => return Some(Ok(event)),
                // `{"error": …}`: a problem the control plane reports in the stream.
                Err(e) => match serde_json::from_slice::<serde_json::Value>(&line) {
                    Ok(v) if v["error"].is_string() => eprintln!("tap: {}", v["error"].as_str().unwrap_or_default()),
                    _ => {
                        let line = String::from_utf8_lossy(&line);
                        return Some(Err(anyhow!("the control plane sent a line that is no tap event ({e}): {line}")));
                    }
                },
            }
        }
    }
}

/// A tap of one resource for [`tap_for`].
#[derive(Clone, Debug)]
pub struct TapQuery {
    /// `deploy/NAME`, `po/NAME`, `ns/NAME`…
    pub resource: String,
    pub namespace: String,
    pub direction: Option<ProxyDirection>,
    pub max_rps: f64,
}

impl TapQuery {
    fn request(&self) -> (TapRequest, TapFilter) {
        let request =
            TapRequest { resource: self.resource.clone(), namespace: self.namespace.clone(), ..TapRequest::default() };
        let filter = TapFilter {
            direction: self.direction.map(|d| d.as_str().to_string()),
            max_rps: Some(self.max_rps),
            ..TapFilter::default()
        };
        (request, filter)
    }
}

/// How a timed tap ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapEnd {
    /// The whole duration passed.
    Elapsed,
    /// The control plane closed the stream first, after this long.
    Closed(Duration),
}

/// Taps `query` on the control plane at `base` for `duration`, handing every event to `each`.
pub async fn tap_for(
    base: &str,
    query: &TapQuery,
    duration: Duration,
    mut each: impl FnMut(TapEvent),
) -> anyhow::Result<TapEnd> {
    let started = Instant::now();
    let deadline = started + duration;
    let (request, filter) = query.request();
    let mut stream = open(base, &request, &filter).await?;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Ok(TapEnd::Elapsed),
            Ok(None) => return Ok(TapEnd::Closed(started.elapsed())),
            Ok(Some(event)) => each(event?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_uses_the_tap_contract_keys() {
        let q = TapQuery {
            resource: "deploy/web".into(),
            namespace: "prod".into(),
            direction: Some(ProxyDirection::Inbound),
            max_rps: 100.0,
        };
        let (request, filter) = q.request();
        let path = format!("/api/v1/tap?{}", query(&request, &filter).unwrap());
        assert_eq!(path, "/api/v1/tap?resource=deploy%2Fweb&namespace=prod&direction=inbound&maxRps=100");
        // Every key is one of the contract's: the request's or the filter's.
        let (mut request, mut filter) = (serde_json::Map::new(), serde_json::Map::new());
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(path.split_once('?').unwrap().1).unwrap();
        for (k, v) in pairs {
            let value = v.parse::<f64>().map_or_else(|_| serde_json::json!(v), |n| serde_json::json!(n));
            let to = if matches!(k.as_str(), "resource" | "namespace") { &mut request } else { &mut filter };
            to.insert(k, value);
        }
        let request: meshlens_api::tap::TapRequest = serde_json::from_value(request.into()).unwrap();
        let filter: meshlens_api::tap::TapFilter = serde_json::from_value(filter.into()).unwrap();
        assert_eq!((request.resource.as_str(), request.namespace.as_str()), ("deploy/web", "prod"));
        assert_eq!(filter.direction.as_deref(), Some("inbound"));
        assert_eq!(filter.max_rps, Some(100.0));
    }
}
