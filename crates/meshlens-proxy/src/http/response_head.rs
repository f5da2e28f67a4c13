//! Why an endpoint's HTTP/1 response was invalid, in words an operator can act on: the endpoint client's
//! connection keeps the raw head of the response being read ([`HeadBytes`], fed by `io::Counted`) and,
//! when hyper refuses it, [`diagnose`] names the offending header and why
//! (`header 'content-length': "12x" is not a number`).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

/// The most head bytes kept (hyper refuses larger heads anyway).
const CAP: usize = 64 * 1024;
/// hyper's default limit on response headers.
const MAX_HEADERS: usize = 100;

/// The raw head of the response being read on one connection.
#[derive(Default)]
pub struct HeadBytes {
    bytes: Mutex<Vec<u8>>,
    /// The blank line that ends the head was read: nothing more is kept until the next request. Read
    /// without the lock, so body bytes and request writes cost one atomic load.
    complete: AtomicBool,
    /// The connection switched protocols (101): what follows is not HTTP, nothing more is kept.
    upgraded: AtomicBool,
}

impl HeadBytes {
    /// Why the kept head is invalid, if [`diagnose`] can tell.
    pub fn diagnose(&self) -> Option<String> {
        diagnose(&self.bytes.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Bytes read from the endpoint: kept until the head is complete.
    #[inline]
    pub fn read(&self, new: &[u8]) {
        if new.is_empty() || self.complete.load(Relaxed) {
            return;
        }
        let mut bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        if bytes.len() < CAP {
            let start = bytes.len().saturating_sub(3);
            let take = new.len().min(CAP - bytes.len());
            bytes.extend_from_slice(&new[..take]);
            if bytes[start..].windows(4).any(|w| w == b"\r\n\r\n") {
                self.complete.store(true, Relaxed);
                if bytes.starts_with(b"HTTP/1.1 101") {
                    self.upgraded.store(true, Relaxed);
                    *bytes = Vec::new();
                }
            }
        }
    }

    /// A request is being written after a complete response head: the next head starts afresh.
    #[inline]
    pub fn write(&self) {
        if self.complete.load(Relaxed) && !self.upgraded.load(Relaxed) {
            self.bytes.lock().unwrap_or_else(PoisonError::into_inner).clear();
            self.complete.store(false, Relaxed);
        }
    }
}

/// What is wrong with a raw HTTP/1 response head, naming the header and why; `None` when nothing found.
pub fn diagnose(head: &[u8]) -> Option<String> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n");
    let text = &head[..end.unwrap_or(head.len())];
    let mut lines = text.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status = lines.next()?;
    let status_ok = status.len() >= 12
        && (status.starts_with(b"HTTP/1.1 ") || status.starts_with(b"HTTP/1.0 "))
        && status[9..12].iter().all(u8::is_ascii_digit)
        && status.get(12).is_none_or(|&b| b == b' ');
    if !status_ok {
        return Some(format!("status line {:?} is not 'HTTP/1.x <3-digit code> <reason>'", shown(status)));
    }
    let mut content_length: Option<&[u8]> = None;
    let mut count = 0;
    for line in lines {
        count += 1;
        if count > MAX_HEADERS {
            return Some(format!("more than {MAX_HEADERS} headers"));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Some(format!("header line {:?} has no ':'", shown(line)));
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        let shown_name = shown(name);
        if name.is_empty() {
            return Some(format!("header line {:?} has an empty name", shown(line)));
        }
        if let Some(&bad) = name.iter().find(|&&b| !is_token(b)) {
            return Some(format!("header name {shown_name:?} contains an invalid character {:?}", bad as char));
        }
        if let Some(&bad) = value.iter().find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Some(format!("header '{shown_name}': value contains control character 0x{bad:02x}"));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Some(format!("header 'content-length': {:?} is not a number", shown(value)));
            }
            if content_length.is_some_and(|v| v != value) {
                return Some("header 'content-length': appears twice with different values".into());
            }
            content_length = Some(value);
        }
    }
    if end.is_none() && head.len() >= CAP {
        return Some(format!("response head larger than {CAP} bytes"));
    }
    None
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
    let end = v.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |i| i + 1);
    &v[start..end]
}

/// RFC 9110 token characters (header names).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes as text for a log line, at most 80 characters.
fn shown(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_header_and_why() {
        let d = |head: &str| diagnose(head.as_bytes());
        assert_eq!(d("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), None);
        assert_eq!(
            d("HTTP/1.1 200 OK\r\ncontent-length: 12x\r\n\r\n").unwrap(),
            r#"header 'content-length': "12x" is not a number"#
        );
        assert_eq!(
            d("HTTP/1.1 200 OK\r\nx bad: 1\r\n\r\n").unwrap(),
            r#"header name "x bad" contains an invalid character ' '"#
        );
        assert_eq!(
            d("HTTP/1.1 200 OK\r\nx-ok: a\x01b\r\n\r\n").unwrap(),
            "header 'x-ok': value contains control character 0x01"
        );
        assert_eq!(d("HTTP/1.1 200 OK\r\nnocolon\r\n\r\n").unwrap(), r#"header line "nocolon" has no ':'"#);
        assert!(d("HTTP/1.1 2x0 OK\r\n\r\n").unwrap().starts_with("status line \"HTTP/1.1 2x0 OK\""));
        assert!(d("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n").unwrap().contains("twice"));
    }
}
