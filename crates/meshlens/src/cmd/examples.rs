//! The examples every command's `--help` ends with (one table, attached to the clap command tree).

/// `(command path, examples)`: each example line is a complete command line, checked by the tests.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("proxy", &["meshlens proxy --outbound 127.0.0.1:4140 --discovery discovery.yaml"]),
    ("control", &["meshlens control --mesh-dir ./mesh --listen 127.0.0.1:8086"]),
    ("up", &["meshlens up -f ./mesh", "meshlens up -f ./mesh --control-port 8086"]),
    ("demo", &["meshlens demo", "meshlens demo --scenario retry-storm", "meshlens demo --export ./shop"]),
    (
        "demo-app",
        &["meshlens demo-app --config app.yaml --listen 127.0.0.1:8080", "meshlens demo-app --check --config app.yaml"],
    ),
    ("demo-load", &["meshlens demo-load --target http://127.0.0.1:4140 --rps 50 --duration 1m"]),
    (
        "stat",
        &[
            "meshlens stat deploy -n prod",
            "meshlens -n prod stat deploy/web --to svc/orders",
            "meshlens stat ns",
            "meshlens stat po -A -o wide",
            "meshlens stat deploy --unmeshed",
            "meshlens stat deploy --to deploy/orders -n prod",
            "meshlens stat au -n prod",
            "meshlens stat au --from deploy/web -n prod -o wide",
            "meshlens stat deploy -l app=web -t 5m",
        ],
    ),
    ("routes", &["meshlens routes deploy/web -n prod", "meshlens routes deploy/web --to svc/orders -o wide"]),
    ("edges", &["meshlens edges deploy -n prod", "meshlens edges po -A -o json"]),
    (
        "prometheus-config",
        &[
            "meshlens prometheus-config > prometheus.yml",
            "meshlens prometheus-config --job-name linkerd-proxy --scrape-interval 10s",
        ],
    ),
    (
        "diagnose",
        &[
            "meshlens diagnose -n prod",
            "meshlens diagnose -n prod --fail-on warning -o json",
            "meshlens diagnose -n prod --compare ./staging",
        ],
    ),
    (
        "diagnostics",
        &["meshlens diagnostics proxy-metrics deploy/web -n prod", "meshlens diagnostics endpoints orders.prod:80"],
    ),
    ("diagnostics proxy-metrics", &["meshlens diagnostics proxy-metrics deploy/web -n prod --obfuscate"]),
    ("diagnostics endpoints", &["meshlens diagnostics endpoints orders.prod.svc.cluster.local:80 -o wide"]),
    (
        "profile",
        &[
            "meshlens profile --template web -n prod",
            "meshlens profile --open-api web.swagger web -n prod",
            "cat web.swagger | meshlens profile --open-api - web -n prod",
            "meshlens profile --proto web.proto web -n prod",
            "meshlens profile --tap deploy/web web -n prod --tap-duration 10s",
        ],
    ),
    ("logs", &["meshlens logs deploy/web -n prod", "meshlens logs control", "meshlens logs po/web-0 -n prod -f"]),
    (
        "tap",
        &[
            "meshlens tap deploy/web -n prod",
            "meshlens tap deploy/web --to svc/orders --path /api --status 5xx",
            "meshlens tap deploy -n prod -l tier=ml -o json",
            "meshlens tap deploy/web --scheme https",
        ],
    ),
    (
        "top",
        &[
            "meshlens top deploy/web -n prod",
            "meshlens top deploy/web --routes",
            "meshlens top deploy/web --scheme http",
        ],
    ),
    (
        "check",
        &[
            "meshlens check",
            "meshlens check -o json",
            "meshlens check --pre ./shop",
            "meshlens check --compare ./staging",
            "meshlens check --pre ./prod --compare http://127.0.0.1:9086 --compare-token-file other.token",
        ],
    ),
    (
        "alerts",
        &[
            "meshlens alerts",
            "meshlens alerts -o wide",
            "meshlens alerts --watch",
            "meshlens alerts --prometheus-rules > rules.yml",
        ],
    ),
    ("dashboard", &["meshlens dashboard", "meshlens dashboard --no-open --control http://127.0.0.1:8086"]),
    (
        "completion",
        &[
            "meshlens completion bash > /etc/bash_completion.d/meshlens",
            "meshlens completion zsh > \"${fpath[1]}/_meshlens\"",
            "meshlens completion fish > ~/.config/fish/completions/meshlens.fish",
        ],
    ),
];

/// `cmd` with the examples attached to each command listed (as `after_help`).
pub fn attach(mut cmd: clap::Command) -> clap::Command {
    for (path, lines) in EXAMPLES {
        cmd = attach_one(cmd, &path.split(' ').collect::<Vec<_>>(), &text(lines));
    }
    cmd
}

fn attach_one(cmd: clap::Command, path: &[&str], text: &str) -> clap::Command {
    match path {
        [] => cmd.after_help(text.to_string()),
        [first, rest @ ..] => {
            let text = text.to_string();
            let rest: Vec<&str> = rest.to_vec();
            cmd.mut_subcommand(*first, move |sub| attach_one(sub, &rest, &text))
        }
    }
}

fn text(lines: &[&str]) -> String {
    let mut out = String::from("Examples:\n");
    for line in lines {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out.pop();
    out
}

/// Every example line, for the tests: `(command path, line)`.
#[cfg(test)]
pub fn all() -> impl Iterator<Item = (&'static str, &'static str)> {
    EXAMPLES.iter().flat_map(|(path, lines)| lines.iter().map(move |l| (*path, *l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The visible commands below `cmd`, as `parent child` paths.
    fn visible(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let path = format!("{prefix}{}", sub.get_name());
            out.push((path.clone(), sub.clone()));
            visible(sub, &format!("{path} "), out);
        }
    }

    #[test]
    fn every_command_has_examples_that_parse() {
        let mut commands = Vec::new();
        visible(&crate::cmd::command(), "", &mut commands);
        let mut missing = Vec::new();
        let mut golden = String::new();
        for (path, sub) in &commands {
            match sub.get_after_help().map(|h| h.to_string()) {
                Some(h) if h.starts_with("Examples:\n") => {
                    golden.push_str(&format!("== meshlens {path} --help\n{h}\n"))
                }
                _ => missing.push(path.clone()),
            }
        }
        assert!(missing.is_empty(), "commands without examples (add them to cmd/examples.rs): {missing:?}");
        for (path, line) in all() {
            assert!(commands.iter().any(|(p, _)| p == path), "examples for an unknown command {path:?}");
            // The meshlens part of a shell line: up to a redirection or a pipe into something else.
            let start = line.find("meshlens ").unwrap_or_else(|| panic!("{line}"));
            let words: Vec<&str> =
                line[start..].split_whitespace().take_while(|w| !matches!(*w, ">" | "|" | "<")).collect();
            let args = crate::cmd::global::hoist(words.iter().map(std::ffi::OsString::from).collect());
            if let Err(e) = crate::cmd::command().try_get_matches_from(args) {
                panic!("example {line:?} does not parse: {e}");
            }
        }
        let file = format!("{}/tests/testdata/help_examples.golden", env!("CARGO_MANIFEST_DIR"));
        meshlens_testkit::assert_golden(file, &golden);
    }

    #[test]
    fn help_ends_with_the_examples() {
        let mut cmd = crate::cmd::command();
        let stat = cmd.find_subcommand_mut("stat").unwrap();
        let help = stat.render_long_help().to_string();
        assert!(help.trim_end().ends_with("meshlens stat deploy -l app=web -t 5m"), "{help}");
    }
}
