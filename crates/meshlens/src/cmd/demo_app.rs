//! `meshlens demo-app`: the configurable HTTP service every demo workload runs (per-route latency
//! distributions, failure rates, every-Nth failures, per-instance faults, invalid responses,
//! slow-but-200 responses, calls to other services with a client timeout), all from a config file.
//! See [`config`] for the format.

pub mod app;
pub mod client;
pub mod config;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

/// Run a configurable demo HTTP service (what every service of `meshlens demo` runs).
///
/// It listens on 127.0.0.1:$PORT (or --listen), prints `{"message":"listening","addr":…}`, and answers
/// each configured route after the route's latency, with its status, unless a fault fires. Calls to
/// other services go through HTTP_PROXY (the sidecar) or MESHLENS_UPSTREAM_<SERVICE>; a failed call
/// fails the request with 502 (504 when the app's own client timeout fired). It logs nothing per request.
#[derive(Args, Debug)]
pub struct DemoAppArgs {
    /// The configuration file (YAML).
    #[arg(long, value_name = "FILE", required_unless_present = "config_json", conflicts_with = "config_json")]
    config: Option<PathBuf>,
    /// The configuration as inline JSON (or YAML) text.
    #[arg(long, value_name = "TEXT")]
    config_json: Option<String>,
    /// Where to listen [default: 127.0.0.1:$PORT].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Only check the configuration (print what it would serve) and exit.
    #[arg(long)]
    check: bool,
}

pub fn run(args: DemoAppArgs) -> anyhow::Result<ExitCode> {
    let (text, origin) = match (&args.config, &args.config_json) {
        (Some(path), _) => (
            std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?,
            path.display().to_string(),
        ),
        (None, Some(text)) => (text.clone(), "--config-json".to_owned()),
        (None, None) => bail!("give --config FILE or --config-json TEXT"),
    };
    let cfg = config::parse(&text, &origin).map_err(anyhow::Error::msg)?;
    let me = config::Identity::from_env();
    let app = config::compile(&cfg, &me).map_err(|errs| {
        anyhow::anyhow!("{}", errs.iter().map(|e| format!("{origin}: {e}")).collect::<Vec<_>>().join("\n"))
    })?;
    if args.check {
        for r in &app.routes {
            println!("{}: {} calls, {} faults", r.name, r.calls.len(), r.faults.len());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let listen = match args.listen {
        Some(a) => a,
        None => {
            let port = std::env::var("PORT").context("PORT is not set (or give --listen ADDR)")?;
            let port: u16 = port.trim().parse().with_context(|| format!("PORT={port:?} is not a port"))?;
            SocketAddr::from(([127, 0, 0, 1], port))
        }
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        println!(
            "{}",
            serde_json::json!({"message": "listening", "addr": addr.to_string(), "service": app.name, "routes": app.routes.len()})
        );
        let server = tokio::spawn(server::serve(listener, Arc::new(app), client::Downstream::from_env()));
        let why = until_stopped().await?;
        server.abort();
        eprintln!("demo-app: {why}: exiting");
        Ok(ExitCode::SUCCESS)
    })
}

/// Waits for SIGTERM/SIGINT, or for the supervising `meshlens up` to disappear (so a demo app never
/// outlives a killed supervisor).
pub async fn until_stopped() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let supervisor = std::env::var("MESHLENS_SUPERVISOR_PID").ok().and_then(|p| p.parse::<i32>().ok());
    let orphaned = async move {
        let Some(pid) = supervisor else { return std::future::pending().await };
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
                return;
            }
        }
    };
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = orphaned => "the supervisor is gone",
    })
}
