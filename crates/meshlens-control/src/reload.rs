//! Hot reload of the mesh directory: poll the files' metadata every ~200 ms (robust to editors' renames
//! and ConfigMap symlink swaps), and on a change re-read and validate the whole directory, once it has
//! settled, and hand the result to the store (which keeps the last good state on errors).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::meshdir;
use crate::store::Store;

/// What a change of the directory changes: names, sizes, modification times and inodes of its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fingerprint {
    Files(Vec<FileStamp>),
    Unreadable(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    rel: String,
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

pub(crate) fn fingerprint(dir: &Path) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    match meshdir::list_files(dir) {
        Err(e) => Fingerprint::Unreadable(e.to_string()),
        Ok(files) => Fingerprint::Files(
            files
                .into_iter()
                .map(|f| match std::fs::metadata(&f.path) {
                    Ok(m) => FileStamp { rel: f.rel, len: m.len(), modified: m.modified().ok(), inode: m.ino() },
                    Err(_) => FileStamp { rel: f.rel, len: 0, modified: None, inode: 0 },
                })
                .collect(),
        ),
    }
}

async fn fingerprint_async(dir: &Path) -> Fingerprint {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || fingerprint(&dir))
        .await
        .unwrap_or_else(|e| Fingerprint::Unreadable(e.to_string()))
}

/// Polls `dir` every `interval` until `shutdown` turns true. `seen` is the fingerprint taken before the
/// initial load.
pub(crate) async fn run(
    store: Arc<Store>,
    dir: PathBuf,
    options: meshdir::LoadOptions,
    interval: Duration,
    mut seen: Fingerprint,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let now = fingerprint_async(&dir).await;
        if now == seen {
            continue;
        }
        // Give a writer that is not atomic (truncate, then write) a moment to finish.
        tokio::time::sleep(interval / 2).await;
        let settled = fingerprint_async(&dir).await;
        if settled != now {
            continue;
        }
        tracing::debug!(dir = %dir.display(), "mesh directory changed: reloading");
        seen = settled;
        let (load_dir, options) = (dir.clone(), options.clone());
        match tokio::task::spawn_blocking(move || meshdir::load_with(&load_dir, &options)).await {
            Ok(result) => store.config_loaded(result),
            Err(e) => tracing::error!(error = %e, "reading the mesh directory failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlens_testkit::TempDir;

    #[test]
    fn fingerprints_change_with_renames_edits_and_removals() {
        let dir = TempDir::new("fingerprint");
        dir.write("mesh.yaml", "a: 1\n");
        let a = fingerprint(dir.path());
        assert_eq!(a, fingerprint(dir.path()));
        // Same size, replaced by rename: the inode changes.
        dir.write("tmp", "a: 2\n");
        std::fs::rename(dir.path().join("tmp"), dir.path().join("mesh.yaml")).unwrap();
        let b = fingerprint(dir.path());
        assert_ne!(a, b);
        dir.write("sub/x.yml", "");
        let c = fingerprint(dir.path());
        assert_ne!(b, c);
        std::fs::remove_file(dir.path().join("mesh.yaml")).unwrap();
        assert_ne!(c, fingerprint(dir.path()));
        dir.write("notes.txt", "ignored");
        dir.write(".swap.yaml", "ignored");
        let d = fingerprint(dir.path());
        assert_eq!(d, fingerprint(dir.path()));
    }
}
