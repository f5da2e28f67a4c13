//! The secrets a local mesh runs with (docs/security.md), kept in a 0700 directory as 0600 files, never
//! in argv or env: the control plane's proxy key and API token, and one credential per proxy.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use meshlens_control::auth::ProxyKey;

/// The file names in a secrets directory.
pub const PROXY_KEY_FILE: &str = "proxy.key";
pub const API_TOKEN_FILE: &str = "api.token";

/// A secrets directory and the key credentials are minted with (none: proxies get no credential, e.g.
/// with an external control plane whose key `up` was not given).
#[derive(Clone, Debug)]
pub struct Secrets {
    pub dir: PathBuf,
    key: Option<ProxyKey>,
    /// The API token's file, when the token is known.
    pub api_token_file: Option<PathBuf>,
}

impl Secrets {
    /// Creates `dir` (0700) and writes the key and token that are given into it (0600).
    pub fn create(dir: PathBuf, key: Option<ProxyKey>, api_token: Option<&str>) -> anyhow::Result<Self> {
        private_dir(&dir)?;
        if let Some(key) = &key {
            write_private(&dir.join(PROXY_KEY_FILE), &key.to_hex())?;
        }
        let api_token_file = match api_token {
            Some(token) => {
                let path = dir.join(API_TOKEN_FILE);
                write_private(&path, token)?;
                Some(path)
            }
            None => None,
        };
        Ok(Secrets { dir, key, api_token_file })
    }

    /// The proxy key's file, when there is a key.
    pub fn proxy_key_file(&self) -> Option<PathBuf> {
        self.key.as_ref().map(|_| self.dir.join(PROXY_KEY_FILE))
    }

    /// Writes one instance's credential to `<namespace>.<instance>.credential` (0600) and returns its path.
    pub fn credential(&self, namespace: &str, workload: &str, instance: &str) -> anyhow::Result<Option<PathBuf>> {
        let Some(key) = &self.key else { return Ok(None) };
        let path = self.dir.join(format!("{namespace}.{instance}.credential"));
        write_private(&path, &key.mint(namespace, workload, instance))?;
        Ok(Some(path))
    }

    /// Deletes the directory and everything in it.
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates `dir` and its parents; `dir` itself gets mode 0700 (also when it already existed).
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", dir.display()))
}

/// Writes `text` to `path` with mode 0600 (created so; an existing file is made 0600 first).
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// A secret from a file, without surrounding whitespace; an empty file is an error.
pub fn read_secret(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = text.trim();
    anyhow::ensure!(!text.is_empty(), "{} is empty", path.display());
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlens_control::auth::ProxyCredentials;

    #[test]
    fn files_are_private_and_credentials_verify() {
        let dir = std::env::temp_dir().join(format!("meshlens-secrets-{}", std::process::id()));
        let key = ProxyKey::generate();
        let s = Secrets::create(dir.join("run"), Some(key.clone()), Some("tok")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&s.dir), 0o700);
        assert_eq!(mode(&s.dir.join(PROXY_KEY_FILE)), 0o600);
        assert_eq!(read_secret(s.api_token_file.as_ref().unwrap()).unwrap(), "tok");
        let cred_file = s.credential("prod", "web", "web-0").unwrap().unwrap();
        assert_eq!(mode(&cred_file), 0o600);
        let id = key.verify(&read_secret(&cred_file).unwrap()).unwrap();
        assert_eq!(id.instance, "web-0");
        let again = ProxyKey::from_hex(&read_secret(&s.proxy_key_file().unwrap()).unwrap()).unwrap();
        assert!(again.verify(&read_secret(&cred_file).unwrap()).is_ok());
        s.remove();
        assert!(!s.dir.exists());
        let none = Secrets::create(dir.join("none"), None, None).unwrap();
        assert!(none.credential("prod", "web", "web-0").unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
