//! Child processes for whole-binary tests: killed on drop, output drained and kept for assertions.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::eventually::Poller;

/// Which output stream of a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Default)]
struct Captured {
    stdout: String,
    stderr: String,
    stdout_open: bool,
    stderr_open: bool,
}

impl Captured {
    fn text(&self, stream: Stream) -> &str {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }

    fn open(&self, stream: Stream) -> bool {
        match stream {
            Stream::Stdout => self.stdout_open,
            Stream::Stderr => self.stderr_open,
        }
    }
}

#[derive(Debug, Default)]
struct Output {
    captured: Mutex<Captured>,
    changed: Condvar,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.captured.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drains `pipe` on a background thread into the buffer of `stream`.
    fn drain(self: &Arc<Self>, stream: Stream, pipe: impl Read + Send + 'static) {
        match stream {
            Stream::Stdout => self.lock().stdout_open = true,
            Stream::Stderr => self.lock().stderr_open = true,
        }
        let output = self.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                let done = !matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0);
                let mut captured = output.lock();
                let text = String::from_utf8_lossy(&line);
                match stream {
                    Stream::Stdout => captured.stdout.push_str(&text),
                    Stream::Stderr => captured.stderr.push_str(&text),
                }
                if done {
                    match stream {
                        Stream::Stdout => captured.stdout_open = false,
                        Stream::Stderr => captured.stderr_open = false,
                    }
                }
                drop(captured);
                output.changed.notify_all();
                if done {
                    return;
                }
            }
        });
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped.
///
/// Piped stdout/stderr are drained by background threads (the child never blocks on a full pipe)
/// into buffers readable with [`stdout_text`](Self::stdout_text) / [`stderr_text`](Self::stderr_text).
/// If the test is panicking when the guard drops, the captured output is printed to stderr.
///
/// ```no_run
/// let guard = meshlens_testkit::ChildGuard::spawn(std::process::Command::new("sleep").arg("1000")).unwrap();
/// drop(guard); // killed and reaped
/// ```
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    output: Arc<Output>,
    name: String,
    /// Spawned as the leader of its own process group: kill the whole group on drop.
    group: bool,
}

impl ChildGuard {
    /// Wraps a spawned child; drains its stdout/stderr if they were piped.
    pub fn new(mut child: Child) -> Self {
        let output = Arc::new(Output::default());
        if let Some(stdout) = child.stdout.take() {
            output.drain(Stream::Stdout, stdout);
        }
        if let Some(stderr) = child.stderr.take() {
            output.drain(Stream::Stderr, stderr);
        }
        Self { name: format!("pid {}", child.id()), child, output, group: false }
    }

    /// Spawns `cmd` with stdin null and stdout/stderr piped and captured, in a process group of its
    /// own: dropping the guard kills the child and every descendant still in that group (e.g. the
    /// apps and proxies of `meshlens up`).
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).spawn()?;
        let mut guard = Self::new(child);
        guard.name = format!("{:?} (pid {})", cmd.get_program(), guard.id());
        guard.group = true;
        Ok(guard)
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The wrapped child.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout_text(&self) -> String {
        self.output.lock().stdout.clone()
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.output.lock().stderr.clone()
    }

    /// The exit status, if the child has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Sends SIGTERM (via `kill -TERM`), e.g. to test graceful shutdown.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.id().to_string()]).status().expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed: {status}", self.id());
    }

    /// Kills (SIGKILL) and reaps the child now.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.child.wait().expect("wait for killed child")
    }

    /// Blocks until the child exits, up to the [`patience`](crate::patience); panics on timeout.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let mut poller = Poller::new();
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            if !poller.wait_blocking() {
                panic!("{} did not exit within {:?}{}", self.name, poller.patience(), self.dump());
            }
        }
    }

    /// Blocks until a line of `stream` satisfies `pred` (earlier lines count too) and returns it.
    ///
    /// Panics when the stream closes or the [`patience`](crate::patience) runs out first.
    pub fn wait_for_line(&self, stream: Stream, mut pred: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + crate::patience();
        let mut captured = self.output.lock();
        loop {
            if let Some(line) = captured.text(stream).lines().find(|l| pred(l)) {
                return line.to_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !captured.open(stream) || left.is_zero() {
                let why = if captured.open(stream) { "timed out" } else { "stream closed" };
                drop(captured);
                panic!("{}: no matching {stream:?} line ({why}){}", self.name, self.dump());
            }
            captured = self.output.changed.wait_timeout(captured, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// [`wait_for_line`](Self::wait_for_line) for async tests: polls without blocking the runtime,
    /// so the child may talk to servers running on the test's own runtime meanwhile.
    pub async fn wait_for_line_async(&self, stream: Stream, mut pred: impl FnMut(&str) -> bool) -> String {
        let mut poller = Poller::new();
        loop {
            let (found, open) = {
                let captured = self.output.lock();
                let found = captured.text(stream).lines().find(|l| pred(l)).map(str::to_owned);
                (found, captured.open(stream))
            };
            if let Some(line) = found {
                return line;
            }
            if !open {
                panic!("{}: no matching {stream:?} line (stream closed){}", self.name, self.dump());
            }
            if !poller.wait().await {
                panic!("{}: no matching {stream:?} line (timed out){}", self.name, self.dump());
            }
        }
    }

    /// The captured output, for panic messages.
    fn dump(&self) -> String {
        fn tail(s: &str) -> &str {
            const MAX: usize = 16 * 1024;
            let mut start = s.len().saturating_sub(MAX);
            while !s.is_char_boundary(start) {
                start += 1;
            }
            &s[start..]
        }
        let captured = self.output.lock();
        format!(
            "\n--- {} stdout ---\n{}\n--- {} stderr ---\n{}\n---",
            self.name,
            tail(&captured.stdout),
            self.name,
            tail(&captured.stderr)
        )
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.group {
            // `kill -KILL -- -PGID`: the child and its descendants (none are left if it exited and
            // its group is empty; then kill just fails).
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // Give the drain threads a moment to pick up the last lines.
            let captured = self.output.lock();
            let _ = self
                .output
                .changed
                .wait_timeout_while(captured, Duration::from_millis(200), |c| c.stdout_open || c.stderr_open);
            eprintln!("{}", self.dump());
        }
    }
}

fn is_listening_line(line: &str) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    (value.get("message").and_then(|m| m.as_str()) == Some("listening")).then_some(value)
}

/// Spawns `cmd` (stdout/stderr piped and captured) and blocks until its first stdout line that is a
/// JSON object with `"message":"listening"`; returns the guard and that object.
///
/// Panics (printing the child's output) if the child exits or the [`patience`](crate::patience) runs
/// out first. In async tests whose child calls back into the test's runtime, use
/// [`spawn_and_read_json_line_async`].
///
/// ```no_run
/// # fn t(bin: &str) {
/// let mut cmd = std::process::Command::new(bin);
/// cmd.args(["proxy", "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
/// let (proxy, listening) = meshlens_testkit::spawn_and_read_json_line(&mut cmd);
/// let admin: std::net::SocketAddr = listening["admin"].as_str().unwrap().parse().unwrap();
/// # }
/// ```
pub fn spawn_and_read_json_line(cmd: &mut Command) -> (ChildGuard, serde_json::Value) {
    let guard = ChildGuard::spawn(cmd).unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let line = guard.wait_for_line(Stream::Stdout, |l| is_listening_line(l).is_some());
    let value = is_listening_line(&line).expect("matched line parses");
    (guard, value)
}

/// [`spawn_and_read_json_line`] that polls without blocking the async runtime.
pub async fn spawn_and_read_json_line_async(cmd: &mut Command) -> (ChildGuard, serde_json::Value) {
    let guard = ChildGuard::spawn(cmd).unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let line = guard.wait_for_line_async(Stream::Stdout, |l| is_listening_line(l).is_some()).await;
    let value = is_listening_line(&line).expect("matched line parses");
    (guard, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_kills_sleep_on_drop() {
        let mut guard = ChildGuard::spawn(Command::new("sleep").arg("1000")).unwrap();
        let pid = guard.id();
        assert!(guard.try_wait().is_none(), "sleep 1000 is running");
        let proc_path = format!("/proc/{pid}");
        assert!(std::path::Path::new(&proc_path).exists());
        drop(guard);
        // Killed and reaped: no zombie left under our pid.
        assert!(!std::path::Path::new(&proc_path).exists(), "{proc_path} still exists");
    }

    #[test]
    fn reads_listening_line_and_keeps_draining() {
        let script = r#"echo 'not json'; echo '{"message":"other"}'; echo 'to stderr' >&2;
                        echo '{"message":"listening","admin":"127.0.0.1:1"}'; echo after; exec sleep 1000"#;
        let (guard, listening) = spawn_and_read_json_line(Command::new("sh").args(["-c", script]));
        assert_eq!(listening["admin"], "127.0.0.1:1");
        guard.wait_for_line(Stream::Stdout, |l| l == "after");
        guard.wait_for_line(Stream::Stderr, |l| l == "to stderr");
        assert!(guard.stderr_text().contains("to stderr"));
    }

    #[test]
    fn drop_kills_descendants_too() {
        // `sh` forks a `sleep` that would outlive a plain kill of `sh`.
        let guard = ChildGuard::spawn(Command::new("sh").args(["-c", "sleep 1000 & echo $!; wait"])).unwrap();
        let pid = guard.wait_for_line(Stream::Stdout, |l| !l.is_empty());
        let proc_path = format!("/proc/{pid}");
        assert!(alive(&proc_path));
        drop(guard);
        // The orphaned sleep becomes a zombie of init (which may or may not reap it): poll for it.
        crate::eventually_blocking(|| !alive(&proc_path), "sleep killed");
    }

    /// Whether a process exists and is not a zombie.
    fn alive(proc_path: &str) -> bool {
        std::fs::read_to_string(format!("{proc_path}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_owned()))
            .is_some_and(|rest| !rest.starts_with('Z'))
    }

    #[test]
    #[should_panic(expected = "stream closed")]
    fn child_exiting_without_listening_panics() {
        let _ = spawn_and_read_json_line(Command::new("sh").args(["-c", "echo nope; exit 3"]));
    }

    #[tokio::test]
    async fn async_variant_and_terminate() {
        let script = r#"trap 'echo bye; exit 0' TERM; echo '{"message":"listening"}'; while :; do sleep 0.05; done"#;
        let (mut guard, _) = spawn_and_read_json_line_async(Command::new("sh").args(["-c", script])).await;
        guard.terminate();
        assert!(guard.wait_for_exit().success());
        guard.wait_for_line_async(Stream::Stdout, |l| l == "bye").await;
    }
}
