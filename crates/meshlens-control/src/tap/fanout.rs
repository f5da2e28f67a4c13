//! The fan-out: one task per tapped proxy, all feeding one bounded channel that the HTTP response streams
//! from. A proxy's index in the fan-out becomes the `base` of its event ids; a stream that ends is reopened
//! (every second) while the proxy stays registered, new instances of the resource join, and the stream of
//! a proxy that left is closed. The tap ends when the client goes away (every upstream connection closes),
//! at shutdown, or when no proxy of the resource is left.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use meshlens_api::tap::{ProxyDirection, StreamId, TapEndpoint, TapEvent};
use tokio::sync::{mpsc, watch};
use tokio::task::{self, JoinSet};

use super::query::{TapError, TapPlan, per_proxy_rps};
use super::upstream;
use crate::api_types::Resources;
use crate::store::{Store, reachable};

/// How often the resource is resolved again (new instances join, ended streams reopen).
const REFRESH: Duration = Duration::from_secs(1);
/// Events in flight to the client; when it reads slowly, upstream reads pause and proxies drop events.
const CHANNEL: usize = 256;

/// How one proxy's stream went: its base, and why it failed.
type Outcome = (u32, Result<(), String>);

/// A registered proxy the tap covers.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    peer: Peer,
    tap: SocketAddr,
}

/// Who a proxy is, as tap metadata names it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Peer {
    namespace: String,
    workload: String,
    instance: String,
}

impl Peer {
    /// Adds `namespace`, `deployment` and `pod` to an endpoint's metadata where the proxy left them out.
    fn label(&self, endpoint: &mut TapEndpoint) {
        for (key, value) in [("namespace", &self.namespace), ("deployment", &self.workload), ("pod", &self.instance)] {
            endpoint.metadata.entry(key.to_string()).or_insert_with(|| value.clone());
        }
    }
}

/// The proxies of the resource now, in a stable order (namespace, instance).
fn targets(resources: &Resources, plan: &TapPlan) -> Vec<Target> {
    let mut out: Vec<Target> = resources
        .workloads
        .iter()
        .flat_map(|w| w.instances.iter().map(move |i| (w, i)))
        .filter(|(w, i)| plan.selector.matches(&w.namespace, &w.name, &i.instance))
        .filter(|(w, i)| {
            plan.labels.as_ref().is_none_or(|l| {
                let mut labels = w.labels.clone();
                labels.extend(i.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                l.matches(&labels)
            })
        })
        .map(|(w, i)| Target {
            peer: Peer { namespace: w.namespace.clone(), workload: w.name.clone(), instance: i.instance.clone() },
            tap: reachable(i.tap),
        })
        .collect();
    out.sort_by(|a, b| (&a.peer.namespace, &a.peer.instance).cmp(&(&b.peer.namespace, &b.peer.instance)));
    out
}

/// Who listens where (inbound listeners and apps): names the far side of an event.
#[derive(Debug, Default)]
struct Directory(HashMap<SocketAddr, Peer>);

impl Directory {
    fn of(resources: &Resources) -> Directory {
        let mut map = HashMap::new();
        for w in &resources.workloads {
            for i in &w.instances {
                let peer =
                    Peer { namespace: w.namespace.clone(), workload: w.name.clone(), instance: i.instance.clone() };
                for addr in [i.inbound, i.app].into_iter().flatten() {
                    map.insert(addr, peer.clone());
                    map.insert(reachable(addr), peer.clone());
                }
            }
        }
        Directory(map)
    }

    fn find(&self, endpoint: &TapEndpoint) -> Option<&Peer> {
        let ip: IpAddr = endpoint.ip.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
        self.0.get(&SocketAddr::new(ip, endpoint.port))
    }
}

/// Starts tapping; 404 when no proxy of the resource is registered.
pub(crate) fn start(
    store: Arc<Store>,
    plan: TapPlan,
    shutdown: watch::Receiver<bool>,
) -> Result<mpsc::Receiver<Bytes>, TapError> {
    let resources = store.resources();
    let first = targets(&resources, &plan);
    if first.is_empty() {
        return Err(TapError::NotFound(format!("no running instance of {}", plan.described)));
    }
    tracing::info!(resource = %plan.described, proxies = first.len(), "tap started");
    let (tx, rx) = mpsc::channel(CHANNEL);
    let (directory, directory_rx) = watch::channel(Arc::new(Directory::of(&resources)));
    let fanout = Fanout {
        store,
        plan,
        tx,
        directory,
        directory_rx,
        indices: BTreeMap::new(),
        running: HashMap::new(),
        failing: HashSet::new(),
        workers: JoinSet::new(),
    };
    tokio::spawn(fanout.run(shutdown));
    Ok(rx)
}

/// The state of one tap.
struct Fanout {
    store: Arc<Store>,
    plan: TapPlan,
    tx: mpsc::Sender<Bytes>,
    directory: watch::Sender<Arc<Directory>>,
    directory_rx: watch::Receiver<Arc<Directory>>,
    /// (namespace, instance) → base of its ids, kept for the whole tap.
    indices: BTreeMap<(String, String), u32>,
    /// Streams open now: task → (base, abort handle).
    running: HashMap<task::Id, (u32, task::AbortHandle)>,
    /// Bases whose last stream failed (logged once until one works again).
    failing: HashSet<u32>,
    workers: JoinSet<Outcome>,
}

impl Fanout {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.tx.closed() => break,
                _ = shutdown.wait_for(|stop| *stop) => break,
                Some(done) = self.workers.join_next_with_id() => self.ended(done),
                _ = tick.tick() => {
                    if !self.refresh() {
                        tracing::info!(resource = %self.plan.described, "tap ended: no proxy of the resource is left");
                        break;
                    }
                }
            }
        }
        tracing::debug!(resource = %self.plan.described, "tap closed");
        // Dropping the join set aborts the workers, which closes every upstream connection.
    }

    fn ended(&mut self, done: Result<(task::Id, Outcome), task::JoinError>) {
        let (id, outcome) = match done {
            Ok((id, (_, outcome))) => (id, outcome),
            // Cancelled: closed on purpose (the proxy left).
            Err(e) => (e.id(), if e.is_cancelled() { Ok(()) } else { Err(e.to_string()) }),
        };
        let Some((base, _)) = self.running.remove(&id) else { return };
        match outcome {
            Ok(()) => {
                self.failing.remove(&base);
                tracing::debug!(base, "a proxy's tap stream ended");
            }
            Err(e) if self.failing.insert(base) => tracing::warn!(base, error = %e, "a proxy's tap stream failed"),
            Err(e) => tracing::debug!(base, error = %e, "a proxy's tap stream failed again"),
        }
    }

    /// Opens streams for the resource's proxies that have none and closes those of proxies that left;
    /// false when no proxy of the resource is left.
    fn refresh(&mut self) -> bool {
        let resources = self.store.resources();
        let targets = targets(&resources, &self.plan);
        let live: HashSet<Option<&u32>> =
            targets.iter().map(|t| self.indices.get(&(t.peer.namespace.clone(), t.peer.instance.clone()))).collect();
        for (base, handle) in self.running.values() {
            if !live.contains(&Some(base)) {
                tracing::debug!(base, "closing the tap stream of a proxy that left");
                handle.abort();
            }
        }
        if targets.is_empty() {
            return false;
        }
        self.directory.send_replace(Arc::new(Directory::of(&resources)));
        let mut filter = self.plan.filter.clone();
        filter.max_rps = Some(per_proxy_rps(self.plan.max_rps, targets.len()));
        let query = serde_urlencoded::to_string(&filter).unwrap_or_default();
        let open: HashSet<u32> = self.running.values().map(|(base, _)| *base).collect();
        for target in targets {
            let next = self.indices.len() as u32;
            let key = (target.peer.namespace.clone(), target.peer.instance.clone());
            let base = *self.indices.entry(key).or_insert(next);
            if open.contains(&base) {
                continue;
            }
            let token = self.store.tap_token(&target.peer.namespace, &target.peer.instance);
            let stream = follow(target, base, query.clone(), token, self.tx.clone(), self.directory_rx.clone());
            let handle = self.workers.spawn(stream);
            self.running.insert(handle.id(), (base, handle));
        }
        true
    }
}

/// Streams one proxy's events into `tx` until its stream ends or the client goes away.
async fn follow(
    target: Target,
    base: u32,
    query: String,
    token: String,
    tx: mpsc::Sender<Bytes>,
    directory: watch::Receiver<Arc<Directory>>,
) -> Outcome {
    let outcome = async {
        let mut stream = upstream::open(target.tap, &query, &token).await?;
        tracing::debug!(base, instance = %target.peer.instance, tap = %target.tap, "tapping a proxy");
        while let Some(line) = stream.next_line().await {
            let line = line?;
            let mut event: TapEvent = match serde_json::from_slice(&line) {
                Ok(e) => e,
                Err(e) => {
                    tracing::debug!(base, error = %e, "skipping a tap line that is no event");
                    continue;
                }
            };
            rebase(&mut event, base);
            label(&mut event, &target.peer, &directory.borrow());
            let mut out = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
            out.push(b'\n');
            if tx.send(Bytes::from(out)).await.is_err() {
                break;
            }
        }
        Ok(())
    };
    (base, outcome.await)
}

/// Makes ids unique in the merged stream: `base` is the proxy's index.
fn rebase(event: &mut TapEvent, base: u32) {
    let ids: [Option<&mut StreamId>; 4] = [
        event.request_init_event.as_mut().map(|e| &mut e.id),
        event.response_init_event.as_mut().map(|e| &mut e.id),
        event.response_end_event.as_mut().map(|e| &mut e.id),
        event.original_id.as_mut(),
    ];
    for id in ids.into_iter().flatten() {
        id.base = base;
    }
}

/// The proxy's own side carries its identity; the far side is named when it is a registered proxy or app.
fn label(event: &mut TapEvent, own: &Peer, directory: &Directory) {
    let (mine, theirs) = match event.proxy_direction {
        ProxyDirection::Inbound => (&mut event.destination, &mut event.source),
        ProxyDirection::Outbound => (&mut event.source, &mut event.destination),
    };
    own.label(mine);
    if let Some(peer) = directory.find(theirs) {
        peer.label(theirs);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use meshlens_api::tap::{RequestInit, ResponseEnd};

    use super::*;

    fn event(direction: ProxyDirection) -> TapEvent {
        let at = |port| TapEndpoint { ip: "127.0.0.1".into(), port, metadata: BTreeMap::new() };
        TapEvent::new(direction, at(40000), at(5001))
    }

    fn peer(workload: &str, instance: &str) -> Peer {
        Peer { namespace: "prod".into(), workload: workload.into(), instance: instance.into() }
    }

    #[test]
    fn ids_take_the_proxy_index_as_base() {
        let mut ev = event(ProxyDirection::Outbound);
        ev.response_end_event = Some(ResponseEnd {
            id: StreamId { base: 0, stream: 9 },
            since_request_init: Default::default(),
            since_response_init: None,
            response_bytes: 0,
            trailers: vec![],
            grpc_status_code: None,
            reset_error_code: None,
        });
        ev.original_id = Some(StreamId { base: 0, stream: 7 });
        rebase(&mut ev, 3);
        assert_eq!(ev.response_end_event.unwrap().id, StreamId { base: 3, stream: 9 });
        assert_eq!(ev.original_id, Some(StreamId { base: 3, stream: 7 }));
    }

    #[test]
    fn events_are_labelled_with_both_sides() {
        let directory = Directory(HashMap::from([("127.0.0.1:5001".parse().unwrap(), peer("orders", "orders-1"))]));
        let mut out = event(ProxyDirection::Outbound);
        out.request_init_event = Some(RequestInit {
            id: StreamId::default(),
            method: "GET".into(),
            scheme: "http".into(),
            authority: "orders".into(),
            path: "/".into(),
            headers: vec![],
        });
        out.source.metadata.insert("pod".into(), "set-by-the-proxy".into());
        label(&mut out, &peer("web", "web-0"), &directory);
        assert_eq!(out.source.metadata["pod"], "set-by-the-proxy", "the proxy's own labels win");
        assert_eq!(out.source.metadata["deployment"], "web");
        assert_eq!(out.destination.metadata["pod"], "orders-1");
        assert_eq!(out.destination.metadata["deployment"], "orders");

        let mut inbound = event(ProxyDirection::Inbound);
        label(&mut inbound, &peer("orders", "orders-1"), &Directory::default());
        assert_eq!(inbound.destination.metadata["pod"], "orders-1");
        assert!(inbound.source.metadata.is_empty(), "an unknown client stays an address");
    }

    #[test]
    fn a_source_the_inbound_proxy_named_is_kept_whatever_the_directory_says() {
        // The directory happens to know the source address as another instance: the proxy's claim stays.
        let directory = Directory(HashMap::from([("127.0.0.1:40000".parse().unwrap(), peer("other", "other-3"))]));
        let mut inbound = event(ProxyDirection::Inbound);
        let claimed =
            [("pod", "traffic-0"), ("deployment", "traffic"), ("namespace", "prod"), ("identity", "unverified")];
        inbound.source.metadata = claimed.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let before = inbound.source.metadata.clone();
        label(&mut inbound, &peer("orders", "orders-1"), &directory);
        assert_eq!(inbound.source.metadata, before, "nothing overwritten or added to the claimed source");
        assert_eq!(inbound.destination.metadata["pod"], "orders-1");
    }
}
