//! Wall-clock timestamps for the API (RFC 3339, UTC, milliseconds), without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-23T08:15:30.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    meshlens_api::time::rfc3339(t, meshlens_api::time::Precision::Millis)
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
