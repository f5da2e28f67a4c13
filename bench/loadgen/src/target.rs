//! The load target: a plain-HTTP URL whose host is a literal 127.0.0.0/8 address, nothing else.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use http::Uri;

/// Where requests go, and what they say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The TCP address connected to (always in 127.0.0.0/8).
    pub addr: SocketAddr,
    /// The authority sent as `Host` (HTTP/1.1) or `:authority` (HTTP/2).
    pub authority: String,
    /// Path and query, origin form.
    pub path: String,
}

impl Target {
    /// Parses `url` (`http://127.x.y.z[:port]/path`), refusing anything that is not loopback IPv4.
    /// `host` overrides the authority sent in requests (the connection still goes to the URL's address).
    pub fn parse(url: &str, host: Option<&str>) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("invalid URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported, got {url:?}");
        }
        let auth = uri.authority().context("URL has no host")?;
        let ip: IpAddr = auth.host().parse().map_err(|_| {
            anyhow::anyhow!(
                "refusing target {:?}: the host must be a literal 127.0.0.0/8 address (no DNS)",
                auth.host()
            )
        })?;
        let loopback_v4 = matches!(ip, IpAddr::V4(v4) if v4.is_loopback());
        if !loopback_v4 {
            bail!("refusing target {ip}: only 127.0.0.0/8 may be loaded");
        }
        let port = auth.port_u16().unwrap_or(80);
        let authority = match host {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => auth.as_str().to_owned(),
        };
        let path = uri.path_and_query().map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Self { addr: SocketAddr::new(ip, port), authority, path })
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn accepts_loopback_and_keeps_path() {
        let t = Target::parse("http://127.0.0.1:8080/a?b=1", None).unwrap();
        assert_eq!(t.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/a?b=1");
        let t = Target::parse("http://127.9.9.9", Some("backend.default.svc.cluster.local")).unwrap();
        assert_eq!(t.addr.to_string(), "127.9.9.9:80");
        assert_eq!(t.authority, "backend.default.svc.cluster.local");
        assert_eq!(t.path, "/");
    }

    #[test]
    fn refuses_anything_else() {
        for url in [
            "http://10.0.0.1:80/",
            "http://192.168.1.1/",
            "http://8.8.8.8/",
            "http://0.0.0.0:80/",
            "http://localhost:80/",
            "http://example.com/",
            "http://[::1]:80/",
            "https://127.0.0.1/",
        ] {
            assert!(Target::parse(url, None).is_err(), "{url} must be refused");
        }
    }
}
