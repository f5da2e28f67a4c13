//! The `top` table: tap events joined per request (req → rsp → end by id) and aggregated by source,
//! destination, method and path (or route), laid out as Linkerd's `top` lays it out.

use std::collections::HashMap;
use std::time::Duration;

use meshlens_api::ProxyErrorReason;
use meshlens_api::errors::response_failed;
use meshlens_api::tap::{StreamId, TapEndpoint, TapEvent};

/// Requests seen but not ended yet are forgotten beyond this many (their `end` never came).
const MAX_PENDING: usize = 10_000;
/// Space between columns.
const GAP: usize = 2;

/// Which columns key the rows.
#[derive(Clone, Copy, Debug, Default)]
pub struct TopOptions {
    /// No Source column: rows merge across sources.
    pub hide_sources: bool,
    /// Route instead of Method and Path.
    pub routes: bool,
}

/// The key columns of a request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    source: String,
    destination: String,
    method: String,
    path: String,
    route: String,
}

#[derive(Clone, Debug)]
struct Row {
    key: Key,
    count: u64,
    best: Duration,
    worst: Duration,
    last: Duration,
    successes: u64,
}

/// Rows aggregated from the tap stream.
#[derive(Debug, Default)]
pub struct TopTable {
    options: TopOptions,
    /// In first-seen order; shown sorted by count (stable).
    rows: Vec<Row>,
    index: HashMap<Key, usize>,
    /// Requests whose `end` has not come yet: their key and HTTP status.
    pending: HashMap<StreamId, (Key, u16)>,
}

/// `pod` label when known, else the IP.
fn name(endpoint: &TapEndpoint) -> String {
    endpoint.metadata.get("pod").filter(|p| !p.is_empty()).cloned().unwrap_or_else(|| endpoint.ip.clone())
}

impl TopTable {
    pub fn new(options: TopOptions) -> Self {
        TopTable { options, ..TopTable::default() }
    }

    /// Takes one event; a request counts when its `end` arrives.
    pub fn observe(&mut self, event: &TapEvent) {
        if let Some(req) = &event.request_init_event {
            let key = Key {
                source: if self.options.hide_sources { String::new() } else { name(&event.source) },
                destination: name(&event.destination),
                method: if self.options.routes { String::new() } else { req.method.clone() },
                path: if self.options.routes { String::new() } else { req.path.clone() },
                route: if self.options.routes {
                    event.route_meta.get("route").cloned().unwrap_or_else(|| "[DEFAULT]".to_string())
                } else {
                    String::new()
                },
            };
            if self.pending.len() >= MAX_PENDING {
                self.pending.clear();
            }
            self.pending.insert(req.id, (key, 0));
        } else if let Some(rsp) = &event.response_init_event {
            if let Some(p) = self.pending.get_mut(&rsp.id) {
                p.1 = rsp.http_status;
            }
        } else if let Some(end) = &event.response_end_event {
            let Some((key, status)) = self.pending.remove(&end.id) else { return };
            let latency = Duration::from(end.since_request_init);
            let proxy_error = event.proxy_error.as_deref().and_then(ProxyErrorReason::from_token);
            let success = !response_failed(status, end.grpc_status_code, proxy_error) && end.reset_error_code.is_none();
            self.add(key, latency, success);
        }
    }

    fn add(&mut self, key: Key, latency: Duration, success: bool) {
        let i = *self.index.entry(key.clone()).or_insert_with(|| {
            self.rows.push(Row { key, count: 0, best: latency, worst: latency, last: latency, successes: 0 });
            self.rows.len() - 1
        });
        let row = &mut self.rows[i];
        row.count += 1;
        row.best = row.best.min(latency);
        row.worst = row.worst.max(latency);
        row.last = latency;
        row.successes += u64::from(success);
    }

    /// The header line and one line per row (by count, highest first), columns aligned, no trailing space.
    pub fn lines(&self) -> (String, Vec<String>) {
        // (header, minimum width, right-aligned, value)
        type Column<'a> = (&'a str, usize, bool, Box<dyn Fn(&Row) -> String + 'a>);
        let mut columns: Vec<Column<'_>> = Vec::new();
        if !self.options.hide_sources {
            columns.push(("Source", 0, false, Box::new(|r: &Row| r.key.source.clone())));
        }
        columns.push(("Destination", 0, false, Box::new(|r: &Row| r.key.destination.clone())));
        if self.options.routes {
            columns.push(("Route", 0, false, Box::new(|r: &Row| r.key.route.clone())));
        } else {
            columns.push(("Method", 10, false, Box::new(|r: &Row| r.key.method.clone())));
            columns.push(("Path", 0, false, Box::new(|r: &Row| r.key.path.clone())));
        }
        columns.push(("Count", 6, true, Box::new(|r: &Row| r.count.to_string())));
        columns.push(("Best", 6, true, Box::new(|r: &Row| duration(r.best))));
        columns.push(("Worst", 6, true, Box::new(|r: &Row| duration(r.worst))));
        columns.push(("Last", 6, true, Box::new(|r: &Row| duration(r.last))));
        columns.push((
            "Success Rate",
            12,
            true,
            Box::new(|r: &Row| format!("{:.2}%", 100.0 * r.successes as f64 / r.count as f64)),
        ));

        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.count));
        let cells: Vec<Vec<String>> = rows.iter().map(|r| columns.iter().map(|c| (c.3)(r)).collect()).collect();
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let widest = cells.iter().map(|row| row[i].chars().count()).max().unwrap_or(0);
                c.1.max(c.0.chars().count()).max(widest)
            })
            .collect();
        let layout = |values: Vec<String>| -> String {
            let mut line = String::new();
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    line.push_str(&" ".repeat(GAP));
                }
                let pad = " ".repeat(widths[i].saturating_sub(value.chars().count()));
                if columns[i].2 {
                    line.push_str(&pad);
                    line.push_str(value);
                } else {
                    line.push_str(value);
                    line.push_str(&pad);
                }
            }
            line.trim_end().to_string()
        };
        let header = layout(columns.iter().map(|c| c.0.to_string()).collect());
        (header, cells.into_iter().map(layout).collect())
    }

    /// The table as plain text (header and rows), for a pipe.
    pub fn text(&self) -> String {
        let (header, rows) = self.lines();
        let mut out = header;
        out.push('\n');
        for r in rows {
            out.push_str(&r);
            out.push('\n');
        }
        out
    }
}

/// Linkerd's `top` latency: below 1 ms to the µs, below 1 s to the ms, else to the second, printed as Go
/// prints a duration (`519µs`, `463ms`, `5s`, `1m30s`).
pub fn duration(d: Duration) -> String {
    let us = d.as_micros();
    let rounded = if us < 1_000 {
        us
    } else if us < 1_000_000 {
        (us + 500) / 1_000 * 1_000
    } else {
        (us + 500_000) / 1_000_000 * 1_000_000
    };
    match rounded {
        0 => "0s".to_string(),
        u if u < 1_000 => format!("{u}µs"),
        u if u < 1_000_000 => format!("{}ms", u / 1_000),
        u => {
            let s = u / 1_000_000;
            match (s / 3600, s / 60 % 60, s % 60) {
                (0, 0, s) => format!("{s}s"),
                (0, m, s) => format!("{m}m{s}s"),
                (h, m, s) => format!("{h}h{m}m{s}s"),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use meshlens_api::tap::{ProxyDirection, RequestInit, ResponseEnd, ResponseInit};

    use super::*;

    fn endpoint(ip: &str, pod: Option<&str>) -> TapEndpoint {
        let metadata = pod.map(|p| BTreeMap::from([("pod".to_string(), p.to_string())])).unwrap_or_default();
        TapEndpoint { ip: ip.into(), port: 8080, metadata }
    }

    /// The three events of one request: `src` → `dst`, with the status, latency, grpc-status and route.
    pub fn request(
        id: u64,
        (src, dst): (&str, &str),
        (method, path, route): (&str, &str, Option<&str>),
        (status, latency_ms, grpc): (u16, u64, Option<u32>),
    ) -> Vec<TapEvent> {
        let pod = |s: &str| if s.starts_with(|c: char| c.is_ascii_digit()) { None } else { Some(s.to_string()) };
        let ip = |s: &str| if s.starts_with(|c: char| c.is_ascii_digit()) { s.to_string() } else { "127.0.0.1".into() };
        let base = TapEvent {
            route_meta: route.map(|r| BTreeMap::from([("route".to_string(), r.to_string())])).unwrap_or_default(),
            ..TapEvent::new(
                ProxyDirection::Outbound,
                endpoint(&ip(src), pod(src).as_deref()),
                endpoint(&ip(dst), pod(dst).as_deref()),
            )
        };
        let id = StreamId { base: 0, stream: id };
        let latency = Duration::from_millis(latency_ms);
        vec![
            TapEvent {
                request_init_event: Some(RequestInit {
                    id,
                    method: method.into(),
                    scheme: "http".into(),
                    authority: "x".into(),
                    path: path.into(),
                    headers: vec![],
                }),
                ..base.clone()
            },
            TapEvent {
                response_init_event: Some(ResponseInit {
                    id,
                    since_request_init: latency.into(),
                    http_status: status,
                    headers: vec![],
                }),
                ..base.clone()
            },
            TapEvent {
                response_end_event: Some(ResponseEnd {
                    id,
                    since_request_init: latency.into(),
                    since_response_init: Some(Duration::ZERO.into()),
                    response_bytes: 10,
                    trailers: vec![],
                    grpc_status_code: grpc,
                    reset_error_code: None,
                }),
                ..base
            },
        ]
    }

    /// A small fixed traffic mix: web-0 and an unmeshed client calling orders.
    pub fn sample(options: TopOptions) -> TopTable {
        let mut t = TopTable::new(options);
        let mut id = 0;
        let mut feed = |t: &mut TopTable, src, dst, what, outcome| {
            id += 1;
            for ev in request(id, (src, dst), what, outcome) {
                t.observe(&ev);
            }
        };
        for ms in [12, 3, 40] {
            feed(&mut t, "web-0", "orders-1", ("GET", "/api/orders", Some("GET /api/orders")), (200, ms, None));
        }
        feed(&mut t, "web-0", "orders-1", ("POST", "/api/orders", None), (503, 1_200, None));
        feed(&mut t, "web-0", "orders-1", ("POST", "/api/orders", None), (200, 0, None));
        feed(&mut t, "10.1.2.3", "orders-0", ("GET", "/api/orders", Some("GET /api/orders")), (200, 5_000, Some(14)));
        t
    }

    #[test]
    fn rows_aggregate_by_key_and_sort_by_count() {
        let (header, rows) = sample(TopOptions::default()).lines();
        // Linkerd's layout: two spaces between columns, Method 10 wide, the numbers right-aligned.
        assert_eq!(
            header,
            "Source    Destination  Method      Path          Count    Best   Worst    Last  Success Rate"
        );
        assert_eq!(
            rows,
            [
                "web-0     orders-1     GET         /api/orders       3     3ms    40ms    40ms       100.00%",
                "web-0     orders-1     POST        /api/orders       2      0s      1s      0s        50.00%",
                "10.1.2.3  orders-0     GET         /api/orders       1      5s      5s      5s         0.00%",
            ]
        );
    }

    #[test]
    fn routes_and_hidden_sources_change_the_key() {
        let (header, rows) = sample(TopOptions { hide_sources: true, routes: true }).lines();
        assert_eq!(header, "Destination  Route             Count    Best   Worst    Last  Success Rate");
        assert_eq!(rows[0], "orders-1     GET /api/orders       3     3ms    40ms    40ms       100.00%");
        assert_eq!(rows[1], "orders-1     [DEFAULT]             2      0s      1s      0s        50.00%");
    }

    #[test]
    fn an_end_without_its_request_is_ignored() {
        let mut t = TopTable::new(TopOptions::default());
        let events = request(1, ("a", "b"), ("GET", "/", None), (200, 1, None));
        t.observe(&events[2]);
        assert!(t.lines().1.is_empty());
        t.observe(&events[0]);
        t.observe(&events[2]);
        assert_eq!(t.lines().1.len(), 1);
    }

    #[test]
    fn go_style_durations() {
        let d = |us: u64| duration(Duration::from_micros(us));
        assert_eq!(d(0), "0s");
        assert_eq!(d(519), "519µs");
        assert_eq!(d(2_400), "2ms");
        assert_eq!(d(999_700), "1s");
        assert_eq!(d(5_000_267), "5s");
        assert_eq!(d(90_000_000), "1m30s");
        assert_eq!(d(3_600_000_000), "1h0m0s");
    }
}
