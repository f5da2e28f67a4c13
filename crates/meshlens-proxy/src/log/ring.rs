//! The recent WARN/ERROR events of a process: a tracing [`Layer`] that keeps the newest
//! [`RING_CAPACITY`] in a ring (served as `GET /logs`) and counts every one in `log_events_total`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use meshlens_api::labels::LOG_EVENTS_TOTAL;
use meshlens_api::logs::{LogEvent, LogPage, RING_CAPACITY};
use meshlens_api::time::{Precision, rfc3339};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::metrics::{LabelSet, Registry};

/// Distinct `log_events_total` series kept; events beyond are counted under `reason="_other"`.
const MAX_SERIES: usize = 256;

/// The ring and the counts. Shared: the logger writes it, the admin listener reads it.
#[derive(Default)]
pub struct EventRing {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    events: VecDeque<LogEvent>,
    last_seq: u64,
    /// `(level, target, reason)` → events logged.
    counts: BTreeMap<(&'static str, String, String), u64>,
}

impl EventRing {
    pub fn new() -> Arc<EventRing> {
        Arc::new(EventRing::default())
    }

    /// The layer that feeds this ring; add it to the process's subscriber.
    pub fn layer(self: &Arc<Self>) -> RingLayer {
        RingLayer(self.clone())
    }

    /// Events after `since` at `min_level` or more severe (`Level::WARN`: WARN and ERROR), oldest first.
    pub fn page(&self, since: u64, min_level: Level) -> LogPage {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let first_held = inner.events.front().map_or(inner.last_seq + 1, |e| e.seq);
        let wanted = |e: &LogEvent| e.level == "ERROR" || (min_level == Level::WARN && e.level == "WARN");
        LogPage {
            events: inner.events.iter().filter(|e| e.seq > since && wanted(e)).cloned().collect(),
            dropped: first_held.saturating_sub(1).saturating_sub(since),
            last_seq: inner.last_seq,
        }
    }

    /// Makes `log_events_total` part of `registry`'s scrape.
    pub fn register(self: &Arc<Self>, registry: &Registry) {
        registry.register(&[LOG_EVENTS_TOTAL], self.clone());
    }

    /// Writes the `log_events_total` family (HELP, TYPE and one sample per level, target and reason).
    pub fn encode_metrics(&self, out: &mut String) {
        out.push_str("# HELP log_events_total WARN and ERROR events logged, by level, target and reason.\n");
        out.push_str("# TYPE log_events_total counter\n");
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for ((level, target, reason), n) in &inner.counts {
            let labels = LabelSet::new().with("level", level).with("target", target).with("reason", reason);
            let _ = writeln!(out, "{LOG_EVENTS_TOTAL}{{{labels}}} {n}");
        }
    }

    fn push(&self, level: &'static str, target: &str, message: String, fields: BTreeMap<String, String>) {
        let timestamp = rfc3339(SystemTime::now(), Precision::Millis);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = (level, target.to_string(), fields.get("reason").cloned().unwrap_or_default());
        if !inner.counts.contains_key(&key) && inner.counts.len() >= MAX_SERIES {
            key.2 = "_other".into();
        }
        *inner.counts.entry(key).or_default() += 1;
        inner.last_seq += 1;
        let seq = inner.last_seq;
        if inner.events.len() >= RING_CAPACITY {
            inner.events.pop_front();
        }
        inner.events.push_back(LogEvent {
            seq,
            timestamp,
            level: level.to_uppercase(),
            target: target.to_string(),
            message,
            fields,
            source: None,
        });
    }
}

impl crate::metrics::Collect for EventRing {
    fn encode(&self, out: &mut String) {
        self.encode_metrics(out);
    }
}

/// Keeps WARN and ERROR events in an [`EventRing`]; ignores the rest.
pub struct RingLayer(Arc<EventRing>);

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        self.0.record(event);
    }
}

impl EventRing {
    /// Keeps `event` when it is a WARN or an ERROR.
    pub(crate) fn record(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            _ => return,
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.push(level, meta.target(), fields.message, fields.other);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    other: BTreeMap<String, String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            name => {
                self.other.insert(name.to_string(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn keeps_warn_and_error_with_their_fields_and_counts_them() {
        let ring = EventRing::new();
        let subscriber = tracing_subscriber::registry().with(ring.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not kept");
            tracing::warn!(reason = "connect_error", peer = %"10.0.0.1:5000", "connect failed");
            tracing::error!(error = "boom", "it broke");
        });
        let page = ring.page(0, Level::WARN);
        assert_eq!(page.last_seq, 2);
        assert_eq!(page.dropped, 0);
        assert_eq!(page.events.len(), 2);
        let warn = &page.events[0];
        assert_eq!((warn.seq, warn.level.as_str(), warn.message.as_str()), (1, "WARN", "connect failed"));
        assert_eq!(warn.fields["reason"], "connect_error");
        assert_eq!(warn.fields["peer"], "10.0.0.1:5000");
        assert!(warn.target.ends_with("ring::tests"), "{}", warn.target);
        assert!(warn.timestamp.ends_with('Z') && warn.timestamp.len() == 24, "{}", warn.timestamp);
        assert_eq!(ring.page(0, Level::ERROR).events.len(), 1, "errors only");
        assert_eq!(ring.page(1, Level::WARN).events.len(), 1, "after seq 1");
        let mut out = String::new();
        ring.encode_metrics(&mut out);
        assert!(
            out.contains(
                r#"log_events_total{level="warn",target="meshlens_proxy::log::ring::tests",reason="connect_error"} 1"#
            ),
            "{out}"
        );
        assert!(
            out.contains(r#"log_events_total{level="error",target="meshlens_proxy::log::ring::tests",reason=""} 1"#),
            "{out}"
        );
    }

    #[test]
    fn a_full_ring_drops_the_oldest_and_says_how_many() {
        let ring = EventRing::new();
        let subscriber = tracing_subscriber::registry().with(ring.layer());
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..RING_CAPACITY + 5 {
                tracing::warn!(i, "event");
            }
        });
        let page = ring.page(0, Level::WARN);
        assert_eq!(page.events.len(), RING_CAPACITY);
        assert_eq!(page.dropped, 5);
        assert_eq!(page.events[0].seq, 6);
        assert_eq!(page.last_seq, RING_CAPACITY as u64 + 5);
        let page = ring.page(page.last_seq, Level::WARN);
        assert!(page.events.is_empty() && page.dropped == 0);
    }
}
