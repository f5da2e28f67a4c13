//! The processes `up` runs for a mesh, decided once: names, argv, env, working directory and ports.
//!
//! Pure apart from choosing ports, so the wiring (which env var points where) is unit-tested here.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use meshlens_api::mesh::{Command, Mesh};

use super::ports::PortPicker;
use super::secrets::Secrets;

/// The control plane port `up` prefers (the CLI's default control URL).
pub const DEFAULT_CONTROL_PORT: u16 = 8086;

/// Stop order: apps first (no new calls), then their proxies, then the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    App,
    Proxy,
    Control,
}

/// One process to run (and to run again with the same argv/env when it crashes).
#[derive(Clone, Debug)]
pub struct ProcSpec {
    /// `control`, `frontend-0`, `frontend-0/proxy`.
    pub name: String,
    pub role: Role,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to (and overriding) the supervisor's environment.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Started means: printed a `{"message":"listening",…}` stdout line (control plane, proxies).
    pub wait_listening: bool,
}

/// A local upstream listener of one instance's proxy, for one entry of the workload's `calls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// As written in `calls` (`order-service`, `users.prod:8080`).
    pub call: String,
    /// `MESHLENS_UPSTREAM_ORDER_SERVICE`.
    pub env: String,
    pub addr: SocketAddr,
}

/// One workload instance: its addresses and its two processes.
#[derive(Clone, Debug)]
pub struct Instance {
    pub workload: String,
    pub namespace: String,
    /// `<workload>-<index>`.
    pub name: String,
    pub app: SocketAddr,
    pub inbound: SocketAddr,
    pub outbound: SocketAddr,
    pub admin: SocketAddr,
    pub upstreams: Vec<Upstream>,
    /// None: an external workload (the user starts the app).
    pub app_spec: Option<ProcSpec>,
    pub proxy_spec: ProcSpec,
}

impl Instance {
    pub fn external(&self) -> bool {
        self.app_spec.is_none()
    }
}

/// Where the control plane comes from.
#[derive(Clone, Debug)]
pub enum ControlChoice {
    /// Start `meshlens control` on this port (None: 8086 if free, else any; Some(0): any free port).
    Start { port: Option<u16> },
    /// Use a control plane that is already running.
    External(String),
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub control_url: String,
    /// For instances added later (a workload scaled up while `up` runs).
    pub context: InstanceContext,
    /// The control plane process (absent with an external control plane).
    pub control: Option<ProcSpec>,
    pub instances: Vec<Instance>,
}

impl Plan {
    /// Every process `up` runs, control plane first (external instances' proxies are the user's).
    pub fn specs(&self) -> impl Iterator<Item = &ProcSpec> {
        let managed = self.instances.iter().filter(|i| !i.external());
        self.control.iter().chain(managed.flat_map(|i| std::iter::once(&i.proxy_spec).chain(&i.app_spec)))
    }
}

/// Inputs of [`build`].
pub struct PlanInput<'a> {
    pub mesh: &'a Mesh,
    /// Absolute: apps run in it, relative paths in commands resolve against it.
    pub mesh_dir: &'a Path,
    /// The `meshlens` executable (argv[0] `meshlens` of a command means this one).
    pub exe: &'a Path,
    pub control: ControlChoice,
    /// The namespace of mesh documents that name none (the started control plane's `--namespace`).
    pub namespace: Option<&'a str>,
    /// This process, so `meshlens` children can notice when it is gone.
    pub supervisor_pid: u32,
    /// Where the control plane's key and token are, and each proxy's credential goes.
    pub secrets: &'a Secrets,
}

/// Chooses every port and builds every process. Ports are released before returning.
pub fn build(input: PlanInput<'_>) -> anyhow::Result<Plan> {
    let mut ports = PortPicker::new();
    let (control_url, control) = match &input.control {
        ControlChoice::External(url) => (url.trim_end_matches('/').to_owned(), None),
        ControlChoice::Start { port } => {
            let addr = match port {
                None if PortPicker::is_free(DEFAULT_CONTROL_PORT) => ports.reserve(DEFAULT_CONTROL_PORT),
                None => ports.pick(),
                Some(p) => ports.reserve(*p),
            }
            .with_context(|| format!("cannot bind the control plane port 127.0.0.1:{}", port.unwrap_or(0)))?;
            let mut args = vec![
                "control".into(),
                "--mesh-dir".into(),
                input.mesh_dir.display().to_string(),
                "--listen".into(),
                addr.to_string(),
            ];
            if let Some(ns) = input.namespace {
                args.extend(["--namespace".to_string(), ns.to_string()]);
            }
            let files = [
                ("--proxy-key-file", input.secrets.proxy_key_file()),
                ("--api-token-file", input.secrets.api_token_file.clone()),
            ];
            for (flag, file) in files {
                if let Some(file) = file {
                    args.extend([flag.to_string(), file.display().to_string()]);
                }
            }
            let spec = ProcSpec {
                name: "control".into(),
                role: Role::Control,
                program: input.exe.to_owned(),
                args,
                env: vec![],
                cwd: input.mesh_dir.to_owned(),
                wait_listening: true,
            };
            (format!("http://{addr}"), Some(spec))
        }
    };

    let ctx = InstanceContext {
        control_url: control_url.clone(),
        mesh_dir: input.mesh_dir.to_owned(),
        exe: input.exe.to_owned(),
        supervisor_pid: input.supervisor_pid,
        secrets: input.secrets.clone(),
    };
    let mut instances = Vec::new();
    for w in &input.mesh.spec.workloads {
        for index in 0..w.replicas {
            instances.push(instance(w, index, &ctx, &mut ports)?);
        }
    }
    ports.release();
    Ok(Plan { control_url, context: ctx, control, instances })
}

/// What every instance of a mesh shares.
#[derive(Clone, Debug)]
pub struct InstanceContext {
    pub control_url: String,
    pub mesh_dir: PathBuf,
    pub exe: PathBuf,
    pub supervisor_pid: u32,
    pub secrets: Secrets,
}

/// One instance of a workload: its ports (from `ports`) and its processes.
pub fn instance(
    w: &meshlens_api::mesh::Workload,
    index: u32,
    ctx: &InstanceContext,
    ports: &mut PortPicker,
) -> anyhow::Result<Instance> {
    let upstream_envs = upstream_env_names(&w.calls);
    let path_env = path_with(&ctx.exe);
    let control_url = &ctx.control_url;
    let name = format!("{}-{index}", w.name);
    let app = match w.port {
        Some(p) if p != 0 => ports
            .reserve(p)
            .with_context(|| format!("workload {}: port {p} is in use (remove `port` to let up choose one)", w.name))?,
        _ => ports.pick()?,
    };
    let (inbound, outbound, admin, tap) = (ports.pick()?, ports.pick()?, ports.pick()?, ports.pick()?);
    let mut upstreams = Vec::new();
    for (call, env) in w.calls.iter().zip(&upstream_envs) {
        upstreams.push(Upstream { call: call.clone(), env: env.clone(), addr: ports.pick()? });
    }
    let mut args = vec![
        "proxy".to_owned(),
        "--control".into(),
        control_url.to_owned(),
        "--workload".into(),
        w.name.clone(),
        "--namespace".into(),
        w.namespace.clone(),
        "--instance".into(),
        name.clone(),
        "--inbound".into(),
        inbound.to_string(),
        "--app".into(),
        app.to_string(),
        "--outbound".into(),
        outbound.to_string(),
        "--admin".into(),
        admin.to_string(),
        "--tap".into(),
        tap.to_string(),
    ];
    for u in &upstreams {
        args.push("--upstream".into());
        args.push(format!("{}={}", u.call, u.addr));
    }
    // Secrets go in files, never in argv: the instance's credential, and the user's API token as the
    // admin token (PUT /log-level).
    let files = [
        ("--credential-file", ctx.secrets.credential(&w.namespace, &w.name, &name)?),
        ("--admin-token-file", ctx.secrets.api_token_file.clone()),
    ];
    for (flag, file) in files {
        if let Some(file) = file {
            args.extend([flag.to_string(), file.display().to_string()]);
        }
    }
    let proxy_spec = ProcSpec {
        name: format!("{name}/proxy"),
        role: Role::Proxy,
        program: ctx.exe.clone(),
        args,
        env: vec![],
        cwd: ctx.mesh_dir.clone(),
        wait_listening: true,
    };
    let app_spec = w.command.as_ref().map(|command| {
        let mut env = vec![
            ("PORT".to_owned(), app.port().to_string()),
            ("HTTP_PROXY".into(), format!("http://{outbound}")),
            ("http_proxy".into(), format!("http://{outbound}")),
            ("NO_PROXY".into(), "localhost,127.0.0.1".into()),
            ("no_proxy".into(), "localhost,127.0.0.1".into()),
            ("MESHLENS_WORKLOAD".into(), w.name.clone()),
            ("MESHLENS_NAMESPACE".into(), w.namespace.clone()),
            ("MESHLENS_INSTANCE".into(), name.clone()),
            ("MESHLENS_INSTANCE_INDEX".into(), index.to_string()),
            ("MESHLENS_CONTROL".into(), control_url.to_owned()),
            ("MESHLENS_SUPERVISOR_PID".into(), ctx.supervisor_pid.to_string()),
        ];
        if let Some(p) = &path_env {
            env.push(("PATH".into(), p.clone()));
        }
        env.extend(upstreams.iter().map(|u| (u.env.clone(), u.addr.to_string())));
        env.extend(w.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let (program, args) = match command {
            Command::Argv(argv) => {
                let program = if argv[0] == "meshlens" {
                    ctx.exe.clone()
                } else if argv[0].contains('/') {
                    ctx.mesh_dir.join(&argv[0])
                } else {
                    PathBuf::from(&argv[0])
                };
                (program, argv[1..].to_vec())
            }
            Command::Shell(s) => (PathBuf::from("sh"), vec!["-c".to_owned(), s.clone()]),
        };
        ProcSpec {
            name: name.clone(),
            role: Role::App,
            program,
            args,
            env,
            cwd: ctx.mesh_dir.clone(),
            wait_listening: false,
        }
    });
    Ok(Instance {
        workload: w.name.clone(),
        namespace: w.namespace.clone(),
        name,
        app,
        inbound,
        outbound,
        admin,
        upstreams,
        app_spec,
        proxy_spec,
    })
}

/// `MESHLENS_UPSTREAM_<SERVICE>` for each call: the service's name (before any `.namespace` or `:port`)
/// upper-cased with `-` → `_`; when two calls would get the same name, the later ones get `_<PORT>` (or
/// `_<NAMESPACE>`) appended.
pub fn upstream_env_names(calls: &[String]) -> Vec<String> {
    let mut used = BTreeSet::new();
    calls
        .iter()
        .map(|call| {
            let (host, port) = call.rsplit_once(':').unwrap_or((call, ""));
            let mut labels = host.split('.');
            let name = labels.next().unwrap_or_default();
            let mut env = format!("MESHLENS_UPSTREAM_{}", env_word(name));
            if !used.insert(env.clone()) {
                let extra = if port.is_empty() { labels.next().unwrap_or("2") } else { port };
                env = format!("{env}_{}", env_word(extra));
                used.insert(env.clone());
            }
            env
        })
        .collect()
}

/// Upper-case, every character that can't be in an env var name → `_`.
pub fn env_word(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// `PATH` with the executable's directory first, so a shell command's `meshlens` is this one.
fn path_with(exe: &Path) -> Option<String> {
    let dir = exe.parent()?.to_str()?;
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => Some(format!("{dir}:{p}")),
        _ => Some(format!("{dir}:/usr/local/bin:/usr/bin:/bin")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh() -> Mesh {
        super::super::mesh::parse(
            "apiVersion: meshlens.io/v1alpha1
kind: Mesh
metadata: {name: t}
spec:
  workloads:
    - name: web
      namespace: prod
      replicas: 2
      command: [meshlens, demo-app, --config, apps/web.conf]
      env: {EXTRA: '1', PORT: ignored-by-nobody}
      calls: [api, users.prod:8080]
    - name: api
      namespace: prod
      command: ./bin/api --verbose
    - name: legacy
      namespace: prod
  services:
    - {name: web, namespace: prod, workload: web}
",
            "mesh.yaml",
        )
        .unwrap()
    }

    fn env<'a>(spec: &'a ProcSpec, key: &str) -> Option<&'a str> {
        spec.env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn wires_each_app_to_its_own_sidecar() {
        let mesh = mesh();
        let dir = std::env::temp_dir().join(format!("meshlens-plan-{}", std::process::id()));
        let key = meshlens_control::auth::ProxyKey::generate();
        let secrets = Secrets::create(dir.clone(), Some(key), Some("s3cr3t")).unwrap();
        let plan = build(PlanInput {
            mesh: &mesh,
            mesh_dir: Path::new("/m"),
            exe: Path::new("/bin/dir/meshlens"),
            control: ControlChoice::Start { port: Some(0) },
            namespace: None,
            supervisor_pid: 42,
            secrets: &secrets,
        })
        .unwrap();
        let control = plan.control.as_ref().unwrap();
        assert_eq!(control.args[..3], ["control", "--mesh-dir", "/m"]);
        assert_eq!(plan.control_url, format!("http://{}", control.args[4]));
        let names: Vec<_> = plan.instances.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["web-0", "web-1", "api-0", "legacy-0"]);

        let web1 = &plan.instances[1];
        let app = web1.app_spec.as_ref().unwrap();
        assert_eq!(app.program, Path::new("/bin/dir/meshlens"), "argv[0] meshlens is this executable");
        assert_eq!(app.args, ["demo-app", "--config", "apps/web.conf"]);
        assert_eq!(app.cwd, Path::new("/m"));
        assert_eq!(env(app, "HTTP_PROXY"), Some(format!("http://{}", web1.outbound).as_str()));
        assert_eq!(env(app, "MESHLENS_INSTANCE"), Some("web-1"));
        assert_eq!(env(app, "MESHLENS_INSTANCE_INDEX"), Some("1"));
        assert_eq!(env(app, "MESHLENS_NAMESPACE"), Some("prod"));
        assert_eq!(env(app, "MESHLENS_CONTROL"), Some(plan.control_url.as_str()));
        assert_eq!(env(app, "EXTRA"), Some("1"), "the workload's env");
        assert_eq!(env(app, "PORT"), Some("ignored-by-nobody"), "the workload's env wins");
        assert!(env(app, "PATH").unwrap().starts_with("/bin/dir:"));
        assert_eq!(web1.upstreams[0].env, "MESHLENS_UPSTREAM_API");
        assert_eq!(web1.upstreams[1].env, "MESHLENS_UPSTREAM_USERS");
        assert_eq!(env(app, "MESHLENS_UPSTREAM_USERS"), Some(web1.upstreams[1].addr.to_string().as_str()));

        let proxy = &web1.proxy_spec;
        assert_eq!(proxy.name, "web-1/proxy");
        let arg = |flag: &str| proxy.args.iter().position(|a| a == flag).map(|i| proxy.args[i + 1].clone());
        assert_eq!(arg("--app"), Some(web1.app.to_string()));
        assert_eq!(arg("--inbound"), Some(web1.inbound.to_string()));
        assert_eq!(arg("--instance").as_deref(), Some("web-1"));
        assert_eq!(arg("--control"), Some(plan.control_url.clone()));
        let credential = arg("--credential-file").expect("the proxy gets its credential in a file");
        assert_eq!(credential, dir.join("prod.web-1.credential").display().to_string());
        assert!(std::fs::read_to_string(&credential).unwrap().starts_with("mlp1:prod:web:web-1:"));
        assert_eq!(arg("--admin-token-file"), Some(dir.join("api.token").display().to_string()));
        let control_arg = |flag: &str| control.args.iter().position(|a| a == flag).map(|i| control.args[i + 1].clone());
        assert_eq!(control_arg("--proxy-key-file"), Some(dir.join("proxy.key").display().to_string()));
        assert!(
            proxy.args.iter().chain(&control.args).all(|a| !a.contains("s3cr3t") && !a.starts_with("mlp1")),
            "no secret in argv"
        );
        let ups: Vec<_> = proxy.args.windows(2).filter(|w| w[0] == "--upstream").map(|w| w[1].clone()).collect();
        assert_eq!(
            ups,
            [format!("api={}", web1.upstreams[0].addr), format!("users.prod:8080={}", web1.upstreams[1].addr)]
        );

        let api = plan.instances[2].app_spec.as_ref().unwrap();
        assert_eq!(api.program, Path::new("sh"), "a string command runs with sh -c");
        assert_eq!(api.args, ["-c", "./bin/api --verbose"]);
        assert!(plan.instances[3].external());

        let mut ports: Vec<u16> =
            plan.instances.iter().flat_map(|i| [i.app, i.inbound, i.outbound, i.admin]).map(|a| a.port()).collect();
        let n = ports.len();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), n, "every port is different");
        secrets.remove();
    }

    #[test]
    fn an_external_control_plane_is_not_started() {
        let mesh = mesh();
        let dir = std::env::temp_dir().join(format!("meshlens-plan-ext-{}", std::process::id()));
        let secrets = Secrets::create(dir, None, None).unwrap();
        let plan = build(PlanInput {
            mesh: &mesh,
            mesh_dir: Path::new("/m"),
            exe: Path::new("/x/meshlens"),
            control: ControlChoice::External("http://127.0.0.1:9/".into()),
            namespace: None,
            supervisor_pid: 1,
            secrets: &secrets,
        })
        .unwrap();
        assert!(plan.control.is_none());
        assert_eq!(plan.control_url, "http://127.0.0.1:9");
        assert_eq!(plan.specs().count(), 3 * 2, "web-0, web-1, api-0: app and proxy; legacy-0 is external");
        assert!(plan.instances[0].proxy_spec.args.iter().all(|a| a != "--credential-file"), "no key, no credential");
        secrets.remove();
    }

    #[test]
    fn env_names() {
        let calls: Vec<String> =
            ["order-service", "order-service:8080", "users.prod", "users.dev"].map(String::from).to_vec();
        assert_eq!(
            upstream_env_names(&calls),
            [
                "MESHLENS_UPSTREAM_ORDER_SERVICE",
                "MESHLENS_UPSTREAM_ORDER_SERVICE_8080",
                "MESHLENS_UPSTREAM_USERS",
                "MESHLENS_UPSTREAM_USERS_DEV"
            ]
        );
    }
}
