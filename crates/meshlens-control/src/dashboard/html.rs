//! The page frame (head, navigation, the equivalent CLI command) and HTML escaping and number formats.

use std::fmt::Write;

/// `text` safe inside HTML text and quoted attributes.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A success rate as the CLI prints it (`99.50%`), `-` when there were no requests.
pub(crate) fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2}%", v * 100.0)).unwrap_or_else(|| "-".into())
}

/// A rate with one decimal (`12.3`), `-` when unknown.
pub(crate) fn rate(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())
}

/// Milliseconds (`12ms`), `-` when unknown.
pub(crate) fn millis(v: Option<u64>) -> String {
    v.map(|v| format!("{v}ms")).unwrap_or_else(|| "-".into())
}

/// The windows the selector offers.
pub(crate) const WINDOWS: [&str; 6] = ["1m", "5m", "10m", "15m", "30m", "1h"];

/// What every page shares: which page it is, its window, the CLI command that shows the same.
pub(crate) struct Frame<'a> {
    pub title: &'a str,
    /// `overview`, `topology`, `workload`: marks the navigation link.
    pub page: &'a str,
    pub window: &'a str,
    /// The comparison offset the overview shows, if any.
    pub offset: Option<&'a str>,
    pub command: String,
}

/// The offsets the overview compares with.
pub(crate) const OFFSETS: [&str; 4] = ["10m", "1h", "6h", "24h"];

/// The whole page: `body` inside the frame. The `<main>` is what the script swaps on a live update.
pub(crate) fn page(f: &Frame<'_>, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 2048);
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · meshlens</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/assets/dashboard.css\"><script defer src=\"/assets/dashboard.js\"></script>\
         </head><body data-page=\"{}\"><header><a class=\"brand\" href=\"/\">meshlens</a><nav>",
        esc(f.title),
        f.page
    );
    for (page, label) in [("overview", "Overview"), ("topology", "Topology"), ("config", "Configuration")] {
        let href = if page == "overview" { "/".to_string() } else { format!("/{page}") };
        let current = if page == f.page { " aria-current=\"page\"" } else { "" };
        let _ = write!(s, "<a href=\"{href}?window={}\"{current}>{label}</a>", esc(f.window));
    }
    s.push_str("</nav><form class=\"window\" method=\"get\"><label>window <select name=\"window\">");
    for w in WINDOWS {
        let sel = if w == f.window { " selected" } else { "" };
        let _ = write!(s, "<option{sel}>{w}</option>");
    }
    if f.page == "overview" {
        s.push_str("</select></label> <label>compare with <select name=\"offset\"><option value=\"\">none</option>");
        for o in OFFSETS {
            let sel = if Some(o) == f.offset { " selected" } else { "" };
            let _ = write!(s, "<option value=\"{o}\"{sel}>{o} ago</option>");
        }
    }
    let _ = write!(
        s,
        "</select></label><noscript><button>show</button></noscript></form><span id=\"live\" class=\"live\">live</span></header>\
         <main><h1>{}</h1><p class=\"cli\">CLI: <code>{}</code></p>{body}</main></body></html>",
        esc(f.title),
        esc(&f.command)
    );
    s
}

/// A small page for errors and "log in first", with a status code.
pub(crate) fn message(title: &str, text: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0} · meshlens</title>\
         <link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/assets/dashboard.css\"></head>\
         <body><main><h1>{0}</h1><p>{1}</p></main></body></html>",
        esc(title),
        esc(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(percent(Some(0.995)), "99.50%");
        assert_eq!(percent(None), "-");
        assert_eq!(rate(Some(12.345)), "12.3");
        assert_eq!(millis(Some(7)), "7ms");
    }
}
