//! The demo app's behaviour, separate from I/O: route matching, latency sampling, fault decisions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Samples are capped here whatever the distribution says.
const MAX_LATENCY: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct App {
    pub name: String,
    pub instance: Option<String>,
    pub routes: Vec<Route>,
    /// Faults for every route, checked after the route's own.
    pub faults: Vec<Fault>,
    rng: Mutex<fastrand::Rng>,
}

#[derive(Debug)]
pub struct Route {
    /// `PUT /orders/{id}`.
    pub name: String,
    pub method: Option<http::Method>,
    pub pattern: PathPattern,
    pub status: u16,
    pub body: Option<String>,
    pub latency: Option<Latency>,
    pub calls: Vec<CallSpec>,
    pub parallel: bool,
    pub faults: Vec<Fault>,
}

#[derive(Clone, Debug)]
pub struct CallSpec {
    pub service: String,
    pub method: http::Method,
    pub path: String,
    pub timeout: Duration,
    pub via: Via,
    pub body: Option<String>,
}

/// How a call reaches its service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// HTTP_PROXY when set (and NO_PROXY does not name the host), else the service's
    /// MESHLENS_UPSTREAM_<SERVICE> listener, else straight to the host.
    Auto,
    Proxy,
    Upstream,
    Direct,
}

#[derive(Debug)]
pub struct Fault {
    pub trigger: Trigger,
    pub status: Option<u16>,
    pub latency: Option<Latency>,
    pub invalid: Option<InvalidKind>,
    pub body: Option<String>,
    pub skip_calls: bool,
}

#[derive(Debug)]
pub enum Trigger {
    Rate(f64),
    /// Requests N, 2N, 3N… (counted per fault, on this instance).
    Every {
        n: u64,
        seen: AtomicU64,
    },
}

impl Trigger {
    pub fn every(n: u64) -> Self {
        Trigger::Every { n, seen: AtomicU64::new(0) }
    }

    fn fires(&self, rng: &mut fastrand::Rng) -> bool {
        match self {
            Trigger::Rate(r) => rng.f64() < *r,
            Trigger::Every { n, seen } => (seen.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(*n),
        }
    }
}

/// A malformed response, written as raw bytes (a proxy must refuse it: 502 `invalid_response`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidKind {
    /// A header value with a carriage return not followed by a line feed.
    BareCr,
    /// Two different Content-Length headers.
    ConflictingContentLength,
    /// A space inside a header name.
    BadHeaderName,
}

impl InvalidKind {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "bare-cr" => Ok(Self::BareCr),
            "conflicting-content-length" => Ok(Self::ConflictingContentLength),
            "bad-header-name" => Ok(Self::BadHeaderName),
            _ => Err(format!("invalid: {s:?} is not one of bare-cr, conflicting-content-length, bad-header-name")),
        }
    }

    /// The whole response, bytes as sent (the connection is closed after it).
    pub fn response(self) -> &'static [u8] {
        match self {
            Self::BareCr => {
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-demo-app: bad\rvalue\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n"
            }
            Self::ConflictingContentLength => {
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\ncontent-length: 5\r\nconnection: close\r\n\r\nok\n"
            }
            Self::BadHeaderName => {
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx demo app: bad\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n"
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Latency {
    Fixed(Duration),
    /// exp(N(mu, sigma)) seconds, capped at `cap` seconds.
    LogNormal {
        mu: f64,
        sigma: f64,
        cap: f64,
    },
    Uniform {
        min: Duration,
        max: Duration,
    },
    /// Truncated at 0.
    Normal {
        mean: Duration,
        stddev: Duration,
    },
}

impl Latency {
    /// The log-normal distribution with median `p50` whose quantile at z-score `z` is `tail`.
    pub fn lognormal(p50: Duration, tail: Duration, z: f64) -> Result<Self, String> {
        if p50.is_zero() {
            return Err("p50 must be above 0".into());
        }
        if tail == p50 {
            return Ok(Latency::Fixed(p50));
        }
        let mu = p50.as_secs_f64().ln();
        let sigma = (tail.as_secs_f64() / p50.as_secs_f64()).ln() / z;
        // Far enough past the tail to keep its shape (z = 4.75: 1 in a million), short of absurd values.
        let cap = (mu + 4.75 * sigma).exp().min(MAX_LATENCY.as_secs_f64());
        Ok(Latency::LogNormal { mu, sigma, cap })
    }

    pub fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        let secs = match *self {
            Latency::Fixed(d) => return d.min(MAX_LATENCY),
            Latency::LogNormal { mu, sigma, cap } => (mu + sigma * standard_normal(rng)).exp().min(cap),
            Latency::Uniform { min, max } => min.as_secs_f64() + rng.f64() * (max.as_secs_f64() - min.as_secs_f64()),
            Latency::Normal { mean, stddev } => mean.as_secs_f64() + stddev.as_secs_f64() * standard_normal(rng),
        };
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(MAX_LATENCY).min(MAX_LATENCY)
    }
}

/// Box–Muller.
fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64(); // (0, 1]
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `/users/{id}`: literal segments, `{name}` for one segment, a final `*` for the rest.
#[derive(Clone, Debug)]
pub struct PathPattern {
    segments: Vec<Segment>,
}

#[derive(Clone, Debug)]
enum Segment {
    Literal(String),
    Param(String),
    Rest,
}

impl PathPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(format!("{pattern:?} must start with /"));
        };
        let parts: Vec<&str> = if rest.is_empty() { vec![] } else { rest.split('/').collect() };
        let mut segments = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            if *p == "*" {
                if i + 1 != parts.len() {
                    return Err(format!("{pattern:?}: * may only be the last segment"));
                }
                segments.push(Segment::Rest);
            } else if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("{pattern:?}: {{{name}}} is not a placeholder name"));
                }
                segments.push(Segment::Param(name.to_owned()));
            } else if p.contains(['{', '}', '*']) {
                return Err(format!("{pattern:?}: {p:?}: placeholders take a whole segment"));
            } else {
                segments.push(Segment::Literal((*p).to_owned()));
            }
        }
        Ok(PathPattern { segments })
    }

    /// The placeholders' values if `path` matches.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = if rest.is_empty() { vec![] } else { rest.split('/').collect() };
        let mut captures = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Rest => return Some(captures),
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => match parts.get(i) {
                    Some(v) if !v.is_empty() => captures.push((name.clone(), (*v).to_owned())),
                    _ => return None,
                },
            }
        }
        (parts.len() == self.segments.len()).then_some(captures)
    }
}

/// What to do with one request.
#[derive(Debug, PartialEq)]
pub struct Decision {
    pub route: usize,
    pub status: u16,
    pub latency: Duration,
    pub invalid: Option<InvalidKind>,
    pub body: Option<String>,
    pub make_calls: bool,
    /// Index of the fault that fired: (route-level?, index).
    pub fault: Option<(bool, usize)>,
}

impl App {
    pub fn new(
        name: String,
        instance: Option<String>,
        routes: Vec<Route>,
        faults: Vec<Fault>,
        seed: Option<u64>,
    ) -> Self {
        let rng = seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        App { name, instance, routes, faults, rng: Mutex::new(rng) }
    }

    /// The first route matching, with its placeholders.
    pub fn route(&self, method: &http::Method, path: &str) -> Option<(usize, Vec<(String, String)>)> {
        self.routes.iter().enumerate().find_map(|(i, r)| {
            if r.method.as_ref().is_some_and(|m| m != method) {
                return None;
            }
            r.pattern.matches(path).map(|c| (i, c))
        })
    }

    /// Decides a request to route `route`: every fault's trigger is evaluated (so `every` counts each
    /// request), the first that fires applies.
    pub fn decide(&self, route: usize) -> Decision {
        let r = &self.routes[route];
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let mut fired = None;
        for (i, f) in r.faults.iter().enumerate() {
            if f.trigger.fires(&mut rng) && fired.is_none() {
                fired = Some((true, i));
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            if f.trigger.fires(&mut rng) && fired.is_none() {
                fired = Some((false, i));
            }
        }
        let fault = fired.map(|(route_level, i)| if route_level { &r.faults[i] } else { &self.faults[i] });
        let latency = fault.and_then(|f| f.latency.as_ref()).or(r.latency.as_ref());
        Decision {
            route,
            status: fault.and_then(|f| f.status).unwrap_or(r.status),
            latency: latency.map_or(Duration::ZERO, |l| l.sample(&mut rng)),
            invalid: fault.and_then(|f| f.invalid),
            body: fault.and_then(|f| f.body.clone()).or_else(|| r.body.clone()),
            make_calls: !fault.is_some_and(|f| f.skip_calls),
            fault: fired,
        }
    }

    /// A call's path with its placeholders filled: `{uuid}`, `{n}`, or a capture of the incoming path.
    pub fn fill(&self, template: &str, captures: &[(String, String)]) -> String {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::with_capacity(template.len() + 16);
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            let Some(end) = end.filter(|e| *e > 0 && after[*e..].starts_with('}')) else {
                out.push('{');
                rest = after;
                continue;
            };
            match &after[..end] {
                "uuid" => out.push_str(&uuid(&mut rng)),
                "n" => out.push_str(&rng.u32(1..=1000).to_string()),
                name => match captures.iter().find(|(k, _)| k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rng.u32(1..=1000).to_string()),
                },
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// A random (version 4) UUID.
pub fn uuid(rng: &mut fastrand::Rng) -> String {
    let mut b: [u8; 16] = std::array::from_fn(|_| rng.u8(..));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::super::config::{Identity, compile, parse};
    use super::*;

    fn app(yaml: &str, me: &Identity) -> App {
        compile(&parse(yaml, "t").unwrap(), me).unwrap()
    }

    #[test]
    fn path_patterns() {
        let p = PathPattern::parse("/users/{id}/orders/{order}").unwrap();
        assert_eq!(
            p.matches("/users/7/orders/x-1"),
            Some(vec![("id".into(), "7".into()), ("order".into(), "x-1".into())])
        );
        assert_eq!(p.matches("/users/7/orders"), None);
        assert_eq!(p.matches("/users//orders/1"), None);
        assert_eq!(p.matches("/users/7/orders/1/more"), None);
        assert!(PathPattern::parse("/").unwrap().matches("/").is_some());
        assert!(PathPattern::parse("/").unwrap().matches("/x").is_none());
        let rest = PathPattern::parse("/static/*").unwrap();
        assert!(rest.matches("/static/a/b").is_some() && rest.matches("/static").is_some());
        assert!(rest.matches("/other").is_none());
        assert!(PathPattern::parse("users").is_err());
        assert!(PathPattern::parse("/a/*/b").is_err());
        assert!(PathPattern::parse("/a/x{id}").is_err());
    }

    #[test]
    fn routes_by_method_then_path() {
        let a = app(
            "routes:\n  - {method: get, path: '/o/{id}', status: 201}\n  - {path: '/o/{id}', status: 202}\n",
            &Identity::default(),
        );
        assert_eq!(a.route(&http::Method::GET, "/o/1").unwrap().0, 0);
        assert_eq!(a.route(&http::Method::PUT, "/o/1").unwrap().0, 1);
        assert!(a.route(&http::Method::GET, "/x").is_none());
    }

    #[test]
    fn every_nth_request_fails_exactly() {
        let a = app("routes:\n  - path: /predict\n    faults: [{every: 50, status: 503}]\n", &Identity::default());
        let failed: Vec<usize> = (1..=200).filter(|_| a.decide(0).status == 503).collect();
        assert_eq!(failed, [50, 100, 150, 200]);
    }

    #[test]
    fn rates_follow_the_seeded_rng() {
        let yaml = "seed: 42\nroutes:\n  - path: /orders/{id}\n    faults: [{rate: 0.15, status: 503}]\n";
        let count = |a: &App| (0..10_000).filter(|_| a.decide(0).status == 503).count();
        let (a, b) = (app(yaml, &Identity::default()), app(yaml, &Identity::default()));
        let (na, nb) = (count(&a), count(&b));
        assert_eq!(na, nb, "the same seed gives the same sequence");
        assert!((1350..=1650).contains(&na), "~15% of 10000: {na}");
        let d = app(yaml, &Identity::default()).decide(0);
        assert!(!d.make_calls || d.status == 200, "a failing fault skips the calls");
    }

    #[test]
    fn faults_only_on_the_chosen_instances() {
        let yaml = "routes:\n  - path: /\n    faults:\n      - {rate: 1, status: 500, instances: [web-1]}\n      - {rate: 1, status: 501, instances: [2]}\n";
        let status = |instance: &str, index| {
            let me = Identity { workload: None, instance: Some(instance.into()), index: Some(index) };
            app(yaml, &me).decide(0).status
        };
        assert_eq!(status("web-0", 0), 200);
        assert_eq!(status("web-1", 1), 500);
        assert_eq!(status("web-2", 2), 501);
    }

    #[test]
    fn slow_success_keeps_the_status_and_makes_the_calls() {
        let yaml = "seed: 1\nroutes:\n  - path: /charge\n    latency: 10ms\n    faults: [{rate: 1, latency: 100ms, body: declined}]\n";
        let d = app(yaml, &Identity::default()).decide(0);
        assert_eq!((d.status, d.latency, d.make_calls), (200, Duration::from_millis(100), true));
        assert_eq!(d.body.as_deref(), Some("declined"));
    }

    #[test]
    fn first_fault_wins_and_app_faults_come_after_route_faults() {
        let yaml = "routes:\n  - path: /\n    faults: [{every: 2, status: 502}]\nfaults: [{rate: 1, status: 503}]\n";
        let a = app(yaml, &Identity::default());
        assert_eq!(a.decide(0).status, 503);
        assert_eq!(a.decide(0).status, 502);
        assert_eq!(a.decide(0).fault, Some((false, 0)));
    }

    fn percentile(samples: &mut [Duration], p: f64) -> Duration {
        samples.sort();
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)]
    }

    #[test]
    fn latency_samples_stay_within_their_distribution() {
        let mut rng = fastrand::Rng::with_seed(3);
        let ms = Duration::from_millis;
        let l = Latency::lognormal(ms(20), ms(200), 2.326_347_874).unwrap();
        let mut s: Vec<_> = (0..20_000).map(|_| l.sample(&mut rng)).collect();
        let (p50, p99) = (percentile(&mut s, 0.5), percentile(&mut s, 0.99));
        assert!((ms(18)..=ms(22)).contains(&p50), "p50 {p50:?}");
        assert!((ms(170)..=ms(235)).contains(&p99), "p99 {p99:?}");
        let Latency::LogNormal { cap, .. } = l else { unreachable!() };
        assert!(s.iter().all(|d| d.as_secs_f64() <= cap + 1e-9));

        let u = Latency::Uniform { min: ms(10), max: ms(30) };
        assert!((0..5000).map(|_| u.sample(&mut rng)).all(|d| (ms(10)..=ms(30)).contains(&d)));
        let n = Latency::Normal { mean: ms(5), stddev: ms(10) };
        let samples: Vec<_> = (0..5000).map(|_| n.sample(&mut rng)).collect();
        assert!(samples.contains(&Duration::ZERO), "truncated at 0");
        let mean = samples.iter().sum::<Duration>() / 5000;
        assert!(mean > ms(5), "truncation moves the mean up: {mean:?}");
        assert_eq!(Latency::Fixed(ms(7)).sample(&mut rng), ms(7));
    }

    #[test]
    fn call_paths_fill_placeholders() {
        let a = app("seed: 5\n", &Identity::default());
        let p = a.fill("/orders/{uuid}/items/{n}/{id}", &[("id".into(), "42".into())]);
        let parts: Vec<&str> = p.split('/').collect();
        assert_eq!(parts[1], "orders");
        assert_eq!(parts[2].len(), 36);
        assert_eq!(&parts[2][14..15], "4", "version 4 uuid: {p}");
        assert!(parts[4].parse::<u32>().is_ok());
        assert_eq!(parts[5], "42");
        assert_eq!(a.fill("/plain", &[]), "/plain");
        let body = a.fill(r#"{"amount":{n},"user":"{id}"}"#, &[("id".into(), "7".into())]);
        assert!(body.starts_with(r#"{"amount":"#) && body.ends_with(r#","user":"7"}"#), "{body}");
        assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok(), "{body}");
    }

    #[test]
    fn invalid_responses_are_what_they_say() {
        let bare = InvalidKind::BareCr.response();
        let pos = bare.windows(2).position(|w| w[0] == b'\r' && w[1] != b'\n');
        assert!(pos.is_some(), "a CR not followed by LF");
        let text = String::from_utf8_lossy(InvalidKind::ConflictingContentLength.response()).into_owned();
        assert_eq!(text.matches("content-length:").count(), 2);
    }
}
