//! `LabelSet`: a pre-rendered, escaped `k="v",k2="v2"` label list, built once and shared cheaply.

use std::fmt;
use std::sync::Arc;

use super::encode::{escape_label_value_into, is_valid_label_name};

/// Labels rendered once into their text-format form (`k="v",k2="v2"`, values escaped).
///
/// Building a `LabelSet` allocates; do it when a target appears, never per request. Clones share the
/// rendered text. Equality and hashing compare the rendered text, so label order matters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSet(Option<Arc<str>>);

impl LabelSet {
    /// The empty label set.
    pub const fn new() -> LabelSet {
        LabelSet(None)
    }

    /// Appends `key="value"`, escaping backslash, double quote and newline in `value`.
    ///
    /// # Panics
    /// In debug builds, when `key` is not a valid Prometheus label name.
    pub fn with(self, key: &str, value: &str) -> LabelSet {
        debug_assert!(is_valid_label_name(key), "invalid label name {key:?}");
        let prev = self.as_str();
        let mut s = String::with_capacity(prev.len() + key.len() + value.len() + 4);
        s.push_str(prev);
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(key);
        s.push_str("=\"");
        escape_label_value_into(&mut s, value);
        s.push('"');
        LabelSet(Some(s.into()))
    }

    /// Appends all labels of `other` after the labels of `self`.
    pub fn extend(self, other: &LabelSet) -> LabelSet {
        match (self.is_empty(), other.is_empty()) {
            (_, true) => self,
            (true, false) => other.clone(),
            (false, false) => LabelSet(Some(format!("{},{}", self.as_str(), other.as_str()).into())),
        }
    }

    /// The rendered labels, without braces: `k="v",k2="v2"` (empty for no labels).
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl Default for LabelSet {
    fn default() -> Self {
        LabelSet::new()
    }
}

impl fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.as_str())
    }
}

impl fmt::Display for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
