//! Tap fan-out (`GET /api/v1/tap`): the resource's registered proxies are tapped with the control plane's
//! token, and their events merged into one NDJSON stream with ids made unique per proxy.
//!
//! | module | what |
//! |---|---|
//! | `query` | the query: which proxies (resource), the filter each gets (`to` → destination keys), the rate |
//! | `fanout` | one stream per proxy, merged; reopened while the proxy stays registered; ids and labels |
//! | `upstream` | one proxy's `GET /tap` over HTTP/1, read line by line |

mod fanout;
mod query;
mod upstream;

use std::io::Read;

pub(crate) use fanout::start;
pub(crate) use query::{TapError, parse};

/// A fresh random token: 16 bytes of `/dev/urandom` in hex. Should the device be unreadable, the
/// process-random keys of std's hasher stand in (still unguessable from outside the process).
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if let Err(e) = read {
        tracing::warn!(error = %e, "cannot read /dev/urandom: the tap token comes from the hasher's random keys");
        use std::hash::{BuildHasher, RandomState};
        let a = RandomState::new().hash_one(std::process::id()).to_le_bytes();
        let b = RandomState::new().hash_one(std::time::SystemTime::now()).to_le_bytes();
        bytes[..8].copy_from_slice(&a);
        bytes[8..].copy_from_slice(&b);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_32_hex_digits_and_differ() {
        let (a, b) = (super::new_token(), super::new_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }
}
