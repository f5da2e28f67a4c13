//! The control plane's own metrics (`GET /metrics`, Prometheus text 0.0.4): reloads, registrations, leases,
//! watch streams, and the `process_*` families. Counters are atomics owned by one `Metrics` value created in `app::start`.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters and gauges that the store and the API update.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub reloads_ok: AtomicU64,
    pub reloads_rejected: AtomicU64,
    pub config_valid: AtomicBool,
    pub registrations_ok: AtomicU64,
    pub registrations_rejected: AtomicU64,
    pub deregistrations: AtomicU64,
    pub lease_expirations: AtomicU64,
    pub watch_streams: AtomicU64,
    pub watchers: AtomicU64,
}

/// Values read from the store when metrics are scraped.
pub(crate) struct Gauges {
    pub version: u64,
    pub complete: bool,
    pub proxies: usize,
    pub uptime_seconds: f64,
}

impl Metrics {
    pub fn new() -> Self {
        Metrics { config_valid: AtomicBool::new(true), ..Default::default() }
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition of every family, with HELP and TYPE.
    pub fn encode(&self, g: &Gauges) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "meshlens_control_config_reloads_total",
            "counter",
            "Changes of the mesh directory, by result: ok (now serving) or rejected (invalid, not applied).",
            &[
                ("{result=\"ok\"}", get(&self.reloads_ok).to_string()),
                ("{result=\"rejected\"}", get(&self.reloads_rejected).to_string()),
            ],
        );
        family(
            "meshlens_control_config_valid",
            "gauge",
            "1 if the mesh directory on disk is valid and serving, 0 while a rejected change is pending a fix.",
            &[("", u8::from(self.config_valid.load(Ordering::Relaxed)).to_string())],
        );
        family(
            "meshlens_control_snapshot_version",
            "gauge",
            "Version of the discovery snapshot served to proxies.",
            &[("", g.version.to_string())],
        );
        family(
            "meshlens_control_snapshot_complete",
            "gauge",
            "0 during the first two lease periods after start, while endpoint removals are withheld.",
            &[("", u8::from(g.complete).to_string())],
        );
        family(
            "meshlens_control_proxies",
            "gauge",
            "Proxies with a live registration.",
            &[("", g.proxies.to_string())],
        );
        family(
            "meshlens_control_registrations_total",
            "counter",
            "Registrations and renewals received, by result.",
            &[
                ("{result=\"ok\"}", get(&self.registrations_ok).to_string()),
                ("{result=\"rejected\"}", get(&self.registrations_rejected).to_string()),
            ],
        );
        family(
            "meshlens_control_deregistrations_total",
            "counter",
            "Proxies that deregistered (clean exits).",
            &[("", get(&self.deregistrations).to_string())],
        );
        family(
            "meshlens_control_lease_expirations_total",
            "counter",
            "Registrations removed because their lease lapsed.",
            &[("", get(&self.lease_expirations).to_string())],
        );
        family(
            "meshlens_control_watch_streams_total",
            "counter",
            "Watch streams opened.",
            &[("", get(&self.watch_streams).to_string())],
        );
        family(
            "meshlens_control_watchers",
            "gauge",
            "Watch streams open now.",
            &[("", get(&self.watchers).to_string())],
        );
        family(
            "meshlens_control_uptime_seconds",
            "gauge",
            "Seconds since the control plane started.",
            &[("", format!("{:.3}", g.uptime_seconds))],
        );
        meshlens_api::process::encode_current(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type() {
        let m = Metrics::new();
        Metrics::inc(&m.reloads_rejected);
        m.config_valid.store(false, Ordering::Relaxed);
        let text = m.encode(&Gauges { version: 7, complete: false, proxies: 2, uptime_seconds: 1.5 });
        assert!(text.contains("meshlens_control_config_reloads_total{result=\"rejected\"} 1\n"), "{text}");
        assert!(text.contains("meshlens_control_config_reloads_total{result=\"ok\"} 0\n"), "{text}");
        assert!(text.contains("\nmeshlens_control_config_valid 0\n"), "{text}");
        assert!(text.contains("\nmeshlens_control_proxies 2\n"), "{text}");
        let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(helps, types);
        assert_eq!(helps, 11 + meshlens_api::process::FAMILIES.len());
        assert!(text.contains("\nprocess_start_time_seconds "), "{text}");
    }
}
