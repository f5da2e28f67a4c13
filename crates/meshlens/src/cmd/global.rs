//! Flags accepted before the command, as Linkerd's docs write them (`meshlens -n prod stat deploy`): the
//! shared flags (`-n/--namespace`, `-A/--all-namespaces`, `-o/--output`, `--control`, `--api-token-file`)
//! given before the command are handed to the command, as if written after it.

use std::ffi::OsString;

/// A flag that may come before the command, and whether it takes a value.
struct Global {
    short: Option<char>,
    long: &'static str,
    takes_value: bool,
}

const GLOBALS: [Global; 5] = [
    Global { short: Some('n'), long: "namespace", takes_value: true },
    Global { short: Some('A'), long: "all-namespaces", takes_value: false },
    Global { short: Some('o'), long: "output", takes_value: true },
    Global { short: None, long: "control", takes_value: true },
    Global { short: None, long: "api-token-file", takes_value: true },
];

/// The help line of the top-level command that says so.
pub const HELP: &str = "-n/--namespace, -A/--all-namespaces, -o/--output, --control and --api-token-file may \
                        also come before the command: `meshlens -n prod stat deploy`.";

/// `args` (program name first) with the global flags found between the program name and the command
/// moved after the command's arguments (before a `--`, if any). Anything else is left as it is, so clap
/// reports unknown flags, and a command without such a flag rejects it by name.
pub fn hoist(args: Vec<OsString>) -> Vec<OsString> {
    let mut rest = args.into_iter();
    let Some(program) = rest.next() else { return Vec::new() };
    let rest: Vec<OsString> = rest.collect();
    let mut moved = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let Some(arg) = rest[i].to_str() else { break };
        let Some(flag) = match_global(arg) else { break };
        moved.push(rest[i].clone());
        i += 1;
        if flag.takes_value && !has_inline_value(arg, flag) {
            match rest.get(i) {
                Some(v) => moved.push(v.clone()),
                None => break, // clap says the value is missing
            }
            i += 1;
        }
    }
    if moved.is_empty() || i >= rest.len() {
        // Nothing to move, or no command after the flags: clap reports what is wrong.
        return std::iter::once(program).chain(rest).collect();
    }
    let tail = &rest[i..];
    let split = tail.iter().position(|a| a == "--").unwrap_or(tail.len());
    std::iter::once(program)
        .chain(tail[..split].iter().cloned())
        .chain(moved)
        .chain(tail[split..].iter().cloned())
        .collect()
}

fn match_global(arg: &str) -> Option<&'static Global> {
    if let Some(long) = arg.strip_prefix("--") {
        let name = long.split_once('=').map_or(long, |(n, _)| n);
        return GLOBALS.iter().find(|g| g.long == name);
    }
    let mut chars = arg.strip_prefix('-')?.chars();
    let c = chars.next()?;
    let g = GLOBALS.iter().find(|g| g.short == Some(c))?;
    // `-A` stands alone; `-nprod` / `-n=prod` carry their value.
    (g.takes_value || chars.as_str().is_empty()).then_some(g)
}

fn has_inline_value(arg: &str, flag: &Global) -> bool {
    if arg.starts_with("--") { arg.contains('=') } else { arg.len() > 2 && flag.short.is_some() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(args: &str) -> String {
        let v: Vec<OsString> = args.split(' ').map(OsString::from).collect();
        hoist(v).iter().map(|a| a.to_str().unwrap()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn moves_leading_globals_after_the_command() {
        assert_eq!(h("meshlens -n prod stat deploy"), "meshlens stat deploy -n prod");
        assert_eq!(
            h("meshlens --namespace=prod -A -o json --control http://c stat ns"),
            "meshlens stat ns --namespace=prod -A -o json --control http://c"
        );
        assert_eq!(h("meshlens -nprod tap deploy/web"), "meshlens tap deploy/web -nprod");
        assert_eq!(h("meshlens -n prod proxy --x -- a b"), "meshlens proxy --x -n prod -- a b");
        // Left alone: nothing global first, or nothing after the flags.
        assert_eq!(h("meshlens stat deploy -n prod"), "meshlens stat deploy -n prod");
        assert_eq!(h("meshlens --version"), "meshlens --version");
        assert_eq!(h("meshlens -n prod"), "meshlens -n prod");
        assert_eq!(h("meshlens -n"), "meshlens -n");
        assert_eq!(h("meshlens -Ax stat"), "meshlens -Ax stat");
    }
}
