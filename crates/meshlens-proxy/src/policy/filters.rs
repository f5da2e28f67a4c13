//! An HTTPRoute rule's filters compiled once per configuration: header edits (`RequestHeaderModifier`,
//! `ResponseHeaderModifier`) and the redirect a rule may answer with (`RequestRedirect`), as the Gateway API
//! defines them and Linkerd's outbound proxy applies them.

use http::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use meshlens_api::httproute::{HeaderModifier, RequestRedirect};

/// Headers set (replacing every value), added (appended) and removed, names and values parsed once.
#[derive(Clone, Debug, Default)]
pub struct HeaderEdit {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl HeaderEdit {
    pub fn compile(m: &HeaderModifier) -> Result<HeaderEdit, String> {
        let pair = |name: &str, value: &str| -> Result<(HeaderName, HeaderValue), String> {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("'{name}' is not a header name"))?;
            let v = HeaderValue::from_str(value).map_err(|_| format!("the value of {name} is not a header value"))?;
            Ok((n, v))
        };
        Ok(HeaderEdit {
            set: m.set.iter().map(|h| pair(&h.name, &h.value)).collect::<Result<_, _>>()?,
            add: m.add.iter().map(|h| pair(&h.name, &h.value)).collect::<Result<_, _>>()?,
            remove: m
                .remove
                .iter()
                .map(|n| HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("'{n}' is not a header name")))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Applies the edit: set, then add, then remove (the Gateway API's order).
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (n, v) in &self.set {
            headers.insert(n.clone(), v.clone());
        }
        for (n, v) in &self.add {
            headers.append(n.clone(), v.clone());
        }
        for n in &self.remove {
            headers.remove(n);
        }
    }
}

/// A rule's redirect: the status, and the parts of the request's URL it replaces.
#[derive(Clone, Debug)]
pub struct Redirect {
    pub status: StatusCode,
    scheme: Option<String>,
    hostname: Option<String>,
    port: Option<u16>,
    path: Option<PathRewrite>,
}

#[derive(Clone, Debug)]
enum PathRewrite {
    Full(String),
    /// `(the match's prefix, its replacement)`.
    Prefix(String, String),
}

impl Redirect {
    /// `prefix` is the `PathPrefix` of the match the route came from (for `ReplacePrefixMatch`).
    pub fn compile(r: &RequestRedirect, prefix: Option<&str>) -> Result<Redirect, String> {
        let code = r.status_code.unwrap_or(302);
        if !matches!(code, 301 | 302 | 303 | 307 | 308) {
            return Err(format!("statusCode {code} is not a redirect"));
        }
        let path = match &r.path {
            None => None,
            Some(p) => match (p.kind.as_str(), &p.replace_full_path, &p.replace_prefix_match) {
                ("ReplaceFullPath", Some(v), _) => Some(PathRewrite::Full(v.clone())),
                ("ReplacePrefixMatch", _, Some(v)) => {
                    let prefix = prefix.ok_or("ReplacePrefixMatch needs a PathPrefix match")?;
                    Some(PathRewrite::Prefix(prefix.trim_end_matches('/').to_string(), v.clone()))
                }
                (kind, _, _) => return Err(format!("path: type '{kind}' without its value")),
            },
        };
        Ok(Redirect {
            status: StatusCode::from_u16(code).map_err(|e| e.to_string())?,
            scheme: r.scheme.clone(),
            hostname: r.hostname.clone(),
            port: r.port,
            path,
        })
    }

    /// The `Location` for a request: its scheme (`http` when it has none), host and port (from the URI or
    /// `Host`), path and query, with what the redirect sets replaced. A port is left out when it is the
    /// scheme's default; when the redirect sets a scheme and no port, the scheme's default port is used.
    pub fn location(&self, uri: &Uri, headers: &HeaderMap) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(uri.scheme_str().unwrap_or("http"));
        let authority = uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()))
            .unwrap_or("");
        // The last ':' outside brackets (`[::1]:80`) starts the port.
        let (host, request_port) = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => match authority[i + 1..].parse::<u16>() {
                Ok(port) => (&authority[..i], Some(port)),
                Err(_) => (authority, None),
            },
            _ => (authority, None),
        };
        let host = self.hostname.as_deref().unwrap_or(host);
        let port = match (self.port, &self.scheme) {
            (Some(p), _) => Some(p),
            (None, Some(_)) => None,
            (None, None) => request_port,
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        let path = uri.path();
        let path = match &self.path {
            None => path.to_string(),
            Some(PathRewrite::Full(p)) => p.clone(),
            Some(PathRewrite::Prefix(prefix, with)) => {
                let rest = path.strip_prefix(prefix.as_str()).unwrap_or(path);
                match (with.trim_end_matches('/'), rest) {
                    ("", "") => "/".to_string(),
                    (w, r) if r.is_empty() || r.starts_with('/') => format!("{w}{r}"),
                    (w, r) => format!("{w}/{r}"),
                }
            }
        };
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        match port.filter(|p| *p != default_port) {
            Some(p) => format!("{scheme}://{host}:{p}{path}{query}"),
            None => format!("{scheme}://{host}{path}{query}"),
        }
    }
}

#[cfg(test)]
#[path = "tests/filters.rs"]
mod tests;
