//! The mesh directory source: `mesh.yaml` (kind `Mesh`) plus every other `*.yaml`/`*.yml` file (top level
//! and subdirectories) holding `ServiceProfile` and `TrafficSplit` documents, loaded and validated as a whole.
//! Manifests written for Kubernetes load as they are: `kind: List` is unpacked, kinds of other API groups
//! (`Service`, `Deployment`, …) are skipped with an info line, documents without a namespace get the default.
//!
//! Entries whose name starts with `.` are skipped: editors' swap files, and the `..data` / `..2024_…`
//! directories of a mounted Kubernetes ConfigMap (its top-level symlinks are followed instead).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use meshlens_api::httproute::{GRPC_ROUTE_API_VERSIONS, GrpcRoute, HTTP_ROUTE_API_VERSIONS, HttpRoute};
use meshlens_api::mesh::{MESH_API_VERSION, Mesh, MeshService};
use meshlens_api::profile::{SERVICE_PROFILE_API_VERSIONS, ServiceProfile, TRAFFIC_SPLIT_API_VERSIONS, TrafficSplit};

use crate::yaml::{self, Document};
use crate::{httproute, validate};

/// The file that holds the `Mesh` document.
pub const MESH_FILE: &str = "mesh.yaml";

/// How deep subdirectories are followed (symlinks included, so loops end here).
const MAX_DEPTH: usize = 8;

/// A valid mesh directory: the mesh, and the profiles and splits in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct MeshConfig {
    /// The directory it was read from.
    pub dir: PathBuf,
    pub mesh: Mesh,
    pub profiles: Vec<Sourced<ServiceProfile>>,
    pub traffic_splits: Vec<Sourced<TrafficSplit>>,
    /// One line per document skipped (a kind outside the mesh, or one meshlens does not implement):
    /// `file:line: skipped Deployment 'web' (apps/v1): not a mesh kind`.
    pub skipped: Vec<String>,
}

impl MeshConfig {
    /// The service a workload's `calls` entry names (`name`, `name.namespace` or an FQDN, optional
    /// `:port`), resolved from the caller's namespace. Always `Some` for the entries of a loaded config.
    pub fn service_for_call(&self, caller_namespace: &str, call: &str) -> Option<&MeshService> {
        let auth = meshlens_api::Authority::parse(call, 80).ok()?;
        let (name, ns) = auth.service_name(caller_namespace, &self.mesh.spec.cluster_domain)?;
        self.mesh.spec.services.iter().find(|s| s.name == name && s.namespace == ns)
    }
}

/// A document and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Sourced<T> {
    /// Path relative to the mesh directory, `/`-separated.
    pub file: String,
    /// 1-based line where the document starts.
    pub line: u32,
    pub value: T,
}

impl<T> Sourced<T> {
    /// `file:line`, for messages.
    pub fn origin(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// One problem in a mesh directory: `file:line: field.path: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Path relative to the mesh directory (or the directory itself when it cannot be read).
    pub file: String,
    /// 1-based line; `None` when the problem is the file itself (missing, unreadable).
    pub line: Option<u32>,
    /// `field.path: message`, or just a message for file-level problems.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem found in a mesh directory (never empty), in file and line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// One line per error.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors while a directory is checked.
#[derive(Default)]
pub(crate) struct Errors(Vec<ConfigError>);

impl Errors {
    pub fn at(&mut self, file: &str, line: u32, message: impl Into<String>) {
        self.0.push(ConfigError { file: file.to_string(), line: Some(line), message: message.into() });
    }

    pub fn file(&mut self, file: &str, message: impl Into<String>) {
        self.0.push(ConfigError { file: file.to_string(), line: None, message: message.into() });
    }

    /// An error at a field of a document: `file:LINE: path: message`, the line being the field's.
    pub fn field(&mut self, file: &str, doc: &Document, path: &str, message: impl fmt::Display) {
        self.at(file, doc.line_of(path), format!("{path}: {message}"));
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn into_sorted(mut self) -> ConfigErrors {
        // Stable: errors of the same line keep the order they were found in.
        self.0.sort_by(|a, b| a.file.cmp(&b.file).then(a.line.unwrap_or(0).cmp(&b.line.unwrap_or(0))));
        ConfigErrors(self.0)
    }
}

/// A YAML file of the mesh directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MeshFile {
    /// Relative to the directory, `/`-separated.
    pub rel: String,
    pub path: PathBuf,
}

/// Every `*.yaml`/`*.yml` file under `dir` (following symlinks, skipping `.`-names), sorted by path.
pub(crate) fn list_files(dir: &Path) -> io::Result<Vec<MeshFile>> {
    let mut out = Vec::new();
    walk(dir, "", 0, &mut out)?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<MeshFile>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symlinks; a dangling one is skipped (a ConfigMap swap in progress, or an editor's).
        let Ok(meta) = fs::metadata(&path) else { continue };
        let rel = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, &rel, depth + 1, out)?;
            }
        } else if meta.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
            out.push(MeshFile { rel, path });
        }
    }
    Ok(())
}

/// A document of a known kind, typed, with its source.
pub(crate) struct Parsed<T> {
    pub file: String,
    pub doc: Document,
    pub value: T,
}

/// The API groups whose kinds a mesh directory reads. A kind of another group (`Service`, `Deployment`, …)
/// is skipped with an info line; an unknown kind of one of these is an error (a typo would go unnoticed).
pub const MESH_API_GROUPS: [&str; 5] =
    ["linkerd.io", "policy.linkerd.io", "split.smi-spec.io", "gateway.networking.k8s.io", "meshlens.io"];

/// Kinds of the mesh's API groups that meshlens does not implement (authorization, gateways, other route
/// kinds): skipped with an info line, as foreign kinds are.
const UNSUPPORTED_MESH_KINDS: [&str; 14] = [
    "Server",
    "ServerAuthorization",
    "AuthorizationPolicy",
    "MeshTLSAuthentication",
    "NetworkAuthentication",
    "HTTPLocalRateLimitPolicy",
    "EgressNetwork",
    "ExternalWorkload",
    "Gateway",
    "GatewayClass",
    "ReferenceGrant",
    "TLSRoute",
    "TCPRoute",
    "UDPRoute",
];

/// What the loader does with a document, once its kind and apiVersion are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mesh,
    Profile,
    Split,
    HttpRoute,
    GrpcRoute,
}

/// How a directory is read.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The namespace of documents that name none (kubectl's `-n`); `None`: the mesh's first declared
    /// namespace, else `default`.
    pub default_namespace: Option<String>,
}

/// Reads and validates a mesh directory. Either everything is valid, or every problem is reported.
pub fn load(dir: &Path) -> Result<MeshConfig, ConfigErrors> {
    load_with(dir, &LoadOptions::default())
}

/// [`load`] with options.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<MeshConfig, ConfigErrors> {
    let mut errors = Errors::default();
    let shown = dir.display().to_string();
    if !dir.is_dir() {
        errors.file(&shown, "not a directory (the mesh directory must hold mesh.yaml)");
        return Err(errors.into_sorted());
    }
    let files = match list_files(dir) {
        Ok(f) => f,
        Err(e) => {
            errors.file(&shown, format!("cannot read the directory: {e}"));
            return Err(errors.into_sorted());
        }
    };

    let mut mesh: Option<Parsed<Mesh>> = None;
    let mut typed: Vec<(String, Document, Kind)> = Vec::new();
    let mut skipped = Vec::new();
    let mut mesh_file_seen = false;
    let mut mesh_file_failed = false;
    for f in &files {
        let is_mesh_file = f.rel == MESH_FILE;
        mesh_file_seen |= is_mesh_file;
        let text = match fs::read(&f.path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(_) => {
                    errors.file(&f.rel, "not UTF-8 text");
                    mesh_file_failed |= is_mesh_file;
                    continue;
                }
            },
            Err(e) => {
                errors.file(&f.rel, format!("cannot read: {e}"));
                mesh_file_failed |= is_mesh_file;
                continue;
            }
        };
        let docs = match yaml::parse_documents(&text) {
            Ok(d) => d,
            Err(e) => {
                errors.at(&f.rel, e.line, e.message);
                mesh_file_failed |= is_mesh_file;
                continue;
            }
        };
        if is_mesh_file && docs.is_empty() {
            errors.at(
                &f.rel,
                1,
                format!("the file is empty: it must hold a Mesh document (apiVersion: {MESH_API_VERSION}, kind: Mesh)"),
            );
            mesh_file_failed = true;
        }
        for doc in unpack_lists(&f.rel, docs, &mut errors) {
            match classify(&f.rel, &doc, &mut errors) {
                Err(()) => mesh_file_failed |= is_mesh_file,
                Ok(None) => {
                    let line = skipped_line(&f.rel, &doc);
                    tracing::info!("{line}");
                    skipped.push(line);
                }
                Ok(Some(Kind::Mesh)) => parse_mesh(&f.rel, doc, &mut mesh, &mut mesh_file_failed, &mut errors),
                Ok(Some(kind)) => typed.push((f.rel.clone(), doc, kind)),
            }
        }
    }
    if !mesh_file_seen {
        errors.file(MESH_FILE, format!("not found: a mesh directory needs {MESH_FILE} with a Mesh document"));
    } else if mesh.is_none() && !mesh_file_failed {
        errors.at(MESH_FILE, 1, format!("no Mesh document (apiVersion: {MESH_API_VERSION}, kind: Mesh)"));
    }

    let default_ns = options
        .default_namespace
        .clone()
        .or_else(|| mesh.as_ref().and_then(|m| m.value.spec.namespaces.first().cloned()))
        .unwrap_or_else(|| validate::DEFAULT_NAMESPACE.to_string());
    let mut profiles = Vec::new();
    let mut splits = Vec::new();
    let mut routes = httproute::RouteDocs::default();
    for (file, mut doc, kind) in typed {
        match kind {
            Kind::Profile => match doc.parse::<ServiceProfile>() {
                Ok(value) => profiles.push(Parsed { file, doc, value }),
                Err(e) => errors.at(&file, e.line, e.message),
            },
            Kind::Split => {
                doc.default_namespace(&default_ns);
                match doc.parse::<TrafficSplit>() {
                    Ok(value) => splits.push(Parsed { file, doc, value }),
                    Err(e) => errors.at(&file, e.line, e.message),
                }
            }
            Kind::HttpRoute => {
                doc.default_namespace(&default_ns);
                match doc.parse::<HttpRoute>() {
                    Ok(value) => routes.http.push(Parsed { file, doc, value }),
                    Err(e) => errors.at(&file, e.line, e.message),
                }
            }
            Kind::GrpcRoute => {
                doc.default_namespace(&default_ns);
                match doc.parse::<GrpcRoute>() {
                    Ok(value) => routes.grpc.push(Parsed { file, doc, value }),
                    Err(e) => errors.at(&file, e.line, e.message),
                }
            }
            Kind::Mesh => unreachable!("parsed as it was read"),
        }
    }

    let index = validate::all(mesh.as_ref(), &profiles, &splits, &mut errors);
    let mut notes = Vec::new();
    let compiled = httproute::compile(index.as_ref(), &profiles, &routes, &mut errors, &mut notes);
    for line in notes {
        tracing::info!("{line}");
        skipped.push(line);
    }
    match mesh {
        Some(mesh) if errors.is_empty() => Ok(MeshConfig {
            dir: dir.to_path_buf(),
            mesh: mesh.value,
            profiles: with_routes(profiles.into_iter().map(sourced).collect(), compiled),
            traffic_splits: splits.into_iter().map(sourced).collect(),
            skipped,
        }),
        _ => Err(errors.into_sorted()),
    }
}

/// The directory's profiles with those compiled from routes: a profile a route completes is replaced
/// in place, the others follow.
fn with_routes(
    mut profiles: Vec<Sourced<ServiceProfile>>,
    compiled: httproute::CompiledProfiles,
) -> Vec<Sourced<ServiceProfile>> {
    for (at, profile) in compiled {
        match at {
            Some(i) => profiles[i].value = profile.value,
            None => profiles.push(profile),
        }
    }
    profiles
}

fn sourced<T>(p: Parsed<T>) -> Sourced<T> {
    Sourced { file: p.file, line: p.doc.line, value: p.value }
}

/// Replaces each `kind: List` (what `kubectl get … -o yaml` writes) by its items, one level deep.
fn unpack_lists(file: &str, docs: Vec<Document>, errors: &mut Errors) -> Vec<Document> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        if doc.str_field("kind") != Some("List") {
            out.push(doc);
            continue;
        }
        match doc.value.get("items") {
            Some(serde_json::Value::Array(items)) => {
                for i in 0..items.len() {
                    match doc.item("items", i) {
                        Some(item) if item.str_field("kind") == Some("List") => {
                            errors.field(file, &doc, &format!("items[{i}].kind"), "a List inside a List")
                        }
                        Some(item) => out.push(item),
                        None => {}
                    }
                }
            }
            Some(serde_json::Value::Null) | None => {}
            Some(_) => errors.field(file, &doc, "items", "a List's items must be a sequence of documents"),
        }
    }
    out
}

/// The API group of an apiVersion (`policy.linkerd.io/v1beta3` → `policy.linkerd.io`; `v1` → the core
/// group, ``).
fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// `file:line: skipped Deployment 'web' (apps/v1): not a mesh kind`.
fn skipped_line(file: &str, doc: &Document) -> String {
    let kind = doc.str_field("kind").unwrap_or_default();
    let api_version = doc.str_field("apiVersion").unwrap_or_default();
    let name = doc.value.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()).unwrap_or_default();
    let why =
        if MESH_API_GROUPS.contains(&api_group(api_version)) { "not supported by meshlens" } else { "not a mesh kind" };
    format!("{file}:{}: skipped {kind} '{name}' ({api_version}): {why}", doc.line)
}

/// Sorts one document by kind and apiVersion: a kind the mesh reads, `None` for one to skip, `Err` when
/// the error is reported.
fn classify(file: &str, doc: &Document, errors: &mut Errors) -> Result<Option<Kind>, ()> {
    let is_mesh_file = file == MESH_FILE;
    if !doc.value.is_object() {
        errors.at(file, doc.line, "a document must be a mapping with apiVersion, kind, metadata and spec");
        return Err(());
    }
    let kind = match doc.value.get("kind") {
        None => {
            errors.at(file, doc.line, "kind: missing (every document needs apiVersion and kind)");
            return Err(());
        }
        Some(k) => match k.as_str() {
            Some(k) => k.to_string(),
            None => {
                errors.field(file, doc, "kind", format!("{k} is not a kind (a string such as ServiceProfile)"));
                return Err(());
            }
        },
    };
    let api_version = doc.str_field("apiVersion");
    let (expected, typed): (&[&str], Kind) = match kind.as_str() {
        "Mesh" => (&[MESH_API_VERSION], Kind::Mesh),
        "ServiceProfile" => (&SERVICE_PROFILE_API_VERSIONS, Kind::Profile),
        "TrafficSplit" => (&TRAFFIC_SPLIT_API_VERSIONS, Kind::Split),
        "HTTPRoute" => (&HTTP_ROUTE_API_VERSIONS, Kind::HttpRoute),
        "GRPCRoute" => (&GRPC_ROUTE_API_VERSIONS, Kind::GrpcRoute),
        other => {
            let Some(api_version) = api_version else {
                errors.field(file, doc, "apiVersion", "missing (every document needs apiVersion and kind)");
                return Err(());
            };
            let group = api_group(api_version);
            if !MESH_API_GROUPS.contains(&group) || UNSUPPORTED_MESH_KINDS.contains(&other) {
                return Ok(None);
            }
            let mesh_hint = if is_mesh_file { "Mesh, " } else { "" };
            errors.field(
                file,
                doc,
                "kind",
                format!(
                    "unknown kind '{other}' in {group} (expected {mesh_hint}ServiceProfile, TrafficSplit, HTTPRoute or GRPCRoute)"
                ),
            );
            return Err(());
        }
    };
    match api_version {
        Some(v) if expected.contains(&v) => Ok(Some(typed)),
        Some(v) => {
            errors.field(
                file,
                doc,
                "apiVersion",
                format!("'{v}' is not a supported apiVersion for {kind} (expected {})", expected.join(" or ")),
            );
            Err(())
        }
        None => {
            errors.field(file, doc, "apiVersion", format!("missing (expected {})", expected.join(" or ")));
            Err(())
        }
    }
}

/// The `Mesh` document: only in mesh.yaml, only once.
fn parse_mesh(
    file: &str,
    doc: Document,
    mesh: &mut Option<Parsed<Mesh>>,
    mesh_file_failed: &mut bool,
    errors: &mut Errors,
) {
    if file != MESH_FILE {
        errors.field(file, &doc, "kind", format!("a Mesh document belongs in {MESH_FILE}"));
        return;
    }
    if let Some(first) = mesh {
        errors.field(file, &doc, "kind", format!("a second Mesh document (the first is at line {})", first.doc.line));
        return;
    }
    match doc.parse::<Mesh>() {
        Ok(value) => *mesh = Some(Parsed { file: file.to_string(), doc, value }),
        Err(e) => {
            errors.at(file, e.line, e.message);
            *mesh_file_failed = true;
        }
    }
}

#[cfg(test)]
#[path = "meshdir_tests.rs"]
pub(crate) mod tests;
