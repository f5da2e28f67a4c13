//! The topology page: a layered layout (callers left, callees right, each node in the column of its
//! longest path from a caller; rows ordered by the barycentre of neighbours) drawn as inline SVG.

use std::collections::HashMap;
use std::fmt::Write;

use super::Window;
use super::graph::{Graph, NodeKind};
use super::html::{Frame, esc, page, percent};

const COL: f64 = 250.0;
const ROW: f64 = 58.0;
const NODE_W: f64 = 180.0;
const NODE_H: f64 = 36.0;
const PAD: f64 = 20.0;

/// Column and row of every node (by index in `g.nodes`).
pub(super) fn layout(g: &Graph) -> Vec<(usize, usize)> {
    let n = g.nodes.len();
    let index: HashMap<&str, usize> = g.nodes.iter().enumerate().map(|(i, x)| (x.id.as_str(), i)).collect();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in &g.edges {
        if let (Some(&a), Some(&b)) = (index.get(e.src.as_str()), index.get(e.dst.as_str()))
            && a != b
            && !out[a].contains(&b)
        {
            out[a].push(b);
        }
    }
    // Cycles broken: a depth-first search drops the edges that lead back to a node still on its path.
    let mut state = vec![0u8; n];
    let mut dag: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut order = Vec::with_capacity(n);
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(&mut (v, ref mut i)) = stack.last_mut() {
            if let Some(&next) = out[v].get(*i) {
                *i += 1;
                match state[next] {
                    0 => {
                        dag[v].push(next);
                        state[next] = 1;
                        stack.push((next, 0));
                    }
                    2 => dag[v].push(next),
                    _ => {} // back edge
                }
            } else {
                state[v] = 2;
                order.push(v);
                stack.pop();
            }
        }
    }
    // Longest path from a source: reverse post-order is a topological order.
    let mut column = vec![0usize; n];
    for &v in order.iter().rev() {
        for &w in &dag[v] {
            column[w] = column[w].max(column[v] + 1);
        }
    }
    let columns = column.iter().max().map_or(0, |m| m + 1);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for v in 0..n {
        layers[column[v]].push(v);
    }
    for layer in &mut layers {
        layer.sort_by(|&a, &b| g.nodes[a].id.cmp(&g.nodes[b].id));
    }
    // Barycentre sweeps: left to right by callers' rows, then right to left by callees' rows.
    let mut incoming: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (v, targets) in dag.iter().enumerate() {
        for &w in targets {
            incoming[w].push(v);
        }
    }
    let mut row = vec![0usize; n];
    let place = |layers: &Vec<Vec<usize>>, row: &mut Vec<usize>| {
        for layer in layers {
            for (i, &v) in layer.iter().enumerate() {
                row[v] = i;
            }
        }
    };
    place(&layers, &mut row);
    for _ in 0..4 {
        for pass in [true, false] {
            let range: Vec<usize> =
                if pass { (1..columns).collect() } else { (0..columns.saturating_sub(1)).rev().collect() };
            for c in range {
                let mut keyed: Vec<(f64, usize)> = layers[c]
                    .iter()
                    .map(|&v| {
                        let nb = if pass { &incoming[v] } else { &dag[v] };
                        let key = if nb.is_empty() {
                            row[v] as f64
                        } else {
                            nb.iter().map(|&u| row[u] as f64).sum::<f64>() / nb.len() as f64
                        };
                        (key, v)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                layers[c] = keyed.into_iter().map(|(_, v)| v).collect();
                for (i, &v) in layers[c].iter().enumerate() {
                    row[v] = i;
                }
            }
        }
    }
    (0..n).map(|v| (column[v], row[v])).collect()
}

/// Where a node is drawn (top left corner), rows of short columns centred.
fn positions(g: &Graph, cells: &[(usize, usize)]) -> (Vec<(f64, f64)>, f64, f64) {
    let mut per_column: HashMap<usize, usize> = HashMap::new();
    for &(c, _) in cells {
        *per_column.entry(c).or_default() += 1;
    }
    let rows = per_column.values().copied().max().unwrap_or(1) as f64;
    let columns = per_column.keys().copied().max().map_or(1, |m| m + 1) as f64;
    let pos = cells
        .iter()
        .map(|&(c, r)| {
            let offset = (rows - per_column[&c] as f64) * ROW / 2.0;
            (PAD + c as f64 * COL, PAD + offset + r as f64 * ROW)
        })
        .collect::<Vec<_>>();
    let _ = g;
    (pos, PAD * 2.0 + (columns - 1.0) * COL + NODE_W, PAD * 2.0 + (rows - 1.0) * ROW + NODE_H)
}

/// The SVG of the graph.
pub(super) fn svg(g: &Graph, window: &str) -> String {
    let cells = layout(g);
    let (pos, width, height) = positions(g, &cells);
    let index: HashMap<&str, usize> = g.nodes.iter().enumerate().map(|(i, x)| (x.id.as_str(), i)).collect();
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"topology\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"topology\"><defs><marker id=\"arrow\" \
         viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"9\" markerHeight=\"9\" orient=\"auto-start-reverse\">\
         <path d=\"M0,0L10,5L0,10z\" fill=\"#888\"/></marker></defs><g class=\"edges\">"
    );
    for e in &g.edges {
        let (Some(&a), Some(&b)) = (index.get(e.src.as_str()), index.get(e.dst.as_str())) else { continue };
        let ((x1, y1), (x2, y2)) = (pos[a], pos[b]);
        let (sx, sy, tx, ty) = (x1 + NODE_W, y1 + NODE_H / 2.0, x2, y2 + NODE_H / 2.0);
        let d = if tx > sx {
            let mid = (sx + tx) / 2.0;
            format!("M{sx:.1},{sy:.1} C{mid:.1},{sy:.1} {mid:.1},{ty:.1} {tx:.1},{ty:.1}")
        } else {
            // Back or same-column edge: around, below the nodes.
            let low = sy.max(ty) + ROW * 0.6;
            format!("M{sx:.1},{sy:.1} C{:.1},{low:.1} {:.1},{low:.1} {tx:.1},{ty:.1}", sx + 60.0, tx - 60.0)
        };
        let width = 1.5 + (1.0 + e.rps).log2().min(6.0);
        let mut title = format!("{} → {}: {:.1} rps, success {}", e.src, e.dst, e.rps, percent(e.success));
        if let Some(r) = e.retry_rate {
            let _ = write!(title, ", retries {:.1}%", r * 100.0);
        }
        if let Some(why) = &e.expected {
            let _ = write!(title, "; expected ({why}) but carries nothing");
        }
        let path = format!(
            "<path data-edge=\"{}->{}\" data-state=\"{}\" class=\"edge {}\" d=\"{d}\" stroke-width=\"{width:.1}\" \
             marker-end=\"url(#arrow)\"><title>{}</title></path>",
            esc(&e.src),
            esc(&e.dst),
            e.state,
            e.state,
            esc(&title)
        );
        let (from, to) = (&g.nodes[a], &g.nodes[b]);
        if from.kind == NodeKind::Workload && to.kind == NodeKind::Workload {
            let _ = write!(
                s,
                "<a href=\"/edge/{}/{}/{}/{}?window={}\">{path}</a>",
                esc(&from.namespace),
                esc(&from.name),
                esc(&to.namespace),
                esc(&to.name),
                esc(window)
            );
        } else {
            s.push_str(&path);
        }
    }
    s.push_str("</g><g class=\"nodes\">");
    for (i, n) in g.nodes.iter().enumerate() {
        let (x, y) = pos[i];
        let kind = match n.kind {
            NodeKind::Workload => "workload",
            NodeKind::Unmeshed => "unmeshed",
            NodeKind::Unknown => "unknown",
        };
        let label: String =
            if n.name.chars().count() > 24 { n.name.chars().take(23).chain(['…']).collect() } else { n.name.clone() };
        let title = match n.kind {
            NodeKind::Workload => {
                format!("{}: {:.1} rps served, success {}, {} instances", n.id, n.rps, percent(n.success), n.instances)
            }
            NodeKind::Unmeshed => format!("{} (not in the mesh)", n.name),
            NodeKind::Unknown => format!("{} (no such service: refused by the caller's proxy)", n.name),
        };
        let node = format!(
            "<g data-node=\"{}\" data-state=\"{}\" data-kind=\"{kind}\" class=\"node {} {kind}\"><rect x=\"{x:.1}\" \
             y=\"{y:.1}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"6\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\
             <title>{}</title></g>",
            esc(&n.id),
            n.state,
            n.state,
            x + 10.0,
            y + NODE_H / 2.0 + 5.0,
            esc(&label),
            esc(&title)
        );
        if n.kind == NodeKind::Workload {
            let _ = write!(
                s,
                "<a href=\"/workload/{}/{}?window={}\">{node}</a>",
                esc(&n.namespace),
                esc(&n.name),
                esc(window)
            );
        } else {
            s.push_str(&node);
        }
    }
    s.push_str("</g></svg>");
    s
}

/// The whole topology page.
pub(super) fn render(w: &Window, g: &Graph, only: Option<&str>) -> String {
    let mut namespaces: Vec<&str> = w.res.workloads.iter().map(|x| x.namespace.as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let mut body = String::from("<p class=\"namespaces\">namespace: ");
    let choice = |label: &str, ns: &str, current: bool| {
        let mark = if current { " aria-current=\"page\"" } else { "" };
        format!("<a href=\"/topology?window={}&amp;namespace={}\"{mark}>{}</a> ", esc(&w.window), esc(ns), esc(label))
    };
    body.push_str(&choice("all", "", only.is_none()));
    for ns in namespaces {
        body.push_str(&choice(ns, ns, only == Some(ns)));
    }
    body.push_str("</p>");
    body.push_str(
        "<p class=\"legend\"><span class=\"ok\">ok</span> <span class=\"failing\">failing (below objective)</span> \
         <span class=\"retrying\">retrying (&gt; retry objective)</span> <span class=\"missing\">expected, no traffic</span> \
         <span class=\"idle\">idle node</span> · thickness: requests per second · click a workload</p><div class=\"graph\" data-live=\"topology\">",
    );
    if g.nodes.is_empty() {
        body.push_str("<p>No workloads yet.</p>");
    } else {
        body.push_str(&svg(g, &w.window));
    }
    body.push_str("</div>");
    let scope = only.map(|ns| format!("-n {ns}")).unwrap_or_else(|| "-A".into());
    let command = format!("meshlens edges deploy {scope} -t {0}; meshlens stat deploy {scope} -t {0}", w.window);
    page(&Frame { title: "Topology", page: "topology", window: &w.window, offset: None, command }, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::graph::{Edge, Node};

    fn graph(nodes: usize, edges: &[(usize, usize)]) -> Graph {
        let node = |i: usize| Node {
            id: format!("ns/n{i:03}"),
            namespace: "ns".into(),
            name: format!("n{i:03}"),
            kind: NodeKind::Workload,
            state: "ok",
            rps: 1.0,
            success: Some(1.0),
            instances: 1,
        };
        let edge = |&(a, b): &(usize, usize)| Edge {
            src: format!("ns/n{a:03}"),
            dst: format!("ns/n{b:03}"),
            state: "ok",
            rps: 1.0,
            success: Some(1.0),
            retry_rate: None,
            expected: None,
        };
        Graph { nodes: (0..nodes).map(node).collect(), edges: edges.iter().map(edge).collect() }
    }

    #[test]
    fn callers_left_of_callees_by_longest_path_and_cycles_survive() {
        // 0 → 1 → 2 → 3, 0 → 3 directly, 3 → 1 closes a cycle.
        let g = graph(4, &[(0, 1), (1, 2), (2, 3), (0, 3), (3, 1)]);
        let cells = layout(&g);
        assert_eq!(cells[0].0, 0);
        assert!(cells[1].0 < cells[2].0 && cells[2].0 < cells[3].0, "{cells:?}");
        let svg = svg(&g, "1m");
        assert_eq!(svg.matches("data-edge=").count(), 5);
        assert!(svg.contains("data-node=\"ns/n000\" data-state=\"ok\""));
    }

    #[test]
    fn a_hundred_nodes_get_distinct_cells_in_few_columns() {
        // Ten tiers of ten, each node calling two of the next tier.
        let edges: Vec<(usize, usize)> =
            (0..90).flat_map(|i| [(i, (i / 10 + 1) * 10 + i % 10), (i, (i / 10 + 1) * 10 + (i + 3) % 10)]).collect();
        let g = graph(100, &edges);
        let t0 = std::time::Instant::now();
        let cells = layout(&g);
        let svg = svg(&g, "1m");
        eprintln!("100 nodes, {} edges: layout and SVG in {:?}, {} bytes", edges.len(), t0.elapsed(), svg.len());
        let mut seen = cells.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 100, "every node has its own cell");
        assert_eq!(cells.iter().map(|c| c.0).max(), Some(9));
        assert!(cells.iter().all(|c| c.1 < 10));
    }
}
