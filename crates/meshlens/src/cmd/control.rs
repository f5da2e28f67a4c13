//! `meshlens control`: flags and env vars → logger → runtime → the control plane (`meshlens_control::start`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

/// Run the control plane on a mesh directory (mesh.yaml + ServiceProfile/TrafficSplit YAML, hot-reloaded).
///
/// It prints one JSON line `{"message":"listening","api":"HOST:PORT"}` on stdout once it serves, and logs
/// JSON lines on stderr. An invalid mesh directory at start exits with status 2 and every error on
/// stderr. SIGTERM or SIGINT stop it gracefully.
#[derive(Args, Debug)]
pub struct ControlArgs {
    /// The mesh directory: mesh.yaml plus ServiceProfile and TrafficSplit files.
    #[arg(long, env = "MESHLENS_CONTROL_MESH_DIR")]
    mesh_dir: PathBuf,
    /// Where the API listens (proxies, CLI, dashboard). Port 0 picks a free port.
    #[arg(long, env = "MESHLENS_CONTROL_LISTEN", default_value = "127.0.0.1:8086")]
    listen: SocketAddr,
    /// How often every registered proxy's /metrics is scraped into the metric store (e.g. 5s, 500ms); with
    /// --prometheus-url, how often Prometheus scrapes them (query windows must span two intervals).
    #[arg(long, env = "MESHLENS_CONTROL_SCRAPE_INTERVAL", default_value = "5s", value_parser = duration)]
    scrape_interval: Duration,
    /// How long the metric store keeps what it scraped.
    #[arg(long, env = "MESHLENS_CONTROL_METRICS_RETENTION", default_value = "1h", value_parser = duration)]
    metrics_retention: Duration,
    /// Answer `stat`, `routes` and `edges` with PromQL from this Prometheus (http://HOST:PORT[/PATH]), which
    /// scrapes the proxies (`meshlens prometheus-config` prints its configuration); the embedded metric
    /// store does not run.
    #[arg(long, env = "MESHLENS_CONTROL_PROMETHEUS_URL", value_name = "URL")]
    prometheus_url: Option<String>,
    /// Log filter, e.g. `info` or `info,meshlens_control=debug`.
    #[arg(long, env = "MESHLENS_CONTROL_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

pub fn run(args: ControlArgs) -> anyhow::Result<ExitCode> {
    let log = meshlens_proxy::log::init_json(&args.log_level).map_err(anyhow::Error::msg)?;
    // `meshlens logs control`: the control plane's own recent WARN/ERROR events.
    let ring = log.events().clone();
    let own_logs = meshlens_control::OwnLogs(std::sync::Arc::new(move |since| ring.page(since, tracing::Level::WARN)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut config = meshlens_control::Config::new(args.mesh_dir, args.listen);
        config.scrape_interval = args.scrape_interval;
        config.metrics_retention = args.metrics_retention;
        config.prometheus_url = args.prometheus_url;
        config.own_logs = Some(own_logs);
        let control = match meshlens_control::start(config).await {
            Ok(c) => c,
            Err(meshlens_control::StartError::InvalidConfig(errors)) => {
                tracing::error!(errors = %errors, count = errors.0.len(), "the mesh directory is invalid");
                eprintln!("meshlens control: the mesh directory is invalid:");
                for line in errors.lines() {
                    eprintln!("  {line}");
                }
                return Ok(ExitCode::from(2));
            }
            Err(e) => {
                tracing::error!(error = %e, "control plane failed to start");
                eprintln!("meshlens control: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        println!("{}", control.listening_message());
        super::wait_for_signal().await?;
        tracing::info!("shutting down");
        control.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn duration(s: &str) -> Result<Duration, String> {
    let d = meshlens_api::duration::parse(s)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}
