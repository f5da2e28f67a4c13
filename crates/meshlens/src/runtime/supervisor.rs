//! Runs processes: each in a process group of its own (so a `sh -c` command's children are signalled
//! with it), output streamed line by line through [`Output`], a crash answered with a restart after a
//! backoff (1 s, doubling to 30 s; back to 1 s after 10 s of running), and a graceful stop: SIGTERM to
//! each group, SIGKILL to what is left after the grace period, stage by stage (apps, proxies, control).

use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::output::{Output, Tag};
use super::plan::{ProcSpec, Role};
use super::reaper::Reaper;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before crashing is restarted after the first backoff again.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// Why a process did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start {name} ({program}): {error}")]
    Spawn { name: String, program: String, error: std::io::Error },
    #[error("{name} exited ({status}) before it was ready")]
    Exited { name: String, status: String },
    #[error("{name} was not ready within {secs} s")]
    Timeout { name: String, secs: u64 },
}

/// A started process.
#[derive(Debug)]
pub struct Started {
    pub pid: u32,
    /// Its `{"message":"listening",…}` line, for processes started with `wait_listening`.
    pub listening: Option<serde_json::Value>,
}

pub struct Supervisor {
    out: Output,
    reaper: Option<Arc<Reaper>>,
    stopping: watch::Sender<bool>,
    procs: Mutex<Vec<Arc<Managed>>>,
}

struct Managed {
    spec: ProcSpec,
    tag: Tag,
    /// The running child's pid, which is also its process group id.
    pid: Mutex<Option<u32>>,
    /// Restart on exit (off until a process that must print its listening line has printed it).
    restart: AtomicBool,
    restarts: AtomicU32,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Set when this process is stopped for good (by stop_all, or because its instance was removed).
    retired: watch::Sender<bool>,
}

impl Managed {
    fn retired(&self) -> bool {
        *self.retired.borrow()
    }
}

impl Supervisor {
    /// `reaper`: told about every process group, so they are stopped even if this process is killed.
    pub fn new(out: Output, reaper: Option<Arc<Reaper>>) -> Arc<Self> {
        Arc::new(Supervisor { out, reaper, stopping: watch::channel(false).0, procs: Mutex::new(Vec::new()) })
    }

    fn watch_group(&self, pid: Option<u32>) {
        if let (Some(r), Some(pid)) = (&self.reaper, pid) {
            r.watch(pid);
        }
    }

    pub fn output(&self) -> &Output {
        &self.out
    }

    pub fn stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// (name, pid) of every running process.
    #[cfg(test)]
    pub fn pids(&self) -> Vec<(String, u32)> {
        lock(&self.procs).iter().filter_map(|m| lock(&m.pid).map(|p| (m.spec.name.clone(), p))).collect()
    }

    /// Starts `spec` and supervises it from then on. With `wait_listening`, waits (up to `ready_within`)
    /// for its listening line; if it exits first it is not restarted and the start fails.
    pub async fn start(self: &Arc<Self>, spec: ProcSpec, ready_within: Duration) -> Result<Started, StartError> {
        let tag = self.out.tag(&spec.name);
        let wait = spec.wait_listening;
        let managed = Arc::new(Managed {
            tag,
            pid: Mutex::new(None),
            restart: AtomicBool::new(!wait),
            restarts: AtomicU32::new(0),
            task: Mutex::new(None),
            retired: watch::channel(false).0,
            spec,
        });
        let (listening_tx, listening_rx) = oneshot::channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        let child = {
            let mut pid = lock(&managed.pid);
            if self.stopping() {
                return Err(StartError::Exited { name: managed.spec.name.clone(), status: "stopping".into() });
            }
            let child = spawn(&managed.spec, &managed.tag, &self.out, wait.then_some(listening_tx))?;
            *pid = child.id();
            self.watch_group(child.id());
            child
        };
        let pid = child.id().unwrap_or_default();
        lock(&self.procs).push(managed.clone());
        let task = tokio::spawn(supervise(self.clone(), managed.clone(), child, exit_tx));
        *lock(&managed.task) = Some(task);
        if !wait {
            return Ok(Started { pid, listening: None });
        }
        let name = managed.spec.name.clone();
        let mut exit_rx = exit_rx;
        let outcome = tokio::select! {
            line = listening_rx => Ok(line),
            status = &mut exit_rx => Err(Some(status)),
            _ = tokio::time::sleep(ready_within) => Err(None),
        };
        let exited = |status: Result<ExitStatus, _>| StartError::Exited {
            name: name.clone(),
            status: status.map(describe).unwrap_or_else(|_| "unknown".into()),
        };
        match outcome {
            Ok(Ok(value)) => {
                managed.restart.store(true, Ordering::SeqCst);
                Ok(Started { pid, listening: Some(value) })
            }
            // The output closed without a listening line: the process is exiting.
            Ok(Err(_)) => Err(exited(exit_rx.await)),
            Err(Some(status)) => Err(exited(status)),
            Err(None) => Err(StartError::Timeout { name: name.clone(), secs: ready_within.as_secs() }),
        }
    }

    /// Stops everything: per stage (apps, proxies, control plane) SIGTERM to each process group, then
    /// SIGKILL to groups still alive after `grace`. Returns when every supervised child has been reaped.
    pub async fn stop_all(&self, grace: Duration) {
        self.stopping.send_replace(true);
        let procs = lock(&self.procs).clone();
        self.stop_stages(procs, grace).await;
    }

    /// Stops the named processes for good (an instance removed from the mesh), apps before proxies.
    pub async fn stop_named(&self, names: &[String], grace: Duration) {
        let procs: Vec<_> = lock(&self.procs).iter().filter(|m| names.contains(&m.spec.name)).cloned().collect();
        self.stop_stages(procs, grace).await;
        lock(&self.procs).retain(|m| !names.contains(&m.spec.name));
    }

    async fn stop_stages(&self, procs: Vec<Arc<Managed>>, grace: Duration) {
        for role in [Role::App, Role::Proxy, Role::Control] {
            let stage: Vec<_> = procs.iter().filter(|m| m.spec.role == role).cloned().collect();
            if stage.is_empty() {
                continue;
            }
            let groups: Vec<(Arc<Managed>, Option<u32>)> = stage
                .iter()
                .map(|m| {
                    // Under the pid lock: a restart either happened (we signal it) or won't (retired).
                    let pid = lock(&m.pid);
                    m.retired.send_replace(true);
                    (m.clone(), *pid)
                })
                .collect();
            for (_, pid) in &groups {
                if let Some(pid) = pid {
                    signal_group(*pid, Signal::SIGTERM);
                }
            }
            let deadline = tokio::time::Instant::now() + grace;
            for (m, pid) in &groups {
                let task = lock(&m.task).take();
                if let Some(mut task) = task
                    && tokio::time::timeout_at(deadline, &mut task).await.is_err()
                {
                    if let Some(pid) = *lock(&m.pid) {
                        self.out.say(&format!("{} did not stop within {:?}: SIGKILL", m.spec.name, grace));
                        signal_group(pid, Signal::SIGKILL);
                    }
                    let _ = task.await;
                }
                // The leader is gone; members of its group (a shell's children) may still be exiting.
                if let Some(pgid) = pid {
                    while group_alive(*pgid) && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    if group_alive(*pgid) {
                        signal_group(*pgid, Signal::SIGKILL);
                    }
                    if let Some(r) = &self.reaper {
                        r.forget(*pgid);
                    }
                }
            }
        }
    }

    /// SIGKILL to every process group now (a second Ctrl-C while stopping).
    pub fn kill_all(&self) {
        self.stopping.send_replace(true);
        for m in lock(&self.procs).iter() {
            if let Some(pid) = *lock(&m.pid) {
                signal_group(pid, Signal::SIGKILL);
            }
        }
    }
}

/// Watches one process: waits for it to exit, restarts it with backoff unless stopping.
async fn supervise(sup: Arc<Supervisor>, m: Arc<Managed>, first: Running, exit_tx: oneshot::Sender<ExitStatus>) {
    let mut exit_tx = Some(exit_tx);
    let mut child = Some(first);
    let mut backoff = FIRST_BACKOFF;
    let mut stopping = sup.stopping.subscribe();
    let mut retired = m.retired.subscribe();
    loop {
        let started = Instant::now();
        if let Some(mut c) = child.take() {
            let status = c.wait().await;
            let pgid = lock(&m.pid).take();
            let status = match status {
                Ok(s) => s,
                Err(e) => {
                    sup.out.say(&format!("{}: cannot wait for the process: {e}", m.spec.name));
                    return;
                }
            };
            if let Some(tx) = exit_tx.take() {
                let _ = tx.send(status);
            }
            if sup.stopping() || m.retired() {
                return;
            }
            if !m.restart.load(Ordering::SeqCst) {
                // Failed before it was ready: start() reports it; its group must not outlive it.
                if let Some(pgid) = pgid {
                    signal_group(pgid, Signal::SIGKILL);
                }
                return;
            }
            // Whatever the crashed leader left in its group would hold its port: kill it.
            if let Some(pgid) = pgid {
                signal_group(pgid, Signal::SIGKILL);
                if let Some(r) = &sup.reaper {
                    r.forget(pgid);
                }
            }
            if started.elapsed() >= STABLE_AFTER {
                backoff = FIRST_BACKOFF;
            }
            let n = m.restarts.fetch_add(1, Ordering::SeqCst) + 1;
            sup.out.say(&format!(
                "{} exited ({}) after {:.1} s; restarting in {} s (restart {n})",
                m.spec.name,
                describe(status),
                started.elapsed().as_secs_f64(),
                backoff.as_secs()
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopping.wait_for(|s| *s) => return,
            _ = retired.wait_for(|r| *r) => return,
        }
        let delay = backoff;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        let mut pid = lock(&m.pid);
        if sup.stopping() || m.retired() {
            return;
        }
        match spawn(&m.spec, &m.tag, &sup.out, None) {
            Ok(c) => {
                *pid = c.id();
                sup.watch_group(c.id());
                drop(pid);
                sup.out.say(&format!("{} restarted (pid {})", m.spec.name, c.id().unwrap_or_default()));
                child = Some(c);
            }
            Err(e) => {
                drop(pid);
                sup.out.say(&format!("{e}; trying again in {} s", (delay * 2).min(MAX_BACKOFF).as_secs()));
            }
        }
    }
}

/// A running child and the tasks copying its output.
struct Running {
    child: Child,
    pumps: Vec<JoinHandle<()>>,
}

impl Running {
    fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the exit, then (briefly: a grandchild may hold the pipes open) for its last lines.
    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await;
        for pump in self.pumps.drain(..) {
            let _ = tokio::time::timeout(Duration::from_millis(500), pump).await;
        }
        status
    }
}

/// Spawns one process in a new process group, streaming its output; sends its listening line, if any.
fn spawn(
    spec: &ProcSpec,
    tag: &Tag,
    out: &Output,
    listening: Option<oneshot::Sender<serde_json::Value>>,
) -> Result<Running, StartError> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn().map_err(|error| StartError::Spawn {
        name: spec.name.clone(),
        program: spec.program.display().to_string(),
        error,
    })?;
    let mut pumps = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(stdout, tag.clone(), out.clone(), listening)));
    }
    if let Some(stderr) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(stderr, tag.clone(), out.clone(), None)));
    }
    Ok(Running { child, pumps })
}

/// Copies lines of a child's pipe to the output; hands the first listening line to `listening`.
async fn pump(
    pipe: impl AsyncRead + Unpin,
    tag: Tag,
    out: Output,
    mut listening: Option<oneshot::Sender<serde_json::Value>>,
) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        if listening.is_some()
            && let Some(value) = listening_line(&line)
            && let Some(tx) = listening.take()
        {
            let _ = tx.send(value);
        }
        out.line(&tag, &line);
    }
}

/// A `{"message":"listening",…}` JSON line.
pub fn listening_line(line: &str) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    (value.get("message")?.as_str()? == "listening").then_some(value)
}

fn signal_group(pgid: u32, signal: Signal) {
    if let Ok(pgid) = i32::try_from(pgid)
        && pgid > 1
    {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

/// Whether any process is left in the group.
fn group_alive(pgid: u32) -> bool {
    i32::try_from(pgid).is_ok_and(|p| p > 1 && killpg(Pid::from_raw(p), None).is_ok())
}

/// `exit status 1`, `killed by SIGKILL`.
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        _ => status.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec(name: &str, script: &str, wait_listening: bool) -> ProcSpec {
        ProcSpec {
            name: name.into(),
            role: Role::App,
            program: PathBuf::from("sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![("GREETING".into(), "hi".into())],
            cwd: std::env::temp_dir(),
            wait_listening,
        }
    }

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| !r.trim_start().starts_with('Z')))
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn waits_for_the_listening_line_and_stops_the_whole_group() {
        let sup = Supervisor::new(Output::new(false, None, vec![]), None);
        let script = r#"sleep 1000 & echo "{\"message\":\"listening\",\"greeting\":\"$GREETING\"}"; wait"#;
        let started = sup.start(spec("t", script, true), Duration::from_secs(20)).await.unwrap();
        assert_eq!(started.listening.unwrap()["greeting"], "hi");
        assert!(alive(started.pid));
        sup.stop_all(Duration::from_secs(5)).await;
        assert!(!alive(started.pid));
        assert!(!group_alive(started.pid), "the shell's sleep was stopped with it");
    }

    #[tokio::test]
    async fn exiting_before_listening_fails_the_start_without_restart() {
        let sup = Supervisor::new(Output::new(false, None, vec![]), None);
        let e = sup.start(spec("bad", "echo nope; exit 3", true), Duration::from_secs(20)).await.unwrap_err();
        assert!(e.to_string().contains("exit status 3"), "{e}");
        sup.stop_all(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_crashed_process_is_restarted() {
        let sup = Supervisor::new(Output::new(false, None, vec![]), None);
        let first = sup.start(spec("app", "exec sleep 1000", false), Duration::from_secs(20)).await.unwrap();
        signal_group(first.pid, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(20);
        let second = loop {
            if let Some((_, p)) = sup.pids().into_iter().find(|(_, p)| *p != first.pid) {
                break p;
            }
            assert!(Instant::now() < deadline, "not restarted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(alive(second));
        sup.stop_all(Duration::from_secs(5)).await;
        assert!(!alive(second));
    }

    #[tokio::test]
    async fn sigkill_after_the_grace_period() {
        let sup = Supervisor::new(Output::new(false, None, vec![]), None);
        let s = sup
            .start(spec("stubborn", "trap '' TERM; echo ready; while :; do sleep 0.05; done", false), Duration::ZERO);
        let pid = s.await.unwrap().pid;
        // Give the shell time to install its trap (polling its signal mask).
        let mut tries = 0;
        let term_ignored = || {
            std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|s| {
                let mask = s.lines().find_map(|l| l.strip_prefix("SigIgn:"))?.trim().to_owned();
                u64::from_str_radix(&mask, 16).ok().map(|m| m & (1 << 14) != 0)
            }) == Some(true)
        };
        while !term_ignored() {
            tries += 1;
            assert!(tries < 2000);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let t = Instant::now();
        sup.stop_all(Duration::from_millis(300)).await;
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(!alive(pid));
    }
}
