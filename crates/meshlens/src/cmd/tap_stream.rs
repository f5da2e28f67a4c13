//! Reads the control plane's tap stream (`GET /api/v1/tap?…`, NDJSON [`TapEvent`]s) for a while.

use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshlens_api::tap::{ProxyDirection, TapEvent};
use tokio::time::Instant;

use super::client::encode;

/// How long the control plane may take to answer before the stream counts as unreachable.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A tap of one resource: the `/api/v1/tap` query (keys of `meshlens_api::tap::{TapRequest, TapFilter}`).
#[derive(Clone, Debug)]
pub struct TapQuery {
    /// `deploy/NAME`, `po/NAME`, `ns/NAME`…
    pub resource: String,
    pub namespace: String,
    pub direction: Option<ProxyDirection>,
    pub max_rps: f64,
}

impl TapQuery {
    /// `/api/v1/tap?resource=…&namespace=…&direction=…&maxRps=…`.
    pub fn path_and_query(&self) -> String {
        let mut q = format!("/api/v1/tap?resource={}&namespace={}", encode(&self.resource), encode(&self.namespace));
        if let Some(d) = self.direction {
            q.push_str(&format!("&direction={}", d.as_str()));
        }
        q.push_str(&format!("&maxRps={}", self.max_rps));
        q
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

/// Taps `query` on the control plane at `base` for `duration`, handing every event to `each`. Lines the
/// control plane sends as `{"error": …}` are reported on stderr; any other line that is not an event is an
/// error.
pub async fn tap_for(
    base: &str,
    query: &TapQuery,
    duration: Duration,
    mut each: impl FnMut(TapEvent),
) -> anyhow::Result<TapEnd> {
    let started = Instant::now();
    let deadline = started + duration;
    let url = format!("{base}{}", query.path_and_query());
    let uri: hyper::Uri = url.parse().map_err(|e| anyhow!("invalid control plane URL {base}: {e}"))?;
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let unreachable = |e: &dyn std::fmt::Display| {
        anyhow!("cannot reach the control plane at {base}: {e} — is `meshlens up` or `meshlens demo` running?")
    };
    let resp = tokio::time::timeout(ANSWER_TIMEOUT, client.get(uri))
        .await
        .map_err(|_| unreachable(&"timed out"))?
        .map_err(|e| unreachable(&innermost(&e)))?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let bytes = tokio::time::timeout(ANSWER_TIMEOUT, body.collect())
            .await
            .map_err(|_| unreachable(&"timed out"))?
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        let msg = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
        return Err(anyhow!("the control plane answered {status}: {msg}"));
    }

    let mut pending = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Ok(TapEnd::Elapsed),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|e| anyhow!("the tap stream from {base} broke: {}", innermost(&e)))?,
        };
        let Ok(data) = frame.into_data() else { continue };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line = pending.split_to(end + 1);
            handle_line(&line[..end], &url, &mut each)?;
        }
    }
    if pending.has_remaining() {
        handle_line(&pending, &url, &mut each)?;
    }
    Ok(TapEnd::Closed(started.elapsed()))
}

fn handle_line(line: &[u8], url: &str, each: &mut impl FnMut(TapEvent)) -> anyhow::Result<()> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(());
    }
    match serde_json::from_slice::<TapEvent>(line) {
        Ok(event) => each(event),
        Err(e) => {
            let value: serde_json::Value =
                serde_json::from_slice(line).with_context(|| format!("unexpected line in the tap stream of {url}"))?;
            match value["error"].as_str() {
                Some(error) => eprintln!("tap: {error}"),
                None => return Err(anyhow!("unexpected event in the tap stream of {url}: {e}")),
            }
        }
    }
    Ok(())
}

/// The innermost cause says it best ("Connection refused (os error 111)").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    msg
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
        let path = q.path_and_query();
        assert_eq!(path, "/api/v1/tap?resource=deploy/web&namespace=prod&direction=inbound&maxRps=100");
        // Every key is one of the contract's: the request's or the filter's.
        let (mut request, mut filter) = (serde_json::Map::new(), serde_json::Map::new());
        for (k, v) in path.split_once('?').unwrap().1.split('&').filter_map(|kv| kv.split_once('=')) {
            let value = v.parse::<f64>().map_or_else(|_| serde_json::json!(v), |n| serde_json::json!(n));
            let to = if matches!(k, "resource" | "namespace") { &mut request } else { &mut filter };
            to.insert(k.to_string(), value);
        }
        let request: meshlens_api::tap::TapRequest = serde_json::from_value(request.into()).unwrap();
        let filter: meshlens_api::tap::TapFilter = serde_json::from_value(filter.into()).unwrap();
        assert_eq!((request.resource.as_str(), request.namespace.as_str()), ("deploy/web", "prod"));
        assert_eq!(filter.direction.as_deref(), Some("inbound"));
        assert_eq!(filter.max_rps, Some(100.0));
    }
}
