//! The `meshlens` binary: one executable for the proxy, the control plane, the local runtime and the CLI.

mod cmd;
mod profilegen;
mod runtime;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("meshlens: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
