//! Starting a proxy: read discovery, bind every listener through [`Bind`], spawn the accept loops, and
//! stop them gracefully. Returns the bound addresses, so port 0 works everywhere.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::admin::{self, Admin};
use crate::config::Config;
use crate::control::ControlClient;
use crate::ctx::Ctx;
use crate::discovery::{self, Discovery};
use crate::inbound_routes::InboundRoutes;
use crate::listen::{Bind, accept_loop};
use crate::log::LogLevel;
use crate::metrics::{LabelSet, Registry};
use crate::shared::with_target;
use crate::shutdown::DrainController;
use crate::{inbound, outbound, targets};

/// The addresses the proxy actually listens on (after port 0 was resolved).
#[derive(Clone, Debug, Serialize)]
pub struct Listen {
    pub outbound: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub tap: SocketAddr,
    /// Upstream listeners, keyed by the service as given in `--upstream`.
    pub upstreams: BTreeMap<String, SocketAddr>,
}

/// Why the proxy could not start. Each message names the flag or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Discovery(#[from] discovery::FileError),
    #[error("cannot listen on {flag} {addr}: {source}")]
    Bind { flag: String, addr: SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Config(String),
}

/// A running proxy. Dropping it stops its listeners at once; [`Proxy::shutdown`] drains gracefully.
pub struct Proxy {
    listen: Listen,
    ctx: Arc<Ctx>,
    controller: Option<DrainController>,
    tasks: Vec<JoinHandle<()>>,
}

impl Proxy {
    pub fn listen(&self) -> &Listen {
        &self.listen
    }

    /// The one-line JSON start-up message (`{"message":"listening",…}`).
    pub fn listening_message(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            message: &'static str,
            outbound: SocketAddr,
            inbound: Option<SocketAddr>,
            admin: SocketAddr,
            tap: SocketAddr,
            upstreams: &'a BTreeMap<String, SocketAddr>,
        }
        let l = &self.listen;
        serde_json::to_string(&Line {
            message: "listening",
            outbound: l.outbound,
            inbound: l.inbound,
            admin: l.admin,
            tap: l.tap,
            upstreams: &l.upstreams,
        })
        .unwrap_or_default()
    }

    pub fn registry(&self) -> &Registry {
        &self.ctx.registry
    }

    /// Stops accepting, lets in-flight requests finish within the grace period, then returns.
    /// Returns whether everything finished in time.
    pub async fn shutdown(mut self) -> bool {
        let grace = self.ctx.config.timeouts.shutdown_grace;
        let Some(controller) = self.controller.take() else {
            return true;
        };
        let finished = controller.drain(grace).await;
        for t in self.tasks.drain(..) {
            t.abort();
        }
        finished
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts a proxy with `config`, binding its listeners through `bind`.
pub async fn start(config: Config, log: Arc<dyn LogLevel>, bind: &dyn Bind) -> Result<Proxy, StartError> {
    if config.inbound.is_some() && config.app.is_none() {
        return Err(StartError::Config("--inbound needs --app: the address of the local application".into()));
    }
    let snapshot = match &config.discovery {
        Some(path) => discovery::read_file(path)?,
        None => meshlens_api::Snapshot::default(),
    };
    if config.control.is_some() && config.workload.is_none() {
        return Err(StartError::Config("--control needs --workload: the workload this proxy serves".into()));
    }
    let config = Arc::new(config);
    let registry = Registry::new();
    let discovery = Arc::new(Discovery::new(snapshot));
    log.events().register(&registry);
    let ctx = Arc::new(Ctx::new(config.clone(), discovery.clone(), registry));
    let (controller, drain) = DrainController::new();

    let bind_one = |flag: &str, addr: SocketAddr| {
        bind.bind(addr).map_err(|source| StartError::Bind { flag: flag.to_string(), addr, source })
    };
    let outbound_l = bind_one("--outbound", config.outbound)?;
    let inbound_l = match config.inbound {
        Some(a) => Some(bind_one("--inbound", a)?),
        None => None,
    };
    let admin_l = bind_one("--admin", config.admin)?;
    let tap_l = bind_one("--tap", config.tap)?;
    let mut upstream_ls = Vec::new();
    for u in &config.upstreams {
        upstream_ls.push((u.service.clone(), bind_one(&format!("--upstream {}", u.service), u.listen)?));
    }
    let local = |l: &tokio::net::TcpListener| l.local_addr().expect("bound listener has an address");
    let listen = Listen {
        outbound: local(&outbound_l),
        inbound: inbound_l.as_ref().map(local),
        admin: local(&admin_l),
        tap: local(&tap_l),
        upstreams: upstream_ls.iter().map(|(s, l)| (s.clone(), local(l))).collect(),
    };
    let mut loop_addrs = vec![listen.outbound];
    loop_addrs.extend(listen.upstreams.values().copied());
    ctx.set_local_addrs(loop_addrs);

    let accepted = |direction: &str, addr: SocketAddr| {
        ctx.tcp_metrics.target(
            with_target(LabelSet::new().with("direction", direction).with("peer", "src"), Some(addr))
                .with("tls", "disabled"),
        )
    };
    let mut tasks = Vec::new();
    {
        let ctx2 = ctx.clone();
        let m = accepted("outbound", listen.outbound);
        tasks.push(tokio::spawn(accept_loop(outbound_l, drain.clone(), m, move |io, peer, d| {
            outbound::serve_conn(ctx2.clone(), io, peer, None, d)
        })));
    }
    for (service, l) in upstream_ls {
        let ctx2 = ctx.clone();
        let m = accepted("outbound", local(&l));
        tasks.push(tokio::spawn(accept_loop(l, drain.clone(), m, move |io, peer, d| {
            outbound::serve_conn(ctx2.clone(), io, peer, Some(service.clone()), d)
        })));
    }
    let inbound_routes = InboundRoutes::new(&ctx);
    if let (Some(l), Some(app)) = (inbound_l, config.app) {
        let ctx2 = ctx.clone();
        let app = targets::app_target(&ctx, app);
        let routes = inbound_routes.clone();
        let m = accepted("inbound", local(&l));
        tasks.push(tokio::spawn(accept_loop(l, drain.clone(), m, move |io, peer, d| {
            inbound::serve_conn(ctx2.clone(), app.clone(), routes.clone(), io, peer, d)
        })));
    }
    // Discovery updates reach the balancers already in use and the inbound route tables at once.
    let mut changed = discovery.subscribe();
    let refresh_ctx = ctx.clone();
    tasks.push(tokio::spawn(async move {
        while changed.changed().await.is_ok() {
            refresh_ctx.targets.refresh(&refresh_ctx);
            inbound_routes.refresh(&refresh_ctx);
        }
    }));
    // Ready at once with a discovery file; with a control plane, once its first snapshot arrived (before
    // it, the proxy knows no service).
    let ready = match &config.control {
        None => Arc::new(std::sync::atomic::AtomicBool::new(true)),
        Some(url) => {
            let credential = config.control_credential.clone();
            let reg = registration(&config, &listen);
            let client = ControlClient::new(url, reg, credential, discovery.clone(), ctx.observers.clone())
                .map_err(|e| StartError::Config(format!("--control: {e}")))?;
            let client = Arc::new(client);
            let synced = client.synced.clone();
            tokio::spawn(client.run(drain.clone()));
            synced
        }
    };
    let admin = Arc::new(Admin { ctx: ctx.clone(), listen: listen.clone(), log, ready });
    let m = accepted("admin", listen.admin);
    tasks.push(tokio::spawn(accept_loop(admin_l, drain.clone(), m, move |io, peer, d| {
        admin::serve_conn(admin.clone(), io, peer, d)
    })));
    let m = accepted("tap", listen.tap);
    let settings = ctx.server.clone();
    let observers = ctx.observers.clone();
    tasks.push(tokio::spawn(accept_loop(tap_l, drain.clone(), m, move |io, peer, d| {
        crate::tap::server::serve_conn(observers.clone(), settings.clone(), io, peer, d)
    })));
    drop(drain);
    Ok(Proxy { listen, ctx, controller: Some(controller), tasks })
}

/// What this proxy tells the control plane about itself.
fn registration(config: &Config, listen: &Listen) -> meshlens_api::control::Registration {
    let workload = config.workload.clone().unwrap_or_default();
    meshlens_api::control::Registration {
        instance: config.instance.clone().unwrap_or_else(|| format!("{workload}-0")),
        workload,
        namespace: config.namespace.clone(),
        inbound: listen.inbound,
        admin: listen.admin,
        tap: listen.tap,
        app: config.app,
        labels: Default::default(),
    }
}
