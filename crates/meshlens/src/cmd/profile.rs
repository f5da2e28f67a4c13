//! `meshlens profile`: writes a ServiceProfile for a service, from a commented template (`--template`), an
//! OpenAPI 3 / Swagger 2 document (`--open-api FILE`, `-` for stdin), gRPC services (`--proto FILE`) or live traffic (`--tap RESOURCE`, ids folded into
//! `{id}` templates) — reference/linkerd.md §1.7.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{ArgGroup, Args, ValueEnum};
use meshlens_api::discovery::is_dns_label;
use meshlens_api::duration;
use meshlens_api::tap::{ProxyDirection, TapEvent};

use super::client::{self, ControlArg};
use super::tap_stream::{self, TapEnd, TapQuery};
use crate::profilegen::{self, DEFAULT_CLUSTER_DOMAIN, ProfileTarget, fold, openapi, proto, template};

/// Write a ServiceProfile for a service: a template, from an OpenAPI document, or from live traffic.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("source").required(true).args(["template", "open_api", "proto", "tap"])))]
pub struct ProfileArgs {
    /// The service the profile is for.
    #[arg(value_name = "SERVICE")]
    service: String,
    /// A commented template to edit.
    #[arg(long)]
    template: bool,
    /// Routes from an OpenAPI 3 or Swagger 2 document (JSON or YAML); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    open_api: Option<std::path::PathBuf>,
    /// Routes from the gRPC services of a protobuf file (`POST /pkg.Service/Method`, one per rpc;
    /// retryable when its idempotency_level is IDEMPOTENT or NO_SIDE_EFFECTS); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    proto: Option<std::path::PathBuf>,
    /// Routes from the inbound requests of a resource (deploy/NAME, po/NAME) seen for --tap-duration.
    #[arg(long, value_name = "RESOURCE")]
    tap: Option<String>,
    /// How long to watch the traffic with --tap.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    tap_duration: String,
    /// The most routes --tap writes (the busiest are kept).
    #[arg(long, default_value_t = 20, value_name = "N")]
    tap_route_limit: usize,
    /// Requests per second the --tap stream may carry.
    #[arg(long, default_value_t = 100.0, value_name = "RPS")]
    max_rps: f64,
    /// The service's namespace.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// The cluster domain of the profile's name (default: what the control plane reports with --tap,
    /// else cluster.local).
    #[arg(long, value_name = "DOMAIN")]
    cluster_domain: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    output: ProfileFormat,
    #[command(flatten)]
    control: ControlArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfileFormat {
    Yaml,
    Json,
}

pub fn run(args: ProfileArgs) -> anyhow::Result<ExitCode> {
    for (what, name) in [("service", &args.service), ("namespace", &args.namespace)] {
        if !is_dns_label(name) {
            bail!("'{name}' is not a valid {what} name (lowercase letters, digits and '-', at most 63 characters)");
        }
    }
    let target = |domain: Option<String>| ProfileTarget {
        service: args.service.clone(),
        namespace: args.namespace.clone(),
        cluster_domain: domain.unwrap_or_else(|| DEFAULT_CLUSTER_DOMAIN.to_string()),
    };
    let text = if args.template {
        let target = target(args.cluster_domain.clone());
        match args.output {
            ProfileFormat::Yaml => template::yaml(&target),
            ProfileFormat::Json => profilegen::to_json(&template::profile(&target)?)?,
        }
    } else if let Some(file) = &args.open_api {
        let profile = target(args.cluster_domain.clone()).profile(openapi::routes_from_file(file)?);
        render(&profile, args.output)?
    } else if let Some(file) = &args.proto {
        let (shown, text) = profilegen::read_input(file)?;
        let routes = proto::routes(&text).map_err(|e| anyhow!("{shown}: {e}"))?;
        render(&target(args.cluster_domain.clone()).profile(routes), args.output)?
    } else if let Some(resource) = &args.tap {
        let tap_duration = duration::parse(&args.tap_duration).map_err(|e| anyhow!("--tap-duration: {e}"))?;
        if tap_duration.is_zero() {
            bail!("--tap-duration: must be greater than 0");
        }
        if !(args.max_rps.is_finite() && args.max_rps > 0.0) {
            bail!("--max-rps: must be a number greater than 0");
        }
        let base = args.control.url();
        let domain = match &args.cluster_domain {
            Some(d) => d.clone(),
            None => cluster_domain(&base)?,
        };
        let query = TapQuery {
            resource: resource.clone(),
            namespace: args.namespace.clone(),
            direction: Some(ProxyDirection::Inbound),
            max_rps: args.max_rps,
        };
        let (requests, end) = tap_requests(&base, &query, tap_duration)?;
        let routes = fold::fold(requests.iter().map(|(m, p)| (m.as_str(), p.as_str())), args.tap_route_limit);
        let seen = match end {
            TapEnd::Elapsed => format!("in {}", args.tap_duration),
            TapEnd::Closed(after) => format!("before the tap stream ended after {:.1}s", after.as_secs_f64()),
        };
        eprintln!("{} requests seen {seen}; {} routes", requests.len(), routes.len());
        if requests.is_empty() {
            eprintln!("No inbound requests to {resource} in namespace {}: the profile has no routes.", args.namespace);
        }
        let profile = target(Some(domain)).profile(routes.iter().map(fold::FoldedRoute::to_route_spec).collect());
        render(&profile, args.output)?
    } else {
        unreachable!("clap requires one of --template, --open-api, --proto, --tap");
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn render(profile: &meshlens_api::profile::ServiceProfile, format: ProfileFormat) -> anyhow::Result<String> {
    match format {
        ProfileFormat::Yaml => profilegen::to_yaml(profile),
        ProfileFormat::Json => profilegen::to_json(profile),
    }
}

/// The cluster domain the control plane serves (`clusterDomain` of `/api/v1/resources`).
fn cluster_domain(base: &str) -> anyhow::Result<String> {
    let resources: serde_json::Value = client::get_json(base, "/api/v1/resources")?;
    Ok(resources["clusterDomain"].as_str().unwrap_or(DEFAULT_CLUSTER_DOMAIN).to_string())
}

/// The `(method, path)` of every inbound request the tap saw in `duration`.
fn tap_requests(base: &str, query: &TapQuery, duration: Duration) -> anyhow::Result<(Vec<(String, String)>, TapEnd)> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let mut requests = Vec::new();
    let end = runtime.block_on(tap_stream::tap_for(base, query, duration, |event| {
        if let Some(request) = inbound_request(event) {
            requests.push(request);
        }
    }))?;
    Ok((requests, end))
}

/// An inbound request's `(method, path)`; `None` for every other event.
fn inbound_request(event: TapEvent) -> Option<(String, String)> {
    if event.proxy_direction != ProxyDirection::Inbound {
        return None;
    }
    event.request_init_event.map(|r| (r.method, r.path))
}
