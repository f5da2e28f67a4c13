//! Kubernetes label selectors (`-l/--selector`): `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`,
//! `!k`, requirements joined by commas (all must hold). Parsed once; matched against a label map.
//!
//! As in Kubernetes, `k!=v` and `k notin (…)` also match objects without the label `k`; an empty selector
//! matches everything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A parsed selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

/// Why a selector did not parse; the message names the offending part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError(pub String);

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SelectorError {}

impl Selector {
    /// Parses `text`; the error quotes the selector and says what is wrong where.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let fail = |msg: String| SelectorError(format!("invalid selector '{text}': {msg}"));
        let mut requirements = Vec::new();
        for part in split_top_level(text).map_err(fail)? {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(fail("empty requirement (two commas in a row, or a trailing comma)".into()));
            }
            requirements.push(requirement(part).map_err(fail)?);
        }
        Ok(Selector { requirements })
    }

    /// True when every requirement holds for `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0u32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' if depth > 0 => return Err(format!("nested '(' at position {}", i + 1)),
            '(' => depth += 1,
            ')' if depth == 0 => return Err(format!("')' without '(' at position {}", i + 1)),
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err("missing ')'".into());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Requirement::DoesNotExist(key.to_string()));
    }
    for (op, negate) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = part.split_once(op) {
            let (key, value) = (key.trim(), value.trim());
            check_key(key)?;
            check_value(value)?;
            let set = BTreeSet::from([value.to_string()]);
            let key = key.to_string();
            return Ok(if negate { Requirement::NotIn(key, set) } else { Requirement::In(key, set) });
        }
    }
    if let Some(open) = part.find('(') {
        let head = part[..open].trim_end();
        let (key, negate) = if let Some(k) = head.strip_suffix(" notin") {
            (k.trim(), true)
        } else if let Some(k) = head.strip_suffix(" in") {
            (k.trim(), false)
        } else {
            return Err(format!("'{part}': expected 'KEY in (…)' or 'KEY notin (…)'"));
        };
        check_key(key)?;
        let inner = part[open + 1..].strip_suffix(')').ok_or_else(|| format!("'{part}': text after ')'"))?;
        let mut values = BTreeSet::new();
        for v in inner.split(',') {
            let v = v.trim();
            check_value(v)?;
            values.insert(v.to_string());
        }
        if inner.trim().is_empty() {
            return Err(format!("'{part}': the value list is empty"));
        }
        let key = key.to_string();
        return Ok(if negate { Requirement::NotIn(key, values) } else { Requirement::In(key, values) });
    }
    if part.contains(['<', '>']) {
        return Err(format!("'{part}': the operators < and > are not supported"));
    }
    if part.contains(char::is_whitespace) {
        return Err(format!("'{part}': expected KEY, !KEY, KEY=VALUE, KEY!=VALUE, KEY in (…) or KEY notin (…)"));
    }
    check_key(part)?;
    Ok(Requirement::Exists(part.to_string()))
}

/// A name part of a key, or a value: at most 63 of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
fn is_name(s: &str) -> bool {
    s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// A label key as Kubernetes allows it: `[prefix/]name`, the prefix a DNS subdomain.
pub fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    prefix_ok && is_name(name)
}

/// A label value as Kubernetes allows it: empty, or a name (at most 63 characters).
pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_name(value)
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a requirement has no key".into());
    }
    if !is_label_key(key) {
        return Err(format!(
            "'{key}' is not a valid label key ([prefix/]name: at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), String> {
    if !is_label_value(value) {
        return Err(format!(
            "'{value}' is not a valid label value (at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn operators_match_as_kubernetes_does() {
        let web = labels(&[("app", "web"), ("tier", "front"), ("app.kubernetes.io/part-of", "shop")]);
        let db = labels(&[("app", "db")]);
        let m = |s: &str, l: &BTreeMap<String, String>| Selector::parse(s).unwrap().matches(l);
        assert!(m("app=web", &web) && !m("app=web", &db));
        assert!(m("app==web", &web));
        assert!(m("app!=web", &db) && !m("app!=web", &web));
        assert!(m("tier!=back", &db), "!= matches a missing label");
        assert!(m("app in (web, db)", &web) && m("app in (web,db)", &db) && !m("app in (api)", &web));
        assert!(m("app notin (db)", &web) && !m("app notin (db)", &db) && m("tier notin (x)", &db));
        assert!(m("tier", &web) && !m("tier", &db));
        assert!(m("!tier", &db) && !m("! tier", &web));
        assert!(m("app=web,tier=front", &web) && !m("app=web,tier=back", &web));
        assert!(m(" app = web , app.kubernetes.io/part-of in (shop) ", &web));
        assert!(m("app=", &labels(&[("app", "")])), "empty values are values");
        assert!(m("", &db) && Selector::parse("").unwrap().is_empty());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = |s: &str| Selector::parse(s).unwrap_err().to_string();
        assert!(e("app in (a,b").contains("missing ')'"), "{}", e("app in (a,b"));
        assert!(e("app=web,,tier=x").contains("empty requirement"));
        assert!(e("app=web,").contains("empty requirement"));
        assert!(e("app in ()").contains("value list is empty"));
        assert!(e("app within (a)").contains("expected 'KEY in (…)'"));
        assert!(e("a b").contains("expected KEY"));
        assert!(e("-app=x").contains("'-app' is not a valid label key"));
        assert!(e("app=we b").contains("'we b' is not a valid label value"));
        assert!(e("=x").contains("no key"));
        assert!(e("replicas>2").contains("not supported"));
        assert!(e("app in (a),x)").contains("')' without '('"));
        assert!(e("app in (a,b").starts_with("invalid selector 'app in (a,b':"));
    }

    #[test]
    fn keys_and_values() {
        assert!(is_label_key("app") && is_label_key("app.kubernetes.io/name") && is_label_key("a_b.c-d"));
        assert!(!is_label_key("/app") && !is_label_key("Example.com/app") && !is_label_key(&"a".repeat(64)));
        assert!(is_label_value("") && is_label_value("v1.2") && !is_label_value("-v") && !is_label_value("a/b"));
    }
}
