#![doc = include_str!("docs.md")]

mod config;
mod env;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt as _;
use opendal::services::S3;
use opendal::{ErrorKind, HttpTransporter, Metadata, Operator};
use opendal_http_transport_reqwest::ReqwestTransport;
use switchyard_spi::{
    ErrorCode, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};
use time::OffsetDateTime;

use crate::contract::{
    DeleteResult, GetResult, ListParams, ObjectMeta, Page, PresignMethod, PresignParams,
    PresignResult, rfc3339,
};
use crate::engine::{self, Engine, Instance};
use crate::key::{self, ObjectKey};
use config::S3Config;
pub(crate) use env::builtin;

/// S3's default region. Servers that ignore regions (most S3-compatible ones) accept it, and
/// it is what an unconfigured AWS client signs for.
const DEFAULT_REGION: &str = "us-east-1";

/// How long connecting to the server may take: a dead endpoint fails calls quickly instead of
/// holding them until the runtime's call timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a health probe may take before the server counts as down: long enough for a
/// loaded server, short enough that a health page does not hang on a dead one.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// The most keys one ListObjectsV2 request returns.
const MAX_KEYS_PER_REQUEST: usize = 1000;

/// The platform's S3 server: where every tenant's objects live and the credentials the engine
/// signs with. Tenants never see or replace these; `Debug` hides the secret key so the
/// settings can be logged.
#[derive(Clone)]
pub struct S3Settings {
    endpoint: String,
    region: String,
    bucket: String,
    prefix: String,
    access_key_id: String,
    secret_access_key: String,
}

impl S3Settings {
    /// A bucket on the server at `endpoint` (e.g. `https://s3.eu-west-1.amazonaws.com` or
    /// `http://127.0.0.1:9000`, addressed path-style), region `us-east-1`, tenants' folders at
    /// the bucket's top level.
    pub fn new(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        S3Settings {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            region: DEFAULT_REGION.into(),
            bucket: bucket.into(),
            prefix: String::new(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        }
    }

    /// The region requests are signed for.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// A folder of the bucket that holds the tenants' folders, so that several deployments
    /// (staging, production) can share one bucket without seeing each other's objects.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.trim_matches('/').to_owned();
        self
    }

    /// The folder of the bucket that holds `tenant`'s objects, as opendal's root.
    fn tenant_root(&self, tenant: &TenantId) -> String {
        if self.prefix.is_empty() {
            format!("/{tenant}/", tenant = tenant.as_str())
        } else {
            format!("/{}/{}/", self.prefix, tenant.as_str())
        }
    }
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .finish()
    }
}

/// The `storage/s3` engine: objects in one bucket of an S3-compatible server, each tenant
/// confined to its own key prefix.
///
/// The factory holds the settings and one HTTP client (one connection pool) that every
/// tenant's instance shares; an instance is only an opendal operator rooted at its tenant's
/// folder, so starting one costs no request and two instances of a tenant see the same objects.
pub struct S3Factory {
    settings: S3Settings,
    transport: HttpTransporter,
    descriptor: ProviderDescriptor,
}

impl S3Factory {
    /// An engine over the bucket of `settings`. Fails only when no HTTP client can be built
    /// (the system's TLS library cannot be loaded).
    ///
    /// The client is the factory's own rather than opendal's process-wide default: pooled
    /// connections belong to the tokio runtime that opened them, and a process with several
    /// runtimes (a test binary) must not hand one runtime's dead connections to another.
    pub fn new(settings: S3Settings) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| {
                ProviderError::unavailable(format!("no HTTP client for S3: {e}"))
                    .with_retryable(false)
            })?;
        Ok(S3Factory {
            settings,
            transport: HttpTransporter::new(ReqwestTransport::new(client)),
            descriptor: engine::describe("s3")
                .summary("Objects in a bucket of an S3-compatible server, one key prefix per tenant, with presigned URLs.")
                .capabilities(&["list_pagination", "raw_body", "durable"])
                .config::<S3Config>()
                .build(),
        })
    }

    /// An operator whose every path is below `tenant`'s folder. opendal prefixes each path
    /// with the root after the key passed the key rules, so no key can name another folder.
    fn operator(&self, tenant: &TenantId) -> Result<Operator, ProviderError> {
        let settings = &self.settings;
        let builder = S3::default()
            .endpoint(&settings.endpoint)
            .region(&settings.region)
            .bucket(&settings.bucket)
            .root(&settings.tenant_root(tenant))
            .access_key_id(&settings.access_key_id)
            .secret_access_key(&settings.secret_access_key)
            // Only the platform's credentials: never ones found in the process environment,
            // a profile file or the cloud's instance metadata.
            .disable_config_load()
            .disable_ec2_metadata();
        let operator = Operator::new(builder).map_err(|e| {
            tracing::error!(settings = ?self.settings, kind = %e.kind(), message = e.message(), "invalid S3 settings");
            ProviderError::unavailable(format!(
                "the engine's S3 settings are invalid ({})",
                e.kind()
            ))
            .with_retryable(false)
        })?;
        let context = operator
            .base_context()
            .with_http_transport(self.transport.clone());
        Ok(operator.with_context(context))
    }
}

#[async_trait]
impl ProviderFactory for S3Factory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = S3Config::from_value(ctx.config)?;
        Ok(Arc::new(Instance(S3Provider {
            operator: self.operator(&ctx.tenant)?,
            tenant: ctx.tenant,
            config,
        })))
    }
}

/// One tenant's instance.
struct S3Provider {
    tenant: TenantId,
    config: S3Config,
    operator: Operator,
}

#[async_trait]
impl Engine for S3Provider {
    const NAME: &'static str = "s3";
    const DEPENDENCY: &'static str = "s3";

    fn max_object_bytes(&self) -> u64 {
        self.config.max_object_bytes
    }

    async fn put(&self, key: ObjectKey, content: Bytes) -> Result<ObjectMeta, ProviderError> {
        let size = content.len();
        if let Err(e) = self.operator.write(key.as_str(), content).await {
            return Err(self.write_failure(&key, e).await);
        }
        let meta = self.stat(&key, "put").await?;
        tracing::debug!(tenant = %self.tenant, key = %meta.key, size, "object written");
        Ok(meta)
    }

    async fn get(&self, key: ObjectKey) -> Result<GetResult, ProviderError> {
        let read = async {
            let reader = self.operator.reader(key.as_str()).await?;
            let content = reader.read(..).await?.to_bytes();
            Ok::<_, opendal::Error>((content, reader.metadata().cloned()))
        };
        let (content, seen) = match read.await {
            Ok(read) => read,
            Err(e) => return Err(self.read_failure("get", &key, e).await),
        };
        // The metadata of the response that carried the content, so both describe the same
        // version; a server that sent none is asked separately.
        let meta = match seen.filter(|m| m.last_modified().is_some()) {
            Some(seen) => describe(key.as_str(), content.len() as u64, &seen)?,
            None => self.stat(&key, "get").await?,
        };
        Ok(GetResult::new(meta, &content))
    }

    async fn head(&self, key: ObjectKey) -> Result<ObjectMeta, ProviderError> {
        self.stat(&key, "head").await
    }

    async fn list(&self, params: ListParams) -> Result<Page, ProviderError> {
        if !key::could_begin_a_key(&params.prefix) {
            return Ok(Page {
                objects: Vec::new(),
                next_cursor: None,
            });
        }
        let failure = |e| failure("list", &params.prefix, e);
        let mut listing = self
            .operator
            .lister_with(&params.prefix)
            .recursive(true)
            // One more than the page, to learn whether anything remains after it.
            .limit((params.limit + 1).min(MAX_KEYS_PER_REQUEST));
        if let Some(cursor) = &params.cursor {
            listing = listing.start_after(cursor);
        }
        let mut lister = listing.await.map_err(failure)?;
        let mut objects = Vec::new();
        while objects.len() <= params.limit {
            let Some(entry) = lister.try_next().await.map_err(failure)? else {
                break;
            };
            let (path, meta) = entry.into_parts();
            // The server matched the prefix and the cursor already; checked again because
            // opendal normalises the prefix it sends. Names no key can have (folder markers,
            // objects written by other tools) are not objects of this contract.
            let wanted = meta.is_file()
                && path.starts_with(&params.prefix)
                && params.cursor.as_deref().is_none_or(|c| path.as_str() > c)
                && ObjectKey::parse(&path, "").is_ok();
            if wanted {
                objects.push(describe(&path, meta.content_length(), &meta)?);
            }
        }
        let more = objects.len() > params.limit;
        objects.truncate(params.limit);
        let next_cursor = more
            .then(|| objects.last().map(|o| o.key.clone()))
            .flatten();
        Ok(Page {
            objects,
            next_cursor,
        })
    }

    /// S3 deletes answer the same whether or not the object existed, so the engine looks
    /// first to tell the caller which it was.
    async fn delete(&self, key: ObjectKey) -> Result<DeleteResult, ProviderError> {
        match self.stat(&key, "delete").await {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::ResourceNotFound => {
                return Ok(DeleteResult { deleted: false });
            }
            Err(e) => return Err(e),
        }
        self.operator
            .delete(key.as_str())
            .await
            .map_err(|e| failure("delete", key.as_str(), e))?;
        self.prune_folders(&key).await;
        tracing::debug!(tenant = %self.tenant, key = %key.as_str(), "object deleted");
        Ok(DeleteResult { deleted: true })
    }

    async fn presign(
        &self,
        key: ObjectKey,
        params: PresignParams,
    ) -> Result<PresignResult, ProviderError> {
        let max = self.config.max_presign_secs;
        if !(1..=max).contains(&params.expires_in_secs) {
            return Err(ProviderError::invalid_param(
                "/expires_in_secs",
                format!(
                    "expires_in_secs must be between 1 and {max} (this tenant's max_presign_secs)"
                ),
            ));
        }
        let lifetime = Duration::from_secs(params.expires_in_secs);
        // Taken before signing, in whole seconds as the signature's own date, so the URL is
        // refused no earlier than expires_at.
        let now = OffsetDateTime::now_utc();
        let signed_at = now - time::Duration::nanoseconds(i64::from(now.nanosecond()));
        let presigned = match params.method {
            PresignMethod::Get => {
                // A URL to nothing would only fail later, in someone's browser.
                self.stat(&key, "presign").await?;
                self.operator.presign_read(key.as_str(), lifetime).await
            }
            PresignMethod::Put => self.operator.presign_write(key.as_str(), lifetime).await,
        }
        .map_err(|e| failure("presign", key.as_str(), e))?;
        // The contract has no way to hand out headers, so a URL that needs signed headers
        // besides Host would be unusable: fail loudly rather than answer it.
        if !presigned.header().is_empty() {
            let names: Vec<&str> = presigned.header().keys().map(|h| h.as_str()).collect();
            return Err(ProviderError::internal(format!(
                "the presigned request needs headers the contract cannot return: {names:?}"
            )));
        }
        tracing::debug!(tenant = %self.tenant, key = %key.as_str(), method = %presigned.method(), secs = params.expires_in_secs, "URL presigned");
        Ok(PresignResult {
            url: presigned.uri().to_string(),
            method: presigned.method().as_str().to_owned(),
            expires_at: rfc3339(signed_at + lifetime)?,
        })
    }

    /// Up while the tenant's folder of the bucket can be listed with the platform's
    /// credentials.
    async fn probe(&self) -> Result<(), ProviderError> {
        let probe = async {
            let mut lister = self.operator.lister_with("").limit(1).await?;
            lister.try_next().await.map(|_| ())
        };
        match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(tenant = %self.tenant, kind = %e.kind(), message = e.message(), "S3 health probe failed");
                Err(ProviderError::unavailable(format!(
                    "the bucket cannot be listed ({})",
                    e.kind()
                )))
            }
            Err(_) => Err(ProviderError::unavailable(format!(
                "the server did not answer within {}s",
                HEALTH_TIMEOUT.as_secs()
            ))),
        }
    }
}

impl S3Provider {
    /// HeadObject, as every action describes an object.
    async fn stat(&self, key: &ObjectKey, action: &str) -> Result<ObjectMeta, ProviderError> {
        match self.operator.stat(key.as_str()).await {
            Ok(meta) if meta.is_file() => describe(key.as_str(), meta.content_length(), &meta),
            Ok(_) => Err(missing(key)),
            Err(e) => Err(self.read_failure(action, key, e).await),
        }
    }

    /// Whether some object's key continues `key` with '/': then `key` names a folder, not an
    /// object.
    async fn is_folder(&self, key: &ObjectKey) -> bool {
        let probe = async {
            let mut lister = self
                .operator
                .lister_with(&format!("{}/", key.as_str()))
                .recursive(true)
                .limit(1)
                .await?;
            Ok::<_, opendal::Error>(lister.try_next().await?.is_some())
        };
        probe.await.unwrap_or(false)
    }

    /// Servers that keep objects as files (s3s-fs, gateways over a POSIX filesystem) answer a
    /// read of a key that is a folder of other keys with a server error instead of S3's 404;
    /// the engine recognises that case and answers resource_not_found as S3 would.
    async fn read_failure(
        &self,
        action: &str,
        key: &ObjectKey,
        e: opendal::Error,
    ) -> ProviderError {
        match e.kind() {
            ErrorKind::NotFound => missing(key),
            ErrorKind::Unexpected if self.is_folder(key).await => missing(key),
            _ => failure(action, key.as_str(), e),
        }
    }

    /// On the same servers a key cannot be an object and a folder at once (as on
    /// `storage/fs`): that write fails with a server error, reported as the conflict it is.
    async fn write_failure(&self, key: &ObjectKey, e: opendal::Error) -> ProviderError {
        if e.kind() == ErrorKind::Unexpected && self.is_folder(key).await {
            return ProviderError::new(
                ErrorCode::Conflict,
                format!(
                    "{:?} is the prefix of other objects ('{}/...') and this S3 server keeps objects as files, so it cannot also be an object",
                    key.as_str(),
                    key.as_str()
                ),
            );
        }
        failure("put", key.as_str(), e)
    }

    /// Deletes the folder markers (`a/`, `a/b/`) of the deleted key's prefixes, innermost
    /// first. On S3 these objects do not exist and the deletes change nothing; servers that
    /// keep objects as files remove the folder if it is empty, so that the prefix can later
    /// be an object itself, as on `storage/fs`. Best effort: a failure only leaves a folder.
    async fn prune_folders(&self, key: &ObjectKey) {
        for folder in key.ancestors().rev() {
            if let Err(e) = self.operator.delete(&format!("{folder}/")).await {
                tracing::debug!(tenant = %self.tenant, folder, kind = %e.kind(), "folder marker not deleted");
                break;
            }
        }
    }
}

/// An object's metadata as the contract answers it. `modified_at` is cut to whole seconds:
/// S3 gives seconds in HeadObject (an HTTP date) but milliseconds in listings, and every
/// action must describe an object the same way.
fn describe(key: &str, size: u64, meta: &Metadata) -> Result<ObjectMeta, ProviderError> {
    let modified = meta.last_modified().ok_or_else(|| {
        ProviderError::internal(format!("the server sent no modification time for {key:?}"))
    })?;
    let at = OffsetDateTime::from_unix_timestamp(modified.into_inner().as_second())
        .map_err(|e| ProviderError::internal(format!("{key:?}: modification time: {e}")))?;
    Ok(ObjectMeta {
        key: key.to_owned(),
        size,
        modified_at: rfc3339(at)?,
    })
}

fn missing(key: &ObjectKey) -> ProviderError {
    ProviderError::not_found(format!("no object with key {:?}", key.as_str()))
}

/// A failed call to the server. The answer names the action, the key and the kind of failure
/// only: the server's own message may quote request details, and credentials must never
/// reach a caller. The log line keeps the server's message for the operator.
fn failure(action: &str, key: &str, e: opendal::Error) -> ProviderError {
    tracing::warn!(action, key, kind = %e.kind(), temporary = e.is_temporary(), message = e.message(), "S3 call failed");
    let detail = |why: &str| format!("{action} {key:?}: {why}");
    match e.kind() {
        ErrorKind::NotFound => ProviderError::not_found(detail("not found on the server")),
        ErrorKind::PermissionDenied => ProviderError::unavailable(detail(
            "the server refused the engine's credentials or the bucket's policy forbids it",
        ))
        .with_retryable(false),
        ErrorKind::ConfigInvalid => {
            ProviderError::unavailable(detail("the engine's bucket, endpoint or region is wrong"))
                .with_retryable(false)
        }
        ErrorKind::RateLimited => {
            ProviderError::unavailable(detail("the server is throttling requests"))
        }
        kind => ProviderError::unavailable(detail(&format!("the server call failed ({kind})")))
            .with_retryable(e.is_temporary()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchyard_contracts::domains;
    use switchyard_spi::{CallContext, HealthStatus, Invocation};

    use super::*;

    fn settings() -> S3Settings {
        S3Settings::new(
            "http://127.0.0.1:1/",
            "bucket",
            "AKIDEXAMPLE",
            "very-secret-key",
        )
    }

    #[test]
    fn descriptor_serves_the_whole_storage_contract() {
        let factory = S3Factory::new(settings()).unwrap();
        let descriptor = factory.descriptor();
        assert_eq!(
            (descriptor.domain.as_str(), descriptor.name.as_str()),
            ("storage", "s3")
        );
        assert_eq!(descriptor.actions, domains::actions("storage"));
        assert!(descriptor.action("presign").is_some());
        assert!(descriptor.has_capability("list_pagination"));
        assert!(descriptor.has_capability("raw_body"));
    }

    #[test]
    fn settings_never_show_the_secret_key() {
        let shown = format!("{:?}", settings().with_prefix("/prod/"));
        assert!(!shown.contains("very-secret-key"), "{shown}");
        assert!(shown.contains("prefix: \"prod\""), "{shown}");
    }

    #[test]
    fn each_tenant_is_rooted_at_its_own_folder() {
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(settings().tenant_root(&acme), "/acme/");
        assert_eq!(
            settings().with_prefix("env/prod/").tenant_root(&acme),
            "/env/prod/acme/"
        );
    }

    /// Health reaches the server, and a server that is not there is reported down with
    /// nothing of the credentials in the detail.
    #[tokio::test]
    async fn an_unreachable_server_is_down_without_leaking_credentials() {
        let factory = S3Factory::new(settings()).unwrap();
        let provider = factory
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({}),
                client: None,
            })
            .await
            .unwrap();
        let health = provider.health().await;
        assert_eq!(health.status, HealthStatus::Down);
        assert_eq!(health.dependencies[0].name, "s3");
        let detail = health.dependencies[0].detail.clone().unwrap_or_default();
        assert!(!detail.contains("very-secret-key"), "{detail}");

        let context = CallContext {
            tenant: TenantId::parse("acme").unwrap(),
            request_id: "test".into(),
            subject: None,
            service: None,
        };
        let call = Invocation {
            action: "head".into(),
            params: json!({"key": "a"}),
            payload: None,
        };
        let err = provider.invoke(&context, call).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::ProviderUnavailable);
        assert!(!err.detail.contains("very-secret-key"), "{}", err.detail);
    }

    /// A PUT URL is signed locally, without a request: the server need not be reachable.
    #[tokio::test]
    async fn a_presigned_url_names_the_key_id_but_never_the_secret() {
        let factory = S3Factory::new(settings().with_prefix("prod")).unwrap();
        let provider = factory
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({}),
                client: None,
            })
            .await
            .unwrap();
        let context = CallContext {
            tenant: TenantId::parse("acme").unwrap(),
            request_id: "test".into(),
            subject: None,
            service: None,
        };
        let call = Invocation {
            action: "presign".into(),
            params: json!({"key": "in/box.txt", "method": "put", "expires_in_secs": 60}),
            payload: None,
        };
        let signed = provider.invoke(&context, call).await.unwrap();
        let url = signed["url"].as_str().unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:1/bucket/prod/acme/in/box.txt?"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Credential=AKIDEXAMPLE"), "{url}");
        assert!(url.contains("X-Amz-Expires=60"), "{url}");
        assert!(!url.contains("very-secret-key"), "{url}");
        assert_eq!(signed["method"], "PUT");
    }

    #[tokio::test]
    async fn an_invalid_config_fails_start() {
        let err = S3Factory::new(settings())
            .unwrap()
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({"max_presign_secs": 0}),
                client: None,
            })
            .await
            .err()
            .expect("start fails");
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
    }
}
