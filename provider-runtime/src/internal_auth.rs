//! The verified caller context, carried from the gateway to the runtime.
//!
//! The gateway authenticates the client, then signs the context it established (tenant,
//! subject, scopes, request id) with a key shared only with the runtime. The runtime trusts
//! these headers only when the signature matches, so a client that reaches the runtime
//! directly — or forges the headers through the gateway — is refused.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const CONTEXT_HEADER: &str = "x-switchyard-context";
pub const SIGNATURE_HEADER: &str = "x-switchyard-signature";
/// Prefix of every internal header; the gateway strips client-sent ones.
pub const INTERNAL_HEADER_PREFIX: &str = "x-switchyard-";
/// How old a signed context may be. Bounds the replay window of a captured internal request.
const MAX_AGE_SECS: i64 = 300;

/// What the gateway verified about the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedContext {
    pub tenant: String,
    pub subject: String,
    pub scopes: String,
    pub request_id: String,
    pub issued_at: i64,
}

#[derive(Clone)]
pub struct InternalKey([u8; 32]);

impl std::fmt::Debug for InternalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalKey(..)")
    }
}

impl InternalKey {
    /// `SWITCHYARD_INTERNAL_KEY` (64 hex chars) when set — gateway and runtime on different
    /// hosts must share it — else `internal.key` in the data directory, created on first use
    /// with owner-only permissions.
    pub fn load(data_dir: &Path) -> std::io::Result<Self> {
        if let Ok(hex_key) = std::env::var("SWITCHYARD_INTERNAL_KEY") {
            return Self::from_hex(hex_key.trim());
        }
        let path = data_dir.join("internal.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_hex(text.trim()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)?;
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                write_private(&path, hex::encode(key).as_bytes())?;
                Ok(InternalKey(key))
            }
            Err(e) => Err(e),
        }
    }

    fn from_hex(text: &str) -> std::io::Result<Self> {
        let bytes = hex::decode(text)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        bytes.map(InternalKey).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "internal key must be 64 hex characters",
            )
        })
    }

    fn mac(&self, method: &str, path: &str, context: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in [method, "\n", path, "\n", context] {
            mac.update(part.as_bytes());
        }
        mac
    }

    /// The two header values for a request the gateway forwards.
    pub fn sign(&self, method: &str, path: &str, ctx: &VerifiedContext) -> (String, String) {
        let context = URL_SAFE_NO_PAD.encode(serde_json::to_vec(ctx).unwrap_or_default());
        let signature = hex::encode(self.mac(method, path, &context).finalize().into_bytes());
        (context, signature)
    }

    /// The context, if the signature matches this request and the context is fresh.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        context: &str,
        signature: &str,
        now: i64,
    ) -> Option<VerifiedContext> {
        let signature = hex::decode(signature).ok()?;
        self.mac(method, path, context)
            .verify_slice(&signature)
            .ok()?;
        let ctx: VerifiedContext =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(context).ok()?).ok()?;
        ((now - ctx.issued_at).abs() <= MAX_AGE_SECS).then_some(ctx)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> VerifiedContext {
        VerifiedContext {
            tenant: "acme".into(),
            subject: "key:1".into(),
            scopes: "*".into(),
            request_id: "r".into(),
            issued_at: 1000,
        }
    }

    #[test]
    fn a_signature_binds_method_path_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let key = InternalKey::load(dir.path()).unwrap();
        let (context, sig) = key.sign("POST", "/providers/db/sqlite/query", &ctx());
        assert_eq!(
            key.verify("POST", "/providers/db/sqlite/query", &context, &sig, 1010),
            Some(ctx())
        );
        assert_eq!(
            key.verify("GET", "/providers/db/sqlite/query", &context, &sig, 1010),
            None
        );
        assert_eq!(
            key.verify("POST", "/providers/db/sqlite/execute", &context, &sig, 1010),
            None
        );
        let (other_context, _) = key.sign(
            "POST",
            "/x",
            &VerifiedContext {
                tenant: "globex".into(),
                ..ctx()
            },
        );
        assert_eq!(
            key.verify(
                "POST",
                "/providers/db/sqlite/query",
                &other_context,
                &sig,
                1010
            ),
            None
        );
        assert_eq!(
            key.verify(
                "POST",
                "/providers/db/sqlite/query",
                &context,
                &sig,
                1000 + 301
            ),
            None
        );
    }

    #[test]
    fn the_key_file_is_reused_and_another_key_does_not_verify() {
        let dir = tempfile::tempdir().unwrap();
        let first = InternalKey::load(dir.path()).unwrap();
        let again = InternalKey::load(dir.path()).unwrap();
        let (context, sig) = first.sign("GET", "/providers", &ctx());
        assert!(
            again
                .verify("GET", "/providers", &context, &sig, 1000)
                .is_some()
        );
        let other_dir = tempfile::tempdir().unwrap();
        let other = InternalKey::load(other_dir.path()).unwrap();
        assert!(
            other
                .verify("GET", "/providers", &context, &sig, 1000)
                .is_none()
        );
    }
}
