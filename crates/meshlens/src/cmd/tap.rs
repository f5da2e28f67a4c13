//! `meshlens tap`: live requests of a resource as Linkerd prints them (reference/linkerd.md §1.4): `req`,
//! `rsp` and `end` lines, `-o wide` with the endpoints' metadata, `-o json` one compact event per line.
//! Beyond Linkerd: the response filters `--status` and `--failed`, ` proxy_error=REASON` on the `rsp` and
//! `end` lines of responses the proxy made, and ` attempt=N original_id=B:S` on every line of a retry.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use meshlens_api::tap::{ProxyDirection, StreamId, TapDuration, TapEndpoint, TapEvent, grpc_code_name};

use super::client::ControlArg;
use super::tap_stream::{self, TapTargetArgs};

/// `-o wide` or `-o json` (the default is Linkerd's plain lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TapFormat {
    Wide,
    Json,
}

/// Watch live requests of a resource.
#[derive(Args, Debug)]
pub struct TapArgs {
    #[command(flatten)]
    target: TapTargetArgs,
    /// Output format: wide (adds the endpoints' metadata) or json (one event per line).
    #[arg(short = 'o', long, value_enum)]
    output: Option<TapFormat>,
    /// Capture request and response headers (sensitive ones redacted); -o json only.
    #[arg(long)]
    headers: bool,
    #[command(flatten)]
    control: ControlArg,
}

pub fn run(args: TapArgs) -> anyhow::Result<ExitCode> {
    if args.headers && args.output != Some(TapFormat::Json) {
        anyhow::bail!("--headers is only available with -o json");
    }
    let (request, mut filter) = args.target.request()?;
    filter.headers = args.headers;
    let base = args.control.url();
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut stream = tap_stream::open(&base, &request, &filter).await?;
        let mut stdout = std::io::stdout();
        while let Some(event) = stream.next().await {
            let line = render(&event?, args.output)?;
            // A closed pipe (`| head`) ends the tap quietly.
            if writeln!(stdout, "{line}").and_then(|_| stdout.flush()).is_err() {
                return Ok(ExitCode::SUCCESS);
            }
        }
        eprintln!("tap stream ended");
        Ok(ExitCode::SUCCESS)
    })
}

/// One output line for an event.
pub fn render(event: &TapEvent, format: Option<TapFormat>) -> anyhow::Result<String> {
    if format == Some(TapFormat::Json) {
        return serde_json::to_string(event).context("cannot encode a tap event");
    }
    let mut line = if let Some(req) = &event.request_init_event {
        format!("{} :method={} :authority={} :path={}", head("req", req.id, event), req.method, req.authority, req.path)
    } else if let Some(rsp) = &event.response_init_event {
        format!(
            "{} :status={} latency={}µs",
            head("rsp", rsp.id, event),
            rsp.http_status,
            micros(rsp.since_request_init)
        )
    } else if let Some(end) = &event.response_end_event {
        let eos = match (end.grpc_status_code, end.reset_error_code) {
            (Some(code), _) => format!("grpc-status={} ", grpc_code_name(code)),
            (None, Some(reset)) => format!("reset-error={reset} "),
            (None, None) => String::new(),
        };
        let duration = end.since_response_init.map_or(0, micros);
        format!("{} {eos}duration={duration}µs response-length={}B", head("end", end.id, event), end.response_bytes)
    } else {
        anyhow::bail!("a tap event with neither requestInitEvent, responseInitEvent nor responseEndEvent");
    };
    if event.request_init_event.is_none()
        && let Some(reason) = &event.proxy_error
    {
        line.push_str(&format!(" proxy_error={reason}"));
    }
    if let Some(attempt) = event.attempt.filter(|a| *a > 1) {
        line.push_str(&format!(" attempt={attempt}"));
        if let Some(id) = event.original_id {
            line.push_str(&format!(" original_id={}:{}", id.base, id.stream));
        }
    }
    if format == Some(TapFormat::Wide) {
        wide(&mut line, "src", &event.source.metadata);
        wide(&mut line, "dst", &event.destination.metadata);
        wide(&mut line, "rt", &event.route_meta);
    }
    Ok(line)
}

/// `req id=B:S proxy=DIR src=IP:PORT dst=IP:PORT tls=T`.
fn head(kind: &str, id: StreamId, event: &TapEvent) -> String {
    let (direction, tls_side) = match event.proxy_direction {
        ProxyDirection::Inbound => ("in ", &event.source),
        ProxyDirection::Outbound => ("out", &event.destination),
    };
    let tls = tls_side.metadata.get("tls").map_or("", String::as_str);
    format!(
        "{kind} id={}:{} proxy={direction} src={} dst={} tls={tls}",
        id.base,
        id.stream,
        address(&event.source),
        address(&event.destination)
    )
}

/// `IP:PORT`, IPv6 in brackets.
fn address(endpoint: &TapEndpoint) -> String {
    if endpoint.ip.contains(':') && !endpoint.ip.starts_with('[') {
        format!("[{}]:{}", endpoint.ip, endpoint.port)
    } else {
        format!("{}:{}", endpoint.ip, endpoint.port)
    }
}

fn micros(d: TapDuration) -> u128 {
    std::time::Duration::from(d).as_micros()
}

/// ` prefix_key=value` for every entry, in key order.
fn wide(line: &mut String, prefix: &str, labels: &BTreeMap<String, String>) {
    for (key, value) in labels {
        line.push_str(&format!(" {prefix}_{key}={value}"));
    }
}
