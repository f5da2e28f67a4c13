//! Writers for the classic Prometheus text exposition format 0.0.4 (HELP/TYPE lines, samples, numbers).

use std::fmt::Write as _;

/// The `Content-Type` to serve [`Registry::encode`](super::Registry::encode) output with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes `# HELP <name> <help>` and `# TYPE <name> <kind>`.
pub(crate) fn write_header(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_help_into(out, help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// Writes `<name><suffix>{<parts joined by ','>} ` — everything of a sample line but its value.
/// Empty label parts are skipped; no braces are written when every part is empty.
pub(crate) fn write_sample_start(out: &mut String, name: &str, suffix: &str, labels: &[&str]) {
    out.push_str(name);
    out.push_str(suffix);
    let mut first = true;
    for part in labels.iter().filter(|p| !p.is_empty()) {
        out.push(if first { '{' } else { ',' });
        out.push_str(part);
        first = false;
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
}

/// Writes one full sample line with an integer value.
pub(crate) fn write_sample(out: &mut String, name: &str, suffix: &str, labels: &[&str], value: impl Into<i128>) {
    write_sample_start(out, name, suffix, labels);
    let _ = writeln!(out, "{}", value.into());
}

/// Writes a duration given in microseconds as milliseconds with up to three decimals and no
/// trailing zeros: 1000 → `1`, 500 → `0.5`, 7500 → `7.5`, 1234 → `1.234`.
pub(crate) fn write_micros_as_ms(out: &mut String, micros: u64) {
    let (ms, frac) = (micros / 1000, micros % 1000);
    let _ = write!(out, "{ms}");
    if frac != 0 {
        let (mut frac, mut width) = (frac, 3);
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        let _ = write!(out, ".{frac:0width$}");
    }
}

/// Appends `value` escaped as a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub(crate) fn escape_label_value_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `help` escaped as HELP text: `\` → `\\`, newline → `\n`.
fn escape_help_into(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Whether `name` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub(crate) fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
