//! `/api/v1/logs`: the recent WARN/ERROR events of a resource's proxies (each proxy's admin `GET /logs`) or
//! of the control plane itself, each with its source, merged by time; `follow` streams new ones as NDJSON.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use meshlens_api::logs::{LogEvent, LogPage, LogSource, RelayedLogs, Unreachable};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use crate::api_types::Resources;
use crate::diagnostics::{QueryError, instances_of};
use crate::{clock, httpget};

/// How long one proxy may take to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// How often `follow` asks every instance for newer events.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// The resource that names the control plane itself.
pub(crate) const OWN_RESOURCE: &str = "control";

/// The control plane's own recent WARN/ERROR events: events after the given `seq` (as a proxy's `/logs`).
#[derive(Clone)]
pub struct OwnLogs(pub Arc<dyn Fn(u64) -> LogPage + Send + Sync>);

impl fmt::Debug for OwnLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnLogs(..)")
    }
}

/// Query parameters of `/api/v1/logs`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct LogsQuery {
    /// `deploy/NAME`, `po/NAME`, `svc/NAME`, `ns/NAME`, or `control`.
    pub resource: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// `warn` (WARN and ERROR, the default) or `error`.
    #[serde(default)]
    pub level: Option<String>,
    /// Only events of this recent period (a duration: `10m`).
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub follow: Option<bool>,
}

/// The least severe level wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Warn,
    Error,
}

impl Level {
    fn parse(text: Option<&str>) -> Result<Level, QueryError> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("warn") | Some("warning") => Ok(Level::Warn),
            Some("error") => Ok(Level::Error),
            Some(other) => Err(QueryError::Invalid(format!("invalid level '{other}': expected warn or error"))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    fn admits(self, level: &str) -> bool {
        level.eq_ignore_ascii_case("ERROR") || (self == Level::Warn && level.eq_ignore_ascii_case("WARN"))
    }
}

/// Where one instance's events come from.
#[derive(Clone)]
enum Origin {
    Proxy(SocketAddr),
    Own(OwnLogs),
}

#[derive(Clone)]
struct Target {
    source: LogSource,
    origin: Origin,
}

impl Target {
    /// The same instance at the same address (a restarted proxy answers at another one).
    fn same_as(&self, other: &Target) -> bool {
        let same_origin = match (&self.origin, &other.origin) {
            (Origin::Proxy(a), Origin::Proxy(b)) => a == b,
            (Origin::Own(_), Origin::Own(_)) => true,
            _ => false,
        };
        same_origin && self.source == other.source
    }
}

/// A checked query: the instances to read and what to keep.
pub(crate) struct Plan {
    targets: Vec<Target>,
    level: Level,
    /// Events logged before this RFC 3339 time are left out.
    cutoff: Option<String>,
}

impl Plan {
    pub fn new(res: &Resources, own: Option<&OwnLogs>, q: &LogsQuery) -> Result<Plan, QueryError> {
        let level = Level::parse(q.level.as_deref())?;
        let cutoff = q
            .since
            .as_deref()
            .map(|text| {
                let d = meshlens_api::duration::parse(text).map_err(|e| QueryError::Invalid(format!("since: {e}")))?;
                Ok(clock::rfc3339(SystemTime::now().checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH)))
            })
            .transpose()?;
        let targets = if q.resource == OWN_RESOURCE {
            let own = own.ok_or_else(|| {
                QueryError::NotFound("this control plane does not keep its own log events".to_string())
            })?;
            let source =
                LogSource { namespace: String::new(), deployment: OWN_RESOURCE.into(), pod: OWN_RESOURCE.into() };
            vec![Target { source, origin: Origin::Own(own.clone()) }]
        } else {
            let ns = q.namespace.as_deref().unwrap_or("default");
            instances_of(res, &q.resource, ns)
                .map_err(|e| match e {
                    QueryError::Invalid(m) => QueryError::Invalid(format!("{m}, or '{OWN_RESOURCE}'")),
                    not_found => not_found,
                })?
                .into_iter()
                .map(|(namespace, deployment, pod, admin)| Target {
                    source: LogSource { namespace, deployment, pod },
                    origin: Origin::Proxy(admin),
                })
                .collect()
        };
        Ok(Plan { targets, level, cutoff })
    }

    /// The events of one instance after `since`, kept and sourced.
    async fn read(&self, target: &Target, since: u64) -> Result<LogPage, String> {
        let mut page = match &target.origin {
            Origin::Proxy(admin) => {
                let path = format!("/logs?since={since}&level={}", self.level.as_str());
                httpget::get_json::<LogPage>(*admin, &path, FETCH_TIMEOUT).await?
            }
            Origin::Own(own) => (own.0)(since),
        };
        page.events.retain(|e| {
            e.seq > since && self.level.admits(&e.level) && self.cutoff.as_ref().is_none_or(|c| &e.timestamp >= c)
        });
        for e in &mut page.events {
            e.source = Some(target.source.clone());
        }
        Ok(page)
    }
}

/// Oldest first; ties by instance, then sequence.
fn by_time(events: &mut [LogEvent]) {
    fn key(e: &LogEvent) -> (&str, Option<(&str, &str)>, u64) {
        (&e.timestamp, e.source.as_ref().map(|s| (s.namespace.as_str(), s.pod.as_str())), e.seq)
    }
    events.sort_by(|a, b| key(a).cmp(&key(b)));
}

/// What every instance holds now.
pub(crate) async fn once(plan: &Plan) -> RelayedLogs {
    let mut out = RelayedLogs::default();
    let pages = futures_util::future::join_all(plan.targets.iter().map(|t| plan.read(t, 0))).await;
    for (target, page) in plan.targets.iter().zip(pages) {
        match page {
            Ok(page) => {
                out.events.extend(page.events);
                out.dropped += page.dropped;
            }
            Err(error) => out.unreachable.push(Unreachable { source: target.source.clone(), error }),
        }
    }
    by_time(&mut out.events);
    out
}

/// One followed instance: where it answers, the last `seq` read, whether it was reported silent.
struct Followed {
    target: Target,
    since: u64,
    failing: bool,
}

/// NDJSON lines: what every instance holds now, then newer events as they are logged (every instance asked
/// every second). The instances are those `instances` names each round (`None`: keep the last ones), so a
/// new or restarted instance (another admin address) is read from its start. An instance that stops
/// answering is one `{"source":…,"error":…}` line (again after it answered in between), and so are events
/// its ring dropped between two reads. Ends when the receiver is dropped (the client left) or the server
/// stops.
pub(crate) fn follow(
    plan: Plan,
    instances: impl Fn() -> Option<Plan> + Send + 'static,
    mut shutdown: watch::Receiver<bool>,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut followed: Vec<Followed> = Vec::new();
        let mut targets = plan.targets.clone();
        let mut tick = tokio::time::interval(FOLLOW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = tx.closed() => return,
                _ = shutdown.wait_for(|s| *s) => return,
            }
            followed = targets
                .drain(..)
                .map(|target| match followed.iter().position(|f| f.target.same_as(&target)) {
                    Some(i) => followed.swap_remove(i),
                    None => Followed { target, since: 0, failing: false },
                })
                .collect();
            let reads = followed.iter().map(|f| plan.read(&f.target, f.since));
            let pages = tokio::select! {
                pages = futures_util::future::join_all(reads) => pages,
                _ = tx.closed() => return,
            };
            let mut lines = Vec::new();
            let mut events = Vec::new();
            for (f, page) in followed.iter_mut().zip(pages) {
                match page {
                    // Its sequence went back: the process restarted; read it from the start next time.
                    Ok(page) if page.last_seq < f.since => f.since = 0,
                    Ok(page) => {
                        // Older events are history; events lost between two reads are news.
                        if page.dropped > 0 && f.since > 0 {
                            let error = format!("{} events were dropped before they could be read", page.dropped);
                            lines.push(line(&Unreachable { source: f.target.source.clone(), error }));
                        }
                        f.since = page.last_seq;
                        f.failing = false;
                        events.extend(page.events);
                    }
                    Err(error) if !f.failing => {
                        f.failing = true;
                        lines.push(line(&Unreachable { source: f.target.source.clone(), error }));
                    }
                    Err(_) => {}
                }
            }
            by_time(&mut events);
            for l in lines.into_iter().chain(events.iter().map(line)) {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            targets = match instances() {
                Some(now) => now.targets,
                None => followed.iter().map(|f| f.target.clone()).collect(),
            };
        }
    });
    rx
}

fn line<T: serde::Serialize>(v: &T) -> Bytes {
    let mut l = serde_json::to_vec(v).unwrap_or_default();
    l.push(b'\n');
    Bytes::from(l)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn event(seq: u64, timestamp: &str, level: &str) -> LogEvent {
        LogEvent {
            seq,
            timestamp: timestamp.into(),
            level: level.into(),
            target: "meshlens_control::reload".into(),
            message: format!("event {seq}"),
            fields: BTreeMap::new(),
            source: None,
        }
    }

    fn own(events: Vec<LogEvent>) -> OwnLogs {
        OwnLogs(Arc::new(move |since| LogPage {
            events: events.iter().filter(|e| e.seq > since).cloned().collect(),
            dropped: 0,
            last_seq: events.last().map_or(0, |e| e.seq),
        }))
    }

    fn query(resource: &str, level: Option<&str>, since: Option<&str>) -> LogsQuery {
        LogsQuery {
            resource: resource.into(),
            level: level.map(Into::into),
            since: since.map(Into::into),
            ..LogsQuery::default()
        }
    }

    #[tokio::test]
    async fn the_control_planes_own_events_by_level_and_time() {
        let now = clock::rfc3339(SystemTime::now());
        let own = own(vec![
            event(1, "2020-01-01T00:00:00.000Z", "ERROR"),
            event(2, &now, "WARN"),
            event(3, &now, "ERROR"),
            event(4, &now, "INFO"),
        ]);
        let res: Resources = serde_json::from_str(
            r#"{"version":1,"clusterDomain":"cluster.local","namespaces":["default"],"workloads":[],"services":[],
                "profiles":[],"trafficSplits":[]}"#,
        )
        .unwrap();
        let read = |q: LogsQuery| {
            let plan = Plan::new(&res, Some(&own), &q);
            async move { once(&plan.unwrap()).await.events.iter().map(|e| e.seq).collect::<Vec<_>>() }
        };
        assert_eq!(read(query("control", None, None)).await, [1, 2, 3]);
        assert_eq!(read(query("control", Some("error"), None)).await, [1, 3]);
        assert_eq!(read(query("control", Some("WARN"), Some("1h"))).await, [2, 3]);
        let plan = Plan::new(&res, Some(&own), &query("control", None, None)).unwrap();
        let got = once(&plan).await;
        assert_eq!(got.events[0].source.as_ref().unwrap().pod, "control");

        for (q, says) in [
            (query("control", Some("info"), None), "invalid level 'info'"),
            (query("control", None, Some("yesterday")), "since: 'yesterday' is not a duration"),
            (query("web", None, None), "expected TYPE/NAME, e.g. deploy/web, or 'control'"),
        ] {
            let Err(QueryError::Invalid(e)) = Plan::new(&res, Some(&own), &q) else { panic!("{q:?}") };
            assert!(e.contains(says), "{e}");
        }
        let Err(QueryError::NotFound(e)) = Plan::new(&res, None, &query("control", None, None)) else { panic!() };
        assert!(e.contains("does not keep its own log events"), "{e}");
        let Err(QueryError::NotFound(e)) = Plan::new(&res, None, &query("deploy/nope", None, None)) else { panic!() };
        assert!(e.contains("deployment 'nope' not found in namespace 'default'"), "{e}");
    }
}
