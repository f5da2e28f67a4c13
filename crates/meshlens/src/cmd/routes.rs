//! `meshlens routes`: per-route numbers of the ServiceProfile routes behind a resource, `[DEFAULT]` for
//! requests no route matched (reference/linkerd.md §1.3). With `--to`, `-o wide` shows EFFECTIVE (as the
//! caller saw its requests, after retries) and ACTUAL (every attempt) success and RPS, and — beyond
//! Linkerd — TIMEOUTS (route-timeout responses), CANCELLED (requests the caller gave up on) and RETRY_FATES
//! (how retried requests ended) in the window. Without `--to`, the numbers are what the resource's own
//! proxies served, from every caller, meshed or not.

use std::process::ExitCode;

use clap::Args;
use meshlens_api::stats::{RouteNumbers, RoutesResponse, StatQuery};

use super::client::{self, ControlArg};
use super::output::{self, Format};

/// Show per-route statistics of a resource's ServiceProfile routes.
#[derive(Args, Debug)]
pub struct RoutesArgs {
    /// TYPE/NAME or TYPE NAME (deploy, po or svc).
    #[arg(required = true, num_args = 1..=2, value_name = "RESOURCE")]
    resource: Vec<String>,
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    #[arg(short = 't', long = "time-window", default_value = "1m")]
    time_window: String,
    /// The same window, this much earlier (e.g. `1h`: a baseline to compare with).
    #[arg(long, value_name = "DURATION")]
    offset: Option<String>,
    /// The routes of this destination (TYPE/NAME), as the resource's outbound requests saw them.
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    to_namespace: Option<String>,
    /// Only if the resource's labels match this selector (Kubernetes syntax, as `stat -l`).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    control: ControlArg,
}

pub fn run(args: RoutesArgs) -> anyhow::Result<ExitCode> {
    let resource = match args.resource.as_slice() {
        [one] if one.contains('/') => one.clone(),
        [kind, name] => format!("{kind}/{name}"),
        _ => anyhow::bail!("expected one resource: TYPE/NAME or TYPE NAME"),
    };
    if args.output == Format::Wide && args.to.is_none() {
        anyhow::bail!("wide output is only available when --to is specified");
    }
    let query = StatQuery {
        resource,
        namespace: Some(args.namespace.clone()),
        window: Some(args.time_window.clone()),
        offset: args.offset.clone(),
        to: args.to.clone(),
        to_namespace: args.to_namespace.clone(),
        selector: super::stat::checked_selector(args.selector.as_deref())?,
        ..StatQuery::default()
    };
    let base = args.control.url();
    let routes: RoutesResponse = match client::get_stats(&base, "/api/v1/routes", &query)? {
        Ok(routes) => routes,
        Err(code) => return Ok(code),
    };
    print!("{}", render(&routes, args.output)?);
    if args.output != Format::Json {
        let coverages = routes.values().flatten().map(|r| &r.coverage);
        if let Some(note) = output::coverage_note(coverages, &args.time_window) {
            print!("{note}");
        }
        if routes.values().all(Vec::is_empty) {
            eprintln!("No traffic found.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The service's short name of an authority (`orders.prod.svc.cluster.local:80` → `orders`).
fn service(authority: &str) -> &str {
    authority.split(['.', ':']).next().unwrap_or(authority)
}

/// The retry fates other than `succeeded_first`, e.g. `after_retry:3,no_budget:1`, or `-`.
fn fates(f: Option<&std::collections::BTreeMap<String, u64>>) -> String {
    let parts: Vec<String> = f
        .into_iter()
        .flatten()
        .filter(|(k, v)| k.as_str() != "succeeded_first" && **v > 0)
        .map(|(k, v)| {
            let k = k.strip_prefix("succeeded_").or_else(|| k.strip_prefix("failed_")).unwrap_or(k);
            format!("{k}:{v}")
        })
        .collect();
    if parts.is_empty() { "-".into() } else { parts.join(",") }
}

pub fn render(routes: &RoutesResponse, format: Format) -> anyhow::Result<String> {
    if format == Format::Json {
        return output::json(routes);
    }
    let several = routes.len() > 1;
    let mut out = String::new();
    for (resource, rows) in routes {
        if rows.is_empty() {
            continue;
        }
        if several {
            out.push_str(&format!("==> {resource} <==\n"));
        }
        let wide = format == Format::Wide;
        let mut header = vec!["ROUTE", "SERVICE"];
        if wide {
            header.extend(["EFFECTIVE_SUCCESS", "EFFECTIVE_RPS", "ACTUAL_SUCCESS", "ACTUAL_RPS"]);
        } else {
            header.extend(["SUCCESS", "RPS"]);
        }
        header.extend(["LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]);
        if wide {
            header.extend(["TIMEOUTS", "CANCELLED", "RETRY_FATES"]);
        }
        let lines: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut line = vec![r.route.clone(), service(&r.authority).to_string()];
                match (&r.numbers, wide) {
                    (RouteNumbers::ToTarget { effective_success, effective_rps, actual_success, actual_rps }, true) => {
                        line.extend([
                            output::percent(*effective_success),
                            output::rps(*effective_rps),
                            output::percent(*actual_success),
                            output::rps(*actual_rps),
                        ])
                    }
                    (RouteNumbers::ToTarget { effective_success, effective_rps, .. }, false) => {
                        line.extend([output::percent(*effective_success), output::rps(*effective_rps)])
                    }
                    (RouteNumbers::Plain { success, rps }, _) => {
                        line.extend([output::percent(*success), output::rps(*rps)])
                    }
                }
                line.extend([output::ms(r.latency_ms_p50), output::ms(r.latency_ms_p95), output::ms(r.latency_ms_p99)]);
                if wide {
                    line.push(output::count(r.timeouts));
                    line.push(output::count(r.cancelled));
                    line.push(fates(r.retry_fates.as_ref()));
                }
                line
            })
            .collect();
        out.push_str(&output::table(&header, &lines, 2));
        if several {
            out.push('\n');
        }
    }
    Ok(out)
}
