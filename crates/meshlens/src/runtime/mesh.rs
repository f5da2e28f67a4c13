//! Reading a mesh directory's `mesh.yaml` for the supervisor: workloads, their commands, ports and calls.
//!
//! Only what `up` needs to start processes is checked here; `meshlens control` validates the whole
//! directory (profiles, splits, semantics) and refuses to start on errors, which `up` then reports.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, bail};
use meshlens_api::mesh::{Command, Mesh};

/// The file in a mesh directory that declares namespaces, workloads and services.
pub const MESH_FILE: &str = "mesh.yaml";

/// Reads and checks `DIR/mesh.yaml`.
pub fn load(dir: &Path) -> anyhow::Result<Mesh> {
    let path = dir.join(MESH_FILE);
    if !dir.is_dir() {
        bail!("{}: not a directory (expected a mesh directory with a {MESH_FILE})", dir.display());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// Parses `mesh.yaml` text; `origin` names the file in error messages.
pub fn parse(text: &str, origin: &str) -> anyhow::Result<Mesh> {
    let mesh: Mesh = serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        let msg = e.to_string();
        let msg = msg.lines().next().unwrap_or_default().to_owned();
        anyhow::anyhow!("{origin}{line}: {msg}")
    })?;
    let errors = check(&mesh);
    if !errors.is_empty() {
        bail!("{}", errors.iter().map(|e| format!("{origin}: {e}")).collect::<Vec<_>>().join("\n"));
    }
    Ok(mesh)
}

/// What would stop `up` from starting the workloads (one message per problem).
pub fn check(mesh: &Mesh) -> Vec<String> {
    let mut errors = Vec::new();
    if mesh.kind != "Mesh" {
        errors.push(format!("kind: expected Mesh, found {:?}", mesh.kind));
    }
    let mut seen = BTreeSet::new();
    for (i, w) in mesh.spec.workloads.iter().enumerate() {
        let at = format!("spec.workloads[{i}] ({})", w.name);
        if w.name.is_empty() || !w.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            errors.push(format!("{at}: name must be letters, digits and '-'"));
        }
        if !seen.insert((w.namespace.clone(), w.name.clone())) {
            errors.push(format!("{at}: workload {}/{} is declared twice", w.namespace, w.name));
        }
        if let Some(port) = w.port
            && port != 0
            && w.replicas > 1
        {
            errors.push(format!(
                "{at}: port {port} with replicas {}: the instances would share one port; \
                 remove `port` to give each instance its own (passed as PORT)",
                w.replicas
            ));
        }
        match &w.command {
            Some(Command::Argv(argv)) if argv.is_empty() || argv[0].is_empty() => {
                errors.push(format!("{at}: command: an empty argv list"));
            }
            Some(Command::Shell(s)) if s.trim().is_empty() => errors.push(format!("{at}: command: an empty string")),
            _ => {}
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESH: &str = "apiVersion: meshlens.io/v1alpha1
kind: Mesh
metadata: {name: t}
spec:
  namespaces: [prod]
  workloads:
    - name: web
      namespace: prod
      replicas: 2
      command: [meshlens, demo-app, --config, apps/web.conf]
      calls: [api]
    - name: api
      namespace: prod
      command: exec my-api --port $PORT
    - name: legacy
      namespace: prod
  services:
    - {name: web, namespace: prod, workload: web}
    - {name: api, namespace: prod, workload: api, port: 8080}
";

    #[test]
    fn parses_commands_calls_and_external_workloads() {
        let mesh = parse(MESH, "mesh.yaml").unwrap();
        let w = &mesh.spec.workloads;
        assert_eq!(w[0].replicas, 2);
        assert!(matches!(&w[0].command, Some(Command::Argv(a)) if a[0] == "meshlens"));
        assert!(matches!(&w[1].command, Some(Command::Shell(s)) if s.contains("$PORT")));
        assert!(w[2].command.is_none(), "no command: external");
        assert_eq!(w[0].calls, ["api"]);
    }

    #[test]
    fn a_fixed_port_with_replicas_is_refused_with_the_place() {
        let text = MESH.replace("      calls: [api]\n", "      calls: [api]\n      port: 8080\n");
        let e = parse(&text, "m/mesh.yaml").unwrap_err().to_string();
        assert!(e.contains("m/mesh.yaml: spec.workloads[0] (web): port 8080 with replicas 2"), "{e}");
    }

    #[test]
    fn yaml_errors_name_file_and_line() {
        let e = parse("kind: Mesh\nspec:\n  workloads: 3\n", "x/mesh.yaml").unwrap_err().to_string();
        assert!(e.starts_with("x/mesh.yaml:"), "{e}");
    }
}
