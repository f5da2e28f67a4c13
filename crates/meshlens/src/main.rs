//! The `meshlens` binary: one executable for the proxy, the control plane, the local runtime and the CLI.

mod cmd;
mod profilegen;
mod runtime;

/// Exit status: 0 on success, 1 on an error (as Linkerd's CLI), 2 on a usage error (clap's), and what a
/// command documents otherwise (`diagnose --fail-on`: 3).
fn main() -> std::process::ExitCode {
    let cli = cmd::parse(std::env::args_os());
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("meshlens: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
