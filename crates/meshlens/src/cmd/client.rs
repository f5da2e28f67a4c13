//! Finding and calling the control plane's API (DESIGN.md §10): `--control URL`, else `MESHLENS_CONTROL`,
//! else the session file that `meshlens up`/`demo` writes, else `http://127.0.0.1:8086`. Every call sends
//! the API token: `--api-token-file`, else `MESHLENS_API_TOKEN_FILE`, else the session file's token when
//! the session is of that control plane.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const DEFAULT_CONTROL: &str = "http://127.0.0.1:8086";

/// The `--control` flag every CLI command shares.
#[derive(Args, Debug, Clone, Default)]
pub struct ControlArg {
    /// The control plane's URL (default: MESHLENS_CONTROL, else the session of a running `meshlens up` or
    /// `meshlens demo`, else http://127.0.0.1:8086).
    #[arg(long, value_name = "URL")]
    pub control: Option<String>,
    /// A file with the control plane's API token (default: MESHLENS_API_TOKEN_FILE, else the token in the
    /// session file of that control plane).
    #[arg(long, value_name = "FILE", env = "MESHLENS_API_TOKEN_FILE")]
    pub api_token_file: Option<std::path::PathBuf>,
}

/// `-n/--namespace` and `-A/--all-namespaces`, shared by the commands that list resources across
/// namespaces as Linkerd's do (`stat`, `edges`); commands about one resource take `-n` alone.
#[derive(Args, Debug, Clone)]
pub struct NamespaceArgs {
    /// The namespace of the resources.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// The API token every call of this process sends (the CLI talks to one control plane): set by
/// [`ControlArg::url`]; an unreadable token file is the error of every call.
static TOKEN: OnceLock<Result<Option<String>, String>> = OnceLock::new();

impl ControlArg {
    /// The control plane's base URL, without a trailing slash; also chooses the API token calls send.
    pub fn url(&self) -> String {
        let from_env = std::env::var("MESHLENS_CONTROL").ok().filter(|v| !v.trim().is_empty());
        let session = crate::runtime::session::session_path().and_then(|p| crate::runtime::session::read(&p));
        let from_session = || session.as_ref().map(|s| s.control.clone());
        let url = self.control.clone().or(from_env).or_else(from_session).unwrap_or_else(|| DEFAULT_CONTROL.into());
        let url = url.trim_end_matches('/').to_string();
        let token = match &self.api_token_file {
            Some(file) => crate::runtime::secrets::read_secret(file).map(Some).map_err(|e| format!("{e:#}")),
            None => Ok(session.filter(|s| s.control.trim_end_matches('/') == url).and_then(|s| s.token)),
        };
        let _ = TOKEN.set(token);
        url
    }
}

/// A resource given as `TYPE/NAME` or as two words `TYPE NAME` → `TYPE/NAME`; one word stays as it is
/// (`deploy`, `control`); anything else is `None`.
pub fn resource(words: &[String]) -> Option<String> {
    match words {
        [one] => Some(one.clone()),
        [kind, name] if !kind.contains('/') => Some(format!("{kind}/{name}")),
        _ => None,
    }
}

/// A URL query string (`key=value&…`, form-encoded) of `pairs`.
pub fn query<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    serde_urlencoded::to_string(pairs).expect("string pairs always encode")
}

/// `GET base + path_and_query`, decoded as JSON; API errors (`{"error": …}`) become the error message.
pub fn get_json<T: serde::de::DeserializeOwned>(base: &str, path_and_query: &str) -> anyhow::Result<T> {
    get_json_as(base, path_and_query, None)
}

/// [`get_json`] with `token` instead of this process's API token (another control plane's), when given.
pub fn get_json_as<T: serde::de::DeserializeOwned>(
    base: &str,
    path_and_query: &str,
    token: Option<&str>,
) -> anyhow::Result<T> {
    call_json(hyper::Method::GET, base, path_and_query, token)
}

/// `POST base + path` without a body, decoded as JSON (errors as [`get_json`]).
pub fn post_json<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> anyhow::Result<T> {
    call_json(hyper::Method::POST, base, path, None)
}

fn call_json<T: serde::de::DeserializeOwned>(
    method: hyper::Method,
    base: &str,
    path_and_query: &str,
    token: Option<&str>,
) -> anyhow::Result<T> {
    let url = format!("{base}{path_and_query}");
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let (status, body) = runtime.block_on(async {
        let uri: hyper::Uri = url.parse().map_err(|e| anyhow!("invalid control plane URL {base}: {e}"))?;
        let resp = send(method, base, uri, token).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| unreachable(base, &e))?.to_bytes();
        anyhow::Ok((status, body))
    })?;
    if !status.is_success() {
        return Err(api_error(status, &body));
    }
    serde_json::from_slice(&body).with_context(|| format!("unexpected answer from {url}"))
}

/// The error for a control plane that cannot be reached, with the hint how to start one.
pub fn unreachable(base: &str, why: &dyn std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot reach the control plane at {base}: {why} — is `meshlens up` or `meshlens demo` running?")
}

/// An API answer that is not a success.
#[derive(Debug)]
pub struct ApiError {
    pub status: hyper::StatusCode,
    /// The `error` of the JSON body, else the body.
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the control plane answered {}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The error for an API answer that is not a success: `{"error": …}` becomes the message.
pub fn api_error(status: hyper::StatusCode, body: &[u8]) -> anyhow::Error {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    anyhow::Error::new(ApiError { status, message })
}

/// A stats query (`/api/v1/stat|routes|edges`): the answer, or — for a resource that does not exist
/// (404) — its message printed and exit code 1; other failures are errors.
pub fn get_stats<T: serde::de::DeserializeOwned>(
    base: &str,
    path: &str,
    query: &meshlens_api::stats::StatQuery,
) -> anyhow::Result<Result<T, std::process::ExitCode>> {
    let q = serde_urlencoded::to_string(query).context("cannot encode the query")?;
    match get_json(base, &format!("{path}?{q}")) {
        Ok(v) => Ok(Ok(v)),
        Err(e) => match e.downcast_ref::<ApiError>() {
            Some(a) if a.status == hyper::StatusCode::NOT_FOUND => {
                eprintln!("meshlens: {}", a.message);
                Ok(Err(std::process::ExitCode::from(1)))
            }
            _ => Err(e),
        },
    }
}

/// When a namespace shows nothing: the namespaces where workloads do run, as a hint (`None` when there
/// are none elsewhere or the control plane does not say).
pub fn namespace_hint(base: &str, namespace: &str) -> Option<String> {
    let res: serde_json::Value = get_json(base, "/api/v1/resources").ok()?;
    let mut elsewhere: Vec<&str> = res["workloads"]
        .as_array()?
        .iter()
        .filter(|w| w["instances"].as_array().is_some_and(|i| !i.is_empty()))
        .filter_map(|w| w["namespace"].as_str())
        .filter(|ns| *ns != namespace)
        .collect();
    elsewhere.sort_unstable();
    elsewhere.dedup();
    let try_ = match elsewhere.as_slice() {
        [] => return None,
        [one] => format!("-n {one}"),
        [first, ..] => format!("-n {first} or -A"),
    };
    Some(format!("workloads run in {}: try {try_}", elsewhere.join(", ")))
}

/// What to say when an answer is empty: `No {what} found.`, or with the hint where workloads run.
pub fn nothing_found(base: &str, what: &str, namespace: &str, all_namespaces: bool) -> String {
    match (!all_namespaces).then(|| namespace_hint(base, namespace)).flatten() {
        Some(hint) => format!("No {what} found in namespace {namespace}; {hint}"),
        None => format!("No {what} found."),
    }
}

/// `GET uri` on the control plane at `base`, with the API token; the response head (within 10 s), its
/// body still to read.
pub async fn request(base: &str, uri: hyper::Uri) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
    send(hyper::Method::GET, base, uri, None).await
}

/// `method uri` on the control plane at `base`, with `token` instead of this process's API token when
/// given.
async fn send(
    method: hyper::Method,
    base: &str,
    uri: hyper::Uri,
    token: Option<&str>,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(uri);
    let token = match (token, TOKEN.get()) {
        (Some(token), _) => Some(token),
        (None, Some(Ok(token))) => token.as_deref(),
        (None, Some(Err(e))) => return Err(anyhow!("cannot read the API token: {e}")),
        (None, None) => None,
    };
    if let Some(token) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req.body(Empty::new()).context("invalid request")?;
    tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| unreachable(base, &"timed out"))?
        .map_err(|e| {
            // The innermost cause says it best ("Connection refused (os error 111)").
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = s.to_string();
                src = s.source();
            }
            unreachable(base, &msg)
        })
}

/// A streamed NDJSON answer (`tap`, `logs -f`), read line by line.
pub struct NdjsonLines {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
}

impl NdjsonLines {
    pub fn new(body: hyper::body::Incoming) -> Self {
        NdjsonLines { body, buf: Vec::new() }
    }

    /// The next line that is not blank (without its newline); `None` when the control plane ended the stream.
    pub async fn next(&mut self) -> Option<anyhow::Result<Vec<u8>>> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(Ok(line));
            }
            match self.body.frame().await? {
                Err(e) => return Some(Err(anyhow!("the stream broke: {e}"))),
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::{Command, parse_result};

    #[test]
    fn all_namespaces_where_linkerd_has_it() {
        // Linkerd's `viz stat` and `viz edges` take -A; routes, tap and top are about one resource,
        // diagnose and logs about one namespace or resource.
        for line in ["meshlens stat deploy -A", "meshlens -A stat po", "meshlens edges deploy --all-namespaces"] {
            let cli = parse_result(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let scope = match cli.command {
                Command::Stat(a) => a.scope,
                Command::Edges(a) => a.scope,
                other => panic!("{line}: {other:?}"),
            };
            assert!(scope.all_namespaces, "{line}");
        }
        for line in [
            "meshlens routes deploy/web -A",
            "meshlens tap deploy/web -A",
            "meshlens top deploy/web -A",
            "meshlens diagnose -A",
            "meshlens logs deploy/web -A",
        ] {
            let e = parse_result(line).expect_err(line).to_string();
            assert!(e.contains("unexpected argument '-A'"), "{line}: {e}");
        }
    }
}
