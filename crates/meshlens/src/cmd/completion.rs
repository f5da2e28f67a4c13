//! `meshlens completion bash|zsh|fish`: the shell completion script, generated from the command tree.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use clap_complete::Shell;

/// Print the completion script of a shell (commands, flags, and their values where they are a fixed list).
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: CompletionShell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: CompletionArgs) -> anyhow::Result<ExitCode> {
    print!("{}", script(args.shell));
    Ok(ExitCode::SUCCESS)
}

fn script(shell: CompletionShell) -> String {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut super::command(), "meshlens", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scripts are golden files (`UPDATE_GOLDEN=1` rewrites them): a change to the command
    /// tree shows up in review as the completion change users get.
    #[test]
    fn scripts_match_the_golden_files() {
        for (shell, name) in [
            (CompletionShell::Bash, "meshlens.bash"),
            (CompletionShell::Zsh, "_meshlens.zsh"),
            (CompletionShell::Fish, "meshlens.fish"),
        ] {
            let text = script(shell);
            for word in ["stat", "prometheus-config", "namespace", "all-namespaces", "completion"] {
                assert!(text.contains(word), "{name} completes {word}");
            }
            meshlens_testkit::assert_golden(
                format!("{}/tests/testdata/completion/{name}", env!("CARGO_MANIFEST_DIR")),
                &text,
            );
        }
    }
}
