//! Go-style duration strings (`300ms`, `5s`, `1m30s`, `1.5h`) as ServiceProfiles write them, parsed like Go's
//! `time.ParseDuration` (Linkerd's controller uses it), except that negative durations are refused.

use std::time::Duration;

/// Nanoseconds per unit, longest suffixes first where one is a prefix of another (`ms` before `m`).
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // µ MICRO SIGN
    ("\u{3bc}s", 1_000), // μ GREEK SMALL LETTER MU
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go caps durations at `i64::MAX` nanoseconds (about 292 years).
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a Go duration: a sequence of decimal numbers, each with an optional fraction and a unit (`ns`,
/// `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`), such as `300ms`, `1.5s`, `1h2m3.5s`, `.5s`; a leading `+` is allowed,
/// and the bare `0` means zero. Fractions finer than a nanosecond are truncated.
///
/// Refused, with the message `'<input>' is not a duration (e.g. 5s, 300ms)`: the empty string, a number
/// without a unit (other than `0`), unknown units, spaces, negative durations (`-5s`; `-0` is zero, as in Go)
/// and anything above Go's limit of `i64::MAX` nanoseconds.
pub fn parse(s: &str) -> Result<Duration, String> {
    parse_nanos(s)
        .map(|n| Duration::new((n / 1_000_000_000) as u64, (n % 1_000_000_000) as u32))
        .ok_or_else(|| format!("'{s}' is not a duration (e.g. 5s, 300ms)"))
}

fn parse_nanos(orig: &str) -> Option<u128> {
    let (negative, mut s) = match orig.as_bytes().first() {
        Some(b'-') => (true, &orig[1..]),
        Some(b'+') => (false, &orig[1..]),
        _ => (false, orig),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        // The integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        s = rest;
        let mut int: u128 = 0;
        for d in int_digits.bytes() {
            int = int.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
            if int > MAX_NANOS {
                return None;
            }
        }
        // The fraction: digits past what a u128 holds exactly cannot change a nanosecond count.
        let (mut frac, mut scale) = (0u128, 1u128);
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            for d in rest[..frac_len].bytes().take(30) {
                frac = frac * 10 + u128::from(d - b'0');
                scale *= 10;
            }
            s = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return None; // no digits at all: ".s", "s", "."
        }
        // The unit: everything up to the next digit or '.'.
        let unit_len = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let &(_, per_unit) = UNITS.iter().find(|(name, _)| *name == unit)?;
        let nanos = int.checked_mul(per_unit)?.checked_add(frac * per_unit / scale)?;
        total = total.checked_add(nanos)?;
        if total > MAX_NANOS {
            return None;
        }
    }
    if negative && total != 0 {
        return None;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn single_units() {
        assert_eq!(ok("300ms"), Duration::from_millis(300));
        assert_eq!(ok("5s"), Duration::from_secs(5));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("100us"), Duration::from_micros(100));
        assert_eq!(ok("100µs"), Duration::from_micros(100)); // U+00B5
        assert_eq!(ok("100μs"), Duration::from_micros(100)); // U+03BC
        assert_eq!(ok("10ns"), Duration::from_nanos(10));
    }

    #[test]
    fn compound_and_fractions() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h2m3s4ms5us6ns"), Duration::new(3723, 4_005_006));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("0.1ms"), Duration::from_micros(100));
        assert_eq!(ok("1.0000000001s"), Duration::from_secs(1)); // below a nanosecond: truncated
        assert_eq!(ok("0.333333333333333333333333333333333333s"), Duration::from_nanos(333_333_333));
        assert_eq!(ok("5s5s"), Duration::from_secs(10)); // Go allows repeated units
        assert_eq!(ok("005s"), Duration::from_secs(5));
    }

    #[test]
    fn zero_and_signs() {
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("+0"), Duration::ZERO);
        assert_eq!(ok("-0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("-0s"), Duration::ZERO);
        assert_eq!(ok("+5s"), Duration::from_secs(5));
        assert!(parse("-5s").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(ok("2562047h"), Duration::from_secs(2_562_047 * 3600));
        assert_eq!(ok("9223372036854775807ns"), Duration::from_nanos(i64::MAX as u64));
        assert!(parse("9223372036854775808ns").is_err());
        assert!(parse("2562048h").is_err());
        assert!(parse("99999999999999999999999999999999999999999s").is_err());
    }

    #[test]
    fn refused() {
        for bad in
            ["", "5", "s", ".", ".s", "5 s", " 5s", "5s ", "5sec", "5S", "1d", "-", "+", "5.5.5s", "1e3s", "5 seconds"]
        {
            assert_eq!(parse(bad), Err(format!("'{bad}' is not a duration (e.g. 5s, 300ms)")), "{bad:?}");
        }
        assert_eq!(parse("5 seconds").unwrap_err(), "'5 seconds' is not a duration (e.g. 5s, 300ms)");
    }
}
