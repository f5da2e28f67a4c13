//! Prometheus mode: the window sums behind `/api/v1/stat|routes|edges` asked of a Prometheus that scrapes
//! the proxies, with PromQL `increase(…[window])` over the whole window (never `irate`).
//!
//! Every metric family the embedded store reads is asked for once per API call, summed by the source
//! target labels (`namespace`, `deployment`, `pod`, added by `meshlens prometheus-config`'s service
//! discovery) and every label the rollup reads. Each answer is fed, as one scrape of its source, to a
//! one-slot [`MetricStore`], so both modes roll up, group and interpolate with the same code: a quantile
//! is PromQL's `histogram_quantile(q, sum by (le, …) (increase(response_latency_ms_bucket[window])))`.
//! Rates are over the seconds Prometheus holds (from the oldest scrape of a proxy in the window), not
//! over a window it has only partly seen, as in the embedded store.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::httpget;
use crate::metricstore::{MetricStore, Peer, Settings, Source};
use meshlens_api::promtext::Sample;

/// How a family is asked for.
#[derive(Clone, Copy, PartialEq)]
enum Ask {
    /// A counter: its `increase` over the window.
    Increase,
    /// A gauge: its current value.
    Now,
    /// A latency extreme gauge: its max (or min) over the window.
    Max,
    Min,
}

/// The metric families the rollup reads and how each is asked for.
const FAMILIES: [(&str, Ask); 13] = [
    ("response_total", Ask::Increase),
    ("response_latency_ms_bucket", Ask::Increase),
    ("response_latency_ms_max", Ask::Max),
    ("response_latency_ms_min", Ask::Min),
    ("route_response_total", Ask::Increase),
    ("route_response_latency_ms_bucket", Ask::Increase),
    ("route_response_latency_ms_max", Ask::Max),
    ("route_response_latency_ms_min", Ask::Min),
    ("route_actual_response_total", Ask::Increase),
    ("route_retry_fate_total", Ask::Increase),
    ("tcp_read_bytes_total", Ask::Increase),
    ("tcp_write_bytes_total", Ask::Increase),
    ("tcp_open_connections", Ask::Now),
];

/// The target labels naming the proxy a series came from (Linkerd's, as `dst_*` names the peer).
pub(crate) const SOURCE_LABELS: [&str; 3] = ["namespace", "deployment", "pod"];

/// Every label `metricstore::key_for` and the per-family counting read: the `by` list of every query.
const KEY_LABELS: &str = "direction, authority, target_addr, peer, dst, rt_route, fate, dst_namespace, \
    dst_deployment, dst_pod, dst_service, status_code, classification, error, le";

/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why Prometheus gave no answer.
#[derive(Debug, PartialEq)]
pub(crate) enum PromError {
    /// Not reachable (refused, timed out): 503.
    Unreachable(String),
    /// It answered, with an error or something that is not a query result: 502.
    Failed(String),
}

/// A Prometheus server's HTTP API.
#[derive(Clone, Debug)]
pub(crate) struct Prometheus {
    /// As given (for messages).
    url: String,
    /// `host:port`.
    authority: String,
    /// Path prefix without a trailing slash (e.g. `/prometheus` behind a reverse proxy), often empty.
    prefix: String,
    /// How often Prometheus scrapes the proxies: windows must span at least two intervals.
    interval_ms: u64,
}

impl Prometheus {
    /// `http://HOST[:PORT][/PREFIX]`.
    pub fn new(url: &str, scrape_interval: Duration) -> Result<Self, String> {
        let invalid = |why: &str| format!("invalid Prometheus URL '{url}': {why}");
        let rest = url.strip_prefix("http://").ok_or_else(|| invalid("it must start with http://"))?;
        let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() || authority.contains(['@', '?', '#', ' ']) {
            return Err(invalid("expected http://HOST[:PORT][/PATH]"));
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_string()
        } else if authority.contains(':') && !authority.ends_with(']') {
            return Err(invalid("the port is not a number"));
        } else {
            format!("{authority}:80")
        };
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("/{prefix}") };
        Ok(Prometheus {
            url: url.trim_end_matches('/').to_string(),
            authority,
            prefix,
            interval_ms: scrape_interval.as_millis().max(1) as u64,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// What the proxies counted in the `window_ms` ending `offset_ms` before now, as a one-slot store
    /// that holds the whole window; the second value is the time to query it at. `peers` names the
    /// instance behind a TCP target address.
    pub async fn window(
        &self,
        window_ms: u64,
        offset_ms: u64,
        peers: &HashMap<SocketAddr, Peer>,
    ) -> Result<(MetricStore, u64), PromError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let at = now - offset_ms as f64 / 1000.0;
        let asks = FAMILIES.iter().map(|&(name, ask)| async move {
            let answer = self.instant_query(&promql(name, ask, window_ms), at).await;
            answer.map(|series| (name, series))
        });
        let first = first_scrape(window_ms, self.interval_ms);
        let (answers, first) = tokio::join!(futures_util::future::join_all(asks), self.instant_query(&first, at));
        let covered_ms = covered_ms(first?, at, window_ms);
        let answers = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
        let store = self.store_of(window_ms, answers, peers);
        store.holds_from(window_ms - covered_ms);
        Ok((store, window_ms))
    }

    /// `count` earlier windows of `window_ms`, back to back, the newest ending `offset_ms` before now, each
    /// as a one-slot store (newest first; empty when Prometheus holds nothing of it) with the time to query
    /// it at: one range query per family, stepping a window at a time.
    pub async fn earlier(
        &self,
        window_ms: u64,
        (offset_ms, count): (u64, usize),
        peers: &HashMap<SocketAddr, Peer>,
    ) -> Result<Vec<(MetricStore, u64)>, PromError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let (step, end) = (window_ms as f64 / 1000.0, now - offset_ms as f64 / 1000.0);
        let start = end - step * count.saturating_sub(1) as f64;
        let asks = FAMILIES.iter().filter(|(_, ask)| *ask != Ask::Now).map(|&(name, ask)| async move {
            let answer = self.range_query(&promql(name, ask, window_ms), (start, end, step)).await;
            answer.map(|series| (name, series))
        });
        let mut windows: Vec<Vec<(&str, Vec<Series>)>> = (0..count).map(|_| Vec::new()).collect();
        for answer in futures_util::future::join_all(asks).await {
            let (name, series) = answer?;
            let mut by_window: BTreeMap<usize, Vec<Series>> = BTreeMap::new();
            for s in series {
                // The i-th window ends i steps before `end`.
                let i = ((end - s.at) / step).round();
                if i >= 0.0 && (i as usize) < count {
                    by_window.entry(i as usize).or_default().push(s);
                }
            }
            for (i, series) in by_window {
                windows[i].push((name, series));
            }
        }
        let stores = windows.into_iter().map(|answers| {
            let store = self.store_of(window_ms, answers, peers);
            // Held in full: a quiet window is one without requests, not one whose rates to scale up.
            store.holds_from(0);
            (store, window_ms)
        });
        Ok(stores.collect())
    }

    /// A one-slot store holding a window's answers, each family's series fed as one scrape of its source.
    fn store_of(
        &self,
        window_ms: u64,
        answers: Vec<(&str, Vec<Series>)>,
        peers: &HashMap<SocketAddr, Peer>,
    ) -> MetricStore {
        let mut by_source: BTreeMap<Source, Vec<Sample>> = BTreeMap::new();
        for (name, series) in answers {
            for s in series {
                let Some(source) = source_of(&s.metric) else { continue };
                let labels = s.metric.into_iter().filter(|(k, _)| !SOURCE_LABELS.contains(&k.as_str())).collect();
                by_source.entry(source).or_default().push(Sample { name: name.to_string(), labels, value: s.value });
            }
        }
        let store = MetricStore::new(Settings::new(self.interval_ms, window_ms));
        let peer = |addr: &str| addr.parse::<SocketAddr>().ok().and_then(|a| peers.get(&a).cloned());
        for (source, samples) in &by_source {
            // The values are already the increases over the window: counted from 0, in full.
            store.ingest(source, window_ms, samples, true, &peer);
        }
        store
    }

    /// `GET /api/v1/query_range?query=…&start=…&end=…&step=…`: every series' points, one per step.
    async fn range_query(&self, query: &str, (start, end, step): (f64, f64, f64)) -> Result<Vec<Series>, PromError> {
        let (start, end, step) = (format!("{start:.3}"), format!("{end:.3}"), format!("{step:.3}"));
        let q = serde_urlencoded::to_string([("query", query), ("start", &start), ("end", &end), ("step", &step)])
            .expect("string pairs always encode");
        self.get(&format!("{}/api/v1/query_range?{q}", self.prefix), query).await
    }

    /// `GET /api/v1/query?query=…&time=…`: the series of an instant vector.
    async fn instant_query(&self, query: &str, at: f64) -> Result<Vec<Series>, PromError> {
        let q = serde_urlencoded::to_string([("query", query), ("time", &format!("{at:.3}"))])
            .expect("string pairs always encode");
        self.get(&format!("{}/api/v1/query?{q}", self.prefix), query).await
    }

    async fn get(&self, path: &str, query: &str) -> Result<Vec<Series>, PromError> {
        let reply =
            httpget::get(&self.authority, path, "application/json", QUERY_TIMEOUT).await.map_err(|e| {
                match e.kind() {
                    std::io::ErrorKind::InvalidData => {
                        PromError::Failed(format!("Prometheus at {} answered something unreadable: {e}", self.url))
                    }
                    std::io::ErrorKind::TimedOut => {
                        PromError::Unreachable(format!("Prometheus at {} did not answer: {e}", self.url))
                    }
                    _ => PromError::Unreachable(format!("cannot reach Prometheus at {}: {e}", self.url)),
                }
            })?;
        parse_answer(reply.status, &reply.body)
            .map_err(|e| PromError::Failed(format!("Prometheus at {} answered {e} (query: {query})", self.url)))
    }
}

/// `sum by (namespace, deployment, pod, …) (increase(NAME{…}[Wms]))`, the gauge's current sum, or a
/// latency extreme's `max`/`min` over the window.
fn promql(name: &str, ask: Ask, window_ms: u64) -> String {
    let selector = format!("{name}{{direction=~\"inbound|outbound\",namespace!=\"\",pod!=\"\"}}");
    let by = format!("{}, {KEY_LABELS}", SOURCE_LABELS.join(", "));
    match ask {
        Ask::Increase => format!("sum by ({by}) (increase({selector}[{window_ms}ms]))"),
        Ask::Now => format!("sum by ({by}) ({selector})"),
        Ask::Max => format!("max by ({by}) (max_over_time({selector}[{window_ms}ms]))"),
        Ask::Min => format!("min by ({by}) (min_over_time({selector}[{window_ms}ms]))"),
    }
}

/// The time of the oldest proxy scrape Prometheus holds in the window: a subquery at the scrape interval
/// over each target's `up` sample times (robust to scrapes it missed, unlike counting samples).
fn first_scrape(window_ms: u64, interval_ms: u64) -> String {
    format!("min(min_over_time(timestamp(up{{namespace!=\"\",pod!=\"\"}})[{window_ms}ms:{interval_ms}ms]))")
}

/// How much of the window ending at `at` (unix seconds) Prometheus holds, from the answer to
/// [`first_scrape`]: the whole window when its oldest scrape is older (or unknown: then it holds no
/// counts either).
fn covered_ms(first: Vec<Series>, at: f64, window_ms: u64) -> u64 {
    first.first().map_or(window_ms, |s| (((at - s.value) * 1000.0).max(0.0) as u64).min(window_ms))
}

fn source_of(labels: &BTreeMap<String, String>) -> Option<Source> {
    let get = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
    Some(Source { namespace: get("namespace")?, workload: get("deployment")?, instance: get("pod")? })
}

/// One series of an instant vector, or one point of a range vector's series.
#[derive(Debug, PartialEq)]
struct Series {
    metric: BTreeMap<String, String>,
    value: f64,
    /// When it was evaluated (unix seconds).
    at: f64,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// An instant vector's `[unix seconds, "value"]`.
    #[serde(default)]
    value: Option<(f64, String)>,
    /// A range vector's points.
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// A `/api/v1/query` answer → its series (non-finite values dropped), or what went wrong.
fn parse_answer(status: u16, body: &str) -> Result<Vec<Series>, String> {
    let answer: Answer = match serde_json::from_str(body) {
        Ok(a) => a,
        Err(_) => {
            let text: String = body.chars().take(200).collect();
            return Err(format!("{status} with a body that is not a query result: {:?}", text.trim()));
        }
    };
    if answer.status != "success" || status != 200 {
        let kind = answer.error_type.unwrap_or_else(|| "error".into());
        return Err(format!("{status}: {kind}: {}", answer.error.unwrap_or_default()));
    }
    let data = answer.data.ok_or_else(|| format!("{status} without data"))?;
    if data.result_type != "vector" && data.result_type != "matrix" {
        return Err(format!("a {} instead of an instant or range vector", data.result_type));
    }
    Ok(data
        .result
        .into_iter()
        .flat_map(|s| {
            let points = s.value.into_iter().chain(s.values);
            let metric = s.metric;
            points
                .filter_map(|(at, v)| Some((at, v.parse::<f64>().ok().filter(|v| v.is_finite())?)))
                .map(move |(at, value)| Series { metric: metric.clone(), value, at })
                .collect::<Vec<_>>()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metricstore::Family;

    #[test]
    fn urls() {
        let p = Prometheus::new("http://127.0.0.1:9090/", Duration::from_secs(5)).unwrap();
        assert_eq!((p.authority.as_str(), p.prefix.as_str(), p.url()), ("127.0.0.1:9090", "", "http://127.0.0.1:9090"));
        let p = Prometheus::new("http://prom.example/prometheus/", Duration::from_secs(5)).unwrap();
        assert_eq!((p.authority.as_str(), p.prefix.as_str()), ("prom.example:80", "/prometheus"));
        for bad in ["https://x:9090", "127.0.0.1:9090", "http://", "http://x:port", "http://u@x:1"] {
            assert!(Prometheus::new(bad, Duration::from_secs(5)).is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_sum_increases_over_the_whole_window_by_source_and_key_labels() {
        let q = promql("response_latency_ms_bucket", Ask::Increase, 60_000);
        assert!(q.starts_with("sum by (namespace, deployment, pod, direction, "), "{q}");
        assert!(q.contains(", le) (increase(response_latency_ms_bucket{direction=~\"inbound|outbound\""), "{q}");
        assert!(q.ends_with("[60000ms]))"), "{q}");
        assert!(!q.contains("irate"));
        let g = promql("tcp_open_connections", Ask::Now, 60_000);
        let m = promql("response_latency_ms_max", Ask::Max, 60_000);
        assert!(m.starts_with("max by (namespace, ") && m.contains("(max_over_time(response_latency_ms_max{"), "{m}");
        assert!(g.ends_with("(tcp_open_connections{direction=~\"inbound|outbound\",namespace!=\"\",pod!=\"\"})"));
    }

    #[test]
    fn answers_and_errors() {
        let ok = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"prod","deployment":"web","pod":"web-0","classification":"success"},"value":[1.5,"12.5"]},
            {"metric":{},"value":[1.5,"NaN"]}]}}"#;
        let series = parse_answer(200, ok).unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].value, 12.5);
        assert_eq!(source_of(&series[0].metric).unwrap().instance, "web-0");
        let err = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        assert_eq!(parse_answer(400, err).unwrap_err(), "400: bad_data: parse error at char 3");
        assert!(parse_answer(404, "404 page not found").unwrap_err().starts_with("404 with a body that is not"));
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[]}}"#;
        assert!(parse_answer(200, scalar).unwrap_err().contains("a scalar instead of"));
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"web-0"},"values":[[100,"1"],[160,"2"],[220,"NaN"]]}]}}"#;
        let points: Vec<_> = parse_answer(200, matrix).unwrap().iter().map(|s| (s.at, s.value)).collect();
        assert_eq!(points, [(100.0, 1.0), (160.0, 2.0)]);
    }

    /// A fake Prometheus answering each family's instant query with fixed series (JSON objects,
    /// comma-separated), and its range queries with `ranges`: per family, series (labels, values from the
    /// newest point back) at the `end` and `step` asked for.
    async fn fake_prometheus(
        answers: HashMap<&'static str, String>,
        ranges: HashMap<&'static str, Vec<(String, Vec<f64>)>>,
    ) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (answers, ranges) = (std::sync::Arc::new(answers), std::sync::Arc::new(ranges));
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut conn, _)) = listener.accept().await {
                let (answers, ranges) = (answers.clone(), ranges.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let asks = |name: &str| head.contains(&format!("%28{name}%7B"));
                    let body = if head.starts_with("GET /api/v1/query_range?") {
                        let param = |k: &str| -> f64 {
                            let v = head.split(&format!("&{k}=")).nth(1).unwrap().split([' ', '&']).next().unwrap();
                            v.parse().unwrap()
                        };
                        let (end, step) = (param("end"), param("step"));
                        let series = ranges.iter().find(|(name, _)| asks(name)).map_or(&[][..], |(_, r)| &r[..]);
                        let result: Vec<String> = series
                            .iter()
                            .map(|(labels, values)| {
                                let points: Vec<String> = values
                                    .iter()
                                    .enumerate()
                                    .rev()
                                    .map(|(i, v)| format!("[{},\"{v}\"]", end - i as f64 * step))
                                    .collect();
                                format!(r#"{{"metric":{{{labels}}},"values":[{}]}}"#, points.join(","))
                            })
                            .collect();
                        format!(
                            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}}}}"#,
                            result.join(",")
                        )
                    } else {
                        let result = answers.iter().find(|(name, _)| asks(name)).map_or("", |(_, r)| r.as_str());
                        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{result}]}}}}"#)
                    };
                    let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn earlier_windows_are_one_range_query_per_family_and_a_store_each() {
        let api = r#""namespace":"prod","deployment":"api","pod":"api-0","direction":"outbound","rt_route":"GET /x""#;
        let l = |extra: &str| format!("{api},{extra}");
        // Newest first: 100 requests, then 0 (Prometheus held nothing), then 80; the newest window slow.
        let ranges = HashMap::from([
            ("route_response_total", vec![(l(r#""classification":"success""#), vec![100.0, 0.0, 80.0])]),
            (
                "route_response_latency_ms_bucket",
                vec![
                    (l(r#""le":"25""#), vec![0.0, 0.0, 80.0]),
                    (l(r#""le":"200""#), vec![100.0, 0.0, 80.0]),
                    (l(r#""le":"+Inf""#), vec![100.0, 0.0, 80.0]),
                ],
            ),
        ]);
        let url = fake_prometheus(HashMap::new(), ranges).await;
        let prom = Prometheus::new(&url, Duration::from_secs(1)).unwrap();
        let windows = prom.earlier(60_000, (60_000, 3), &HashMap::new()).await.unwrap();
        assert_eq!(windows.len(), 3);
        let routes: Vec<_> = windows
            .iter()
            .map(|(store, end)| {
                let t = store.query(*end, 60_000, |k| (k.family == Family::Route).then(|| k.route.clone()));
                t.get("GET /x").map(|t| (t.success, t.quantile(0.99).map(f64::round)))
            })
            .collect();
        assert_eq!(routes, [Some((100.0, Some(198.0))), None, Some((80.0, Some(25.0)))]);
        assert_eq!(windows[1].0.covered(60_000, 60_000), 60_000, "an empty window is held, not missing");
    }

    #[tokio::test]
    async fn a_window_rolls_up_like_scrapes() {
        let web0 = r#""namespace":"prod","deployment":"web","pod":"web-0""#;
        let series = |labels: &str, v: f64| format!(r#"{{"metric":{{{labels}}},"value":[1,"{v}"]}}"#);
        let mut answers = HashMap::new();
        answers.insert(
            "response_total",
            [
                series(&format!(r#"{web0},"direction":"inbound","classification":"success""#), 90.0),
                series(&format!(r#"{web0},"direction":"inbound","classification":"failure""#), 9.5),
                series(r#""namespace":"prod","deployment":"web","pod":"web-1","direction":"inbound""#, 0.5),
                series(r#""deployment":"web","direction":"inbound""#, 1000.0),
            ]
            .join(","),
        );
        let buckets = [("10", 50.0), ("20", 90.0), ("100", 100.0), ("+Inf", 100.0)]
            .map(|(le, v)| series(&format!(r#"{web0},"direction":"inbound","le":"{le}""#), v));
        answers.insert("response_latency_ms_bucket", buckets.join(","));
        let tcp = r#""direction":"outbound","peer":"dst","target_addr":"127.0.0.1:7""#;
        answers.insert("tcp_open_connections", series(&format!("{web0},{tcp}"), 3.0));
        // Prometheus' oldest scrape in the window is 20 s old.
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        answers.insert("up", series("", unix - 20.0));
        let url = fake_prometheus(answers, HashMap::new()).await;
        let prom = Prometheus::new(&url, Duration::from_secs(1)).unwrap();
        let peers = HashMap::from([(
            "127.0.0.1:7".parse().unwrap(),
            Peer { namespace: "prod".into(), workload: "db".into(), instance: "db-0".into() },
        )]);
        let (store, now) = prom.window(60_000, 0, &peers).await.unwrap();
        let http = store.query(now, 60_000, |k| (k.family == Family::Http && !k.outbound).then(|| k.workload.clone()));
        let web = &http["web"];
        assert_eq!((web.success, web.failure), (90.0, 10.0), "series without source labels are not counted");
        assert_eq!(web.quantile(0.5), Some(10.0));
        assert_eq!(web.quantile(0.95), Some(60.0));
        let tcp = store.query(now, 60_000, |k| (k.family == Family::Tcp).then(|| k.dst_workload.clone()));
        assert_eq!(tcp["db"].open_connections, 3.0);
        let covered = store.covered(now, 60_000);
        assert!((20_000..25_000).contains(&covered), "rates are over the 20 s Prometheus holds, not 60: {covered}");
        assert!(first_scrape(60_000, 5_000).ends_with("(timestamp(up{namespace!=\"\",pod!=\"\"})[60000ms:5000ms]))"));

        // Unreachable.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let prom = Prometheus::new(&format!("http://{closed}"), Duration::from_secs(1)).unwrap();
        match prom.window(60_000, 0, &peers).await {
            Err(PromError::Unreachable(m)) => {
                assert!(m.starts_with(&format!("cannot reach Prometheus at http://{closed}: ")), "{m}")
            }
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("a closed port answered"),
        }
    }
}
