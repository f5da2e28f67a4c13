//! The session file (DESIGN.md §10): where `meshlens up`/`demo` tell the CLI how to reach the control plane.
//!
//! `$XDG_STATE_HOME/meshlens/session.json`, falling back to `~/.local/state/meshlens/session.json`:
//! `{"control":"http://127.0.0.1:8086","pid":1234,"meshDir":"/abs/dir","startedAt":"2025-01-01T12:00:00Z",
//! "token":"…"}`: `token` is the API token the CLI sends, so the file is 0600 in a 0700 directory.
//! Written once the control plane listens; removed when `up` exits, unless another session replaced it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The control plane's base URL.
    pub control: String,
    /// The `meshlens up` process.
    pub pid: u32,
    pub mesh_dir: PathBuf,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// The control plane's API token (absent with an external control plane whose token `up` was not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `$XDG_STATE_HOME/meshlens`, else `$HOME/.local/state/meshlens` (None when neither is set).
pub fn state_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".local/state"))
    })?;
    Some(base.join("meshlens"))
}

/// Where the session file is.
pub fn session_path() -> Option<PathBuf> {
    state_dir().map(|d| d.join("session.json"))
}

/// Reads a session file (None when missing or unreadable).
pub fn read(path: &Path) -> Option<Session> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The session file this process wrote; [`remove`](Self::remove) (or drop) deletes it if it is still ours.
#[derive(Debug)]
pub struct SessionFile {
    path: PathBuf,
    pid: u32,
}

impl SessionFile {
    /// Writes `session` to `path` atomically (temp file + rename). Returns the session it replaced, if
    /// that one's process is still running (two `up`s at once: the newer one owns the file).
    pub fn write(path: &Path, session: &Session) -> anyhow::Result<(Self, Option<Session>)> {
        let dir = path.parent().context("session file path has no directory")?;
        super::secrets::private_dir(dir)?;
        let previous = read(path).filter(|s| s.pid != session.pid && process_alive(s.pid));
        let tmp = dir.join(format!(".session.json.{}", session.pid));
        let mut text = serde_json::to_string_pretty(session)?;
        text.push('\n');
        super::secrets::write_private(&tmp, text.trim_end())?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok((SessionFile { path: path.to_owned(), pid: session.pid }, previous))
    }

    /// Deletes the file unless another session has taken it over since.
    pub fn remove(&self) {
        if read(&self.path).is_some_and(|s| s.pid == self.pid) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for SessionFile {
    fn drop(&mut self) {
        self.remove();
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// `SystemTime` as RFC 3339 in UTC with second precision: `2025-03-01T09:30:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    meshlens_api::time::rfc3339(t, meshlens_api::time::Precision::Seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_camel_case_and_removes_only_its_own() {
        let dir = std::env::temp_dir().join(format!("meshlens-session-{}", std::process::id()));
        let path = dir.join("meshlens/session.json");
        let s = Session {
            control: "http://127.0.0.1:8086".into(),
            pid: std::process::id(),
            mesh_dir: "/m".into(),
            started_at: rfc3339(SystemTime::now()),
            token: Some("tok".into()),
        };
        let (file, previous) = SessionFile::write(&path, &s).unwrap();
        assert!(previous.is_none());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["control"], "http://127.0.0.1:8086");
        assert_eq!(v["meshDir"], "/m");
        assert!(v["startedAt"].as_str().unwrap().ends_with('Z'));
        // Another session took the file over: ours must not delete it.
        let other = Session { pid: 1, ..s.clone() };
        std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
        file.remove();
        assert!(path.exists());
        std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
        drop(file);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
