//! Helpers for whole-binary tests of the local runtime: temp dirs, the process table, `up`'s table.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

pub fn meshlens() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshlens"))
}

pub use meshlens_testkit::TempDir;

/// One process from /proc: (ppid, pgid, state, cmdline).
#[derive(Clone, Debug)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub state: char,
    pub cmdline: String,
}

pub fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_owned())
            .unwrap_or_default();
        out.push(Proc {
            pid,
            ppid: f[1].parse().unwrap_or(0),
            pgid: f[2].parse().unwrap_or(0),
            state: f[0].chars().next().unwrap_or('?'),
            cmdline,
        });
    }
    out
}

/// Every live (non-zombie) descendant of `root`.
pub fn descendants(root: u32) -> Vec<Proc> {
    let all = processes();
    let mut found: Vec<Proc> = Vec::new();
    let mut frontier = BTreeSet::from([root]);
    while !frontier.is_empty() {
        let next: BTreeSet<u32> = all.iter().filter(|p| frontier.contains(&p.ppid)).map(|p| p.pid).collect();
        found.extend(all.iter().filter(|p| next.contains(&p.pid) && p.state != 'Z').cloned());
        frontier = next;
    }
    found
}

/// Live processes in any of these process groups.
pub fn in_groups(pgids: &BTreeSet<u32>) -> Vec<Proc> {
    processes().into_iter().filter(|p| pgids.contains(&p.pgid) && p.state != 'Z').collect()
}

/// Kills every process group in `pgids` on drop (a failed test leaves nothing behind).
pub struct GroupReaper(pub BTreeSet<u32>);

impl Drop for GroupReaper {
    fn drop(&mut self) {
        for g in &self.0 {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{g}")]).output();
        }
    }
}

/// How long one GET of an app may take to answer ([`meshlens_testkit::http_get`]).
pub const HTTP_PATIENCE: Duration = Duration::from_secs(20);

/// The rows of `up`'s table: instance (`ns/name`) → [APP, INBOUND, OUTBOUND, ADMIN, UPSTREAMS].
pub fn table(stdout: &str) -> BTreeMap<String, Vec<String>> {
    let mut rows = BTreeMap::new();
    let mut in_table = false;
    for line in stdout.lines() {
        if line.starts_with("INSTANCE ") {
            in_table = true;
            continue;
        }
        if in_table {
            if line.trim().is_empty() {
                break;
            }
            let cols: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            rows.insert(cols[0].clone(), cols[1..].to_vec());
        }
    }
    rows
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|_| panic!("{s:?} is not an address"))
}

/// Reads an HTTP/1 request head from `conn` (a fake control plane's connection) and returns its target
/// (`/api/v1/stat?…`); the rest of the head is skipped.
pub fn read_request_target(conn: &std::net::TcpStream) -> String {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(conn);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
    }
    line.split(' ').nth(1).unwrap_or("").to_string()
}
