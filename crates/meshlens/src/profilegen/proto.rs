//! Routes from a protobuf file's gRPC services, as Linkerd's `profile --proto` writes them: one route per
//! rpc, named after the method, matching `POST /pkg.Service/Method`, retryable when the method's
//! `idempotency_level` is `IDEMPOTENT` or `NO_SIDE_EFFECTS`.

use meshlens_api::profile::{RequestMatch, RouteSpec};

use super::quote_meta;

/// The routes of every `service` in the protobuf text `text` (comments and strings understood).
pub fn routes(text: &str) -> Result<Vec<RouteSpec>, String> {
    let tokens = tokenize(text)?;
    let mut package = String::new();
    let mut routes = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "package" => {
                package = tokens.get(i + 1).cloned().ok_or("'package' without a name")?;
                i += 2;
            }
            "service" => {
                let service = tokens.get(i + 1).ok_or("'service' without a name")?.clone();
                if tokens.get(i + 2).map(String::as_str) != Some("{") {
                    return Err(format!("service {service}: expected '{{'"));
                }
                i = service_body(&tokens, i + 3, &package, &service, &mut routes)?;
            }
            _ => i += 1,
        }
    }
    if routes.is_empty() {
        return Err("no rpc in any service".into());
    }
    routes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(routes)
}

/// Reads the rpcs of one service from `i` (after its `{`); returns the index after its `}`.
fn service_body(
    tokens: &[String],
    mut i: usize,
    package: &str,
    service: &str,
    routes: &mut Vec<RouteSpec>,
) -> Result<usize, String> {
    let full = if package.is_empty() { service.to_string() } else { format!("{package}.{service}") };
    while i < tokens.len() {
        match tokens[i].as_str() {
            "}" => return Ok(i + 1),
            "rpc" => {
                let method = tokens.get(i + 1).ok_or_else(|| format!("service {service}: 'rpc' without a name"))?;
                // Skip the signature up to `;` or the option block `{ … }`.
                let mut j = i + 2;
                while j < tokens.len() && tokens[j] != ";" && tokens[j] != "{" {
                    j += 1;
                }
                let mut retryable = false;
                if tokens.get(j).map(String::as_str) == Some("{") {
                    let mut depth = 0;
                    while j < tokens.len() {
                        match tokens[j].as_str() {
                            "{" => depth += 1,
                            "}" => depth -= 1,
                            "IDEMPOTENT" | "NO_SIDE_EFFECTS" => retryable = true,
                            _ => {}
                        }
                        j += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                } else {
                    j += 1;
                }
                routes.push(RouteSpec {
                    name: method.clone(),
                    condition: RequestMatch {
                        method: Some("POST".into()),
                        path_regex: Some(quote_meta(&format!("/{full}/{method}"))),
                        ..RequestMatch::default()
                    },
                    response_classes: Vec::new(),
                    is_retryable: retryable,
                    timeout: None,
                    retry: None,
                    rule: None,
                });
                i = j;
            }
            _ => i += 1,
        }
    }
    Err(format!("service {service}: missing '}}'"))
}

/// Words, punctuation and string literals; comments dropped.
fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                loop {
                    match chars.next() {
                        Some('/') if prev == '*' => break,
                        Some(c) => prev = c,
                        None => return Err("unterminated comment".into()),
                    }
                }
            }
            '"' | '\'' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => s.extend(chars.next()),
                        Some(q) if q == c => break,
                        Some(ch) => s.push(ch),
                        None => return Err("unterminated string".into()),
                    }
                }
                tokens.push(format!("\"{s}\""));
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' || n == '.' {
                        s.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(s);
            }
            c if c.is_whitespace() => {}
            c => tokens.push(c.to_string()),
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTO: &str = r#"
syntax = "proto3";
// The emoji service.
package emojivoto.v1;
import "google/protobuf/empty.proto";
/* services */
service EmojiService {
    rpc ListAll (ListAllEmojiRequest) returns (ListAllEmojiResponse);
    rpc FindByShortcode (FindByShortcodeRequest) returns (FindByShortcodeResponse) {
        option idempotency_level = NO_SIDE_EFFECTS;
    }
}
service VotingService { rpc VotePoop (VoteRequest) returns (stream VoteResponse) { option (x) = "}"; } }
message ListAllEmojiRequest {}
"#;

    #[test]
    fn one_route_per_rpc_with_linkerds_names_and_retryability() {
        let routes = routes(PROTO).unwrap();
        let got: Vec<(&str, &str, bool)> = routes
            .iter()
            .map(|r| (r.name.as_str(), r.condition.path_regex.as_deref().unwrap(), r.is_retryable))
            .collect();
        assert_eq!(
            got,
            [
                ("FindByShortcode", r"/emojivoto\.v1\.EmojiService/FindByShortcode", true),
                ("ListAll", r"/emojivoto\.v1\.EmojiService/ListAll", false),
                ("VotePoop", r"/emojivoto\.v1\.VotingService/VotePoop", false),
            ]
        );
        assert!(routes.iter().all(|r| r.condition.method.as_deref() == Some("POST")));
        assert_eq!(super::routes("message A {}").unwrap_err(), "no rpc in any service");
        assert!(super::routes("service S { rpc M (A) returns (B);").unwrap_err().contains("missing '}'"));
    }
}
