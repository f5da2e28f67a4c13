//! `meshlens diagnostics`: `proxy-metrics` (each instance's raw `/metrics`, relayed by the control plane)
//! and `endpoints` (what discovery resolves an authority to, as a proxy sees it; `-o wide`: how each
//! caller's load balancer sees every endpoint); reference/linkerd.md §1.11.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use meshlens_api::diagnostics::{EndpointRow, EndpointsResponse, ProxyMetrics};

use super::client::{self, ControlArg};
use super::output;

/// Look at the mesh as its parts see it.
#[derive(Args, Debug)]
pub struct DiagnosticsArgs {
    #[command(subcommand)]
    command: DiagnosticsCommand,
}

#[derive(Subcommand, Debug)]
enum DiagnosticsCommand {
    /// The raw Prometheus metrics of each proxy of a resource (deploy/NAME, po/NAME, svc/NAME, ns/NAME).
    ProxyMetrics(ProxyMetricsArgs),
    /// The endpoints discovery resolves authorities to, exactly as a proxy would see them; -o wide adds how
    /// each calling proxy's load balancer sees them (EWMA latency, in flight, breaker, share of requests).
    #[command(alias = "ep")]
    Endpoints(EndpointsArgs),
}

#[derive(Args, Debug)]
struct ProxyMetricsArgs {
    /// TYPE/NAME or TYPE NAME.
    #[arg(required = true, num_args = 1..=2, value_name = "RESOURCE")]
    resource: Vec<String>,
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Replace the values of labels that name hosts, addresses, namespaces and identities by a hash
    /// (authority, client_id, server_id, target_addr, dst_service, dst_namespace).
    #[arg(long)]
    obfuscate: bool,
    #[command(flatten)]
    control: ControlArg,
}

#[derive(Args, Debug)]
struct EndpointsArgs {
    /// Authorities as an app would call them: `web`, `web.prod`, `web.prod.svc.cluster.local:80`.
    #[arg(required = true, value_name = "AUTHORITY")]
    authorities: Vec<String>,
    /// The namespace of the caller, where short names resolve.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Output format: table, wide (one row per calling proxy: its balancer's view of the endpoint) or json.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: output::Format,
    /// With -o wide: the window of the callers' request shares.
    #[arg(short = 't', long, default_value = "1m", value_name = "DURATION")]
    time_window: String,
    #[command(flatten)]
    control: ControlArg,
}

pub fn run(args: DiagnosticsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DiagnosticsCommand::ProxyMetrics(a) => proxy_metrics(a),
        DiagnosticsCommand::Endpoints(a) => endpoints(a),
    }
}

fn proxy_metrics(args: ProxyMetricsArgs) -> anyhow::Result<ExitCode> {
    let resource = client::resource(&args.resource)
        .filter(|r| r.contains('/'))
        .ok_or_else(|| anyhow::anyhow!("expected one resource: TYPE/NAME or TYPE NAME (e.g. deploy/web)"))?;
    let mut pairs = vec![("resource", resource.as_str()), ("namespace", &args.namespace)];
    if args.obfuscate {
        pairs.push(("obfuscate", "true"));
    }
    let q = format!("/api/v1/proxy-metrics?{}", client::query(&pairs));
    let pages: Vec<ProxyMetrics> = client::get_json(&args.control.url(), &q)?;
    if pages.is_empty() {
        eprintln!("No running instances of {resource} found.");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render_proxy_metrics(&pages));
    Ok(ExitCode::SUCCESS)
}

/// Each page framed `#\n# POD <name> (i of n)\n#\n`, or `# ERROR: …` for an instance that failed.
pub fn render_proxy_metrics(pages: &[ProxyMetrics]) -> String {
    let mut out = String::new();
    for (i, p) in pages.iter().enumerate() {
        out.push_str(&format!("#\n# POD {} ({} of {})\n#\n", p.pod, i + 1, pages.len()));
        match (&p.metrics, &p.error) {
            (Some(text), _) => {
                out.push_str(text);
                if !text.is_empty() && !text.ends_with('\n') {
                    out.push('\n');
                }
            }
            (None, e) => out.push_str(&format!("# ERROR: {}\n", e.as_deref().unwrap_or("no metrics"))),
        }
    }
    out
}

fn endpoints(args: EndpointsArgs) -> anyhow::Result<ExitCode> {
    let authorities = args.authorities.join(",");
    let mut pairs = vec![("authority", authorities.as_str()), ("namespace", &args.namespace)];
    if args.output == output::Format::Wide {
        pairs.extend([("balancers", "true"), ("window", &args.time_window)]);
    }
    let q = format!("/api/v1/endpoints?{}", client::query(&pairs));
    let resolved: EndpointsResponse = client::get_json(&args.control.url(), &q)?;
    match args.output {
        output::Format::Json => print!("{}", output::json(&resolved)?),
        format => {
            let table = render_endpoints_table(&resolved, format == output::Format::Wide);
            if table.is_empty() {
                eprintln!("No endpoints found.");
            }
            print!("{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `NAMESPACE IP PORT POD SERVICE`, one table per namespace (blank line between), rows by service, every
/// column left-aligned; an endpoint several authorities resolve to is listed once. `wide`: one row per
/// calling proxy, with its balancer's view (CALLER EWMA IN_FLIGHT BREAKER SHARE; `-` when none calls it).
pub fn render_endpoints_table(resolved: &EndpointsResponse, wide: bool) -> String {
    let mut rows: Vec<&EndpointRow> = resolved.values().flatten().collect();
    rows.sort_by(|a, b| {
        (&a.namespace, &a.service, &a.pod, &a.ip, a.port).cmp(&(&b.namespace, &b.service, &b.pod, &b.ip, b.port))
    });
    rows.dedup();
    let mut header = vec!["NAMESPACE", "IP", "PORT", "POD", "SERVICE"];
    if wide {
        header.extend(["CALLER", "EWMA", "IN_FLIGHT", "BREAKER", "SHARE"]);
    }
    let mut tables = Vec::new();
    let mut namespaces: Vec<&str> = rows.iter().map(|r| r.namespace.as_str()).collect();
    namespaces.dedup();
    for ns in namespaces {
        let mut lines: Vec<Vec<String>> = Vec::new();
        for r in rows.iter().filter(|r| r.namespace == ns) {
            let endpoint =
                vec![r.namespace.clone(), r.ip.clone(), r.port.to_string(), r.pod.clone(), r.service.clone()];
            if !wide {
                lines.push(endpoint);
                continue;
            }
            if r.callers.is_empty() {
                lines.push([endpoint.clone(), vec!["-".into(); 5]].concat());
            }
            for c in &r.callers {
                let breaker = match (&c.breaker, c.breaker_remaining_ms) {
                    (Some(state), Some(ms)) => format!("{state} ({ms}ms)"),
                    (Some(state), None) => state.clone(),
                    (None, _) => "-".into(),
                };
                let caller =
                    if c.namespace == r.namespace { c.pod.clone() } else { format!("{}/{}", c.namespace, c.pod) };
                let view = vec![
                    caller,
                    format!("{:.1}ms", c.ewma_ms),
                    c.in_flight.to_string(),
                    breaker,
                    output::percent(c.share),
                ];
                lines.push([endpoint.clone(), view].concat());
            }
        }
        tables.push(output::table(&header, &lines, header.len()));
    }
    tables.join("\n")
}
