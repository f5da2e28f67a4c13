//! `meshlens up -f DIR`: run a mesh directory on this machine (control plane, apps, sidecar proxies).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::runtime::plan::ControlChoice;
use crate::runtime::up::{self, UpOptions};

/// Run a mesh directory on this machine: the control plane, then for every workload instance its sidecar
/// proxy and its app, wired together on loopback.
///
/// Every instance gets fixed loopback ports (app, proxy inbound/outbound/admin/tap, one upstream listener
/// per `calls` entry), so a restarted process keeps its addresses. Apps get PORT, HTTP_PROXY (their
/// proxy's outbound listener), MESHLENS_UPSTREAM_<SERVICE>, MESHLENS_WORKLOAD, MESHLENS_NAMESPACE,
/// MESHLENS_INSTANCE, MESHLENS_CONTROL and the workload's env. Each proxy gets a credential for its
/// instance, and the CLI an API token in the session file, both as private files (docs/security.md).
/// Output lines are prefixed with the process's name. A crashed process is restarted with backoff. Ctrl-C or SIGTERM stops everything
/// (SIGTERM, then SIGKILL after the grace period) and exits 0.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// The mesh directory: mesh.yaml plus ServiceProfile/TrafficSplit *.yaml files.
    #[arg(short = 'f', long = "file", value_name = "DIR")]
    pub dir: PathBuf,
    /// The namespace of documents that name none, as kubectl's -n [default: the mesh's first namespace].
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Flags shared by `up` and `demo`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Port of the control plane on 127.0.0.1 [default: 8086 when free, else any free port; 0: any].
    #[arg(long, value_name = "PORT", conflicts_with = "control")]
    pub control_port: Option<u16>,
    /// Use a control plane that is already running instead of starting one.
    #[arg(long, value_name = "URL")]
    pub control: Option<String>,
    /// With --control: the key that control plane checks proxy credentials with (`meshlens control`
    /// says where it wrote it); each proxy gets a credential minted with it.
    #[arg(long, value_name = "FILE", requires = "control")]
    pub proxy_key_file: Option<PathBuf>,
    /// With --control: that control plane's API token, written into the session file for the CLI.
    #[arg(long, value_name = "FILE", requires = "control")]
    pub api_token_file: Option<PathBuf>,
    /// Write each process's output to DIR/<name>.log instead of the terminal.
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Seconds each stage (apps, proxies, control plane) may take to exit after SIGTERM before SIGKILL.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub stop_grace: u64,
    /// Seconds the control plane and each proxy may take to start listening.
    #[arg(long, value_name = "SECS", default_value_t = 30, hide = true)]
    pub ready_timeout: u64,
}

impl RunArgs {
    pub fn options(&self, mesh_dir: PathBuf) -> UpOptions {
        UpOptions {
            mesh_dir,
            control: match &self.control {
                Some(url) => ControlChoice::External(url.clone()),
                None => ControlChoice::Start { port: self.control_port },
            },
            namespace: None,
            proxy_key_file: self.proxy_key_file.clone(),
            api_token_file: self.api_token_file.clone(),
            log_dir: self.log_dir.clone(),
            echo: vec![],
            stop_grace: Duration::from_secs(self.stop_grace),
            ready_timeout: Duration::from_secs(self.ready_timeout.max(1)),
            guide: None,
        }
    }
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let mut opts = args.run.options(args.dir);
    opts.namespace = args.namespace;
    up::run(opts)
}
