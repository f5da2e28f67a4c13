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
            let path = format!("{}/tests/testdata/completion/{name}", env!("CARGO_MANIFEST_DIR"));
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(text == expected, "{name} differs from {path}; UPDATE_GOLDEN=1 rewrites it");
        }
    }
}
