//! The one parser of the Prometheus text format (0.0.4) as our proxies emit it, for the control plane's
//! scraper and the tests' assertions: `# HELP`/`# TYPE` lines and comments are skipped, every sample line
//! is `name{label="value",…} value [timestamp]`, label values escape `\\`, `\"` and `\n`.

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or "" when absent (Prometheus semantics).
    pub fn label(&self, name: &str) -> &str {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

/// Parses a whole exposition; lines that do not parse are skipped and counted.
pub fn parse(text: &str) -> (Vec<Sample>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(s) => out.push(s),
            None => bad += 1,
        }
    }
    (out, bad)
}

/// Parses a whole exposition; the first line that does not parse is an error naming it (line number, text).
pub fn try_parse(text: &str) -> Result<Vec<Sample>, String> {
    let lines = text.lines().enumerate().map(|(i, l)| (i, l.trim()));
    lines
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| parse_line(line).ok_or_else(|| format!("metrics line {}: malformed: {line:?}", i + 1)))
        .collect()
}

/// Parses one sample line.
pub fn parse_line(line: &str) -> Option<Sample> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':') {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let name = line[..i].to_string();
    let mut labels = Vec::new();
    if bytes.get(i) == Some(&b'{') {
        i += 1;
        loop {
            while bytes.get(i) == Some(&b' ') {
                i += 1;
            }
            if bytes.get(i) == Some(&b'}') {
                i += 1;
                break;
            }
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let key = line.get(start..i)?.to_string();
            if key.is_empty() || bytes.get(i) != Some(&b'=') || bytes.get(i + 1) != Some(&b'"') {
                return None;
            }
            i += 2;
            let mut value = String::new();
            let mut chars = line.get(i..)?.char_indices();
            let mut end = None;
            while let Some((off, c)) = chars.next() {
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        other => {
                            value.push('\\');
                            value.push(other);
                        }
                    },
                    '"' => {
                        end = Some(i + off + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            i = end?;
            labels.push((key, value));
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return None,
            }
        }
    }
    let mut rest = line.get(i..)?.split_whitespace();
    let value = parse_value(rest.next()?)?;
    Some(Sample { name, labels, value })
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        s => s.parse().ok(),
    }
}

/// Encodes a sample the way the proxy does (for tests and round trips).
#[cfg(test)]
pub fn encode(s: &Sample) -> String {
    let mut out = s.name.clone();
    if !s.labels.is_empty() {
        out.push('{');
        for (n, (k, v)) in s.labels.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    if s.value == f64::INFINITY {
        out.push_str("+Inf");
    } else {
        out.push_str(&s.value.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proxy_lines() {
        let text = "# HELP request_total Total requests.\n# TYPE request_total counter\n\
            request_total{direction=\"outbound\",authority=\"a.prod.svc.cluster.local:80\",tls=\"disabled\"} 55\n\
            response_latency_ms_bucket{direction=\"inbound\",status_code=\"200\",le=\"+Inf\"} 3\n\
            process_start_time_seconds 1.7e9\n\
            garbage{\n";
        let (samples, bad) = parse(text);
        assert_eq!(bad, 1);
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].label("authority"), "a.prod.svc.cluster.local:80");
        assert_eq!(samples[0].value, 55.0);
        assert_eq!(samples[1].label("le"), "+Inf");
        assert_eq!(samples[2].value, 1.7e9);
        assert_eq!(samples[2].label("x"), "");
        assert_eq!(try_parse(text).unwrap_err(), "metrics line 6: malformed: \"garbage{\"");
        assert_eq!(try_parse("a{b=\"1\",} 2\n").unwrap()[0].label("b"), "1");
    }

    #[test]
    fn escaped_label_values() {
        let s = parse_line(r#"route_request_total{rt_route="GET /a\"b\\c\nd",dst="x"} 2"#).unwrap();
        assert_eq!(s.label("rt_route"), "GET /a\"b\\c\nd");
        assert_eq!(s.label("dst"), "x");
    }

    /// Property: random names, label sets (any characters, including escapes and multi-byte ones) and
    /// values survive encode → parse.
    #[test]
    fn round_trips_random_samples() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet: Vec<char> = "ab_Z09 /{}=,\"\\\n:é→#".chars().collect();
        for _ in 0..2000 {
            let nlabels = (next() % 5) as usize;
            let labels = (0..nlabels)
                .map(|i| {
                    let len = (next() % 12) as usize;
                    let v: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
                    (format!("l{i}_x"), v)
                })
                .collect();
            let value = match next() % 4 {
                0 => f64::INFINITY,
                1 => (next() % 1_000_000) as f64,
                _ => (next() % 1_000_000) as f64 / 1000.0,
            };
            let s = Sample { name: format!("m_{}", next() % 100), labels, value };
            let line = encode(&s);
            assert_eq!(parse_line(&line).as_ref(), Some(&s), "{line}");
        }
    }
}
