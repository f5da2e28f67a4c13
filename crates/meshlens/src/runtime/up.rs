//! The `up` sequence: read the mesh directory, choose every port, start the control plane, write the
//! session file, start every proxy (and wait until each listens), start every app, print the table,
//! then supervise until SIGINT/SIGTERM/SIGHUP and stop everything gracefully.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use meshlens_api::mesh::Mesh;
use meshlens_control::auth::ProxyKey;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::output::Output;
use super::plan::{self, ControlChoice, Plan, PlanInput};
use super::reaper::Reaper;
use super::reconcile::Reconciler;
use super::secrets::{Secrets, read_secret};
use super::session::{self, Session, SessionFile};
use super::supervisor::Supervisor;

/// Text to print after the table, made from the plan.
pub type Guide = Box<dyn FnOnce(&Plan) -> String>;

/// What `meshlens up` (and `demo`) run with.
pub struct UpOptions {
    pub mesh_dir: PathBuf,
    pub control: ControlChoice,
    /// The namespace of mesh documents that name none (else the mesh's first namespace).
    pub namespace: Option<String>,
    /// With an external control plane: its proxy key and API token (files).
    pub proxy_key_file: Option<PathBuf>,
    pub api_token_file: Option<PathBuf>,
    /// Write each process's output to `DIR/<name>.log` instead of the terminal.
    pub log_dir: Option<PathBuf>,
    /// With `log_dir`: processes whose output still goes to the terminal too.
    pub echo: Vec<String>,
    /// How long each stage (apps, proxies, control plane) may take to exit after SIGTERM.
    pub stop_grace: Duration,
    /// How long the control plane and each proxy may take to print their listening line.
    pub ready_timeout: Duration,
    /// Text printed after the table (the demo's guide), given the plan.
    pub guide: Option<Guide>,
}

/// Runs a mesh directory until a signal; exit code 0 after a clean stop, 2 when it could not start.
pub fn run(opts: UpOptions) -> anyhow::Result<ExitCode> {
    let mesh_dir = std::path::absolute(&opts.mesh_dir)
        .with_context(|| format!("{}: cannot resolve the path", opts.mesh_dir.display()))?;
    let mesh = super::mesh::load(&mesh_dir)?;
    let exe = std::env::current_exe().context("cannot find the meshlens executable")?;
    if let Some(dir) = &opts.log_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    }
    let secrets = session_secrets(&opts)?;
    let plan = plan::build(PlanInput {
        mesh: &mesh,
        mesh_dir: &mesh_dir,
        exe: &exe,
        control: opts.control.clone(),
        namespace: opts.namespace.as_deref(),
        supervisor_pid: std::process::id(),
        secrets: &secrets,
    });
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            secrets.remove();
            return Err(e);
        }
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let result = runtime.block_on(supervise(mesh, mesh_dir, plan, opts));
    secrets.remove();
    result
}

/// This session's secrets directory: a new key and API token for a control plane `up` starts, the given
/// ones for an external control plane (none given: its proxies get no credential).
fn session_secrets(opts: &UpOptions) -> anyhow::Result<Secrets> {
    let base = session::state_dir().unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("run-{}", std::process::id()));
    let (key, token) = match &opts.control {
        ControlChoice::Start { .. } => (Some(ProxyKey::generate()), Some(meshlens_control::auth::new_token())),
        ControlChoice::External(_) => {
            let key = opts.proxy_key_file.as_deref().map(read_secret).transpose()?;
            let key = key.map(|k| ProxyKey::from_hex(&k)).transpose().map_err(anyhow::Error::msg)?;
            (key, opts.api_token_file.as_deref().map(read_secret).transpose()?)
        }
    };
    Secrets::create(dir, key, token.as_deref())
}

async fn supervise(mesh: Mesh, mesh_dir: PathBuf, plan: Plan, mut opts: UpOptions) -> anyhow::Result<ExitCode> {
    let log_dir = opts.log_dir.as_ref().map(std::path::absolute).transpose()?;
    let out = Output::new(Output::auto_color(), log_dir, opts.echo.clone());
    out.set_width(plan.specs().map(|s| s.name.len()).max().unwrap_or(2).max(2));
    let reaper = match std::env::current_exe().and_then(|exe| Reaper::start(&exe)) {
        Ok(r) => Some(std::sync::Arc::new(r)),
        Err(e) => {
            out.say(&format!("warning: no watchdog ({e}): if up is killed, its processes stay"));
            None
        }
    };
    let sup = Supervisor::new(out.clone(), reaper.clone());
    let finish = || {
        if let Some(r) = &reaper {
            r.finish();
        }
    };
    let mut signals = Signals::new()?;
    let grace = opts.stop_grace;
    let t0 = Instant::now();
    let guide = opts.guide.take();

    let mut watcher = None;
    let startup = start(&sup, &mesh, &mesh_dir, &plan, &opts, t0, guide);
    let outcome = tokio::select! {
        r = startup => r.map(|session| (session, None)),
        sig = signals.recv() => Ok((None, Some(sig))),
    };
    let (session, early) = match outcome {
        Ok((session, None)) => {
            // Follow mesh.yaml: scaled, added, removed or changed workloads.
            let r =
                Reconciler::new(sup.clone(), &mesh, &plan.instances, plan.context.clone(), grace, opts.ready_timeout);
            watcher = Some(tokio::spawn(r.watch()));
            (session, None)
        }
        Ok(v) => v,
        Err(e) => {
            out.say(&format!("{e:#}"));
            out.say("stopping what was started");
            sup.stop_all(grace).await;
            finish();
            return Ok(ExitCode::from(1));
        }
    };
    let sig = match early {
        Some(sig) => sig,
        None => signals.recv().await,
    };
    if let Some(w) = watcher.take() {
        w.abort();
    }
    out.say(&format!(
        "{sig}: stopping apps, then proxies, then the control plane (SIGKILL after {} s; again to kill now)",
        grace.as_secs()
    ));
    // A second signal kills at once; one arriving together with the first (a signal sent both to the
    // process and to its group, as `timeout` and some supervisors do) is the same request, not a second.
    let first = tokio::time::Instant::now();
    let again = async {
        loop {
            let sig = signals.recv().await;
            if first.elapsed() >= Duration::from_millis(200) {
                return sig;
            }
        }
    };
    tokio::select! {
        _ = sup.stop_all(grace) => {}
        sig = again => {
            out.say(&format!("{sig} again: killing everything"));
            sup.kill_all();
            sup.stop_all(Duration::from_secs(1)).await;
        }
    }
    finish();
    if let Some(s) = &session {
        s.remove();
    }
    out.say("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts everything; returns the session file (removed when dropped).
async fn start(
    sup: &std::sync::Arc<Supervisor>,
    mesh: &Mesh,
    mesh_dir: &Path,
    plan: &Plan,
    opts: &UpOptions,
    t0: Instant,
    guide: Option<Guide>,
) -> anyhow::Result<Option<SessionFile>> {
    let out = sup.output().clone();
    out.say(&format!(
        "mesh directory {}: {} workloads, {} instances",
        mesh_dir.display(),
        mesh.spec.workloads.len(),
        plan.instances.len()
    ));
    if let Some(dir) = out.log_dir() {
        out.say(&format!("process output goes to {}/<name>.log (e.g. tail -f {0}/*.log)", dir.display()));
    }
    match &plan.control {
        Some(spec) => {
            let started = sup.start(spec.clone(), opts.ready_timeout).await.map_err(|e| {
                anyhow::anyhow!("{e}: the control plane did not start{}", where_output(&out, &spec.name))
            })?;
            let api = started.listening.as_ref().and_then(|l| l.get("api")).and_then(|a| a.as_str());
            let url = api.map_or_else(|| plan.control_url.clone(), |a| format!("http://{a}"));
            if url != plan.control_url {
                out.say(&format!("warning: the control plane says it listens at {url}, not {}", plan.control_url));
            }
            out.say(&format!("control plane listening at {url} (pid {})", started.pid));
        }
        None => {
            out.say(&format!("using the control plane at {}", plan.control_url));
            if plan.context.secrets.proxy_key_file().is_none() {
                out.say("note: without --proxy-key-file the proxies have no credential, and a meshlens control refuses them");
            }
        }
    }

    let session = match session::session_path() {
        None => {
            out.say("no session file: neither XDG_STATE_HOME nor HOME is set (use --control with the CLI)");
            None
        }
        Some(path) => {
            let token = plan.context.secrets.api_token_file.as_deref().map(read_secret).transpose()?;
            let s = Session {
                token,
                control: plan.control_url.clone(),
                pid: std::process::id(),
                mesh_dir: mesh_dir.to_owned(),
                started_at: session::rfc3339(SystemTime::now()),
            };
            match SessionFile::write(&path, &s) {
                Ok((file, previous)) => {
                    if let Some(p) = previous {
                        out.say(&format!(
                            "note: meshlens up pid {} ({}) was using {}; this session takes it over",
                            p.pid,
                            p.control,
                            path.display()
                        ));
                    }
                    Some(file)
                }
                Err(e) => {
                    out.say(&format!("cannot write the session file: {e:#}"));
                    None
                }
            }
        }
    };

    // External instances' proxies are started by the user, like their apps (the table says how).
    let managed: Vec<_> = plan.instances.iter().filter(|i| !i.external()).collect();
    let proxies = managed.iter().map(|i| sup.start(i.proxy_spec.clone(), opts.ready_timeout));
    for (r, i) in futures_util::future::join_all(proxies).await.into_iter().zip(&managed) {
        r.map_err(|e| anyhow::anyhow!("{e}{}", where_output(&out, &i.proxy_spec.name)))?;
    }
    out.say(&format!("{} proxies listening", managed.len()));
    let mut apps = 0;
    for spec in plan.instances.iter().filter_map(|i| i.app_spec.clone()) {
        sup.start(spec, opts.ready_timeout).await?;
        apps += 1;
    }
    out.say(&format!("{apps} apps started"));
    out.raw(&table(mesh, plan));
    if let Some(guide) = guide {
        out.raw(&guide(plan));
    }
    let ready_timeout = opts.ready_timeout;
    let app_addrs: Vec<_> = plan.instances.iter().filter(|i| !i.external()).map(|i| (i.name.clone(), i.app)).collect();
    tokio::spawn(report_ready(out, app_addrs, t0, ready_timeout));
    Ok(session)
}

/// Where a process's output is, for an error message: above, or (with a log directory) the last lines
/// of its log file, quoted.
fn where_output(out: &Output, name: &str) -> String {
    let Some(file) = out.log_file(name) else { return " (its output is above)".into() };
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].iter().map(|l| format!("\n  {l}")).collect::<String>();
    format!(" ({}; its last lines:){tail}", file.display())
}

/// Says when every app accepts connections on its port (or which ones don't, after `within`).
async fn report_ready(out: Output, apps: Vec<(String, std::net::SocketAddr)>, t0: Instant, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let waits = apps.iter().map(|(name, addr)| async move {
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return None;
            }
            if tokio::time::Instant::now() >= deadline {
                return Some(name.clone());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let late: Vec<String> = futures_util::future::join_all(waits).await.into_iter().flatten().collect();
    if late.is_empty() {
        out.say(&format!(
            "all {} apps accept connections ({:.1} s after start)",
            apps.len(),
            t0.elapsed().as_secs_f64()
        ));
    } else {
        out.say(&format!(
            "not accepting connections on their PORT after {} s: {} (still supervised)",
            within.as_secs(),
            late.join(", ")
        ));
    }
}

/// The table of what runs where, and how to reach it.
pub fn table(mesh: &Mesh, plan: &Plan) -> String {
    let mut rows = vec![["INSTANCE", "APP", "INBOUND", "OUTBOUND", "ADMIN", "UPSTREAMS"].map(String::from).to_vec()];
    for i in &plan.instances {
        let ups = i.upstreams.iter().map(|u| format!("{}={}", u.call, u.addr)).collect::<Vec<_>>().join(",");
        let app = if i.external() { format!("{} (external)", i.app) } else { i.app.to_string() };
        rows.push(vec![
            format!("{}/{}", i.namespace, i.name),
            app,
            i.inbound.to_string(),
            i.outbound.to_string(),
            i.admin.to_string(),
            if ups.is_empty() { "-".into() } else { ups },
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut s = String::from("\n");
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    let _ = writeln!(s, "\nReach the mesh:");
    let _ = writeln!(s, "  control plane     {}", plan.control_url);
    let _ = writeln!(s, "  dashboard         meshlens dashboard   (prints a login link to {}/)", plan.control_url);
    if let Some(path) = session::session_path() {
        let _ = writeln!(s, "  session file      {} (the meshlens CLI finds the control plane there)", path.display());
    }
    if let (Some(first), Some(svc)) = (plan.instances.iter().find(|i| !i.external()), mesh.spec.services.first()) {
        let authority = if svc.port == 80 { svc.name.clone() } else { format!("{}:{}", svc.name, svc.port) };
        let _ = writeln!(
            s,
            "  through a proxy   curl -x http://{} http://{authority}/   (every OUTBOUND is an HTTP proxy into the mesh)",
            first.outbound
        );
        let _ = writeln!(s, "  an app directly   curl http://{}/   (bypasses the mesh)", first.app);
        let _ = writeln!(s, "  proxy metrics     curl http://{}/metrics", first.admin);
    }
    let _ = writeln!(s, "  stop              Ctrl-C, or kill -TERM {}", std::process::id());
    for i in plan.instances.iter().filter(|i| i.external()) {
        let _ = writeln!(
            s,
            "\nExternal instance {}/{}: start the app on {} (PORT={}, HTTP_PROXY=http://{}), then its proxy:\n  meshlens {}",
            i.namespace,
            i.name,
            i.app,
            i.app.port(),
            i.outbound,
            i.proxy_spec.args.join(" ")
        );
    }
    s
}

/// SIGINT, SIGTERM and SIGHUP all mean: stop.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}
