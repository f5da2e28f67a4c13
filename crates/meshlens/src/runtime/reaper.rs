//! A watchdog that leaves no orphans even when `up` itself is killed (SIGKILL, OOM): a small process
//! (`meshlens __reap`, in a process group of its own) to which `up` reports every process group it
//! starts, over a pipe. When the pipe closes without a `clear` — `up` died — it stops those groups
//! (SIGTERM, then SIGKILL after 3 s). A clean `up` stops everything itself and then sends `clear`.
//!
//! Protocol, one line each: `+PGID` (watch), `-PGID` (forget), `clear` (forget all).

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The supervisor's end of the watchdog.
pub struct Reaper {
    stdin: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
}

impl Reaper {
    /// Starts `exe __reap`.
    pub fn start(exe: &Path) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(exe)
            .arg("__reap")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take();
        Ok(Reaper { stdin: Mutex::new(stdin), child: Mutex::new(child) })
    }

    pub fn watch(&self, pgid: u32) {
        self.send(&format!("+{pgid}"));
    }

    pub fn forget(&self, pgid: u32) {
        self.send(&format!("-{pgid}"));
    }

    /// Everything stopped cleanly: the watchdog exits without touching anything.
    pub fn finish(&self) {
        self.send("clear");
        drop(self.stdin.lock().unwrap_or_else(PoisonError::into_inner).take());
        let _ = self.child.lock().unwrap_or_else(PoisonError::into_inner).wait();
    }

    fn send(&self, line: &str) {
        if let Some(stdin) = self.stdin.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }
}

/// The watchdog process: reads the protocol from stdin; on EOF stops every group it still watches.
pub fn run() -> ExitCode {
    let mut groups = BTreeSet::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line == "clear" {
            groups.clear();
        } else if let Some(g) = line.strip_prefix('+').and_then(|g| g.parse::<i32>().ok()) {
            groups.insert(g);
        } else if let Some(g) = line.strip_prefix('-').and_then(|g| g.parse::<i32>().ok()) {
            groups.remove(&g);
        }
    }
    let alive = |g: &i32| *g > 1 && killpg(Pid::from_raw(*g), None).is_ok();
    let left: Vec<i32> = groups.iter().copied().filter(alive).collect();
    if left.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("meshlens up is gone: stopping the {} process groups it left", left.len());
    for g in &left {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while left.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for g in left.iter().filter(|g| alive(g)) {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
    }
    ExitCode::SUCCESS
}
