//! Helpers for whole-binary tests of the local runtime: a running `up`/`demo`, temp dirs, the process
//! table, `up`'s table.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use meshlens_testkit::ChildGuard;
use meshlens_testkit::eventually::Poller;
use meshlens_testkit::process::Stream;
use serde_json::Value;

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

/// A running `meshlens up` or `meshlens demo` (its control plane scraping every 500 ms) and everything it
/// started (killed on drop).
pub(crate) struct Running {
    up: ChildGuard,
    _reaper: GroupReaper,
    state: TempDir,
    mesh_dir: Option<TempDir>,
}

impl Running {
    /// `meshlens up -f DIR` on a mesh directory made of `files`.
    pub(crate) fn up(name: &str, files: &[(&str, &str)]) -> Running {
        let dir = TempDir::new(name);
        for (rel, text) in files {
            dir.write(rel, text);
        }
        let mut cmd = meshlens();
        cmd.args(["up", "-f"]).arg(dir.path()).args(["--control-port", "0", "--stop-grace", "5"]);
        Running::start(name, cmd, Some(dir))
    }

    /// `meshlens demo` with extra arguments (`--scenario …`, `--rps …`).
    pub(crate) fn demo(name: &str, args: &[&str]) -> Running {
        let mut cmd = meshlens();
        cmd.args(["demo", "--control-port", "0", "--stop-grace", "5"]).args(args);
        Running::start(name, cmd, None)
    }

    fn start(name: &str, mut cmd: Command, dir: Option<TempDir>) -> Running {
        let state = TempDir::new(&format!("{name}-state"));
        cmd.env("XDG_STATE_HOME", state.path())
            .env("MESHLENS_CONTROL_SCRAPE_INTERVAL", "500ms")
            .env("NO_COLOR", "1")
            .env_remove("MESHLENS_CONTROL");
        let up = ChildGuard::spawn(&mut cmd).unwrap();
        let mut reaper = GroupReaper(BTreeSet::new());
        let ready = up.wait_for_line(Stream::Stdout, |l| {
            l.contains("apps accept connections") || l.contains("not accepting connections")
        });
        reaper.0.extend(descendants(up.id()).iter().map(|p| p.pgid));
        assert!(ready.contains("apps accept connections") && !ready.contains("not"), "{ready}");
        Running { up, _reaper: reaper, state, mesh_dir: dir }
    }

    /// The mesh directory of a mesh started with [`Running::up`].
    pub(crate) fn dir(&self) -> Option<&std::path::Path> {
        self.mesh_dir.as_ref().map(|d| d.path())
    }

    /// What `up` printed so far (the instances table: app, inbound, outbound and admin addresses).
    pub(crate) fn up_stdout(&self) -> String {
        self.up.stdout_text()
    }

    /// The state directory (`XDG_STATE_HOME`: session file, secrets).
    pub(crate) fn state(&self) -> &std::path::Path {
        self.state.path()
    }

    /// What `up`/`demo` printed so far.
    pub(crate) fn stdout_text(&self) -> String {
        self.up.stdout_text()
    }

    /// `meshlens ARGS` against this mesh (found through the session file), not yet started; it opens no
    /// browser.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = meshlens();
        cmd.args(args)
            .env("XDG_STATE_HOME", self.state.path())
            .env("NO_COLOR", "1")
            .env_remove("MESHLENS_CONTROL")
            .env_remove("BROWSER")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        cmd
    }

    /// Runs the CLI against this mesh: (exit code, stdout, stderr).
    pub(crate) fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    /// `args` with `-o json`, parsed; None while the command fails or prints no JSON.
    pub(crate) fn json(&self, args: &[&str]) -> Option<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let (code, out, _) = self.cli(&all);
        if code != 0 {
            return None;
        }
        serde_json::from_str(&out).ok()
    }

    /// Polls `args` (JSON) until `ok` holds, for up to `patience`; returns the last answer.
    pub(crate) fn poll(&self, args: &[&str], patience: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let mut poller = Poller::with_patience(patience);
        loop {
            let v = self.json(args);
            if let Some(v) = v.as_ref().filter(|v| ok(v)) {
                return v.clone();
            }
            assert!(poller.wait_blocking(), "{args:?} never satisfied the condition; last answer: {v:?}");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.up.terminate();
    }
}
