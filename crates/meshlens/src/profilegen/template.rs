//! `meshlens profile --template`: a commented ServiceProfile to edit by hand, valid as it stands.

use meshlens_api::profile::ServiceProfile;

use super::ProfileTarget;

/// The template; `__SERVICE__`, `__NAMESPACE__`, `__FQDN__` are filled in.
const TEMPLATE: &str = r#"# ServiceProfile of __SERVICE__ in namespace __NAMESPACE__. Edit the example route, add more, and put
# the file in the mesh directory: the control plane loads it and every client proxy follows it.
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  # The service's fully qualified name: <service>.<namespace>.svc.<cluster domain>.
  name: __FQDN__
  # The profile applies to clients in this namespace (and in the service's own).
  namespace: __NAMESPACE__
spec:
  # Routes name the requests the service answers. Requests are counted, timed and classified per route
  # (`meshlens routes`); a request no route matches counts as [DEFAULT]. The first route that matches wins,
  # so list specific routes before general ones.
  routes:
    - name: GET /users/{id}
      # A request matches when every field of the condition matches.
      condition:
        method: GET
        # Matched against the whole path, without the query string (as if written ^…$).
        pathRegex: /users/[^/]+
        # Conditions combine with all, any and not:
        # any:
        #   - pathRegex: /users/[^/]+
        #   - all:
        #       - method: HEAD
        #       - not: {pathRegex: /users/admin}

      # How responses of this route are classified; the first class that matches decides. A response no
      # class matches is a failure when its status is 5xx (or its grpc-status is an error).
      responseClasses:
        - condition:
            status: {min: 500, max: 599}
          isFailure: true
        # A status range with only min (or only max) matches that one code:
        # - condition:
        #     status: {min: 404}
        #   isFailure: true

      # Retry failed requests of this route (only if they are safe to repeat), within the retry budget.
      # isRetryable: true

      # The longest a request of this route may take, retries included; the proxy answers 504 after it.
      # Without a timeout, requests wait for as long as the service takes.
      # timeout: 2s

  # How many retries all retryable routes may add together. Without it: ratio 0.2, 10 per second, 10s.
  # retryBudget:
  #   # Retries as a fraction of original requests (0.2: at most 20% more load).
  #   retryRatio: 0.2
  #   # Retries per second allowed on top of the ratio.
  #   minRetriesPerSecond: 10
  #   # How long a request counts toward the ratio (1s to 60s).
  #   ttl: 10s
"#;

/// The commented template for `target`, as YAML text.
pub fn yaml(target: &ProfileTarget) -> String {
    TEMPLATE
        .replace("__FQDN__", &target.fqdn())
        .replace("__SERVICE__", &target.service)
        .replace("__NAMESPACE__", &target.namespace)
}

/// The template as a profile (what `-o json` prints: JSON has no comments).
pub fn profile(target: &ProfileTarget) -> anyhow::Result<ServiceProfile> {
    Ok(serde_saphyr::from_str(&yaml(target))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profilegen::testutil;

    #[test]
    fn the_template_is_accepted_as_it_stands() {
        let target =
            ProfileTarget { service: "books".into(), namespace: "lib".into(), cluster_domain: "example.org".into() };
        let text = yaml(&target);
        assert!(!text.contains("__"), "{text}");
        let loaded = testutil::control_plane_accepts("books", "lib", &text.replace("example.org", "cluster.local"));
        assert_eq!(loaded.metadata.name, "books.lib.svc.cluster.local");
        let profile = profile(&target).unwrap();
        assert_eq!(profile.metadata.name, "books.lib.svc.example.org");
        assert_eq!(profile.spec.routes.len(), 1);
        assert_eq!(testutil::route_of(&profile, "GET", "/users/42"), "GET /users/{id}");
        assert_eq!(testutil::route_of(&profile, "GET", "/users/42/x"), "[DEFAULT]");
        // Every commented-out example is valid too, once uncommented.
        let uncommented: String = text
            .lines()
            .map(|l| {
                let t = l.trim_start();
                let indent = &l[..l.len() - t.len()];
                match t.strip_prefix("# ") {
                    Some(rest) if indent.len() >= 2 && !rest.starts_with("# ") && looks_like_yaml(rest) => {
                        format!("{indent}{rest}")
                    }
                    _ => l.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let loaded =
            testutil::control_plane_accepts("books", "lib", &uncommented.replace("example.org", "cluster.local"));
        let route = &loaded.spec.routes[0];
        assert!(route.is_retryable && route.timeout.as_deref() == Some("2s"), "{uncommented}");
        assert_eq!(route.response_classes.len(), 2);
        assert!(route.condition.any.is_some());
        assert_eq!(loaded.spec.retry_budget.as_ref().map(|b| b.ttl.as_str()), Some("10s"));
    }

    /// A commented line that is YAML (`key: value` or a list item), not prose.
    fn looks_like_yaml(text: &str) -> bool {
        let first = text.split_whitespace().next().unwrap_or_default();
        first.starts_with('-') || (first.ends_with(':') && first.chars().all(|c| c.is_ascii_alphanumeric() || c == ':'))
    }
}
