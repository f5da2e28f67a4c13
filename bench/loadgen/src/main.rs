//! meshlens-loadgen: open-loop fixed-rate HTTP load on a loopback target, latency timed from each scheduled send.
//!
//! A scheduler thread emits send times `start + i / rate`, independent of how fast answers come back;
//! a current-thread tokio runtime sends each request on a pre-opened connection and records
//! `completion - scheduled time` in an HDR histogram. A stalled target therefore shows up as latency
//! instead of silently lowering the offered rate (no coordinated omission). Every run is bounded by
//! a request count and a duration, and only literal 127.0.0.0/8 targets are accepted.

mod target;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http::header::{HOST, HeaderValue, USER_AGENT};
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::target::Target;

/// No run lasts longer than this, whatever the flags say.
const MAX_RUN: Duration = Duration::from_secs(600);

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Open-loop fixed-rate HTTP load generator (127.0.0.0/8 targets only). Prints one JSON object."
)]
struct Args {
    /// Target URL, `http://127.x.y.z:PORT/path` (a literal loopback IPv4 address; no DNS).
    #[arg(long)]
    url: String,
    /// Authority to send (`Host` / `:authority`) instead of the URL's, e.g. backend.default.svc.cluster.local.
    #[arg(long)]
    host: Option<String>,
    /// Requests per second, evenly spaced.
    #[arg(long)]
    rate: f64,
    /// Measured sending window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured sending at the same rate before the window, in seconds.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Cap on requests sent, warm-up included (default: rate × (warmup + duration)).
    #[arg(long)]
    max_requests: Option<u64>,
    /// Connections opened before the clock starts (HTTP/1.1: one request in flight on each).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Speak HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    #[arg(long)]
    http2: bool,
    /// A request unanswered this long after its scheduled time is a timeout, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Busy-poll instead of sleeping: sends within a microsecond or two of schedule and sees answers
    /// at once, but keeps one core 100% busy. Use only when the load generator has a core to itself.
    #[arg(long)]
    spin: bool,
}

type H1 = http1::SendRequest<Empty<Bytes>>;
type H2 = http2::SendRequest<Empty<Bytes>>;

/// Connections to the target. HTTP/1.1 connections are lent out one request at a time, in FIFO
/// order of the waiting requests; HTTP/2 connections are shared round-robin.
enum Pool {
    H1 { idle: Mutex<Vec<H1>>, permits: Semaphore },
    H2 { conns: Vec<H2>, next: AtomicUsize },
}

/// What every request task needs.
struct Shared {
    pool: Pool,
    target: Target,
    uri: Uri,
    host: HeaderValue,
    measure_from: Instant,
    timeout: Duration,
    stats: Mutex<Stats>,
}

/// Outcomes of the requests scheduled inside the measured window.
struct Stats {
    latency_ns: Histogram<u64>,
    lag_ns: Histogram<u64>,
    scheduled: u64,
    ok: u64,
    non_2xx: u64,
    errors: u64,
    timeouts: u64,
    first_error: Option<String>,
    last_done: Option<Instant>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = Target::parse(&args.url, args.host.as_deref())?;
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number");
    }
    if !(args.duration.is_finite() && args.duration > 0.0 && args.warmup >= 0.0) {
        bail!("--duration must be positive and --warmup not negative");
    }
    if Duration::from_secs_f64(args.duration + args.warmup) > MAX_RUN {
        bail!("--warmup + --duration must not exceed {} s", MAX_RUN.as_secs());
    }
    if args.connections == 0 || args.connections > 1024 {
        bail!("--connections must be between 1 and 1024");
    }
    // Sleep precision matters at 10k req/s (100 µs apart); the default 50 µs timer slack would
    // make sends late and bunched. Set before any thread starts so all of them inherit it.
    let slack = set_timer_slack();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut report = rt.block_on(run(&args, target))?;
    report["timer_slack_ns"] = slack.map_or(Value::Null, Value::from);
    println!("{report}");
    Ok(())
}

/// Asks for 1 ns timer slack; returns the value in force afterwards.
fn set_timer_slack() -> Option<u64> {
    let path = "/proc/self/timerslack_ns";
    let _ = std::fs::write(path, "1");
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

async fn run(args: &Args, target: Target) -> anyhow::Result<Value> {
    let pool = if args.http2 {
        let mut conns = Vec::with_capacity(args.connections);
        for _ in 0..args.connections {
            conns.push(connect_h2(&target).await?);
        }
        Pool::H2 { conns, next: AtomicUsize::new(0) }
    } else {
        let mut idle = Vec::with_capacity(args.connections);
        for _ in 0..args.connections {
            idle.push(connect_h1(&target).await?);
        }
        Pool::H1 { idle: Mutex::new(idle), permits: Semaphore::new(args.connections) }
    };
    let uri: Uri = if args.http2 {
        format!("http://{}{}", target.authority, target.path).parse()?
    } else {
        target.path.parse()?
    };
    let host = HeaderValue::from_str(&target.authority).context("invalid --host")?;

    let total = ((args.warmup + args.duration) * args.rate).ceil() as u64;
    let total = args.max_requests.map_or(total, |m| m.min(total));
    let interval_ns = 1e9 / args.rate;
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let shared = Arc::new(Shared {
        pool,
        target,
        uri,
        host,
        measure_from,
        timeout: Duration::from_millis(args.timeout_ms),
        stats: Mutex::new(Stats {
            latency_ns: Histogram::new_with_bounds(1, 600_000_000_000, 3)?,
            lag_ns: Histogram::new_with_bounds(1, 600_000_000_000, 3)?,
            scheduled: 0,
            ok: 0,
            non_2xx: 0,
            errors: 0,
            timeouts: 0,
            first_error: None,
            last_done: None,
        }),
    });

    let mut tasks = JoinSet::new();
    let mut scheduler = None;
    if args.spin {
        // Dispatch from this thread: due sends go out at once; between them, yield so the runtime
        // keeps polling sockets without ever blocking in epoll.
        for due in (0..total).map(|i| start + Duration::from_nanos((i as f64 * interval_ns) as u64)) {
            if due >= end {
                break;
            }
            loop {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                if due - now > Duration::from_millis(2) {
                    tokio::time::sleep_until((due - Duration::from_millis(1)).into()).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
            tasks.spawn(one_request(Arc::clone(&shared), due));
            while tasks.try_join_next().is_some() {}
        }
    } else {
        let (tx, mut rx) = mpsc::unbounded_channel();
        scheduler = Some(
            std::thread::Builder::new()
                .name("scheduler".into())
                .spawn(move || schedule(&tx, start, interval_ns, total, end))?,
        );
        while let Some(due) = rx.recv().await {
            tasks.spawn(one_request(Arc::clone(&shared), due));
            while tasks.try_join_next().is_some() {}
        }
    }
    // Every task ends by its own deadline (scheduled time + timeout); this is a backstop.
    let drained = tokio::time::timeout(shared.timeout + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let abandoned = tasks.len() as u64;
    tasks.abort_all();
    if scheduler.is_some_and(|s| s.join().is_err()) {
        bail!("scheduler thread panicked");
    }
    if drained.is_err() {
        shared.stats.lock().expect("stats lock").timeouts += abandoned;
    }

    let s = shared.stats.lock().expect("stats lock");
    let window = s.last_done.map_or(0.0, |t| t.saturating_duration_since(measure_from).as_secs_f64());
    let achieved = if window > 0.0 { s.ok as f64 / window } else { 0.0 };
    Ok(json!({
        "url": args.url,
        "authority": shared.target.authority,
        "protocol": if args.http2 { "h2c" } else { "http/1.1" },
        "connections": args.connections,
        "target_rps": args.rate,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "scheduled": s.scheduled,
        "ok": s.ok,
        "non_2xx": s.non_2xx,
        "errors": s.errors,
        "timeouts": s.timeouts,
        "first_error": s.first_error,
        "achieved_rps": round2(achieved),
        "latency_us": summary(&s.latency_ns, &[50.0, 90.0, 99.0, 99.9]),
        "send_lag_us": summary(&s.lag_ns, &[50.0, 99.0]),
        "spin": args.spin,
    }))
}

/// Emits the scheduled send times, sleeping between them; never waits for answers.
fn schedule(tx: &mpsc::UnboundedSender<Instant>, start: Instant, interval_ns: f64, total: u64, end: Instant) {
    for i in 0..total {
        let due = start + Duration::from_nanos((i as f64 * interval_ns) as u64);
        if due >= end {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if tx.send(due).is_err() {
            break;
        }
    }
}

async fn one_request(shared: Arc<Shared>, due: Instant) {
    let started = Instant::now();
    let deadline = due + shared.timeout;
    let result = tokio::time::timeout_at(deadline.into(), send(&shared)).await;
    let done = Instant::now();
    if due < shared.measure_from {
        return;
    }
    let mut s = shared.stats.lock().expect("stats lock");
    s.scheduled += 1;
    s.lag_ns.saturating_record(nanos(started.saturating_duration_since(due)));
    match result {
        Ok(Ok(status)) if (200..300).contains(&status) => {
            s.ok += 1;
            s.latency_ns.saturating_record(nanos(done - due));
            s.last_done = Some(s.last_done.map_or(done, |t| t.max(done)));
        }
        Ok(Ok(_)) => s.non_2xx += 1,
        Ok(Err(e)) => {
            s.errors += 1;
            s.first_error.get_or_insert_with(|| format!("{e:#}"));
        }
        Err(_) => s.timeouts += 1,
    }
}

/// Sends one GET and reads the whole response; returns the status code.
async fn send(shared: &Shared) -> anyhow::Result<u16> {
    let mut req = Request::get(shared.uri.clone()).header(USER_AGENT, "meshlens-loadgen").body(Empty::new())?;
    if let Pool::H1 { .. } = shared.pool {
        // HTTP/2 carries the authority in the URI (`:authority`); a Host header as well is refused.
        req.headers_mut().insert(HOST, shared.host.clone());
    }
    match &shared.pool {
        Pool::H1 { idle, permits } => {
            let _permit = permits.acquire().await?;
            let conn = idle.lock().expect("pool lock").pop();
            let mut conn = match conn {
                Some(c) if !c.is_closed() => c,
                _ => connect_h1(&shared.target).await?,
            };
            conn.ready().await?;
            let resp = conn.send_request(req).await?;
            let status = resp.status().as_u16();
            resp.into_body().collect().await?;
            // Only a connection that finished its exchange goes back; a failed one is dropped
            // (closed) and replaced by a fresh one on next use.
            idle.lock().expect("pool lock").push(conn);
            Ok(status)
        }
        Pool::H2 { conns, next } => {
            let mut conn = conns[next.fetch_add(1, Ordering::Relaxed) % conns.len()].clone();
            conn.ready().await?;
            let resp = conn.send_request(req).await?;
            let status = resp.status().as_u16();
            resp.into_body().collect().await?;
            Ok(status)
        }
    }
}

async fn connect_h1(target: &Target) -> anyhow::Result<H1> {
    let stream = TcpStream::connect(target.addr).await.with_context(|| format!("connect {}", target.addr))?;
    stream.set_nodelay(true)?;
    let (send, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

async fn connect_h2(target: &Target) -> anyhow::Result<H2> {
    let stream = TcpStream::connect(target.addr).await.with_context(|| format!("connect {}", target.addr))?;
    stream.set_nodelay(true)?;
    let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Percentiles, mean and max of a nanosecond histogram, in microseconds.
fn summary(h: &Histogram<u64>, quantiles: &[f64]) -> Value {
    let us = |ns: u64| round2(ns as f64 / 1000.0);
    let mut out = serde_json::Map::new();
    for q in quantiles {
        let key = format!("p{}", q.to_string().replace('.', ""));
        out.insert(key, json!(us(h.value_at_percentile(*q))));
    }
    out.insert("max".into(), json!(us(h.max())));
    out.insert("mean".into(), json!(round2(h.mean() / 1000.0)));
    out.insert("count".into(), json!(h.len()));
    Value::Object(out)
}
