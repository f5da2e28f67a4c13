//! The command line: one module per subcommand.

pub mod control;
pub mod proxy;

use clap::{Parser, Subcommand};

/// meshlens: a service mesh that makes traffic between services debuggable.
#[derive(Parser, Debug)]
#[command(name = "meshlens", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process: the size does not matter
pub enum Command {
    /// Run the sidecar proxy in front of one workload instance.
    Proxy(proxy::ProxyArgs),
    /// Run the control plane on a mesh directory.
    Control(control::ControlArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Proxy(args) => proxy::run(args),
        Command::Control(args) => control::run(args),
    }
}
