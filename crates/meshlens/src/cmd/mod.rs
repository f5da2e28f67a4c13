//! The command line: one module per subcommand.

pub mod alerts;
pub mod check;
pub mod client;
pub mod completion;
pub mod control;
pub mod dashboard;
pub mod demo;
pub mod demo_app;
pub mod demo_load;
pub mod diagnose;
pub mod diagnostics;
pub mod edges;
pub mod examples;
pub mod global;
pub mod logs;
pub mod output;
pub mod profile;
pub mod prometheus_config;
pub mod proxy;
pub mod routes;
pub mod stat;
pub mod tap;
pub mod tap_stream;
pub mod top;
pub mod up;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// meshlens: a service mesh that makes traffic between services debuggable.
#[derive(Parser, Debug)]
#[command(name = "meshlens", version, about, long_about = None, after_help = global::HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once, at start
pub enum Command {
    /// Run the sidecar proxy in front of one workload instance.
    Proxy(proxy::ProxyArgs),
    /// Run the control plane on a mesh directory.
    Control(control::ControlArgs),
    /// Run a mesh directory on this machine: control plane, apps and their sidecar proxies.
    Up(up::UpArgs),
    /// Run the demo shop (optionally with an incident scenario), or export it as a mesh directory.
    Demo(demo::DemoArgs),
    /// A configurable demo HTTP service (latencies, failures, faults, calls), as the demo runs it.
    DemoApp(demo_app::DemoAppArgs),
    /// The demo's traffic generator: a steady request rate over a mix of paths.
    DemoLoad(demo_load::DemoLoadArgs),
    /// Traffic statistics of namespaces, workloads, instances and services (Linkerd's `viz stat`).
    Stat(stat::StatArgs),
    /// Per-route statistics of a resource's ServiceProfile routes (Linkerd's `viz routes`).
    Routes(routes::RoutesArgs),
    /// Which workloads talked to which in the window (Linkerd's `viz edges`).
    Edges(edges::EdgesArgs),
    /// Print a Prometheus configuration that scrapes every proxy of the mesh (for `control --prometheus-url`).
    PrometheusConfig(prometheus_config::PrometheusConfigArgs),
    /// Find what is wrong with a namespace's traffic: ranked findings with evidence (exit 3 with --fail-on).
    Diagnose(diagnose::DiagnoseArgs),
    /// Check the mesh's health and its configuration against traffic (√ / ‼ / ×), a directory before `up`
    /// (--pre), or the drift between two meshes (--compare).
    #[command(long_about = check::ABOUT)]
    Check(check::CheckArgs),
    /// Pending and firing alerts with their evidence (--watch), or the rules for Prometheus (--prometheus-rules).
    #[command(long_about = alerts::ABOUT)]
    Alerts(alerts::AlertsArgs),
    /// Proxies' raw metrics and discovery as proxies see it (Linkerd's `diagnostics`).
    Diagnostics(diagnostics::DiagnosticsArgs),
    /// Write a ServiceProfile: a commented template, routes from an OpenAPI document or gRPC services, or from live traffic.
    Profile(profile::ProfileArgs),
    /// Recent WARN/ERROR events of a resource's proxies, per instance: "grep the proxy logs for errors".
    ///
    /// The answer to `kubectl logs -c linkerd-proxy | grep -iE 'error|warn'` for every instance at once:
    /// each proxy keeps its most recent WARN and ERROR events and the control plane relays them, merged by
    /// time, with the instance (POD) that logged each one. Every such event is something to act on and names
    /// what it affected (peer, authority, route, endpoint, reason) in its fields. An instance that does not
    /// answer is reported. `control` shows the control plane's own events; `-f` follows new ones.
    Logs(logs::LogsArgs),
    /// Live requests of a resource, one line per request event (Linkerd's `viz tap`).
    Tap(tap::TapArgs),
    /// Live traffic of a resource, aggregated by path or route (Linkerd's `viz top`).
    Top(top::TopArgs),
    /// Print a one-time login link to the web dashboard and open it in a browser when there is one.
    Dashboard(dashboard::DashboardArgs),
    /// Print a shell completion script (bash, zsh, fish).
    Completion(completion::CompletionArgs),
    /// Internal: the watchdog of `meshlens up` (stops its processes if it is killed).
    #[command(name = "__reap", hide = true)]
    Reap,
}

/// The command tree as users see it: every command's help ends with its examples.
pub fn command() -> clap::Command {
    examples::attach(Cli::command())
}

/// Parses the command line (program name first): shared flags given before the command are the
/// command's ([`global`]); a usage error exits 2 with clap's message, `--help` and `--version` exit 0.
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Cli {
    let matches = command().get_matches_from(global::hoist(args.into_iter().collect()));
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// [`parse`] of one shell line, the error returned rather than printed.
#[cfg(test)]
pub(crate) fn parse_result(line: &str) -> Result<Cli, clap::Error> {
    let args = global::hoist(line.split_whitespace().map(std::ffi::OsString::from).collect());
    Cli::from_arg_matches(&command().try_get_matches_from(args)?)
}

pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Proxy(args) => proxy::run(args),
        Command::Control(args) => control::run(args),
        Command::Up(args) => up::run(args),
        Command::Demo(args) => demo::run(args),
        Command::DemoApp(args) => demo_app::run(args),
        Command::DemoLoad(args) => demo_load::run(args),
        Command::Stat(args) => stat::run(args),
        Command::Routes(args) => routes::run(args),
        Command::Edges(args) => edges::run(args),
        Command::PrometheusConfig(args) => prometheus_config::run(args),
        Command::Diagnose(args) => diagnose::run(args),
        Command::Check(args) => check::run(args),
        Command::Alerts(args) => alerts::run(args),
        Command::Diagnostics(args) => diagnostics::run(args),
        Command::Profile(args) => profile::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Tap(args) => tap::run(args),
        Command::Top(args) => top::run(args),
        Command::Dashboard(args) => dashboard::run(args),
        Command::Completion(args) => completion::run(args),
        Command::Reap => Ok(crate::runtime::reaper::run()),
    }
}

/// Resolves on the first SIGTERM or SIGINT: the graceful stop of `proxy` and `control`.
pub async fn wait_for_signal() -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
