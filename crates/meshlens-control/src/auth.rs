//! Who may call the control plane (docs/security.md): a proxy with a credential for the instance it
//! registers, the CLI and dashboard with the API token; and the tap token derived for each proxy.
//!
//! Proxy credentials come from a [`ProxyCredentials`] source. Local mode's source is a [`ProxyKey`]:
//! `meshlens up` mints `mlp1:<namespace>:<workload>:<instance>:<HMAC-SHA256 hex>` for every instance and
//! the control plane checks the MAC with the same key. Another source (Kubernetes ServiceAccount tokens)
//! implements the same trait.

use std::io::Read;

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix (and version) of local-mode proxy credentials.
pub const LOCAL_PREFIX: &str = "mlp1";

/// Who a valid proxy credential says its holder is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyIdentity {
    pub namespace: String,
    pub workload: String,
    pub instance: String,
}

/// Why a credential was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("missing credential: send Authorization: Bearer <credential>")]
    Missing,
    #[error("invalid credential")]
    Invalid,
}

/// A source of proxy identities: checks a credential and says whom it names.
pub trait ProxyCredentials: Send + Sync + std::fmt::Debug + 'static {
    fn verify(&self, credential: &str) -> Result<ProxyIdentity, CredentialError>;
}

/// Local mode's key: 32 random bytes that mint and check `mlp1:…` credentials.
#[derive(Clone)]
pub struct ProxyKey([u8; 32]);

impl std::fmt::Debug for ProxyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxyKey(<secret>)")
    }
}

impl ProxyKey {
    /// A new random key.
    pub fn generate() -> Self {
        ProxyKey(random_bytes())
    }

    /// A key written as 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes = from_hex(text.trim()).filter(|b| b.len() == 32).ok_or("a proxy key is 64 hex digits")?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(ProxyKey(key))
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The credential of one instance: `mlp1:<namespace>:<workload>:<instance>:<mac>`.
    pub fn mint(&self, namespace: &str, workload: &str, instance: &str) -> String {
        let claim = format!("{LOCAL_PREFIX}:{namespace}:{workload}:{instance}");
        let mac = hex(&self.mac(&claim).finalize().into_bytes());
        format!("{claim}:{mac}")
    }

    fn mac(&self, message: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any size");
        mac.update(message.as_bytes());
        mac
    }
}

impl ProxyCredentials for ProxyKey {
    fn verify(&self, credential: &str) -> Result<ProxyIdentity, CredentialError> {
        let (claim, mac) = credential.rsplit_once(':').ok_or(CredentialError::Invalid)?;
        let mut parts = claim.split(':');
        let (Some(LOCAL_PREFIX), Some(namespace), Some(workload), Some(instance), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CredentialError::Invalid);
        };
        let mac = from_hex(mac).ok_or(CredentialError::Invalid)?;
        self.mac(claim).verify_slice(&mac).map_err(|_| CredentialError::Invalid)?;
        Ok(ProxyIdentity { namespace: namespace.into(), workload: workload.into(), instance: instance.into() })
    }
}

/// The control plane's checks, built once at start.
#[derive(Debug)]
pub(crate) struct Auth {
    proxies: std::sync::Arc<dyn ProxyCredentials>,
    api_token: String,
    /// Dashboard logins (login codes minted for the API token's holder, browser sessions).
    pub sessions: crate::dashboard::session::Sessions,
}

impl Auth {
    pub fn new(proxies: std::sync::Arc<dyn ProxyCredentials>, api_token: String) -> Self {
        Auth { proxies, api_token, sessions: Default::default() }
    }

    /// The CLI/dashboard API token in `Authorization: Bearer …`.
    pub fn api(&self, headers: &HeaderMap) -> Result<(), CredentialError> {
        let token = bearer(headers).ok_or(CredentialError::Missing)?;
        if constant_time_eq(token.as_bytes(), self.api_token.as_bytes()) {
            Ok(())
        } else {
            Err(CredentialError::Invalid)
        }
    }

    /// The proxy credential in `Authorization: Bearer …`, and whom it names.
    pub fn proxy(&self, headers: &HeaderMap) -> Result<ProxyIdentity, CredentialError> {
        self.proxies.verify(bearer(headers).ok_or(CredentialError::Missing)?)
    }
}

/// Derives each proxy's tap token; new at every start, so the tokens change when the control plane restarts.
#[derive(Debug)]
pub(crate) struct TapKey(ProxyKey);

impl TapKey {
    pub fn generate() -> Self {
        TapKey(ProxyKey::generate())
    }

    /// The token one proxy's tap listener accepts: it gets it in its lease, the control plane presents it.
    pub fn token(&self, namespace: &str, instance: &str) -> String {
        let mac = self.0.mac(&format!("tap:{namespace}:{instance}"));
        hex(&mac.finalize().into_bytes()[..16])
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh random token: 16 random bytes in hex.
pub fn new_token() -> String {
    hex(&random_bytes::<16>())
}

/// `N` bytes of `/dev/urandom`. Should the device be unreadable, the process-random keys of std's hasher
/// stand in (still unguessable from outside the process).
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if let Err(e) = read {
        tracing::warn!(error = %e, "cannot read /dev/urandom: secrets come from the hasher's random keys");
        use std::hash::{BuildHasher, RandomState};
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let word = RandomState::new().hash_one((i, std::time::SystemTime::now())).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_name_their_instance_and_forgeries_fail() {
        let key = ProxyKey::generate();
        let cred = key.mint("prod", "web", "web-0");
        assert!(cred.starts_with("mlp1:prod:web:web-0:"), "{cred}");
        let id = key.verify(&cred).unwrap();
        assert_eq!((id.namespace.as_str(), id.workload.as_str(), id.instance.as_str()), ("prod", "web", "web-0"));
        // Another name with the same MAC, another key's credential, garbage: all refused.
        let mac = cred.rsplit_once(':').unwrap().1;
        assert_eq!(key.verify(&format!("mlp1:prod:web:web-1:{mac}")), Err(CredentialError::Invalid));
        assert_eq!(key.verify(&ProxyKey::generate().mint("prod", "web", "web-0")), Err(CredentialError::Invalid));
        for bad in ["", "mlp1", "mlp1:prod:web:web-0", "mlp1:prod:web:web-0:zz", "mlp2:a:b:c:00"] {
            assert_eq!(key.verify(bad), Err(CredentialError::Invalid), "{bad}");
        }
        let again = ProxyKey::from_hex(&format!("{}\n", key.to_hex())).unwrap();
        assert_eq!(again.verify(&cred).unwrap(), id);
        assert!(ProxyKey::from_hex("abc").is_err());
    }

    #[test]
    fn api_token_and_tap_tokens() {
        let auth = Auth::new(std::sync::Arc::new(ProxyKey::generate()), "s3cret".into());
        let mut headers = HeaderMap::new();
        assert_eq!(auth.api(&headers), Err(CredentialError::Missing));
        headers.insert(axum::http::header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert_eq!(auth.api(&headers), Err(CredentialError::Invalid));
        headers.insert(axum::http::header::AUTHORIZATION, "bearer s3cret".parse().unwrap());
        assert_eq!(auth.api(&headers), Ok(()));
        let tap = TapKey::generate();
        let a = tap.token("prod", "web-0");
        assert_eq!(a.len(), 32);
        assert_eq!(a, tap.token("prod", "web-0"));
        assert_ne!(a, tap.token("prod", "web-1"));
        assert_ne!(a, TapKey::generate().token("prod", "web-0"));
        assert_eq!(new_token().len(), 32);
        assert_ne!(new_token(), new_token());
    }
}
