//! Step 9: policy as code. The running OPA bundle decides every authenticated request; each
//! decision gets an id and is written, with the bundle revision, to the decision log.
//!
//! The bundle is loaded and checked (signature, compilation, its own tests) before it may serve;
//! a reload that fails any check is refused and the previous revision keeps serving. Swapping
//! revisions is one atomic pointer store, so no request is dropped or sees half a bundle.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
pub use switchyard_contracts::masking::{SECRET_FIELDS, mask};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_platform_store::{DecisionRecord, PlatformStore};
use switchyard_policy::{Bundle, PolicyEngine, PolicyError, VerificationKey};
use tokio::sync::Mutex;

use super::decision_log::DecisionQueue;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The bundle (`.tar.gz`): a file path, or an `http://` URL polled with `If-None-Match`.
    pub bundle: String,
    /// Public key (RS256, PEM) or shared secret (HS256) file; when set, unsigned or
    /// mis-signed bundles are refused.
    pub verify_key_file: Option<PathBuf>,
    #[serde(default)]
    pub verify_algorithm: VerifyAlgorithm,
    /// How often the source is checked for a new revision.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Input fields (at any depth, case-insensitive) masked in the decision log, besides the
    /// credentials of [`SECRET_FIELDS`], which are always masked.
    #[serde(default = "default_masked")]
    pub masked_fields: Vec<String>,
    /// Distinct decisions kept per bundle revision (0: every decision is evaluated). A cached
    /// decision is keyed by the input fields the bundle's Rego reads, derived at load; a bundle
    /// calling the clock, randomness or the network is never cached.
    #[serde(default = "default_cache_entries")]
    pub decision_cache_entries: u64,
    /// Days a tenant's decisions are kept, unless the operator set the tenant's own
    /// (`decision_retention_days` in its limits). 0 is refused.
    #[serde(default = "default_retention_days")]
    pub decision_retention_days: std::num::NonZeroU32,
    /// How often decisions past their retention are deleted.
    #[serde(default = "default_purge_interval_ms")]
    pub decision_purge_interval_ms: u64,
    /// `[policy.decision_upload]`: the operator's collector, sent every decision in OPA's
    /// decision-log format.
    pub decision_upload: Option<crate::decision_upload::DecisionUploadConfig>,
}

fn default_retention_days() -> std::num::NonZeroU32 {
    crate::decision_retention::DEFAULT_RETENTION_DAYS
}

fn default_purge_interval_ms() -> u64 {
    crate::decision_retention::DEFAULT_PURGE_INTERVAL_MS
}

fn default_cache_entries() -> u64 {
    switchyard_policy::DEFAULT_CACHE_ENTRIES
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub enum VerifyAlgorithm {
    #[default]
    RS256,
    HS256,
}

fn default_poll_ms() -> u64 {
    5_000
}

/// Personal data masked unless the operator names other fields.
fn default_masked() -> Vec<String> {
    ["card_number", "iban", "email", "phone"]
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Where a bundle comes from, and the version of it last seen there.
enum Source {
    File(PathBuf),
    Http {
        url: String,
        client: reqwest::Client,
    },
}

pub struct Policy {
    engine: ArcSwap<PolicyEngine>,
    source: Source,
    verify: Option<VerificationKey>,
    /// sha256 of the file, or the HTTP ETag: of the running bundle, and of the last refused one
    /// (so a bad bundle is reported once, not at every poll).
    seen: Mutex<Seen>,
    masked: Vec<String>,
    log: Arc<DecisionQueue>,
    poll_every: Duration,
    cache_entries: u64,
    /// Where the operator's per-tenant policy data is kept (`/admin/tenants/{t}/policy`): it is
    /// written over the bundle's own, as a new revision, whenever it changes.
    tenant_data: Option<PlatformStore>,
}

#[derive(Default)]
struct Seen {
    running: Option<String>,
    refused: Option<String>,
    /// The source's bundle as fetched and verified, before the operator's tenant data.
    base: Vec<u8>,
    /// The revision of the tenant data in force (0: none).
    tenant_revision: i64,
}

/// The verdict on one request.
pub struct Verdict {
    pub decision_id: String,
    pub allow: bool,
    pub reasons: Vec<String>,
}

impl Policy {
    /// Loads the first bundle; a gateway with a policy configured never starts without one.
    /// Returns the policy and the queue its decision log writer takes decisions from.
    pub async fn start(
        config: &PolicyConfig,
    ) -> Result<(Arc<Policy>, Arc<DecisionQueue>), BundleError> {
        Policy::start_with(config, None).await
    }

    /// [`Policy::start`] with the operator's per-tenant policy data read from `tenant_data`.
    pub async fn start_with(
        config: &PolicyConfig,
        tenant_data: Option<PlatformStore>,
    ) -> Result<(Arc<Policy>, Arc<DecisionQueue>), BundleError> {
        let verify = match &config.verify_key_file {
            None => None,
            Some(path) => {
                let key = std::fs::read(path).map_err(|source| BundleError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some(match config.verify_algorithm {
                    VerifyAlgorithm::RS256 => VerificationKey::Rs256Pem(key),
                    VerifyAlgorithm::HS256 => VerificationKey::Hs256(key),
                })
            }
        };
        let source =
            if config.bundle.starts_with("http://") || config.bundle.starts_with("https://") {
                Source::Http {
                    url: config.bundle.clone(),
                    client: reqwest::Client::new(),
                }
            } else {
                Source::File(PathBuf::from(&config.bundle))
            };
        let (bytes, seen) = fetch(&source, None).await?.ok_or(BundleError::Empty)?;
        let base = Bundle::load(bytes.clone(), verify.as_ref())?;
        let (engine, tenant_revision) =
            compose(&base, tenant_data.as_ref(), config.decision_cache_entries).await?;
        announce(&engine, "policy bundle loaded");
        let log = Arc::new(DecisionQueue::default());
        let policy = Policy {
            engine: ArcSwap::from_pointee(engine),
            source,
            verify,
            seen: Mutex::new(Seen {
                running: Some(seen),
                refused: None,
                base: bytes,
                tenant_revision,
            }),
            masked: SECRET_FIELDS
                .iter()
                .map(|f| (*f).to_owned())
                .chain(config.masked_fields.iter().map(|f| f.to_ascii_lowercase()))
                .collect(),
            log: log.clone(),
            poll_every: Duration::from_millis(config.poll_interval_ms),
            cache_entries: config.decision_cache_entries,
            tenant_data,
        };
        Ok((Arc::new(policy), log))
    }

    pub fn current(&self) -> Arc<PolicyEngine> {
        self.engine.load_full()
    }

    /// Checks the source and the operator's tenant data once; a new, valid bundle (or new
    /// tenant data over the running one) replaces the running revision. A bundle that fails its
    /// checks is reported once and then ignored until the source changes again.
    pub async fn reload(&self) -> Result<bool, BundleError> {
        let mut seen = self.seen.lock().await;
        let mut base = None;
        if let Some((bytes, version)) = fetch(&self.source, seen.running.as_deref()).await?
            && seen.running.as_deref() != Some(version.as_str())
            && seen.refused.as_deref() != Some(version.as_str())
        {
            match Bundle::load(bytes.clone(), self.verify.as_ref()) {
                Ok(bundle) => base = Some((bundle, bytes, version)),
                Err(e) => {
                    seen.refused = Some(version);
                    return Err(e.into());
                }
            }
        }
        let tenant_revision = match &self.tenant_data {
            Some(store) => store
                .tenant_policy_revision()
                .await
                .map_err(tenant_data_failed)?,
            None => 0,
        };
        if base.is_none() && tenant_revision == seen.tenant_revision {
            return Ok(false);
        }
        let bundle = match &base {
            Some((bundle, ..)) => bundle,
            None => &Bundle::load(seen.base.clone(), self.verify.as_ref())?,
        };
        let (engine, tenant_revision) =
            compose(bundle, self.tenant_data.as_ref(), self.cache_entries).await?;
        announce(&engine, "policy bundle reloaded");
        self.engine.store(Arc::new(engine));
        if let Some((_, bytes, version)) = base {
            seen.base = bytes;
            seen.running = Some(version);
            seen.refused = None;
        }
        seen.tenant_revision = tenant_revision;
        Ok(true)
    }

    /// Decides and logs. The decision comes from the running revision's cache when the policy
    /// already decided the part of an input it reads (see [`PolicyEngine::decide_cached`]); the
    /// log gets every decision, and the masked input once per distinct projection. The write
    /// is handed to the writer; it waits only if the writer is far behind, so a burst never
    /// loses a decision.
    pub async fn decide(
        &self,
        input: Value,
        tenant: &str,
        subject: &str,
    ) -> Result<Verdict, Problem> {
        let engine = self.current();
        let decided = engine.decide_cached(&input).map_err(|e| {
            tracing::error!(error = %e, "policy evaluation failed");
            Problem::new(ErrorCode::Internal, "the policy could not be evaluated")
        })?;
        let at_ms = unix_ms();
        let decision_id = decision_id(at_ms);
        let record = DecisionRecord {
            decision_id: decision_id.clone(),
            at_ms,
            tenant: tenant.to_owned(),
            subject: subject.to_owned(),
            allowed: decided.decision.allow,
            reasons: decided.decision.reasons.clone(),
            revision: engine.bundle().revision().to_owned(),
            input: decided
                .evaluated
                .map_or(Value::Null, |input| mask(input, &self.masked)),
            input_digest: decided.digest.as_deref().map(str::to_owned),
        };
        if self.log.push(record).await.is_err() {
            tracing::error!("the decision log writer has stopped");
            return Err(
                Problem::new(ErrorCode::Internal, "the decision could not be logged")
                    .with_retryable(true),
            );
        }
        Ok(Verdict {
            decision_id,
            allow: decided.decision.allow,
            reasons: decided.decision.reasons.clone(),
        })
    }
}

/// The decision log writer stops once the policy is gone, after writing what is queued.
impl Drop for Policy {
    fn drop(&mut self) {
        self.log.close();
    }
}

/// The engine for `base` with the operator's tenant data over it (revision
/// `<base>+tenants.<n>`), or for `base` alone when there is none; and the data's revision.
async fn compose(
    base: &Bundle,
    tenant_data: Option<&PlatformStore>,
    cache_entries: u64,
) -> Result<(PolicyEngine, i64), BundleError> {
    let (revision, tenants) = match tenant_data {
        Some(store) => store
            .all_tenant_policy()
            .await
            .map_err(tenant_data_failed)?,
        None => (0, Default::default()),
    };
    let bytes = if tenants.is_empty() {
        base.bytes().to_vec()
    } else {
        base.with_tenant_data(&tenants, &format!("{}+tenants.{revision}", base.revision()))?
    };
    // The base was verified; what was written over it comes from the store, not the signer.
    Ok((load(bytes, None, cache_entries)?, revision))
}

fn tenant_data_failed(e: switchyard_platform_store::StoreError) -> BundleError {
    BundleError::TenantData(e.to_string())
}

fn load(
    bytes: Vec<u8>,
    verify: Option<&VerificationKey>,
    cache_entries: u64,
) -> Result<PolicyEngine, BundleError> {
    let bundle = Bundle::load(bytes, verify)?;
    Ok(PolicyEngine::with_cache(bundle, cache_entries)?)
}

/// Why a policy bundle (or its verification key) could not be loaded; the running bundle, if
/// any, stays.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("the bundle source returned nothing")]
    Empty,
    #[error("bundle refused: {0}")]
    Refused(#[from] PolicyError),
    #[error("the operator's tenant policy data could not be read: {0}")]
    TenantData(String),
}

/// Logs a revision going live with what its decisions are cached by, or why they are not.
fn announce(engine: &PolicyEngine, message: &str) {
    let revision = engine.bundle().revision();
    match engine.reads() {
        Ok(reads) if engine.caches() => {
            tracing::info!(revision, reads = ?reads.paths(), "{message}; decisions cached by the input fields the policy reads");
        }
        Ok(_) => tracing::info!(revision, "{message}; the decision cache is off"),
        Err(why) => {
            tracing::warn!(revision, why, "{message}; every decision is evaluated");
        }
    }
}

/// The source's bytes and their version, or `None` when an HTTP source answers 304.
async fn fetch(
    source: &Source,
    seen: Option<&str>,
) -> Result<Option<(Vec<u8>, String)>, BundleError> {
    match source {
        Source::File(path) => {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|source| BundleError::Read {
                    path: path.clone(),
                    source,
                })?;
            let version = hex::encode(Sha256::digest(&bytes));
            Ok(Some((bytes, version)))
        }
        Source::Http { url, client } => {
            let mut request = client.get(url);
            if let Some(etag) = seen {
                request = request.header("if-none-match", etag);
            }
            let fetch_failed = |source| BundleError::Fetch {
                url: url.clone(),
                source,
            };
            let response = request.send().await.map_err(fetch_failed)?;
            if response.status() == reqwest::StatusCode::NOT_MODIFIED {
                return Ok(None);
            }
            if !response.status().is_success() {
                return Err(BundleError::Status {
                    url: url.clone(),
                    status: response.status(),
                });
            }
            let etag = response
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = response.bytes().await.map_err(fetch_failed)?.to_vec();
            let version = etag.unwrap_or_else(|| hex::encode(Sha256::digest(&bytes)));
            Ok(Some((bytes, version)))
        }
    }
}

/// A UUID v7 for a decision taken at `at_ms`. Built from the caller's clock reading and the
/// thread's random generator: `Uuid::now_v7` reads the clock again, takes a process-wide lock
/// and asks the kernel for randomness, about 1.3 µs of the cached path's budget.
fn decision_id(at_ms: i64) -> String {
    let uuid = uuid::Builder::from_unix_timestamp_millis(at_ms as u64, &rand::random::<[u8; 10]>())
        .into_uuid();
    uuid.as_hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        .to_owned()
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Polls the bundle source and swaps in new revisions.
pub struct PolicyReloader(pub Arc<Policy>);

#[async_trait]
impl BackgroundService for PolicyReloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut ticks = tokio::time::interval(self.0.poll_every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = self.0.reload().await {
                tracing::warn!(error = %e, revision = self.0.current().bundle().revision(), "keeping the running policy bundle");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decision_ids_are_distinct_uuid_v7_of_their_time() {
        let at_ms = 1_765_000_000_123;
        let ids: std::collections::BTreeSet<String> =
            (0..1000).map(|_| decision_id(at_ms)).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids {
            let uuid = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(uuid.get_version_num(), 7);
            let (secs, nanos) = uuid.get_timestamp().unwrap().to_unix();
            assert_eq!(secs * 1000 + u64::from(nanos / 1_000_000), at_ms as u64);
        }
    }

    #[test]
    fn masked_fields_are_hidden_at_any_depth() {
        let masked: Vec<String> = SECRET_FIELDS
            .iter()
            .map(|f| (*f).to_owned())
            .chain(default_masked())
            .collect();
        let input = json!({"resource": {"Password": "hunter2", "lines": [{"email": "a@b.c", "amount": 5}]}, "tenant": "acme"});
        assert_eq!(
            mask(input, &masked),
            json!({"resource": {"Password": "***", "lines": [{"email": "***", "amount": 5}]}, "tenant": "acme"})
        );
        let config = json!({"dsn": "postgres://u:pw@h/db", "client_secret": "c", "secret_access_key": "s",
                            "base_url": "http://ann:pw2@h.example/v1", "note": "mail ann@h.example"});
        assert_eq!(
            mask(config, &masked),
            json!({"dsn": "***", "client_secret": "***", "secret_access_key": "***",
                   "base_url": "http://ann:***@h.example/v1", "note": "mail ann@h.example"})
        );
    }
}
