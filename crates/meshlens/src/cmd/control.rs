//! `meshlens control`: flags and env vars → logger → runtime → the control plane (`meshlens_control::start`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use meshlens_control::auth::ProxyKey;

use crate::runtime::secrets::{Secrets, read_secret};

/// Run the control plane on a mesh directory (mesh.yaml + ServiceProfile/TrafficSplit YAML, hot-reloaded).
///
/// It prints one JSON line `{"message":"listening","api":"HOST:PORT"}` on stdout once it serves, and logs
/// JSON lines on stderr. An invalid mesh directory at start exits with status 1 and every error on
/// stderr. SIGTERM or SIGINT stop it gracefully.
///
/// Proxies register with a credential minted from the proxy key, and every /api/v1/ request needs the
/// API token (docs/security.md). Without --proxy-key-file/--api-token-file, new ones are written to a
/// private directory (--secrets-dir) and logged; `meshlens proxy --proxy-key-file` and the CLI's
/// --api-token-file read them.
#[derive(Args, Debug)]
pub struct ControlArgs {
    /// The mesh directory: mesh.yaml plus ServiceProfile and TrafficSplit files.
    #[arg(long, env = "MESHLENS_CONTROL_MESH_DIR")]
    mesh_dir: PathBuf,
    /// The namespace of documents that name none, as kubectl's -n [default: the mesh's first namespace].
    #[arg(short = 'n', long, env = "MESHLENS_CONTROL_NAMESPACE", value_name = "NAMESPACE")]
    namespace: Option<String>,
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
    /// The key proxy credentials are checked with (64 hex digits), e.g. written by `meshlens up`.
    #[arg(long, env = "MESHLENS_CONTROL_PROXY_KEY_FILE", value_name = "FILE")]
    proxy_key_file: Option<PathBuf>,
    /// The token every /api/v1/ request needs (`Authorization: Bearer`).
    #[arg(long, env = "MESHLENS_CONTROL_API_TOKEN_FILE", value_name = "FILE")]
    api_token_file: Option<PathBuf>,
    /// Where a new key and token are written (0700) when not given [default: $XDG_STATE_HOME/meshlens/control-PID].
    #[arg(long, env = "MESHLENS_CONTROL_SECRETS_DIR", value_name = "DIR")]
    secrets_dir: Option<PathBuf>,
    /// Log filter, e.g. `info` or `info,meshlens_control=debug`.
    #[arg(long, env = "MESHLENS_CONTROL_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

pub fn run(args: ControlArgs) -> anyhow::Result<ExitCode> {
    let log = meshlens_proxy::log::init_json(&args.log_level).map_err(anyhow::Error::msg)?;
    // `meshlens logs control`: the control plane's own recent WARN/ERROR events.
    let ring = log.events().clone();
    let own_logs = meshlens_control::OwnLogs(std::sync::Arc::new(move |since| ring.page(since, tracing::Level::WARN)));
    let (key, api_token) = secrets(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut config = meshlens_control::Config::new(args.mesh_dir, args.listen);
        config.load.default_namespace = args.namespace;
        config.scrape_interval = args.scrape_interval;
        config.metrics_retention = args.metrics_retention;
        config.prometheus_url = args.prometheus_url;
        config.own_logs = Some(own_logs);
        config.proxy_credentials = std::sync::Arc::new(key);
        config.api_token = api_token;
        let control = match meshlens_control::start(config).await {
            Ok(c) => c,
            Err(meshlens_control::StartError::InvalidConfig(errors)) => {
                tracing::error!(errors = %errors, count = errors.0.len(), "the mesh directory is invalid");
                eprintln!("meshlens control: the mesh directory is invalid:");
                for line in errors.lines() {
                    eprintln!("  {line}");
                }
                return Ok(ExitCode::from(1));
            }
            Err(e) => {
                tracing::error!(error = %e, "control plane failed to start");
                eprintln!("meshlens control: {e}");
                return Ok(ExitCode::from(1));
            }
        };
        println!("{}", control.listening_message());
        super::wait_for_signal().await?;
        tracing::info!("shutting down");
        control.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The proxy key and API token: from their files, else new ones written to the secrets directory.
fn secrets(args: &ControlArgs) -> anyhow::Result<(ProxyKey, String)> {
    let given_key = args.proxy_key_file.as_deref().map(read_secret).transpose()?;
    let given_key = given_key.map(|k| ProxyKey::from_hex(&k)).transpose().map_err(anyhow::Error::msg)?;
    let given_token = args.api_token_file.as_deref().map(read_secret).transpose()?;
    let key = given_key.clone().unwrap_or_else(ProxyKey::generate);
    let token = given_token.clone().unwrap_or_else(meshlens_control::auth::new_token);
    if given_key.is_none() || given_token.is_none() {
        let dir = args.secrets_dir.clone().unwrap_or_else(|| {
            let base = crate::runtime::session::state_dir().unwrap_or_else(std::env::temp_dir);
            base.join(format!("control-{}", std::process::id()))
        });
        let new_key = given_key.is_none().then(|| key.clone());
        let written = Secrets::create(dir, new_key, given_token.is_none().then_some(token.as_str()))?;
        if let Some(file) = written.proxy_key_file() {
            tracing::info!(file = %file.display(), "new proxy key: `meshlens proxy --proxy-key-file` mints credentials with it");
        }
        if let Some(file) = &written.api_token_file {
            tracing::info!(file = %file.display(), "new API token: the CLI sends it with --api-token-file");
        }
    }
    Ok((key, token))
}

fn duration(s: &str) -> Result<Duration, String> {
    let d = meshlens_api::duration::parse(s)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}
