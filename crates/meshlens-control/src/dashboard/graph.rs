//! The topology as data: a node per workload, unmeshed peer and unknown destination, an edge per
//! caller → callee pair in the window, plus the edges configuration expects (`calls`, split backends)
//! that carried nothing; each with its state against the objectives.

use std::collections::BTreeMap;

use super::Window;
use crate::diagnose::evidence::{Counts, Evidence};
use crate::diagnose::{History, Plan};
use crate::diagnostics::QueryError;
use crate::statsapi;

/// Fewer requests than this in the window never make a node or edge `failing`.
const MIN_REQUESTS: f64 = 10.0;

/// What a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NodeKind {
    Workload,
    /// A peer outside the mesh (an unmeshed client, or a passthrough destination).
    Unmeshed,
    /// A name the caller's proxy refused: no such service.
    Unknown,
}

#[derive(Clone, Debug)]
pub(super) struct Node {
    /// `NS/NAME` (an empty namespace for unmeshed peers).
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub kind: NodeKind,
    /// `ok`, `failing` or `idle`.
    pub state: &'static str,
    /// Requests per second it served (inbound).
    pub rps: f64,
    pub success: Option<f64>,
    pub instances: usize,
}

#[derive(Clone, Debug)]
pub(super) struct Edge {
    pub src: String,
    pub dst: String,
    /// `ok`, `failing`, `retrying` or `missing`.
    pub state: &'static str,
    /// Attempts per second.
    pub rps: f64,
    pub success: Option<f64>,
    /// Extra attempts per request (ACTUAL / EFFECTIVE − 1), when the caller's routes say.
    pub retry_rate: Option<f64>,
    /// Why a `missing` edge is expected.
    pub expected: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

fn success(c: &Counts) -> Option<f64> {
    (c.requests() > 0.0).then(|| c.ok / c.requests())
}

impl Graph {
    /// Every namespace's graph, or only `only`'s (its workloads and their peers).
    pub fn read(w: &Window, only: Option<&str>) -> Result<Graph, QueryError> {
        let window_ms =
            statsapi::window_ms(Some(&w.window), w.store.settings().interval_ms).map_err(QueryError::Invalid)?;
        let mut g = Graph::default();
        let mut namespaces: Vec<&str> = w.res.workloads.iter().map(|x| x.namespace.as_str()).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        namespaces.retain(|ns| only.is_none_or(|o| o == *ns));
        for ns in namespaces {
            let before = History::held(&w.store, w.end, window_ms, Plan::before(window_ms));
            let ev = Evidence::gather(&w.res, &w.config.mesh.spec.objectives, &w.store, ns, w.end, window_ms, &before);
            g.add_namespace(w, &ev);
        }
        g.add_unmeshed(w, only)?;
        Ok(g)
    }

    fn add_namespace(&mut self, w: &Window, ev: &Evidence<'_>) {
        let ns = ev.namespace.as_str();
        let id = |name: &str| format!("{ns}/{name}");
        for wl in w.res.workloads.iter().filter(|x| x.namespace == ns) {
            let served = ev.served.get(&wl.name);
            let inbound = served.map(Counts::requests).unwrap_or(0.0);
            let outbound: f64 = ev.edges.iter().filter(|(e, _)| e.src == wl.name).map(|(_, c)| c.requests()).sum();
            let sr = served.and_then(success);
            let state = if inbound >= MIN_REQUESTS && sr.is_some_and(|s| s < w.objective(ns, &wl.name)) {
                "failing"
            } else if !wl.instances.is_empty() && inbound == 0.0 && outbound == 0.0 {
                "idle"
            } else {
                "ok"
            };
            self.nodes.push(Node {
                id: id(&wl.name),
                namespace: ns.into(),
                name: wl.name.clone(),
                kind: NodeKind::Workload,
                state,
                rps: ev.rps(inbound),
                success: sr,
                instances: wl.instances.len(),
            });
        }
        for (e, c) in &ev.edges {
            let retry_rate = retry_rate(ev, &e.src, &e.dst);
            let sr = success(c);
            let objectives = w.objectives().for_service(ns, &e.dst);
            let state = if c.requests() >= MIN_REQUESTS && sr.is_some_and(|s| s < objectives.success_rate / 100.0) {
                "failing"
            } else if retry_rate.is_some_and(|r| r > objectives.retry_rate / 100.0) {
                "retrying"
            } else {
                "ok"
            };
            let rps = ev.rps(c.requests());
            self.edges.push(Edge {
                src: id(&e.src),
                dst: id(&e.dst),
                state,
                rps,
                success: sr,
                retry_rate,
                expected: None,
            });
        }
        // Expected but silent: `calls` entries (through a split, each backend), and edges of the window before.
        let mut expected: BTreeMap<(String, String), String> = BTreeMap::new();
        for wl in w.res.workloads.iter().filter(|x| x.namespace == ns) {
            for call in &wl.calls {
                let Some(svc) = w.config.service_for_call(ns, call) else { continue };
                let split = w.res.traffic_splits.iter().find(|t| {
                    t.traffic_split.spec.service == svc.name
                        && t.traffic_split.metadata.namespace.as_deref().unwrap_or("default") == svc.namespace
                });
                let targets: Vec<(String, String)> = match split {
                    Some(t) => t
                        .traffic_split
                        .spec
                        .backends
                        .iter()
                        .filter_map(|b| {
                            let s =
                                w.res.services.iter().find(|s| s.namespace == svc.namespace && s.name == b.service)?;
                            Some((
                                s.workload.clone(),
                                format!("backend {} of split {} ({})", b.service, svc.name, t.source),
                            ))
                        })
                        .collect(),
                    None => vec![(svc.workload.clone(), format!("calls: {call}"))],
                };
                for (dst, why) in targets {
                    if svc.namespace == ns {
                        expected.entry((wl.name.clone(), dst)).or_insert(why);
                    }
                }
            }
        }
        for (e, n) in &ev.earlier_edges {
            if *n > 0.0 {
                expected.entry((e.src.clone(), e.dst.clone())).or_insert_with(|| "carried traffic earlier".into());
            }
        }
        for ((src, dst), why) in expected {
            let (src, dst) = (id(&src), id(&dst));
            if !self.edges.iter().any(|e| e.src == src && e.dst == dst) {
                self.edges.push(Edge {
                    src,
                    dst,
                    state: "missing",
                    rps: 0.0,
                    success: None,
                    retry_rate: None,
                    expected: Some(why),
                });
            }
        }
    }

    /// Unmeshed peers and unknown destinations, from the same rows as `meshlens edges`.
    fn add_unmeshed(&mut self, w: &Window, only: Option<&str>) -> Result<(), QueryError> {
        let rows = statsapi::edges(&w.res, &w.store, &w.query("deploy"), w.end)?;
        let wanted = |ns: &str| only.is_none_or(|o| o == ns);
        let rows = rows.iter().filter(|r| wanted(&r.src_namespace) || wanted(&r.dst_namespace));
        for r in rows.filter(|r| !r.src_meshed || !r.dst_meshed || r.dst_unknown) {
            let src = if r.src_meshed {
                format!("{}/{}", r.src_namespace, r.src)
            } else {
                self.peer(
                    String::new(),
                    if r.src.is_empty() { "unmeshed clients".into() } else { r.src.clone() },
                    NodeKind::Unmeshed,
                )
            };
            let dst = if r.dst_unknown {
                self.peer(r.src_namespace.clone(), r.dst.clone(), NodeKind::Unknown)
            } else if !r.dst_meshed {
                self.peer(r.dst_namespace.clone(), r.dst.clone(), NodeKind::Unmeshed)
            } else {
                format!("{}/{}", r.dst_namespace, r.dst)
            };
            if !self.edges.iter().any(|e| e.src == src && e.dst == dst) {
                let state = if r.dst_unknown { "failing" } else { "ok" };
                self.edges.push(Edge { src, dst, state, rps: 0.0, success: None, retry_rate: None, expected: None });
            }
        }
        Ok(())
    }

    /// The id of a peer node, added on first sight.
    fn peer(&mut self, namespace: String, name: String, kind: NodeKind) -> String {
        let id = format!("{namespace}/{name}");
        if !self.nodes.iter().any(|n| n.id == id) {
            let state = if kind == NodeKind::Unknown { "failing" } else { "ok" };
            self.nodes.push(Node {
                id: id.clone(),
                namespace,
                name,
                kind,
                state,
                rps: 0.0,
                success: None,
                instances: 0,
            });
        }
        id
    }
}

/// Extra attempts per request on `src`'s routes to the services of `dst`.
fn retry_rate(ev: &Evidence<'_>, src: &str, dst: &str) -> Option<f64> {
    let (mut effective, mut actual) = (0.0, 0.0);
    for (_, c) in ev.routes.iter().filter(|(r, _)| r.src == src && ev.workload_of_service(r.service()) == Some(dst)) {
        effective += c.effective.requests();
        actual += c.actual.requests();
    }
    (effective > 0.0 && actual > 0.0).then(|| (actual / effective - 1.0).max(0.0))
}
