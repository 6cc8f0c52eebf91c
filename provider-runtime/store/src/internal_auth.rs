//! The verified caller context, carried from the gateway to the runtime.
//!
//! The gateway authenticates the client, then signs the context it established (tenant,
//! subject, scopes, request id) with a key shared only with the runtime. The runtime trusts
//! these headers only when the signature matches, so a client that reaches the runtime
//! directly — or forges the headers through the gateway — is refused.
//!
//! The signature covers the body too ([`BodySeal`]): the policy judged one body, and a body
//! swapped between the gateway and the runtime (or a captured request replayed with another
//! body inside the freshness window) must not run in its place. A body the gateway holds whole
//! (it read it for the policy or an idempotency key, or there is none) is sealed by its SHA-256
//! in the signed context. A body that streams through (a large upload, whose bytes the gateway
//! never holds) cannot be hashed before the headers leave, so the gateway appends a tag to it:
//! an HMAC of the signature and every byte before the tag, computed as the bytes pass. The
//! runtime reads a body whole before acting on it anyway, and strips and checks the tag first;
//! a changed, cut or extended body fails the check.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// How the body is bound to this signature.
    pub body: BodySeal,
}

/// Length of the tag that ends a [`BodySeal::Tagged`] body.
pub const BODY_TAG_LEN: usize = 32;

/// How a forwarded body is bound to the signature of its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodySeal {
    /// The SHA-256 (hex) of the whole body, which the gateway held before forwarding it.
    Sha256(String),
    /// The body streams through the gateway and ends with a [`BODY_TAG_LEN`]-byte tag made by
    /// [`InternalKey::body_tagger`].
    Tagged,
}

impl BodySeal {
    /// The seal of a body held whole (an empty one for a request without a body).
    pub fn of(body: &[u8]) -> Self {
        BodySeal::Sha256(hex::encode(Sha256::digest(body)))
    }
}

/// Computes the tag of a streamed body as its chunks pass.
pub struct BodyTagger(Hmac<Sha256>);

impl BodyTagger {
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    pub fn finish(self) -> [u8; BODY_TAG_LEN] {
        self.0.finalize().into_bytes().into()
    }
}

/// The key, held as an HMAC whose key schedule is already computed: every forwarded request
/// is signed (and verified), and cloning the prepared state costs a copy where deriving it
/// again from the key costs two SHA-256 block compressions per request.
#[derive(Clone)]
pub struct InternalKey(Hmac<Sha256>);

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
                Ok(InternalKey::from_bytes(&key))
            }
            Err(e) => Err(e),
        }
    }

    fn from_hex(text: &str) -> std::io::Result<Self> {
        let bytes = hex::decode(text)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        bytes.as_ref().map(InternalKey::from_bytes).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "internal key must be 64 hex characters",
            )
        })
    }

    fn from_bytes(key: &[u8; 32]) -> Self {
        InternalKey(Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length"))
    }

    fn mac(&self, method: &str, path: &str, context: &str) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
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

    /// The tagger of a streamed body, bound to the signature of its request (so a tag cannot
    /// be moved to another request).
    pub fn body_tagger(&self, signature: &str) -> BodyTagger {
        let mut mac = self.0.clone();
        for part in ["body\n", signature, "\n"] {
            mac.update(part.as_bytes());
        }
        BodyTagger(mac)
    }

    /// The body as the gateway sealed it (without its tag), or `None` when it is not the body
    /// the gateway signed.
    pub fn open_body(&self, seal: &BodySeal, signature: &str, body: Bytes) -> Option<Bytes> {
        match seal {
            BodySeal::Sha256(_) => (BodySeal::of(&body) == *seal).then_some(body),
            BodySeal::Tagged => {
                let content_len = body.len().checked_sub(BODY_TAG_LEN)?;
                let mut tagger = self.body_tagger(signature);
                tagger.update(&body[..content_len]);
                tagger
                    .0
                    .verify_slice(&body[content_len..])
                    .ok()
                    .map(|()| body.slice(..content_len))
            }
        }
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
            body: BodySeal::of(b"{}"),
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
    fn a_sealed_body_opens_only_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let key = InternalKey::load(dir.path()).unwrap();
        let signed = BodySeal::of(br#"{"params":{"amount":50000}}"#);
        let (context, sig) = key.sign(
            "POST",
            "/services/ledger/post_journal",
            &VerifiedContext {
                body: signed.clone(),
                ..ctx()
            },
        );
        let verified = key
            .verify(
                "POST",
                "/services/ledger/post_journal",
                &context,
                &sig,
                1000,
            )
            .unwrap();
        assert_eq!(verified.body, signed);
        let genuine = Bytes::from_static(br#"{"params":{"amount":50000}}"#);
        assert_eq!(
            key.open_body(&verified.body, &sig, genuine.clone()),
            Some(genuine)
        );
        let swapped = Bytes::from_static(br#"{"params":{"amount":1}}"#);
        assert_eq!(key.open_body(&verified.body, &sig, swapped), None);
        // The seal is part of the signed context: another digest breaks the signature.
        let (forged, _) = key.sign(
            "POST",
            "/services/ledger/post_journal",
            &VerifiedContext {
                body: BodySeal::of(b"other"),
                ..ctx()
            },
        );
        assert_eq!(
            key.verify("POST", "/services/ledger/post_journal", &forged, &sig, 1000),
            None
        );
    }

    #[test]
    fn a_streamed_body_carries_a_tag_bound_to_its_signature() {
        let dir = tempfile::tempdir().unwrap();
        let key = InternalKey::load(dir.path()).unwrap();
        let content = vec![7u8; 100_000];
        let mut tagger = key.body_tagger("sig-1");
        for chunk in content.chunks(4096) {
            tagger.update(chunk);
        }
        let mut tagged = content.clone();
        tagged.extend_from_slice(&tagger.finish());
        let tagged = Bytes::from(tagged);
        assert_eq!(
            key.open_body(&BodySeal::Tagged, "sig-1", tagged.clone()),
            Some(Bytes::from(content))
        );
        // Another request's signature, a flipped byte, a cut or an untagged body: refused.
        assert_eq!(
            key.open_body(&BodySeal::Tagged, "sig-2", tagged.clone()),
            None
        );
        let mut flipped = tagged.to_vec();
        flipped[10] ^= 1;
        assert_eq!(
            key.open_body(&BodySeal::Tagged, "sig-1", flipped.into()),
            None
        );
        assert_eq!(
            key.open_body(&BodySeal::Tagged, "sig-1", tagged.slice(1..)),
            None
        );
        assert_eq!(
            key.open_body(&BodySeal::Tagged, "sig-1", Bytes::from_static(b"short")),
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
