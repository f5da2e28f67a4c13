//! ServiceProfile generators behind `meshlens profile`: a commented template, routes from an OpenAPI or
//! Swagger document, and routes folded from observed requests; plus the profile skeleton and its output.

pub mod fold;
pub mod openapi;
pub mod proto;
pub mod template;

use meshlens_api::meta::ObjectMeta;
use meshlens_api::profile::{RouteSpec, SERVICE_PROFILE_API_VERSION, ServiceProfile, ServiceProfileSpec};

/// The cluster domain when nobody says otherwise (Linkerd's default, and the mesh directory's).
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// The service a profile describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileTarget {
    pub service: String,
    pub namespace: String,
    pub cluster_domain: String,
}

impl ProfileTarget {
    /// The profile's name: `service.namespace.svc.domain`.
    pub fn fqdn(&self) -> String {
        format!("{}.{}.svc.{}", self.service, self.namespace, self.cluster_domain)
    }

    /// A `linkerd.io/v1alpha2` ServiceProfile of this service with these routes.
    pub fn profile(&self, routes: Vec<RouteSpec>) -> ServiceProfile {
        ServiceProfile {
            api_version: SERVICE_PROFILE_API_VERSION.to_string(),
            kind: "ServiceProfile".to_string(),
            metadata: ObjectMeta { name: self.fqdn(), namespace: Some(self.namespace.clone()), ..Default::default() },
            spec: ServiceProfileSpec { routes, ..Default::default() },
        }
    }
}

/// The text of a generator's input: a file, or standard input for `-` (as Linkerd's docs pipe it); the
/// name to show in errors (`<stdin>` for `-`).
pub fn read_input(file: &std::path::Path) -> anyhow::Result<(String, String)> {
    use std::io::Read;
    let (shown, bytes) = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| anyhow::anyhow!("<stdin>: cannot read: {e}"))?;
        ("<stdin>".to_string(), bytes)
    } else {
        let shown = file.display().to_string();
        let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("{shown}: cannot read: {e}"))?;
        (shown, bytes)
    };
    let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{shown}: not UTF-8 text"))?;
    Ok((shown, text))
}

/// Go's `regexp.QuoteMeta` (what Linkerd's generators use): a backslash before each of `\.+*?()|[]{}^$`.
pub fn quote_meta(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The profile as YAML.
pub fn to_yaml(profile: &ServiceProfile) -> anyhow::Result<String> {
    let mut text = serde_saphyr::to_string(profile)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// The profile as indented JSON, with a final newline.
pub fn to_json(profile: &ServiceProfile) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(profile)? + "\n")
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Checks a generated profile the way the mesh will use it.

    use std::path::PathBuf;

    use meshlens_api::profile::ServiceProfile;
    use meshlens_proxy::policy::profile::Policy;

    /// Writes `profile_yaml` into a fresh mesh directory declaring `service` in `namespace` and loads it with
    /// the control plane's own loader: the profile is accepted as is, or the test fails with its errors.
    pub fn control_plane_accepts(service: &str, namespace: &str, profile_yaml: &str) -> ServiceProfile {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir: PathBuf = std::env::temp_dir().join(format!(
            "meshlens-profilegen-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mesh = format!(
            "apiVersion: meshlens.io/v1alpha1\nkind: Mesh\nmetadata: {{name: t}}\nspec:\n  namespaces: [{namespace}]\n  \
             workloads:\n    - {{name: {service}, namespace: {namespace}}}\n  services:\n    - {{name: {service}, \
             namespace: {namespace}, workload: {service}, port: 80}}\n"
        );
        std::fs::write(dir.join("mesh.yaml"), mesh).unwrap();
        std::fs::write(dir.join("generated.profile.yaml"), profile_yaml).unwrap();
        let loaded = meshlens_control::load(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        match loaded {
            Ok(config) => {
                assert_eq!(config.profiles.len(), 1);
                config.profiles.into_iter().next().unwrap().value
            }
            Err(e) => panic!("the control plane refuses the generated profile:\n{e}\n---\n{profile_yaml}"),
        }
    }

    /// The route the proxy gives a request (`[DEFAULT]` when none matches).
    pub fn route_of(profile: &ServiceProfile, method: &str, path: &str) -> String {
        let policy = Policy::compile(profile).unwrap_or_else(|e| panic!("the proxy refuses the profile: {e}"));
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let headers = http::HeaderMap::new();
        let head =
            meshlens_proxy::policy::route::RequestHead { method: &method, path_and_query: path, headers: &headers };
        policy.route(&head).name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlens_api::profile::{RequestMatch, ResponseClass, ResponseMatch, StatusRange};

    #[test]
    fn quote_meta_escapes_what_go_escapes() {
        assert_eq!(
            quote_meta(r"/a.b+c*d?e(f)g|h[i]j{k}l^m$n\o-p_q~r"),
            r"/a\.b\+c\*d\?e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o-p_q~r"
        );
    }

    #[test]
    fn yaml_with_awkward_names_and_regexes_is_accepted_as_is() {
        let target =
            ProfileTarget { service: "web".into(), namespace: "prod".into(), cluster_domain: "cluster.local".into() };
        let awkward =
            ["/a: b", "/#frag", "/'single'", "/\"double\"", "/- dash", "/{x}", "/ü/ß", "/*", "/a\\b", "/@&!%"];
        let routes = awkward
            .iter()
            .map(|p| RouteSpec {
                name: format!("GET {p}"),
                condition: RequestMatch {
                    method: Some("GET".into()),
                    path_regex: Some(quote_meta(p)),
                    ..Default::default()
                },
                response_classes: vec![ResponseClass {
                    condition: ResponseMatch {
                        status: Some(StatusRange { min: Some(500), max: Some(599) }),
                        ..Default::default()
                    },
                    is_failure: true,
                }],
                is_retryable: true,
                timeout: Some("1.5s".into()),
                retry: None,
                rule: None,
            })
            .collect();
        let profile = target.profile(routes);
        let loaded = testutil::control_plane_accepts("web", "prod", &to_yaml(&profile).unwrap());
        assert_eq!(loaded, profile);
        for p in awkward {
            assert_eq!(testutil::route_of(&loaded, "GET", p), format!("GET {p}"));
        }
        let from_json: ServiceProfile = serde_json::from_str(&to_json(&profile).unwrap()).unwrap();
        assert_eq!(from_json, profile);
    }
}
