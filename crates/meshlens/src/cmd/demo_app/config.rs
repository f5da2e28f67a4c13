//! The demo app's configuration file (YAML, or JSON with `--config-json`) and its validation.
//!
//! In a mesh directory, name it anything but `*.yaml`/`*.yml` (the demo uses `apps/NAME.conf`): the
//! control plane reads every YAML file of the directory as a mesh resource.
//!
//! ```yaml
//! latency: {p50: 5ms, p99: 20ms}     # default for routes without their own
//! clientTimeout: 10s                 # for calls to other services (per call: timeout)
//! seed: 7                            # fixed random sequence (default: random)
//! routes:
//!   - method: PUT                    # any method when absent
//!     path: /orders/{id}             # {name}: one path segment; a final /* matches the rest
//!     status: 200                    # default 200
//!     body: '{"ok":true}'            # default: a JSON description of the request
//!     latency: {p50: 20ms, p99: 80ms}   # 20ms | {p50,p90|p95|p99} | {min,max} | {mean,stddev}
//!     calls:                         # made in order (parallel: true to fan out at once)
//!       - {service: payment-service, method: POST, path: /charge, timeout: 2s}
//!     faults:                        # the first that triggers applies
//!       - {rate: 0.15, status: 503}                   # 15% of requests
//!       - {every: 50, status: 503, instances: [0]}    # every 50th request, instance index 0 only
//!       - {rate: 0.05, latency: 7s}                   # slow but still the route's status
//!       - {rate: 0.25, invalid: bare-cr}              # a malformed HTTP response
//! faults: []                         # like a route's, for every route (after the route's own)
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::app::{App, CallSpec, Fault, InvalidKind, Latency, PathPattern, Route, Trigger, Via};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppConfig {
    /// Shown in responses (default: MESHLENS_WORKLOAD).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub latency: Option<LatencyConfig>,
    #[serde(default)]
    pub client_timeout: Option<String>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub faults: Vec<FaultConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub method: Option<String>,
    pub path: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub latency: Option<LatencyConfig>,
    #[serde(default)]
    pub calls: Vec<CallConfig>,
    #[serde(default)]
    pub parallel: bool,
    #[serde(default)]
    pub faults: Vec<FaultConfig>,
}

/// A latency: `20ms` (fixed) or a distribution.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum LatencyConfig {
    Fixed(String),
    Dist(LatencyFields),
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyFields {
    pub p50: Option<String>,
    pub p90: Option<String>,
    pub p95: Option<String>,
    pub p99: Option<String>,
    pub min: Option<String>,
    pub max: Option<String>,
    pub mean: Option<String>,
    pub stddev: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultConfig {
    /// Probability (0..=1) that a request triggers this fault.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Every Nth request (N, 2N, …) triggers it.
    #[serde(default)]
    pub every: Option<u64>,
    /// Only these instances: names (`ml-inference-b-0`) or indexes (`0`). Default: every instance.
    #[serde(default)]
    pub instances: Vec<InstanceSel>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub latency: Option<LatencyConfig>,
    #[serde(default)]
    pub invalid: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Skip the route's calls (default: true when the fault sets `status` or `invalid`).
    #[serde(default)]
    pub skip_calls: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum InstanceSel {
    Index(u32),
    Name(String),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallConfig {
    /// `payment-service`, `payment-service:8080`, `users.prod`.
    pub service: String,
    #[serde(default)]
    pub method: Option<String>,
    /// Placeholders: `{uuid}` (random), `{n}` (random 1..=1000), `{name}` (from the incoming path).
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    /// `auto` (default: HTTP_PROXY when set, else MESHLENS_UPSTREAM_<SERVICE>, else direct), `proxy`,
    /// `upstream`, `direct`.
    #[serde(default)]
    pub via: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
}

/// Who this instance is, for per-instance faults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub workload: Option<String>,
    pub instance: Option<String>,
    pub index: Option<u32>,
}

impl Identity {
    /// From MESHLENS_WORKLOAD, MESHLENS_INSTANCE and MESHLENS_INSTANCE_INDEX (else the instance name's
    /// `-<n>` suffix).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let instance = var("MESHLENS_INSTANCE");
        let index = var("MESHLENS_INSTANCE_INDEX")
            .and_then(|i| i.parse().ok())
            .or_else(|| instance.as_deref().and_then(|i| i.rsplit_once('-')).and_then(|(_, n)| n.parse().ok()));
        Identity { workload: var("MESHLENS_WORKLOAD"), instance, index }
    }

    fn matches(&self, sel: &[InstanceSel]) -> bool {
        sel.is_empty()
            || sel.iter().any(|s| match s {
                InstanceSel::Index(i) => self.index == Some(*i),
                InstanceSel::Name(n) => self.instance.as_deref() == Some(n.as_str()),
            })
    }
}

/// Parses YAML (JSON is YAML too) configuration text.
pub fn parse(text: &str, origin: &str) -> Result<AppConfig, String> {
    if text.trim().is_empty() {
        return Ok(AppConfig::default());
    }
    serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        let msg = e.to_string();
        format!("{origin}{line}: {}", msg.lines().next().unwrap_or_default())
    })
}

/// Validates a configuration and compiles it for `me`. Errors name the field: `routes[1].faults[0].rate`.
pub fn compile(cfg: &AppConfig, me: &Identity) -> Result<App, Vec<String>> {
    let mut errors = Vec::new();
    let mut err = |at: &str, msg: String| errors.push(format!("{at}: {msg}"));
    let default_latency = cfg.latency.as_ref().and_then(|l| latency(l).map_err(|e| err("latency", e)).ok());
    let client_timeout = match &cfg.client_timeout {
        None => Duration::from_secs(10),
        Some(t) => parse_duration(t).unwrap_or_else(|e| {
            err("clientTimeout", e);
            Duration::ZERO
        }),
    };
    let mut routes = Vec::new();
    for (ri, r) in cfg.routes.iter().enumerate() {
        let at = format!("routes[{ri}]");
        let pattern = PathPattern::parse(&r.path).map_err(|e| err(&format!("{at}.path"), e)).ok();
        let method = match &r.method {
            None => None,
            Some(m) => http::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| err(&format!("{at}.method"), format!("{m:?} is not an HTTP method")))
                .ok(),
        };
        let status = r.status.unwrap_or(200);
        if !(100..=999).contains(&status) {
            err(&format!("{at}.status"), format!("{status} is not an HTTP status"));
        }
        let lat = r.latency.as_ref().and_then(|l| latency(l).map_err(|e| err(&format!("{at}.latency"), e)).ok());
        let mut calls = Vec::new();
        for (ci, c) in r.calls.iter().enumerate() {
            match call(c, client_timeout) {
                Ok(c) => calls.push(c),
                Err(e) => err(&format!("{at}.calls[{ci}]"), e),
            }
        }
        let mut faults = Vec::new();
        for (fi, f) in r.faults.iter().enumerate() {
            match fault(f, me) {
                Ok(Some(f)) => faults.push(f),
                Ok(None) => {}
                Err(e) => err(&format!("{at}.faults[{fi}]"), e),
            }
        }
        if let Some(pattern) = pattern {
            let name = format!("{} {}", method.as_ref().map_or("*", |m| m.as_str()), r.path);
            routes.push(Route {
                name,
                method,
                pattern,
                status,
                body: r.body.clone(),
                latency: lat.or_else(|| default_latency.clone()),
                calls,
                parallel: r.parallel,
                faults,
            });
        }
    }
    let mut faults = Vec::new();
    for (fi, f) in cfg.faults.iter().enumerate() {
        match fault(f, me) {
            Ok(Some(f)) => faults.push(f),
            Ok(None) => {}
            Err(e) => err(&format!("faults[{fi}]"), e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let name = cfg.name.clone().or_else(|| me.workload.clone()).unwrap_or_else(|| "demo-app".into());
    Ok(App::new(name, me.instance.clone(), routes, faults, cfg.seed))
}

fn call(c: &CallConfig, default_timeout: Duration) -> Result<CallSpec, String> {
    let method = c.method.as_deref().unwrap_or("GET");
    let method = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("method: {method:?} is not an HTTP method"))?;
    let path = c.path.clone().unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        return Err(format!("path: {path:?} must start with /"));
    }
    if c.service.is_empty() || c.service.contains('/') || c.service.contains(char::is_whitespace) {
        return Err(format!("service: {:?} is not a service name (name[.namespace][:port])", c.service));
    }
    let timeout = match &c.timeout {
        Some(t) => parse_duration(t).map_err(|e| format!("timeout: {e}"))?,
        None => default_timeout,
    };
    let via = match c.via.as_deref().unwrap_or("auto") {
        "auto" => Via::Auto,
        "proxy" => Via::Proxy,
        "upstream" => Via::Upstream,
        "direct" => Via::Direct,
        other => return Err(format!("via: {other:?} is not one of auto, proxy, upstream, direct")),
    };
    Ok(CallSpec { service: c.service.clone(), method, path, timeout, via, body: c.body.clone() })
}

/// A fault for this instance (None: it targets other instances).
fn fault(f: &FaultConfig, me: &Identity) -> Result<Option<Fault>, String> {
    let trigger = match (f.rate, f.every) {
        (Some(r), None) if (0.0..=1.0).contains(&r) => Trigger::Rate(r),
        (Some(r), None) => return Err(format!("rate: {r} is not between 0 and 1")),
        (None, Some(0)) => return Err("every: must be at least 1".into()),
        (None, Some(n)) => Trigger::every(n),
        (Some(_), Some(_)) => return Err("give either rate or every, not both".into()),
        (None, None) => return Err("give rate (0..1) or every (N) to say which requests it hits".into()),
    };
    if let Some(s) = f.status
        && !(100..=999).contains(&s)
    {
        return Err(format!("status: {s} is not an HTTP status"));
    }
    let invalid = f.invalid.as_deref().map(InvalidKind::parse).transpose()?;
    let latency = f.latency.as_ref().map(latency).transpose().map_err(|e| format!("latency: {e}"))?;
    if f.status.is_none() && invalid.is_none() && latency.is_none() && f.body.is_none() {
        return Err("a fault needs at least one of status, latency, invalid, body".into());
    }
    if !me.matches(&f.instances) {
        return Ok(None);
    }
    Ok(Some(Fault {
        trigger,
        status: f.status,
        latency,
        invalid,
        body: f.body.clone(),
        skip_calls: f.skip_calls.unwrap_or(f.status.is_some() || invalid.is_some()),
    }))
}

/// z-scores of the percentiles a latency may give besides p50.
const Z90: f64 = 1.281_551_565_5;
const Z95: f64 = 1.644_853_626_9;
const Z99: f64 = 2.326_347_874_0;

pub fn latency(l: &LatencyConfig) -> Result<Latency, String> {
    let d = |s: &Option<String>| s.as_deref().map(parse_duration).transpose();
    match l {
        LatencyConfig::Fixed(s) => Ok(Latency::Fixed(parse_duration(s)?)),
        LatencyConfig::Dist(f) => {
            let (p50, p90, p95, p99) = (d(&f.p50)?, d(&f.p90)?, d(&f.p95)?, d(&f.p99)?);
            let (min, max, mean, stddev) = (d(&f.min)?, d(&f.max)?, d(&f.mean)?, d(&f.stddev)?);
            let tails = [(p90, Z90, "p90"), (p95, Z95, "p95"), (p99, Z99, "p99")];
            let tail: Vec<_> = tails.iter().filter(|(v, ..)| v.is_some()).collect();
            match (p50, tail.as_slice(), min, max, mean, stddev) {
                (Some(p50), [], None, None, None, None) => Ok(Latency::Fixed(p50)),
                (Some(p50), [(Some(pt), z, name)], None, None, None, None) => {
                    if pt < &p50 {
                        return Err(format!("{name} ({pt:?}) is below p50 ({p50:?})"));
                    }
                    Latency::lognormal(p50, *pt, *z)
                }
                (None, [], Some(min), Some(max), None, None) if min <= max => Ok(Latency::Uniform { min, max }),
                (None, [], Some(min), Some(max), None, None) => Err(format!("min ({min:?}) is above max ({max:?})")),
                (None, [], None, None, Some(mean), sd) => Ok(Latency::Normal { mean, stddev: sd.unwrap_or_default() }),
                _ => Err("give a fixed duration (20ms), or {p50, and one of p90/p95/p99}, {min, max} or \
                          {mean, stddev}"
                    .into()),
            }
        }
    }
}

/// `300ms`, `5s`, `1.5s`, `1m30s`, `250us`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 5s, 300ms, 1m30s)");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let value: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * secs;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "5 seconds", "ms", "1.2.3s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_the_documented_example() {
        let text = r#"
latency: {p50: 5ms, p99: 20ms}
clientTimeout: 10s
seed: 7
routes:
  - method: PUT
    path: /orders/{id}
    status: 200
    body: '{"ok":true}'
    latency: {p50: 20ms, p99: 80ms}
    calls:
      - {service: payment-service, method: POST, path: /charge, timeout: 2s}
    faults:
      - {rate: 0.15, status: 503}
      - {every: 50, status: 503, instances: [0]}
      - {rate: 0.05, latency: 7s}
      - {rate: 0.25, invalid: bare-cr}
  - path: /health
    latency: 1ms
  - path: /static/*
    latency: {min: 1ms, max: 3ms}
  - path: /normal
    latency: {mean: 10ms, stddev: 2ms}
faults:
  - {every: 3, latency: {p50: 100ms, p95: 300ms}, instances: [other-0]}
"#;
        let cfg = parse(text, "t.yaml").unwrap();
        let me = Identity { workload: Some("orders".into()), instance: Some("orders-0".into()), index: Some(0) };
        let app = compile(&cfg, &me).unwrap();
        assert_eq!(app.name, "orders");
        assert_eq!(app.routes.len(), 4);
        let r = &app.routes[0];
        assert_eq!(r.name, "PUT /orders/{id}");
        assert_eq!(r.faults.len(), 4, "the instance-0 fault applies to orders-0");
        assert_eq!(r.calls[0].timeout, Duration::from_secs(2));
        assert!(r.faults[0].skip_calls && !r.faults[2].skip_calls);
        assert!(app.faults.is_empty(), "the app-wide fault targets other-0 only");
        let other = Identity { instance: Some("orders-1".into()), index: Some(1), ..me };
        assert_eq!(compile(&cfg, &other).unwrap().routes[0].faults.len(), 3);
    }

    #[test]
    fn errors_name_the_field() {
        let text = "routes:\n  - path: /a\n    faults: [{rate: 1.5, status: 503}, {status: 500}]\n    calls: [{service: x, timeout: soon}]\n  - path: b\n    latency: {p50: 20ms, p99: 10ms}\n";
        let errs = compile(&parse(text, "t").unwrap(), &Identity::default()).unwrap_err();
        let all = errs.join("\n");
        assert!(all.contains("routes[0].faults[0]: rate: 1.5 is not between 0 and 1"), "{all}");
        assert!(all.contains("routes[0].faults[1]: give rate"), "{all}");
        assert!(all.contains("routes[0].calls[0]: timeout: \"soon\" is not a duration"), "{all}");
        assert!(all.contains("routes[1].path:"), "{all}");
        assert!(all.contains("routes[1].latency: p99"), "{all}");
        let e = parse("routes: [{path: /a, colour: red}]", "f.yaml").unwrap_err();
        assert!(e.starts_with("f.yaml:1:"), "{e}");
    }
}
