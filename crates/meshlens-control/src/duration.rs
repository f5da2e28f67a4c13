//! Go-style durations (`300ms`, `5s`, `1m30s`, `1.5h`), as Linkerd's ServiceProfiles write them.

use std::time::Duration;

/// The hint every duration error ends with.
pub const DURATION_HINT: &str = "is not a duration (e.g. 5s, 300ms)";

/// Parses a Go `time.ParseDuration` string. Negative durations are refused (nothing in a mesh config
/// can be negative); `0` is accepted without a unit, as in Go.
pub fn parse(s: &str) -> Option<Duration> {
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // The number: digits, optionally a fraction.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        // The unit: everything up to the next digit or '.'.
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int: u128 = if int_part.is_empty() { 0 } else { int_part.parse().ok()? };
        let mut value = int.checked_mul(unit_ns)?;
        // The fraction, to nanosecond precision (Go truncates too).
        let mut scale = unit_ns;
        for d in frac_part.bytes().take(30) {
            scale /= 10;
            value = value.checked_add(u128::from(d - b'0') * scale)?;
        }
        total = total.checked_add(value)?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats a duration the way Go prints it (`1m30s`, `300ms`, `0s`), for messages.
pub fn format(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < 1_000_000_000 {
        return match ns {
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}us", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let total_secs = d.as_secs();
    let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
    let frac = d.subsec_nanos();
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let f = format!("{frac:09}");
        out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse("300ms"), ms(300));
        assert_eq!(parse("5s"), ms(5000));
        assert_eq!(parse("1m30s"), ms(90_000));
        assert_eq!(parse("1h"), ms(3_600_000));
        assert_eq!(parse("1.5s"), ms(1500));
        assert_eq!(parse(".5s"), ms(500));
        assert_eq!(parse("2h45m0.5s"), ms(9_900_500));
        assert_eq!(parse("10us"), Some(Duration::from_micros(10)));
        assert_eq!(parse("10µs"), Some(Duration::from_micros(10)));
        assert_eq!(parse("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(parse("0"), ms(0));
        assert_eq!(parse("+5s"), ms(5000));
    }

    #[test]
    fn not_durations() {
        for bad in ["", "5", "5 seconds", "5sec", "s", ".s", "-5s", "1m 30s", "5S", "1d", "10", "ms", "1.2.3s"] {
            assert_eq!(parse(bad), None, "{bad:?} parsed");
        }
        assert_eq!(parse("99999999999999999999h"), None);
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::from_millis(300)), "300ms");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
