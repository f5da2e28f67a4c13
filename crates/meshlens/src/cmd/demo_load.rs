//! `meshlens demo-load`: the demo's traffic generator — a steady (open-loop) request rate over a mix of
//! the shop's paths, sent the way a meshed app sends them (through HTTP_PROXY, i.e. its sidecar).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use super::demo_app::app::Via;
use super::demo_app::client::{Downstream, Outcome};
use super::demo_app::config::parse_duration;

/// The shop's mix: page views, product pages, account pages and checkouts.
pub const DEFAULT_MIX: &str = "GET /=3,GET /products/{n}=3,GET /account/{n}=2,POST /checkout=2";

/// Send a steady stream of requests to a service (the demo's traffic generator).
///
/// Requests start at a fixed rate whether or not earlier ones have finished (open loop), spread over a
/// weighted mix of paths. With HTTP_PROXY set they go through that proxy (the sidecar). Every
/// --report-every it prints one JSON line: counts by status, failures, p50/p99 latency. With PORT set it
/// also serves its totals as JSON on 127.0.0.1:$PORT.
#[derive(Args, Debug)]
pub struct DemoLoadArgs {
    /// The service to drive, e.g. http://frontend.
    #[arg(long, value_name = "URL")]
    target: String,
    /// Requests per second.
    #[arg(long, default_value_t = 20.0)]
    rps: f64,
    /// Weighted requests: "METHOD /path=WEIGHT,…"; {n} is a random number, {uuid} a random UUID.
    #[arg(long, value_name = "MIX", default_value = DEFAULT_MIX)]
    mix: String,
    /// Client timeout per request.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    timeout: Duration,
    /// Stop after this long (default: run until stopped).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many requests (default: run until stopped).
    #[arg(long)]
    requests: Option<u64>,
    /// How often to print a summary line.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    report_every: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MixEntry {
    pub method: http::Method,
    pub path: String,
    pub weight: u32,
}

/// Parses "GET /=3,POST /checkout=1".
pub fn parse_mix(s: &str) -> anyhow::Result<Vec<MixEntry>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (req, weight) = part.rsplit_once('=').unwrap_or((part, "1"));
        let weight: u32 = weight.trim().parse().with_context(|| format!("{part:?}: weight is not a number"))?;
        let (method, path) = req.trim().split_once(' ').with_context(|| format!("{part:?}: expected METHOD /path"))?;
        let method = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .with_context(|| format!("{part:?}: not an HTTP method"))?;
        let path = path.trim();
        if !path.starts_with('/') {
            bail!("{part:?}: the path must start with /");
        }
        out.push(MixEntry { method, path: path.to_owned(), weight });
    }
    if out.iter().map(|e| e.weight).sum::<u32>() == 0 {
        bail!("the mix has no request with a weight above 0");
    }
    Ok(out)
}

#[derive(Default)]
struct Stats {
    sent: u64,
    by_status: BTreeMap<String, u64>,
    failed: u64,
    latencies_ms: Vec<f64>,
    total_sent: u64,
    total_failed: u64,
    total_by_status: BTreeMap<String, u64>,
}

pub fn run(args: DemoLoadArgs) -> anyhow::Result<ExitCode> {
    let mix = parse_mix(&args.mix)?;
    if !(args.rps.is_finite() && args.rps > 0.0) {
        bail!("--rps must be above 0");
    }
    let target: http::Uri = args.target.parse().with_context(|| format!("--target {:?} is not a URL", args.target))?;
    let authority = target.authority().context("--target needs a host, e.g. http://frontend")?.to_string();
    let base = target.path().trim_end_matches('/').to_owned();
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let stats = Arc::new(Mutex::new(Stats::default()));
        let stats_server = match std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()) {
            Some(port) => {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let listener =
                    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
                Some(tokio::spawn(serve_stats(listener, stats.clone())))
            }
            None => None,
        };
        println!("{}", json!({"message": "load", "target": args.target, "rps": args.rps, "mix": args.mix}));
        let downstream = Downstream::from_env();
        wait_until_ready(&downstream, &authority, &base, args.timeout).await;
        let generate = generate(&args, &mix, &authority, &base, downstream, stats.clone());
        let stopped = super::demo_app::until_stopped();
        let why = tokio::select! {
            _ = generate => "done",
            why = stopped => why?,
        };
        print_report(&stats, args.rps, true);
        if let Some(s) = stats_server {
            s.abort();
        }
        eprintln!("demo-load: {why}: exiting");
        Ok(ExitCode::SUCCESS)
    })
}

/// Before the load starts, waits (at most 30 s) until the target answers `GET /` without a server error,
/// so a mesh that is still starting (apps not listening yet) is not reported as failing requests.
async fn wait_until_ready(downstream: &Downstream, authority: &str, base: &str, timeout: Duration) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = format!("{base}/");
    loop {
        let r = downstream.call(authority, http::Method::GET, &path, None, Via::Auto, timeout).await;
        if let Outcome::Status(status) = r.outcome
            && status < 500
        {
            println!("{}", json!({"message": "target ready", "target": authority}));
            return;
        }
        if Instant::now() >= deadline {
            println!(
                "{}",
                json!({"message": "target not ready after 30 s; starting the load anyway", "target": authority})
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn generate(
    args: &DemoLoadArgs,
    mix: &[MixEntry],
    authority: &str,
    base: &str,
    downstream: Downstream,
    stats: Arc<Mutex<Stats>>,
) {
    let total_weight: u32 = mix.iter().map(|e| e.weight).sum();
    let mut rng = fastrand::Rng::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rps));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut report = tokio::time::interval(args.report_every);
    report.tick().await;
    let started = Instant::now();
    let mut sent = 0u64;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(((args.rps * 30.0) as usize).clamp(64, 10_000)));
    loop {
        if args.requests.is_some_and(|n| sent >= n) || args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = report.tick() => { print_report(&stats, args.rps, false); continue; }
        }
        let mut pick = rng.u32(0..total_weight);
        let entry = mix.iter().find(|e| {
            if pick < e.weight {
                return true;
            }
            pick -= e.weight;
            false
        });
        let Some(entry) = entry else { continue };
        let path = format!("{base}{}", fill(&entry.path, &mut rng));
        sent += 1;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            record(&stats, "skipped (too many in flight)".into(), false, None);
            continue;
        };
        let (downstream, method, authority, stats, timeout) =
            (downstream.clone(), entry.method.clone(), authority.to_owned(), stats.clone(), args.timeout);
        tokio::spawn(async move {
            let body = (method == http::Method::POST).then_some("{}");
            let r = downstream.call(&authority, method, &path, body, Via::Auto, timeout).await;
            let key = match &r.outcome {
                Outcome::Status(s) => s.to_string(),
                Outcome::Timeout => "timeout".into(),
                Outcome::Error(_) => "error".into(),
            };
            record(&stats, key, r.ok(), Some(r.elapsed));
            drop(permit);
        });
    }
    // Let the last requests finish (bounded by the timeout).
    let _ =
        tokio::time::timeout(args.timeout, in_flight.acquire_many(((args.rps * 30.0) as u32).clamp(64, 10_000))).await;
}

fn fill(template: &str, rng: &mut fastrand::Rng) -> String {
    template.replace("{n}", &rng.u32(1..=1000).to_string()).replace("{uuid}", &super::demo_app::app::uuid(rng))
}

fn record(stats: &Mutex<Stats>, key: String, ok: bool, elapsed: Option<Duration>) {
    let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
    s.sent += 1;
    s.total_sent += 1;
    if !ok {
        s.failed += 1;
        s.total_failed += 1;
    }
    *s.total_by_status.entry(key.clone()).or_default() += 1;
    *s.by_status.entry(key).or_default() += 1;
    if let Some(e) = elapsed {
        s.latencies_ms.push(e.as_secs_f64() * 1000.0);
    }
}

fn print_report(stats: &Mutex<Stats>, rps: f64, last: bool) {
    let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
    if s.sent == 0 && !last {
        return;
    }
    s.latencies_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let l = &s.latencies_ms;
        (!l.is_empty()).then(|| (l[((l.len() as f64 * p) as usize).min(l.len() - 1)] * 10.0).round() / 10.0)
    };
    let line = json!({
        "message": if last { "load totals" } else { "load" },
        "rps": rps,
        "completed": s.sent,
        "failed": s.failed,
        "statuses": s.by_status,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "total": s.total_sent,
        "total_failed": s.total_failed,
    });
    println!("{line}");
    s.sent = 0;
    s.failed = 0;
    s.by_status.clear();
    s.latencies_ms.clear();
}

async fn serve_stats(listener: tokio::net::TcpListener, stats: Arc<Mutex<Stats>>) {
    use http_body_util::Full;
    use hyper::service::service_fn;
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let stats = stats.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
                let s = stats.lock().unwrap_or_else(PoisonError::into_inner);
                let body = json!({"total": s.total_sent, "failed": s.total_failed, "statuses": s.total_by_status});
                drop(s);
                let mut rsp = hyper::Response::new(Full::new(bytes::Bytes::from(body.to_string())));
                rsp.headers_mut()
                    .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                async move { Ok::<_, std::convert::Infallible>(rsp) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes() {
        let m = parse_mix(DEFAULT_MIX).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[3], MixEntry { method: http::Method::POST, path: "/checkout".into(), weight: 2 });
        assert_eq!(parse_mix("get /a").unwrap()[0].weight, 1);
        assert!(parse_mix("GET a=1").is_err());
        assert!(parse_mix("GET /a=0").is_err());
        assert!(parse_mix("/a=1").is_err());
    }
}
