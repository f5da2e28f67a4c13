//! Recent WARN/ERROR log events, as a proxy serves them on its admin port (`GET /logs`) and the control
//! plane relays them (`GET /api/v1/logs`) for `meshlens logs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many events a process keeps; older ones are dropped (and counted in [`LogPage::dropped`]).
pub const RING_CAPACITY: usize = 1000;

/// One WARN or ERROR event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Increases by one per event within one process (from 1); `GET /logs?since=SEQ` returns later ones.
    pub seq: u64,
    /// When it was logged: RFC 3339 UTC with milliseconds (`2026-12-02T21:37:46.123Z`).
    pub timestamp: String,
    /// `WARN` or `ERROR`.
    pub level: String,
    /// The module that logged it (tracing target, e.g. `meshlens_proxy::forward`).
    pub target: String,
    pub message: String,
    /// Every other field of the event (`reason`, `peer`, `authority`, `route`, `endpoint`, …) as text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// Added by the control plane when it relays events: which instance logged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<LogSource>,
}

/// The instance that logged an event (the control plane's registration of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSource {
    pub namespace: String,
    pub deployment: String,
    pub pod: String,
}

/// The answer of a proxy's `GET /logs?since=SEQ&level=warn|error`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogPage {
    /// Events with `seq > since`, oldest first, at most [`RING_CAPACITY`].
    pub events: Vec<LogEvent>,
    /// Events after `since` that the ring no longer holds (evicted before they were read).
    pub dropped: u64,
    /// The highest `seq` logged so far (pass it as `since` to read only newer events).
    pub last_seq: u64,
}

/// The answer of the control plane's `GET /api/v1/logs` (without `follow`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RelayedLogs {
    /// Every instance's events, each with its `source`, oldest first.
    pub events: Vec<LogEvent>,
    /// Events the instances' rings no longer held (summed over instances).
    #[serde(default)]
    pub dropped: u64,
    /// Instances that did not answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<Unreachable>,
}

/// An instance whose events could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    pub source: LogSource,
    pub error: String,
}
