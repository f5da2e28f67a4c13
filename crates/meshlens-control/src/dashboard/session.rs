//! Dashboard logins: one-time login codes (minted for the API token's holder) traded for session cookies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, header};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "meshlens_session";
/// How long a login code may wait to be used.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a browser session lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// At most this many unused codes and live sessions; the oldest goes first.
const MAX_LIVE: usize = 64;

/// Unused login codes and live sessions, each with when it lapses.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    inner: Mutex<Live>,
}

#[derive(Debug, Default)]
struct Live {
    codes: HashMap<String, Instant>,
    sessions: HashMap<String, Instant>,
}

fn insert(map: &mut HashMap<String, Instant>, key: String, ttl: Duration) {
    let now = Instant::now();
    map.retain(|_, until| *until > now);
    if map.len() >= MAX_LIVE
        && let Some(oldest) = map.iter().min_by_key(|(_, until)| **until).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    map.insert(key, now + ttl);
}

impl Sessions {
    /// A new one-time code, valid for [`CODE_TTL`].
    pub fn new_code(&self) -> String {
        let code = crate::auth::new_token();
        insert(&mut self.inner.lock().expect("sessions lock").codes, code.clone(), CODE_TTL);
        code
    }

    /// Trades a code (once, before it lapses) for a new session id.
    pub fn redeem(&self, code: &str) -> Option<String> {
        let mut live = self.inner.lock().expect("sessions lock");
        let until = live.codes.remove(code)?;
        if until <= Instant::now() {
            return None;
        }
        let session = crate::auth::new_token();
        insert(&mut live.sessions, session.clone(), SESSION_TTL);
        Some(session)
    }

    /// Whether the request carries a live session cookie.
    pub fn valid(&self, headers: &HeaderMap) -> bool {
        let Some(id) = cookie(headers) else { return false };
        let live = self.inner.lock().expect("sessions lock");
        live.sessions.get(id).is_some_and(|until| *until > Instant::now())
    }

    /// A session may read: a GET (or HEAD) with a live cookie that the browser says comes from the
    /// dashboard itself (`Sec-Fetch-Site: same-origin|none`, or no such header from older browsers, and no
    /// foreign `Origin`).
    pub fn may_read(&self, method: &Method, headers: &HeaderMap) -> bool {
        let read = *method == Method::GET || *method == Method::HEAD;
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let same_site = site.is_none_or(|s| s == "same-origin" || s == "none");
        let origin_ok = match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
            (None, _) => true,
            (Some(origin), Some(host)) => {
                origin.to_str().ok().and_then(|o| o.strip_prefix("http://")) == host.to_str().ok()
            }
            (Some(_), None) => false,
        };
        read && same_site && origin_ok && self.valid(headers)
    }
}

/// The session id in the `Cookie` header.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value of a new session: HttpOnly, SameSite=Strict, for the whole dashboard.
pub(crate) fn set_cookie(session: &str) -> String {
    format!("{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", SESSION_TTL.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("a=b; {COOKIE}={value}").parse().unwrap());
        h.insert(header::HOST, "127.0.0.1:8086".parse().unwrap());
        h
    }

    #[test]
    fn a_code_works_once_and_its_session_reads_only_same_origin() {
        let s = Sessions::default();
        let code = s.new_code();
        assert_eq!(s.redeem("nope"), None);
        let session = s.redeem(&code).expect("a fresh code is redeemed");
        assert_eq!(s.redeem(&code), None, "a code works once");
        let mut h = with_cookie(&session);
        assert!(s.may_read(&Method::GET, &h));
        assert!(!s.may_read(&Method::POST, &h), "a session only reads");
        assert!(!s.may_read(&Method::GET, &with_cookie("forged")));
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!s.may_read(&Method::GET, &h));
        let mut h = with_cookie(&session);
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!s.may_read(&Method::GET, &h));
        h.insert(header::ORIGIN, "http://127.0.0.1:8086".parse().unwrap());
        assert!(s.may_read(&Method::GET, &h));
        assert!(set_cookie(&session).contains("HttpOnly; SameSite=Strict"));
    }
}
