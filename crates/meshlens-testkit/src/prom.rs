//! Prometheus text-format (0.0.4 / OpenMetrics) samples and label-subset lookups for asserting on `/metrics`.

use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Whether every `(key, value)` pair is among this sample's labels.
    pub fn matches(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// Parses the classic text format; panics with the offending line if it is malformed.
///
/// Comments (`# HELP`, `# TYPE`, `# EOF`) and blank lines are skipped; label values are unescaped
/// (`\\`, `\"`, `\n`); values may be `+Inf`, `-Inf` or `NaN`; timestamps and exemplars are ignored.
///
/// ```
/// let samples = meshlens_testkit::parse_prometheus(
///     "# TYPE request_total counter\nrequest_total{direction=\"outbound\",authority=\"a:80\"} 3\n",
/// );
/// assert_eq!(meshlens_testkit::find(&samples, "request_total", &[("direction", "outbound")]), Some(3.0));
/// ```
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    try_parse_prometheus(text).unwrap_or_else(|e| panic!("{e}"))
}

/// [`parse_prometheus`] returning an error (with the line number and line) instead of panicking. The
/// parsing is `meshlens_api::promtext`'s (the control plane's scraper reads `/metrics` with it too).
pub fn try_parse_prometheus(text: &str) -> Result<Vec<Sample>, String> {
    let samples = meshlens_api::promtext::try_parse(text)?;
    Ok(samples
        .into_iter()
        .map(|s| Sample { name: s.name, labels: s.labels.into_iter().collect(), value: s.value })
        .collect())
}

/// The value of the first sample named `name` whose labels include all of `labels`.
pub fn find(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples.iter().find(|s| s.name == name && s.matches(labels)).map(|s| s.value)
}

/// The sum over all samples named `name` whose labels include all of `labels` (`None` if none match).
pub fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples.iter().filter(|s| s.name == name && s.matches(labels)).map(|s| s.value).reduce(|a, b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escapes_comments_inf_and_subsets() {
        let text = r#"
# HELP response_latency_ms Elapsed times.
# TYPE response_latency_ms histogram
response_latency_ms_bucket{direction="inbound",le="+Inf"} 7
response_latency_ms_count{direction="inbound"} 7 1700000000000
weird{path="/a\"b\\c\nd",x="}{,"} -1.5e3
plain 42
trailing_comma{a="1",} 0
# EOF
"#;
        let samples = parse_prometheus(text);
        assert_eq!(samples.len(), 5);
        assert_eq!(find(&samples, "response_latency_ms_bucket", &[("le", "+Inf")]), Some(7.0));
        assert_eq!(find(&samples, "response_latency_ms_count", &[]), Some(7.0));
        assert_eq!(samples[2].label("path"), Some("/a\"b\\c\nd"));
        assert_eq!(samples[2].label("x"), Some("}{,"));
        assert_eq!(find(&samples, "weird", &[("x", "}{,")]), Some(-1500.0));
        assert_eq!(find(&samples, "plain", &[("x", "1")]), None);
        assert_eq!(find(&samples, "trailing_comma", &[("a", "1")]), Some(0.0));
        assert_eq!(sum(&samples, "response_latency_ms_count", &[]), Some(7.0));
        assert!(try_parse_prometheus("bad{a=1} 2").is_err());
        assert!(try_parse_prometheus("nolabel").is_err());
        let inf = parse_prometheus("x{le=\"+Inf\"} +Inf");
        assert!(inf[0].value.is_infinite());
    }
}
