//! Notifications: each alert that fires or resolves is POSTed to every receiver of `spec.alerts` in
//! Alertmanager's webhook format (version 4), from a task of its own, a few bounded retries each, so a
//! slow or dead receiver never holds up evaluation.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use meshlens_api::alerts::{Alert, AlertState, Receiver};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

/// Attempts per receiver and notification.
const ATTEMPTS: u32 = 3;
/// Each attempt must be answered within this.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Notifications waiting to be sent; beyond it new ones are dropped (and logged).
pub(crate) const QUEUE: usize = 256;
/// Receivers sent to at once.
const CONCURRENCY: usize = 8;

/// One alert to tell the receivers about.
pub(crate) struct Notice {
    pub alert: Alert,
    pub receivers: Vec<Receiver>,
    /// The control plane's API, for `externalURL` and `generatorURL`.
    pub external_url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    version: &'static str,
    group_key: String,
    truncated_alerts: u32,
    status: &'static str,
    receiver: &'a str,
    group_labels: BTreeMap<&'static str, &'a str>,
    common_labels: &'a BTreeMap<String, String>,
    common_annotations: &'a BTreeMap<&'static str, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    alerts: [WebhookAlert<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert<'a> {
    status: &'static str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<&'static str, String>,
    starts_at: &'a str,
    ends_at: &'a str,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: String,
}

/// Alertmanager's zero time: an alert that has not ended.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The JSON body for `receiver`.
pub(crate) fn payload(alert: &Alert, receiver: &str, external_url: &str) -> String {
    let status = if alert.state == AlertState::Resolved { "resolved" } else { "firing" };
    let annotations = BTreeMap::from([
        ("summary", alert.summary.clone()),
        ("description", alert.evidence.join("; ")),
        ("subject", alert.subject.clone()),
        ("value", format!("{}", alert.value)),
        ("threshold", format!("{}", alert.threshold)),
    ]);
    let alertname = alert.labels.get("alertname").map_or("", String::as_str);
    let labels_text: Vec<String> = alert.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    let body = Payload {
        version: "4",
        group_key: format!("{{}}:{{{}}}", labels_text.join(", ")),
        truncated_alerts: 0,
        status,
        receiver,
        group_labels: BTreeMap::from([("alertname", alertname)]),
        common_labels: &alert.labels,
        common_annotations: &annotations,
        external_url,
        alerts: [WebhookAlert {
            status,
            labels: &alert.labels,
            annotations: &annotations,
            starts_at: alert.fired_at.as_deref().unwrap_or(&alert.active_at),
            ends_at: alert.resolved_at.as_deref().unwrap_or(ZERO_TIME),
            generator_url: format!("{external_url}/api/v1/alerts"),
            fingerprint: fingerprint(&alert.labels),
        }],
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// A stable 16-hex-digit id of a label set (FNV-1a).
fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Sends every notice until shutdown.
pub(crate) async fn run(mut rx: mpsc::Receiver<Notice>, mut shutdown: watch::Receiver<bool>) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    loop {
        let notice = tokio::select! {
            n = rx.recv() => match n { Some(n) => n, None => return },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        for r in notice.receivers {
            let body = payload(&notice.alert, &r.name, &notice.external_url);
            let Ok(permit) = slots.clone().acquire_owned().await else { return };
            tokio::spawn(async move {
                deliver(&r, body).await;
                drop(permit);
            });
        }
    }
}

async fn deliver(r: &Receiver, body: String) {
    for attempt in 1..=ATTEMPTS {
        match tokio::time::timeout(TIMEOUT, post(&r.url, body.clone())).await {
            Ok(Ok(status)) if (200..300).contains(&status) => return,
            Ok(Ok(status)) if (400..500).contains(&status) => {
                tracing::warn!(receiver = %r.name, url = %r.url, status, "alert receiver refused the notification");
                return;
            }
            Ok(Ok(status)) => tracing::debug!(receiver = %r.name, status, attempt, "alert receiver failed"),
            Ok(Err(e)) => tracing::debug!(receiver = %r.name, error = %e, attempt, "alert receiver unreachable"),
            Err(_) => tracing::debug!(receiver = %r.name, attempt, "alert receiver did not answer in time"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
    }
    tracing::warn!(receiver = %r.name, url = %r.url, attempts = ATTEMPTS, "alert notification not delivered");
}

/// POST `body` as JSON to `url`: the answer's status.
async fn post(url: &str, body: String) -> std::io::Result<u16> {
    let (authority, path) = meshlens_api::alerts::http_url(url).map_err(std::io::Error::other)?;
    let tcp = tokio::net::TcpStream::connect(&authority).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, concat!("meshlens/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::from(body)))
        .map_err(std::io::Error::other)?;
    let rsp = sender.send_request(req).await.map_err(std::io::Error::other)?;
    let status = rsp.status().as_u16();
    let _ = rsp.into_body().collect().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_alertmanager_s_version_4() {
        let alert = Alert {
            rule: "successRate".into(),
            state: AlertState::Resolved,
            labels: BTreeMap::from([
                ("alertname".into(), "SuccessRateBelowObjective".into()),
                ("namespace".into(), "prod".into()),
            ]),
            subject: "deploy/a".into(),
            summary: "a fails".into(),
            value: 90.0,
            threshold: 99.5,
            evidence: vec!["10 of 100 failed".into()],
            active_at: "2027-01-15T08:00:00.000Z".into(),
            fired_at: Some("2027-01-15T08:01:00.000Z".into()),
            resolved_at: Some("2027-01-15T08:02:00.000Z".into()),
        };
        let v: serde_json::Value = serde_json::from_str(&payload(&alert, "ops", "http://127.0.0.1:8086")).unwrap();
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["receiver"], "ops");
        assert_eq!(v["groupKey"], "{}:{alertname=\"SuccessRateBelowObjective\", namespace=\"prod\"}");
        assert_eq!(v["groupLabels"]["alertname"], "SuccessRateBelowObjective");
        let a = &v["alerts"][0];
        assert_eq!(a["labels"]["namespace"], "prod");
        assert_eq!(a["annotations"]["description"], "10 of 100 failed");
        assert_eq!(a["startsAt"], "2027-01-15T08:01:00.000Z");
        assert_eq!(a["endsAt"], "2027-01-15T08:02:00.000Z");
        assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    }
}
