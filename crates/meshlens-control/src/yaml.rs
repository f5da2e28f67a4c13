//! YAML documents that remember the line of every field, so config errors can say `file:line: field: message`.
//!
//! A file is parsed once into a tree of [`Spanned`] nodes (serde-saphyr), then each document becomes a
//! `serde_json::Value` plus a map from field path (`spec.routes[2].timeout`, the format of
//! `serde_path_to_error`) to the line where that field starts. Typed deserialization then runs on the
//! value, and any error — from serde or from semantic checks — is placed with [`Document::line_of`].

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// One YAML document of a file: its value, its first line and the line of each field path.
#[derive(Clone, Debug)]
pub(crate) struct Document {
    /// 1-based line where the document's content starts.
    pub line: u32,
    pub value: Value,
    lines: HashMap<String, u32>,
}

/// A problem at a line of a file (1-based), with a message that may start with a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LineError {
    pub line: u32,
    pub message: String,
}

impl Document {
    /// The line of `path`, or of its closest known ancestor, or of the document.
    pub fn line_of(&self, path: &str) -> u32 {
        let mut p = path;
        loop {
            if let Some(line) = self.lines.get(p) {
                return *line;
            }
            match parent(p) {
                Some(up) => p = up,
                None => return self.line,
            }
        }
    }

    /// A top-level string field (`kind`, `apiVersion`), if present and a string.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }

    /// Item `i` of the sequence at top-level field `field` (a `List`'s `items`) as a document of its own:
    /// its value, its line and the lines of its fields re-rooted at the item.
    pub fn item(&self, field: &str, i: usize) -> Option<Document> {
        let value = self.value.get(field)?.get(i)?.clone();
        let root = format!("{field}[{i}]");
        let prefix = format!("{root}.");
        let lines =
            self.lines.iter().filter_map(|(p, l)| p.strip_prefix(&prefix).map(|rest| (rest.to_string(), *l))).collect();
        Some(Document { line: self.line_of(&root), value, lines })
    }

    /// Sets `metadata.namespace` when the document has none (or a null one); its line stays the document's.
    pub fn default_namespace(&mut self, namespace: &str) {
        let Some(meta) = self.value.get_mut("metadata").and_then(Value::as_object_mut) else { return };
        if meta.get("namespace").is_none_or(Value::is_null) {
            meta.insert("namespace".to_string(), Value::String(namespace.to_string()));
        }
    }

    /// Deserializes the document into `T`; an error names the field path and its line.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, LineError> {
        serde_path_to_error::deserialize(&self.value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if path == "." {
                LineError { line: self.line, message: inner }
            } else {
                LineError { line: self.line_of(&path), message: format!("{path}: {inner}") }
            }
        })
    }
}

/// The parent of a field path: `a.b[2].c` → `a.b[2]` → `a.b` → `a` → none.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Parses every document of a YAML text. Null (empty, comment-only) documents are skipped.
pub(crate) fn parse_documents(text: &str) -> Result<Vec<Document>, LineError> {
    let options = serde_saphyr::options! { with_snippet: false, strict_booleans: true };
    let nodes: Vec<Spanned<Node>> =
        serde_saphyr::from_str_multiple_with_options::<Spanned<Node>, Vec<_>>(text, options).map_err(|e| {
            let line = e.location().map(|l| l.line() as u32).filter(|l| *l > 0).unwrap_or(1);
            LineError { line, message: format!("invalid YAML: {}", tidy(&e.to_string())) }
        })?;
    let mut docs = Vec::with_capacity(nodes.len());
    for node in nodes {
        if matches!(node.value, Node::Null) {
            continue;
        }
        let line = line_of(&node);
        let mut lines = HashMap::new();
        let value = to_json(node.value, String::new(), &mut lines)?;
        docs.push(Document { line, value, lines });
    }
    Ok(docs)
}

/// Makes a serde-saphyr message fit `file:LINE: invalid YAML: …`: one line, the line number not repeated.
fn tidy(message: &str) -> String {
    let text: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut text = text.join(" ");
    if let Some(rest) = text.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set DuplicateKeyPolicy").next().unwrap_or(rest);
        let key = key.split(" at line ").next().unwrap_or(key);
        return format!("duplicate key '{key}'");
    }
    // "… at line 3, column 2" → "… (column 2)"
    if let Some(at) = text.rfind(" at line ") {
        let tail = &text[at + " at line ".len()..];
        if let Some((line, column)) = tail.split_once(", column ")
            && line.bytes().all(|b| b.is_ascii_digit())
            && column.bytes().all(|b| b.is_ascii_digit())
        {
            text = format!("{} (column {column})", &text[..at]);
        }
    }
    text
}

fn line_of<T>(s: &Spanned<T>) -> u32 {
    (s.referenced.line() as u32).max(1)
}

fn to_json(node: Node, path: String, lines: &mut HashMap<String, u32>) -> Result<Value, LineError> {
    Ok(match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::I64(i) => Value::from(i),
        Node::U64(u) => Value::from(u),
        Node::F64(f) => match serde_json::Number::from_f64(f) {
            Some(n) => Value::Number(n),
            None => Value::String(f.to_string()),
        },
        Node::Str(s) => Value::String(s),
        Node::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let p = format!("{path}[{i}]");
                lines.insert(p.clone(), line_of(&item));
                out.push(to_json(item.value, p, lines)?);
            }
            Value::Array(out)
        }
        Node::Map(entries) => {
            let mut out = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let line = line_of(&key);
                let p = if path.is_empty() { key.value.0.clone() } else { format!("{path}.{}", key.value.0) };
                if out.contains_key(&key.value.0) {
                    return Err(LineError { line, message: format!("{p}: duplicate key '{}'", key.value.0) });
                }
                lines.insert(p.clone(), line);
                let v = to_json(value.value, p, lines)?;
                out.insert(key.value.0, v);
            }
            Value::Object(out)
        }
    })
}

/// A YAML node whose children carry their source location.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::F64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// A mapping key: any scalar, as text.
#[derive(Debug)]
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key("null".to_string()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_fields_and_items() {
        let text = "# comment\napiVersion: v1\nkind: X\nspec:\n  routes:\n  - name: a\n    timeout: 5s\n  - name: b\n    condition:\n      method: GET\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(d.line, 2);
        assert_eq!(d.line_of("kind"), 3);
        assert_eq!(d.line_of("spec.routes[0].timeout"), 7);
        assert_eq!(d.line_of("spec.routes[1]"), 8);
        assert_eq!(d.line_of("spec.routes[1].condition"), 9);
        assert_eq!(d.line_of("spec.routes[1].condition.method"), 10);
        // Unknown paths fall back to the closest ancestor.
        assert_eq!(d.line_of("spec.routes[1].condition.pathRegex"), 9);
        assert_eq!(d.line_of("nothing.here"), 2);
        assert_eq!(d.str_field("kind"), Some("X"));
    }

    #[test]
    fn several_documents_with_their_lines() {
        let text = "a: 1\n---\n# only a comment\n---\n\nb: [1, 2.5, true, null, \"500m\", 500m]\n---\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 1);
        assert_eq!(docs[1].line, 6);
        assert_eq!(docs[1].value, serde_json::json!({"b": [1, 2.5, true, null, "500m", "500m"]}));
    }

    #[test]
    fn list_items_are_documents_with_their_lines() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- kind: A\n  metadata:\n    name: a\n- kind: B\n  metadata: {name: b}\n";
        let docs = parse_documents(text).unwrap();
        let a = docs[0].item("items", 0).unwrap();
        assert_eq!((a.line, a.line_of("metadata.name"), a.str_field("kind")), (4, 6, Some("A")));
        let mut b = docs[0].item("items", 1).unwrap();
        assert_eq!(b.line, 7);
        assert!(docs[0].item("items", 2).is_none());
        b.default_namespace("prod");
        assert_eq!(b.value["metadata"]["namespace"], "prod");
    }

    #[test]
    fn empty_text_has_no_documents() {
        assert!(parse_documents("").unwrap().is_empty());
        assert!(parse_documents("# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = parse_documents("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
        assert!(err.message.starts_with("invalid YAML: "), "{err:?}");
        assert!(!err.message.contains('\n'), "{err:?}");
        let err = parse_documents("a: 1\n  b: 2\n").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
        assert_eq!(err.message, "invalid YAML: mapping values are not allowed in this context (column 4)");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse_documents("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
        assert_eq!(err, LineError { line: 4, message: "invalid YAML: duplicate key 'c'".into() });
    }

    #[test]
    fn typed_errors_name_the_field_and_line() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            items: Vec<Item>,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Item {
            n: u16,
        }
        let docs = parse_documents("items:\n- n: 1\n- n: big\n").unwrap();
        let err = docs[0].parse::<T>().unwrap_err();
        assert!(err.message.starts_with("items[1].n: invalid type: string \"big\""), "{err:?}");
        assert_eq!(err.line, 3, "{err:?}");
        let docs = parse_documents("items:\n- n: 1\n- m: 1\n").unwrap();
        let err = docs[0].parse::<T>().unwrap_err();
        assert!(err.message.contains("unknown field `m`"), "{err:?}");
        assert_eq!(err.line, 3, "{err:?}");
    }
}
