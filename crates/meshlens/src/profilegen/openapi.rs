//! ServiceProfile routes from an OpenAPI 3 or Swagger 2 document (JSON or YAML), built as Linkerd's
//! `profile --open-api` builds them: one route per path and method, response classes from the declared
//! status codes, `x-linkerd-retryable` and `x-linkerd-timeout` from the operation.
//!
//! The path prefix is Swagger 2's `basePath`; for OpenAPI 3, the path part of the first `servers[].url`
//! (`https://api.example.com/v1` → `/v1`, server variables replaced by their defaults). Beyond Linkerd,
//! OpenAPI 3 status ranges (`5XX`) become one class covering the range (Linkerd ignores them).

use std::path::Path;

use meshlens_api::duration;
use meshlens_api::profile::{RequestMatch, ResponseClass, ResponseMatch, RouteSpec, StatusRange};
use serde_json::{Map, Value};

use super::quote_meta;

/// The operations that become routes, in Linkerd's order (alphabetical by method).
const METHODS: [(&str, &str); 7] = [
    ("delete", "DELETE"),
    ("get", "GET"),
    ("head", "HEAD"),
    ("options", "OPTIONS"),
    ("patch", "PATCH"),
    ("post", "POST"),
    ("put", "PUT"),
];

/// What a path parameter (`{id}`) matches, as in Linkerd: any run of non-`/` characters.
pub const PARAM_REGEX: &str = "[^/]*";

/// Reads `file` and returns its routes; every error names the file (and the line, when parsing failed).
pub fn routes_from_file(file: &Path) -> anyhow::Result<Vec<RouteSpec>> {
    let (shown, text) = super::read_input(file)?;
    let doc = parse(&text).map_err(|e| anyhow::anyhow!("{shown}:{e}"))?;
    routes(&doc).map_err(|e| anyhow::anyhow!("{shown}: {e}"))
}

/// Parses JSON (when the text starts with `{`) or YAML. The error reads `LINE:COLUMN: message` or
/// ` message` when there is no position (to follow `file:`).
pub fn parse(text: &str) -> Result<Value, String> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text)
            .map_err(|e| format!("{}:{}: invalid JSON: {}", e.line(), e.column(), strip_position(&e.to_string())));
    }
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        let message = e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        let message = message.strip_prefix("error: ").unwrap_or(&message).to_string();
        match e.location().filter(|l| l.line() > 0) {
            Some(at) => {
                let prefix = format!("line {} column {}: ", at.line(), at.column());
                format!(
                    "{}:{}: invalid YAML: {}",
                    at.line(),
                    at.column(),
                    message.strip_prefix(&prefix).unwrap_or(&message)
                )
            }
            None => format!(" invalid YAML: {message}"),
        }
    })
}

/// serde_json appends ` at line L column C`; the position is already in front.
fn strip_position(message: &str) -> &str {
    message.rfind(" at line ").map_or(message, |i| &message[..i])
}

/// The routes of a parsed document: paths sorted, then methods in [`METHODS`] order. Errors name the field
/// (`paths./users/{id}.get.x-linkerd-timeout: …`).
pub fn routes(doc: &Value) -> Result<Vec<RouteSpec>, String> {
    let Some(doc) = doc.as_object() else {
        return Err("not an OpenAPI or Swagger document (expected a mapping at the top)".into());
    };
    let base = base_path(doc)?;
    let paths = match doc.get("paths") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(paths)) => paths,
        Some(_) => return Err("paths: expected a mapping of paths to operations".into()),
    };
    let mut keys: Vec<&String> = paths.keys().filter(|k| !k.starts_with("x-")).collect();
    keys.sort();
    let mut routes: Vec<RouteSpec> = Vec::new();
    for rel in keys {
        let item = match &paths[rel.as_str()] {
            Value::Object(item) => item,
            Value::Null => continue,
            _ => return Err(format!("paths.{rel}: expected a mapping of methods to operations")),
        };
        let path = format!("{base}/{}", rel.trim_start_matches('/'));
        let path_regex = path_to_regex(&path);
        for (key, method) in METHODS {
            let Some(op) = item.get(key) else { continue };
            let at = format!("paths.{rel}.{key}");
            let route = route(&at, method, &path, &path_regex, op)?;
            if routes.iter().any(|r| r.name == route.name) {
                return Err(format!("{at}: a second route named '{}' (paths differing only in slashes)", route.name));
            }
            routes.push(route);
        }
    }
    Ok(routes)
}

/// The prefix of every path, without a trailing `/` (empty for none).
fn base_path(doc: &Map<String, Value>) -> Result<String, String> {
    let base = if let Some(version) = doc.get("swagger") {
        if version.as_str() != Some("2.0") {
            return Err(format!("swagger: {version} is not a supported version (expected \"2.0\")"));
        }
        match doc.get("basePath") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(b)) => b.clone(),
            Some(_) => return Err("basePath: expected a string".into()),
        }
    } else if let Some(version) = doc.get("openapi") {
        if !version.as_str().is_some_and(|v| v.starts_with("3.")) {
            return Err(format!("openapi: {version} is not a supported version (expected 3.x)"));
        }
        server_path(doc)?
    } else {
        return Err("not an OpenAPI 3 or Swagger 2 document (no `openapi: 3.x` or `swagger: \"2.0\"` field)".into());
    };
    Ok(base.trim_end_matches('/').to_string())
}

/// The path part of the first server's URL, its `{variables}` replaced by their defaults.
fn server_path(doc: &Map<String, Value>) -> Result<String, String> {
    let Some(server) = doc.get("servers").and_then(Value::as_array).and_then(|s| s.first()) else {
        return Ok(String::new());
    };
    let Some(url) = server.get("url").and_then(Value::as_str) else {
        return Err("servers[0].url: expected a string".into());
    };
    let mut url = url.to_string();
    if let Some(vars) = server.get("variables").and_then(Value::as_object) {
        for (name, var) in vars {
            if let Some(default) = var.get("default").and_then(Value::as_str) {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    let after_scheme = match url.find("://") {
        Some(i) => &url[i + 3..],
        None if url.starts_with("//") => &url[2..],
        None => return Ok(url.split(['?', '#']).next().unwrap_or_default().to_string()),
    };
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    Ok(path.split(['?', '#']).next().unwrap_or_default().to_string())
}

/// Linkerd's `PathToRegex`: the path quoted, each `{param}` replaced by [`PARAM_REGEX`].
pub fn path_to_regex(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        out.push_str(&quote_meta(&rest[..open]));
        out.push_str(PARAM_REGEX);
        rest = &rest[open + close + 1..];
    }
    out.push_str(&quote_meta(rest));
    out
}

fn route(at: &str, method: &str, path: &str, path_regex: &str, op: &Value) -> Result<RouteSpec, String> {
    let op = match op {
        Value::Object(op) => Some(op),
        Value::Null => None,
        _ => return Err(format!("{at}: expected an operation (a mapping)")),
    };
    let ext = |name: &str| op.and_then(|o| o.get(name)).filter(|v| !v.is_null());
    let is_retryable = match ext("x-linkerd-retryable") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(format!("{at}.x-linkerd-retryable: {v} is not true or false")),
    };
    let timeout = match ext("x-linkerd-timeout") {
        None => None,
        Some(Value::String(t)) => match duration::parse(t) {
            Ok(d) if !d.is_zero() => Some(t.clone()),
            Ok(_) => return Err(format!("{at}.x-linkerd-timeout: '{t}' must be greater than 0")),
            Err(e) => return Err(format!("{at}.x-linkerd-timeout: {e}")),
        },
        Some(v) => return Err(format!("{at}.x-linkerd-timeout: {v} is not a duration string (e.g. 5s, 300ms)")),
    };
    let response_classes = match op.and_then(|o| o.get("responses")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(responses)) => response_classes(at, responses)?,
        Some(_) => return Err(format!("{at}.responses: expected a mapping of status codes to responses")),
    };
    Ok(RouteSpec {
        name: format!("{method} {path}"),
        condition: RequestMatch {
            method: Some(method.to_string()),
            path_regex: Some(path_regex.to_string()),
            ..Default::default()
        },
        response_classes,
        is_retryable,
        timeout,
        retry: None,
        rule: None,
    })
}

/// One class per declared status code (`{status: {min: c, max: c}, isFailure: c >= 500}`) or range (`5XX`),
/// sorted; `default` and extensions are skipped.
fn response_classes(at: &str, responses: &Map<String, Value>) -> Result<Vec<ResponseClass>, String> {
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for key in responses.keys() {
        if key == "default" || key.starts_with("x-") {
            continue;
        }
        let range = if let Some(class) = key.strip_suffix("XX").or_else(|| key.strip_suffix("xx")) {
            class.parse::<u16>().ok().filter(|c| (1..=5).contains(c)).map(|c| (c * 100, c * 100 + 99))
        } else {
            key.parse::<u16>().ok().filter(|c| (100..=599).contains(c)).map(|c| (c, c))
        };
        match range {
            Some(r) => ranges.push(r),
            None => {
                return Err(format!(
                    "{at}.responses.{key}: not an HTTP status code (100-599), a range (5XX) or default"
                ));
            }
        }
    }
    ranges.sort();
    Ok(ranges
        .into_iter()
        .map(|(min, max)| ResponseClass {
            condition: ResponseMatch {
                status: Some(StatusRange { min: Some(min), max: Some(max) }),
                ..Default::default()
            },
            is_failure: min >= 500,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profilegen::{ProfileTarget, testutil, to_yaml};

    fn routes_of(text: &str) -> Vec<RouteSpec> {
        routes(&parse(text).unwrap()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err_of(text: &str) -> String {
        match parse(text) {
            Err(e) => e,
            Ok(doc) => routes(&doc).expect_err("an error"),
        }
    }

    #[test]
    fn path_parameters_become_segment_wildcards() {
        assert_eq!(path_to_regex("/users/{id}"), "/users/[^/]*");
        assert_eq!(path_to_regex("/v1.0/files/{name}.{ext}"), r"/v1\.0/files/[^/]*\.[^/]*");
        assert_eq!(path_to_regex("/a/{unclosed"), r"/a/\{unclosed");
        assert_eq!(path_to_regex("/plain"), "/plain");
    }

    #[test]
    fn swagger_2_routes_follow_linkerd() {
        let doc = r#"{
          "swagger": "2.0",
          "basePath": "/api/",
          "paths": {
            "/users/{id}": {
              "parameters": [{"name": "id", "in": "path"}],
              "put": {"responses": {"200": {}, "503": {}}},
              "get": {"responses": {"404": {}, "200": {}, "500": {}, "default": {}},
                      "x-linkerd-retryable": true, "x-linkerd-timeout": "300ms"}
            },
            "users": {"post": {}},
            "x-extension": {"get": {}}
          }
        }"#;
        let routes = routes_of(doc);
        let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["GET /api/users/{id}", "PUT /api/users/{id}", "POST /api/users"]);
        let get = &routes[0];
        assert_eq!(get.condition.path_regex.as_deref(), Some("/api/users/[^/]*"));
        assert_eq!(get.condition.method.as_deref(), Some("GET"));
        assert!(get.is_retryable);
        assert_eq!(get.timeout.as_deref(), Some("300ms"));
        let classes: Vec<(u16, bool)> =
            get.response_classes.iter().map(|c| (c.condition.status.unwrap().min.unwrap(), c.is_failure)).collect();
        assert_eq!(classes, [(200, false), (404, false), (500, true)]);
        assert!(!routes[1].is_retryable && routes[1].timeout.is_none());
        assert!(routes[2].response_classes.is_empty());
    }

    #[test]
    fn openapi_3_takes_the_first_servers_path_and_status_ranges() {
        let doc = "openapi: 3.0.3\nservers:\n  - url: 'https://{host}/shop/{version}/'\n    variables:\n      \
                   host: {default: api.example.com}\n      version: {default: v2}\n  - url: /ignored\npaths:\n  \
                   /carts/{cartId}:\n    delete:\n      responses:\n        204: {description: gone}\n        \
                   5XX: {description: broken}\n";
        let routes = routes_of(doc);
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].name, "DELETE /shop/v2/carts/{cartId}");
        assert_eq!(routes[0].condition.path_regex.as_deref(), Some("/shop/v2/carts/[^/]*"));
        let classes: Vec<(StatusRange, bool)> =
            routes[0].response_classes.iter().map(|c| (c.condition.status.unwrap(), c.is_failure)).collect();
        assert_eq!(
            classes,
            [
                (StatusRange { min: Some(204), max: Some(204) }, false),
                (StatusRange { min: Some(500), max: Some(599) }, true)
            ]
        );
        // Relative server URLs and no servers at all.
        assert_eq!(routes_of("openapi: 3.1.0\nservers: [{url: /v1}]\npaths: {/a: {get: {}}}")[0].name, "GET /v1/a");
        assert_eq!(routes_of("openapi: 3.1.0\npaths: {/a: {get: {}}}")[0].name, "GET /a");
        assert_eq!(
            routes_of("openapi: 3.1.0\nservers: [{url: 'http://h:8080'}]\npaths: {/a: {get: {}}}")[0].name,
            "GET /a"
        );
        assert!(routes_of("openapi: 3.1.0\nwebhooks: {}").is_empty());
    }

    #[test]
    fn generated_profiles_are_accepted_and_route_requests() {
        let doc = "swagger: '2.0'\npaths:\n  /books/{isbn}/reviews/{n}:\n    get: {responses: {200: {}}}\n  \
                   /books:\n    post: {x-linkerd-timeout: 2s}\n    get: {}\n";
        let target =
            ProfileTarget { service: "books".into(), namespace: "lib".into(), cluster_domain: "cluster.local".into() };
        let profile = target.profile(routes_of(doc));
        let loaded = testutil::control_plane_accepts("books", "lib", &to_yaml(&profile).unwrap());
        assert_eq!(loaded, profile);
        assert_eq!(testutil::route_of(&loaded, "GET", "/books/978-3/reviews/2"), "GET /books/{isbn}/reviews/{n}");
        assert_eq!(testutil::route_of(&loaded, "POST", "/books"), "POST /books");
        assert_eq!(testutil::route_of(&loaded, "GET", "/books"), "GET /books");
        assert_eq!(testutil::route_of(&loaded, "GET", "/books/1"), "[DEFAULT]");
    }

    #[test]
    fn bad_documents_get_clear_errors() {
        let cases = [
            ("{\"swagger\": \"2.0\",\n \"paths\": {,}}", "2:12: invalid JSON: key must be a string"),
            ("openapi: 3.0.0\npaths:\n  /a: [\n", "3:7: invalid YAML: unclosed bracket"),
            ("info: {title: x}\npaths: {}", "not an OpenAPI 3 or Swagger 2 document"),
            ("swagger: '1.2'\n", "swagger: \"1.2\" is not a supported version"),
            ("openapi: 2.0.0\n", "openapi: \"2.0.0\" is not a supported version"),
            ("[1, 2]", "expected a mapping at the top"),
            ("swagger: '2.0'\npaths: [a]", "paths: expected a mapping"),
            (
                "swagger: '2.0'\npaths: {/a: {get: {x-linkerd-timeout: 5 seconds}}}",
                "paths./a.get.x-linkerd-timeout: '5 seconds' is not a duration",
            ),
            (
                "swagger: '2.0'\npaths: {/a: {get: {x-linkerd-timeout: 0s}}}",
                "paths./a.get.x-linkerd-timeout: '0s' must be greater than 0",
            ),
            (
                "swagger: '2.0'\npaths: {/a: {get: {x-linkerd-retryable: 'yes'}}}",
                "paths./a.get.x-linkerd-retryable: \"yes\" is not true or false",
            ),
            (
                "swagger: '2.0'\npaths: {/a: {get: {responses: {999: {}}}}}",
                "paths./a.get.responses.999: not an HTTP status code",
            ),
            ("swagger: '2.0'\npaths: {/a: {get: 5}}", "paths./a.get: expected an operation"),
            ("swagger: '2.0'\npaths: {/a: {get: {}}, a: {get: {}}}", "paths.a.get: a second route named 'GET /a'"),
        ];
        for (doc, expected) in cases {
            let e = err_of(doc);
            assert!(e.contains(expected), "{doc:?}: {e:?} does not contain {expected:?}");
        }
    }

    #[test]
    fn file_errors_name_the_file() {
        let e = routes_from_file(Path::new("/nonexistent/api.yaml")).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/api.yaml: cannot read: "), "{e}");
        let dir = std::env::temp_dir().join(format!("meshlens-openapi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.yaml");
        std::fs::write(&file, "openapi: 3.0.0\npaths:\n  /a: [\n").unwrap();
        let e = routes_from_file(&file).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.starts_with(&format!("{}:3:7: invalid YAML: ", file.display())), "{e}");
    }
}
