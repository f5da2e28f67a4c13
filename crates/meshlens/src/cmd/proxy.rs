//! `meshlens proxy`: flags and env vars (DESIGN.md §10) → config → logger → runtime → the proxy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use meshlens_control::auth::ProxyKey;
use meshlens_proxy::config::{Config, UpstreamConfig};

use crate::runtime::secrets::read_secret;

/// Run the sidecar proxy. Every flag can also be set with the env var shown.
///
/// The proxy prints one JSON line `{"message":"listening",…}` with its bound addresses on stdout once it
/// serves, and logs JSON lines on stderr. SIGTERM or SIGINT stop it gracefully.
#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Where the app's outbound calls arrive (HTTP proxy, Host routing, CONNECT). Loopback peers only.
    #[arg(long, env = "MESHLENS_PROXY_OUTBOUND", default_value = "127.0.0.1:4140")]
    outbound: SocketAddr,
    /// Where peer proxies connect; traffic is forwarded to --app [default with --app: 0.0.0.0:4143].
    #[arg(long, env = "MESHLENS_PROXY_INBOUND", requires = "app")]
    inbound: Option<SocketAddr>,
    /// Admin listener: /metrics /ready /live /config /endpoints /logs /log-level.
    #[arg(long, env = "MESHLENS_PROXY_ADMIN", default_value = "127.0.0.1:4191")]
    admin: SocketAddr,
    /// Tap listener: `GET /tap` streams live requests to the control plane, with the token of its lease.
    #[arg(long, env = "MESHLENS_PROXY_TAP", default_value = "127.0.0.1:4190")]
    tap: SocketAddr,
    /// A bearer token the tap listener accepts besides the control plane's, e.g. for a proxy without
    /// a control plane. Without either, tap answers 403.
    #[arg(long, env = "MESHLENS_PROXY_TAP_TOKEN", hide_env_values = true)]
    tap_token: Option<String>,
    /// This instance's credential for the control plane (a file; `meshlens up` writes one per proxy).
    #[arg(long, env = "MESHLENS_PROXY_CREDENTIAL_FILE", value_name = "FILE", requires = "control")]
    credential_file: Option<PathBuf>,
    /// Instead of --credential-file: the control plane's proxy key (a file, e.g. the one `meshlens control`
    /// wrote); the proxy mints its own credential for its namespace, workload and instance.
    #[arg(
        long,
        env = "MESHLENS_PROXY_KEY_FILE",
        value_name = "FILE",
        requires = "control",
        conflicts_with = "credential_file"
    )]
    proxy_key_file: Option<PathBuf>,
    /// The bearer token that PUT /log-level needs (a file); without it, changes are off.
    #[arg(long, env = "MESHLENS_PROXY_ADMIN_TOKEN_FILE", value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Log every HTTP request on stderr, in Linkerd's `apache` or `json` format (off by default).
    #[arg(long, env = "MESHLENS_PROXY_ACCESS_LOG", value_parser = ["apache", "json"])]
    access_log: Option<String>,
    /// The local application that inbound traffic goes to, e.g. 127.0.0.1:8080.
    #[arg(long, env = "MESHLENS_PROXY_APP")]
    app: Option<SocketAddr>,
    /// A static discovery file (YAML or JSON): services, ports and endpoints.
    #[arg(long, env = "MESHLENS_PROXY_DISCOVERY")]
    discovery: Option<PathBuf>,
    /// Control plane URL: the proxy registers under a lease and follows discovery from it (instead of
    /// --discovery); the lease also carries the tap token. Registering needs --credential-file or
    /// --proxy-key-file.
    #[arg(long, env = "MESHLENS_PROXY_CONTROL")]
    control: Option<String>,
    /// Name of the workload this proxy serves.
    #[arg(long, env = "MESHLENS_PROXY_WORKLOAD")]
    workload: Option<String>,
    /// Namespace of the workload; short service names resolve in it.
    #[arg(long, env = "MESHLENS_PROXY_NAMESPACE", default_value = "default")]
    namespace: String,
    /// Instance name (default <workload>-0).
    #[arg(long, env = "MESHLENS_PROXY_INSTANCE")]
    instance: Option<String>,
    /// A local listener for one service: SERVICE[:PORT]=HOST:PORT, for clients that ignore HTTP_PROXY
    /// (gRPC, raw TCP). Repeatable; port 0 picks a free port (see the start-up line).
    #[arg(long = "upstream", env = "MESHLENS_PROXY_UPSTREAMS", value_delimiter = ',')]
    upstreams: Vec<UpstreamConfig>,
    /// Log filter, e.g. `info` or `info,meshlens_proxy=debug`; changeable at runtime via PUT /log-level.
    #[arg(long, env = "MESHLENS_PROXY_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// How long in-flight requests may take to finish after SIGTERM, in seconds.
    #[arg(long, env = "MESHLENS_PROXY_SHUTDOWN_GRACE", default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// Worker threads. 1 (the default) runs everything on one thread, as a sidecar on one core should;
    /// more spreads connections over several cores.
    #[arg(long, env = "MESHLENS_PROXY_CORES", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    cores: u16,
    /// Seconds to wait for a ready endpoint before failing fast (504, then 503).
    #[arg(long, env = "MESHLENS_PROXY_FAILFAST_TIMEOUT", default_value_t = 3.0)]
    failfast_timeout_secs: f64,
}

pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let defaults = Config::default();
    let mut config = Config {
        outbound: args.outbound,
        inbound: args.app.map(|_| args.inbound.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 4143)))),
        admin: args.admin,
        tap: args.tap,
        app: args.app,
        discovery: args.discovery,
        control: args.control,
        instance: args.instance.or_else(|| args.workload.as_ref().map(|w| format!("{w}-0"))),
        workload: args.workload,
        namespace: args.namespace,
        upstreams: args.upstreams,
        tap_token: args.tap_token,
        admin_token: args.admin_token_file.as_deref().map(read_secret).transpose()?,
        access_log: args.access_log.map(|f| f.parse().map_err(anyhow::Error::msg)).transpose()?,
        ..defaults
    };
    config.control_credential = match (&args.credential_file, &args.proxy_key_file) {
        (Some(file), _) => Some(read_secret(file)?),
        (None, Some(file)) => {
            let key = ProxyKey::from_hex(&read_secret(file)?).map_err(anyhow::Error::msg)?;
            let workload = config.workload.as_deref().context("--proxy-key-file needs --workload")?;
            Some(key.mint(&config.namespace, workload, config.instance.as_deref().unwrap_or_default()))
        }
        (None, None) => None,
    };
    config.timeouts.shutdown_grace = Duration::from_secs(args.shutdown_grace_secs);
    anyhow::ensure!(
        args.failfast_timeout_secs.is_finite() && args.failfast_timeout_secs > 0.0,
        "--failfast-timeout-secs must be a positive number of seconds"
    );
    config.timeouts.failfast = Duration::from_secs_f64(args.failfast_timeout_secs);

    let cores = args.cores;
    let log = meshlens_proxy::log::init_json(&args.log_level).map_err(anyhow::Error::msg)?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let proxy = match meshlens_proxy::start(config, log, &meshlens_proxy::TcpBind).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "proxy failed to start");
                eprintln!("meshlens proxy: {e}");
                return Ok(ExitCode::from(1));
            }
        };
        // The start-up line (DESIGN.md §10), plus the runtime it runs on.
        let line = proxy.listening_message();
        let kind = if cores == 1 { "current_thread" } else { "multi_thread" };
        let line = format!("{},\"runtime\":\"{kind}\",\"cores\":{cores}}}", line.strip_suffix('}').unwrap_or(&line));
        println!("{line}");
        tracing::info!(listen = ?proxy.listen(), "proxy started");
        super::wait_for_signal().await?;
        tracing::info!("shutting down: draining in-flight requests");
        let finished = proxy.shutdown().await;
        if finished {
            tracing::info!("shutdown complete");
        } else {
            tracing::warn!("grace period over: closing the connections that are left");
        }
        Ok(ExitCode::SUCCESS)
    })
}
