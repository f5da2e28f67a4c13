//! Wall-clock timestamps as RFC 3339 in UTC (`2026-12-02T21:37:46.123Z`), without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// How many fractional digits of the second to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// `2025-03-01T09:30:00Z`
    Seconds,
    /// `2025-03-01T09:30:00.123Z`
    Millis,
    /// `2025-03-01T09:30:00.123456789Z`
    Nanos,
}

/// `t` in UTC (times before 1970 are written as the epoch).
pub fn rfc3339(t: SystemTime, precision: Precision) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    let (h, min, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    match precision {
        Precision::Seconds => format!("{y:04}-{m:02}-{day:02}T{h:02}:{min:02}:{s:02}Z"),
        Precision::Millis => {
            format!("{y:04}-{m:02}-{day:02}T{h:02}:{min:02}:{s:02}.{:03}Z", d.subsec_millis())
        }
        Precision::Nanos => format!("{y:04}-{m:02}-{day:02}T{h:02}:{min:02}:{s:02}.{:09}Z", d.subsec_nanos()),
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_at_each_precision() {
        assert_eq!(rfc3339(UNIX_EPOCH, Precision::Seconds), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH, Precision::Millis), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH, Precision::Nanos), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(t, Precision::Millis), "2024-02-29T12:34:56.789Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap, Precision::Seconds), "2000-02-29T00:00:00Z");
        let eoy = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(rfc3339(eoy, Precision::Seconds), "2024-12-31T23:59:59Z");
        let t = UNIX_EPOCH + Duration::new(1_661_286_500, 71_809_491);
        assert_eq!(rfc3339(t, Precision::Nanos), "2022-08-23T20:28:20.071809491Z");
    }
}
