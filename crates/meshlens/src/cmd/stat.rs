//! `meshlens stat`: success rate, RPS, latency percentiles and TCP numbers per namespace, workload
//! (deployment), instance (pod), service or authority, from the control plane's metric store, with Linkerd's columns
//! and formats (reference/linkerd.md §1.1).

use std::process::ExitCode;

use clap::Args;
use meshlens_api::stats::{StatQuery, StatRow};

use super::client::{self, ControlArg, NamespaceArgs};
use super::output::{self, Format};

/// Show traffic statistics of mesh resources.
///
/// `-o wide` adds READ_BYTES/SEC, WRITE_BYTES/SEC, CANCELLED (requests whose caller gave up before the
/// response completed, in the window; they count as failures in SUCCESS) and PROXY_ERRORS (responses the
/// proxy made rather than the app, by reason, in the window — with a workload's or pod's own refusals such
/// as `no_route`); for `ts`, SHARE (the leaf's actual share of the split's requests).
///
/// Rates are over the part of the window the control plane has data for; a table says so when that is
/// less than the window (`(data for 41s of 1m)`).
///
/// RESOURCES: `TYPE`, `TYPE/NAME`, or `TYPE NAME…`, where TYPE is `ns`, `deploy`, `po`, `svc`, `ts`
/// (TrafficSplit: one row per leaf), `au` (authority) or `all`.
/// Without --to/--from the numbers are what the resource served (inbound); `--to X` shows the resource's
/// requests to X, `--from X` the requests X sent to the resource (both as the client saw them).
///
/// With `--to` a deploy or po, and no callers named, a row `(unmeshed)` holds the requests X served that
/// no meshed client sent (callers without a proxy): X's inbound minus its meshed callers' requests, so
/// the rows add up to what X served; its latencies are unknown (`-`).
///
/// `au` (as Linkerd's `stat authority`): one row per `host:port` the callers named. Alone, what the
/// workloads in -n served, every caller counted, by the service each request named (its canonical
/// name); `--from deploy/X`: what X's app called, by the authority it used (with TCP_CONN); `--to X`:
/// the requests of the workloads in -n to X. `au/NAME` takes `host:port` or the host alone. An
/// authority cannot be the target of --to or --from.
#[derive(Args, Debug)]
pub struct StatArgs {
    /// TYPE, TYPE/NAME, or TYPE NAME…
    #[arg(required = true, value_name = "RESOURCES")]
    resources: Vec<String>,
    #[command(flatten)]
    pub(crate) scope: NamespaceArgs,
    /// The window the numbers cover (at least two scrape intervals).
    #[arg(short = 't', long = "time-window", default_value = "1m")]
    time_window: String,
    /// The same window, this much earlier (e.g. `1h`: a baseline to compare with).
    #[arg(long, value_name = "DURATION")]
    offset: Option<String>,
    /// Only requests to this resource (TYPE/NAME).
    #[arg(long, conflicts_with = "from")]
    to: Option<String>,
    /// The namespace of --to (default: -n).
    #[arg(long)]
    to_namespace: Option<String>,
    /// Only requests from this resource (TYPE/NAME).
    #[arg(long)]
    from: Option<String>,
    /// The namespace of --from (default: -n).
    #[arg(long)]
    from_namespace: Option<String>,
    /// Only resources whose labels match this selector (Kubernetes syntax: `app=web`, `tier!=db`,
    /// `env in (prod,staging)`, `env notin (dev)`, `canary`, `!canary`; commas join requirements).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,
    /// Include unmeshed resources: workloads declared without a proxy (no command, none registered),
    /// MESHED 0/N. Without it they are listed only when named.
    #[arg(long)]
    unmeshed: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    control: ControlArg,
}

/// `resource=…&names=…` from the RESOURCES arguments.
pub fn resource_query(args: &[String]) -> anyhow::Result<(String, Vec<String>)> {
    let first = &args[0];
    if !first.contains('/') {
        let names: Vec<String> = args[1..].to_vec();
        if let Some(bad) = names.iter().find(|n| n.contains('/')) {
            anyhow::bail!("'{bad}': mix either TYPE NAME… or TYPE/NAME…, not both");
        }
        return Ok((first.clone(), names));
    }
    if let Some(bad) = args.iter().find(|a| !a.contains('/')) {
        anyhow::bail!("'{bad}': expected TYPE/NAME");
    }
    Ok((args.join(","), Vec::new()))
}

pub fn run(args: StatArgs) -> anyhow::Result<ExitCode> {
    let (resource, names) = resource_query(&args.resources)?;
    let query = StatQuery {
        resource,
        namespace: Some(args.scope.namespace.clone()),
        window: Some(args.time_window.clone()),
        offset: args.offset.clone(),
        names: (!names.is_empty()).then(|| names.join(",")),
        all_namespaces: args.scope.all_namespaces.then_some(true),
        to: args.to,
        to_namespace: args.to_namespace,
        from: args.from,
        from_namespace: args.from_namespace,
        selector: checked_selector(args.selector.as_deref())?,
        unmeshed: args.unmeshed.then_some(true),
    };
    let base = args.control.url();
    let rows: Vec<StatRow> = match client::get_stats(&base, "/api/v1/stat", &query)? {
        Ok(rows) => rows,
        Err(code) => return Ok(code),
    };
    print!("{}", render(&rows, args.output, args.scope.all_namespaces)?);
    if args.output != Format::Json {
        if let Some(note) = output::coverage_note(rows.iter().map(|r| &r.coverage), &args.time_window) {
            print!("{note}");
        }
        if rows.is_empty() {
            eprintln!("{}", client::nothing_found(&base, "traffic", &args.scope.namespace, args.scope.all_namespaces));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The selector, checked here so a typo fails before any request (the control plane parses it again).
pub fn checked_selector(selector: Option<&str>) -> anyhow::Result<Option<String>> {
    if let Some(s) = selector {
        meshlens_api::selector::Selector::parse(s)?;
    }
    Ok(selector.map(str::to_string))
}

/// TrafficSplit rows: `NAME APEX LEAF WEIGHT SUCCESS RPS LATENCY_P50 LATENCY_P95 LATENCY_P99`, `-o wide`
/// adds SHARE and CANCELLED.
fn split_table(rows: &[StatRow], all_namespaces: bool, prefix: bool, wide: bool) -> String {
    let mut header = Vec::new();
    if all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend(["NAME", "APEX", "LEAF", "WEIGHT", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"]);
    if wide {
        header.extend(["SHARE", "CANCELLED"]);
    }
    let lines: Vec<Vec<String>> = rows
        .iter()
        .filter(|r| r.kind == "trafficsplit")
        .map(|r| {
            let mut line = Vec::new();
            if all_namespaces {
                line.push(r.namespace.clone());
            }
            line.push(if prefix { format!("ts/{}", r.name) } else { r.name.clone() });
            for v in [&r.apex, &r.leaf] {
                line.push(v.clone().unwrap_or_else(|| "-".into()));
            }
            line.push(output::weight(r.weight));
            line.extend([
                output::percent(r.success),
                output::rps(r.rps),
                output::ms(r.latency_ms_p50),
                output::ms(r.latency_ms_p95),
                output::ms(r.latency_ms_p99),
            ]);
            if wide {
                line.extend([output::percent(r.share), output::count(r.cancelled)]);
            }
            line
        })
        .collect();
    let left = if all_namespaces { 4 } else { 3 };
    output::table(&header, &lines, left)
}

fn short(kind: &str) -> &str {
    match kind {
        "deployment" => "deploy",
        "pod" => "po",
        "service" => "svc",
        "namespace" => "ns",
        "trafficsplit" => "ts",
        "authority" => "au",
        k => k,
    }
}

/// The name of the row of callers without a proxy (no resource can be named so).
const UNMESHED: &str = "(unmeshed)";

/// The output of `stat` for these rows (tables per kind, separated by a blank line).
pub fn render(rows: &[StatRow], format: Format, all_namespaces: bool) -> anyhow::Result<String> {
    if format == Format::Json {
        return output::json(&rows);
    }
    let mut kinds: Vec<&str> = Vec::new();
    for r in rows {
        if !kinds.contains(&r.kind.as_str()) {
            kinds.push(&r.kind);
        }
    }
    let prefix = kinds.len() > 1;
    let mut out = Vec::new();
    for kind in kinds {
        let pod = kind == "pod";
        if kind == "trafficsplit" {
            out.push(split_table(rows, all_namespaces, prefix, format == Format::Wide));
            continue;
        }
        let mut header = Vec::new();
        if all_namespaces {
            header.push("NAMESPACE");
        }
        header.push("NAME");
        if pod {
            header.push("STATUS");
        }
        header.extend(["MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "TCP_CONN"]);
        if format == Format::Wide {
            header.extend(["READ_BYTES/SEC", "WRITE_BYTES/SEC", "CANCELLED", "PROXY_ERRORS"]);
        }
        let mut lines = Vec::new();
        for r in rows.iter().filter(|r| r.kind == kind) {
            let mut line = Vec::new();
            if all_namespaces {
                line.push(if r.namespace.is_empty() { "-".into() } else { r.namespace.clone() });
            }
            line.push(match (r.unmeshed, prefix) {
                (true, _) => UNMESHED.into(),
                (false, true) => format!("{}/{}", short(kind), r.name),
                (false, false) => r.name.clone(),
            });
            if pod {
                line.push(if r.unmeshed { "-" } else { "Running" }.into());
            }
            line.extend([
                r.meshed.clone(),
                output::percent(r.success),
                output::rps(r.rps),
                output::ms(r.latency_ms_p50),
                output::ms(r.latency_ms_p95),
                output::ms(r.latency_ms_p99),
                output::count(r.tcp_open_connections),
            ]);
            if format == Format::Wide {
                line.extend([
                    output::bytes_rate(r.tcp_read_bytes_rate),
                    output::bytes_rate(r.tcp_write_bytes_rate),
                    output::count(r.cancelled),
                ]);
                line.push(match &r.proxy_errors {
                    Some(e) if !e.is_empty() => e.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(","),
                    _ => "-".into(),
                });
            }
            lines.push(line);
        }
        out.push(output::table(&header, &lines, if all_namespaces { 2 } else { 1 }));
    }
    Ok(out.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, namespace: &str, name: &str, unmeshed: bool) -> StatRow {
        let mut v = serde_json::json!({
            "namespace": namespace, "kind": kind, "name": name, "meshed": "-", "success": 1.0, "rps": 2.0,
            "latency_ms_p50": null, "latency_ms_p95": null, "latency_ms_p99": null, "tcp_open_connections": null,
            "tcp_read_bytes_rate": null, "tcp_write_bytes_rate": null, "window_s": 60.0, "covered_s": 60.0,
        });
        if unmeshed {
            v["unmeshed"] = true.into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn authorities_and_unmeshed_callers_have_their_names() {
        let rows = [row("deployment", "prod", "web", false), row("deployment", "prod", "", true)];
        let text = render(&rows, Format::Table, false).unwrap();
        let names: Vec<&str> = text.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
        assert_eq!(names, ["web", "(unmeshed)"], "{text}");

        let rows = [
            row("authority", "", "example.com:443", false),
            row("authority", "prod", "web.prod.svc.cluster.local:80", false),
        ];
        let text = render(&rows, Format::Table, true).unwrap();
        assert!(text.starts_with("NAMESPACE   NAME "), "{text}");
        assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("-           example.com:443 ")), "{text}");
        let mixed = [row("authority", "prod", "a:80", false), row("service", "prod", "a", false)];
        assert!(render(&mixed, Format::Table, false).unwrap().contains("au/a:80"));
    }
}
