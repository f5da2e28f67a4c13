//! Authorities (`host[:port]`) and their canonical mesh form `name.namespace.svc.<domain>:port`.

use std::fmt;

/// A parsed request authority: a host (name or IP literal, lowercased) and a port (80 when absent).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Authority {
    pub host: String,
    pub port: u16,
}

/// Why an authority string could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidAuthority(pub String);

impl fmt::Display for InvalidAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid authority: {}", self.0)
    }
}

impl std::error::Error for InvalidAuthority {}

impl Authority {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`. A missing port means `default_port`.
    pub fn parse(s: &str, default_port: u16) -> Result<Self, InvalidAuthority> {
        let bad = || InvalidAuthority(s.chars().take(256).collect());
        if s.is_empty() || s.len() > 1024 || s.contains('@') {
            return Err(bad());
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let end = rest.find(']').ok_or_else(bad)?;
            let host = &rest[..end];
            let after = &rest[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| bad())?,
                None if after.is_empty() => default_port,
                None => return Err(bad()),
            };
            host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            (host.to_string(), port)
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse::<u16>().map_err(|_| bad())?),
                None => (s.to_string(), default_port),
            }
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty()
            || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' || b == b':')
        {
            return Err(bad());
        }
        Ok(Authority { host, port })
    }

    /// The candidate `(service, namespace)` this authority names, if it has a mesh service shape:
    /// `svc`, `svc.ns`, `svc.ns.svc` or `svc.ns.svc.<cluster_domain>`. A bare name resolves in `caller_ns`.
    pub fn service_name<'a>(&'a self, caller_ns: &'a str, cluster_domain: &str) -> Option<(&'a str, &'a str)> {
        if self.host.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        let parts: Vec<&str> = self.host.split('.').collect();
        match parts.as_slice() {
            [svc] => Some((svc, caller_ns)),
            [svc, ns] => Some((svc, ns)),
            [svc, ns, "svc"] => Some((svc, ns)),
            [svc, ns, "svc", rest @ ..] if rest.join(".") == cluster_domain => Some((svc, ns)),
            _ => None,
        }
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The canonical authority of a mesh service port: `name.namespace.svc.<domain>:port`.
pub fn canonical(name: &str, namespace: &str, cluster_domain: &str, port: u16) -> String {
    format!("{name}.{namespace}.svc.{cluster_domain}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(Authority::parse("Users", 80).unwrap(), Authority { host: "users".into(), port: 80 });
        assert_eq!(Authority::parse("users:8080", 80).unwrap().port, 8080);
        assert_eq!(Authority::parse("[::1]:9", 80).unwrap(), Authority { host: "::1".into(), port: 9 });
        assert_eq!(Authority::parse("[::1]", 80).unwrap().port, 80);
        assert!(Authority::parse("users:http", 80).is_err());
        assert!(Authority::parse("us ers", 80).is_err());
        assert!(Authority::parse("user@host", 80).is_err());
        assert!(Authority::parse("", 80).is_err());
    }

    #[test]
    fn service_shapes() {
        let a = |s| Authority::parse(s, 80).unwrap();
        assert_eq!(a("users").service_name("prod", "cluster.local"), Some(("users", "prod")));
        assert_eq!(a("users.dev").service_name("prod", "cluster.local"), Some(("users", "dev")));
        assert_eq!(a("users.dev.svc").service_name("prod", "cluster.local"), Some(("users", "dev")));
        assert_eq!(a("users.dev.svc.cluster.local").service_name("prod", "cluster.local"), Some(("users", "dev")));
        assert_eq!(a("example.com.au.x").service_name("prod", "cluster.local"), None);
        assert_eq!(a("127.0.0.1").service_name("prod", "cluster.local"), None);
        assert_eq!(canonical("users", "dev", "cluster.local", 80), "users.dev.svc.cluster.local:80");
    }
}
