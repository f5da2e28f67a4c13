//! Table rendering and number formats as Linkerd prints them (reference/linkerd.md §1.1): columns
//! separated by three spaces, the first column(s) left-aligned, the others right-aligned; `-` for no data.

/// Renders a table. `left` is how many leading columns are left-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i > 0 {
                line.push_str("   ");
            }
            let pad = widths[i].saturating_sub(c.chars().count());
            if i < left {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `100.00%`, or `-`.
pub fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.2}%", v * 100.0))
}

/// `2.0rps`, or `-`.
pub fn rps(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}rps"))
}

/// `123ms`, or `-`.
pub fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v}ms"))
}

/// `12`, or `-`.
pub fn count(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// `12.5B/s`, or `-`.
pub fn bytes_rate(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}B/s"))
}

/// `(data for 41s of 1m)` when the rows cover less than the window (`window` as the user typed it): the
/// control plane is younger than the window, and rates are over the covered seconds.
pub fn coverage_note<'a>(
    mut coverages: impl Iterator<Item = &'a meshlens_api::stats::Coverage>,
    window: &str,
) -> Option<String> {
    let c = coverages.next()?;
    c.partial().then(|| format!("(data for {:.0}s of {window})\n", c.covered_s))
}

/// A weight as a Kubernetes quantity (`0.9` → `900m`, `100` → `100`), or `-`.
pub fn weight(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(w) if w.fract() == 0.0 => format!("{w:.0}"),
        Some(w) => format!("{:.0}m", w * 1000.0),
    }
}

/// Pretty JSON with a trailing newline (Linkerd prints indented JSON).
pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    Ok(s)
}

/// `table`, `wide` or `json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Wide,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkerd_layout() {
        let rows = vec![vec!["emoji".to_string(), "1/2".into(), percent(Some(1.0)), rps(Some(2.0)), ms(Some(123))]];
        let t = table(&["NAME", "MESHED", "SUCCESS", "RPS", "LATENCY_P50"], &rows, 1);
        assert_eq!(
            t,
            "NAME    MESHED   SUCCESS      RPS   LATENCY_P50\nemoji      1/2   100.00%   2.0rps         123ms\n"
        );
        assert_eq!(percent(None), "-");
        assert_eq!(bytes_rate(Some(12.25)), "12.2B/s");
        assert_eq!((weight(Some(0.9)), weight(Some(100.0)), weight(None)), ("900m".into(), "100".into(), "-".into()));
        let young = meshlens_api::stats::Coverage { window_s: 60.0, covered_s: 41.2 };
        assert_eq!(coverage_note([young].iter(), "1m").as_deref(), Some("(data for 41s of 1m)\n"));
        let full = meshlens_api::stats::Coverage { window_s: 60.0, covered_s: 60.0 };
        assert_eq!(coverage_note([full].iter(), "1m"), None);
    }
}
