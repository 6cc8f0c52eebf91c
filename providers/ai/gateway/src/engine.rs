//! The `ai/gateway` engine: one instance per tenant, holding its aliases, guardrails,
//! templates, cache and cooldowns, calling the tenant's other ai providers through the tenant's
//! own client (`StartContext::client`), so each target call runs under that provider's config,
//! schema checks and resilience like any call of the tenant's.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_platform_store::PlatformStore;
use switchyard_spi::tenancy::Quotas;
use switchyard_spi::{
    CallContext, Describe, ErrorCode, EventStream, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};

use crate::audit::AuditLog;
use crate::cache::ResponseCache;
use crate::config::{self, GatewayConfig, GatewayConfigFields};
use crate::pick::Cooldowns;
use crate::wire::{ChatRequest, EmbedRequest};

/// The actions of the ai domain this engine serves: the domain's `chat` and `embed` with an
/// alias as `model`, OpenAI's three (`/v1/*`), and the tenant's audit and usage readouts.
const ACTIONS: [&str; 7] = [
    "chat",
    "embed",
    "chat_completions",
    "embeddings",
    "models",
    "audit",
    "usage",
];

/// Hosts every tenant's AI gateway; their budgets and audit records live in the platform
/// store, shared by every replica.
pub struct AiGatewayFactory {
    descriptor: ProviderDescriptor,
    /// `None` in a process that only describes its providers (`switchyard openapi`), whose
    /// instances never start.
    store: Option<PlatformStore>,
    /// The operator's daily token ceiling per tenant (`[tenancy.quotas] ai_tokens_per_day`).
    ceiling: Option<u64>,
    /// Started with the first instance, on the runtime that runs the instances, with the
    /// sweep of reservations that died with their replica.
    audit: OnceLock<AuditLog>,
}

impl AiGatewayFactory {
    pub fn new(store: Option<PlatformStore>, quotas: &Quotas) -> Self {
        AiGatewayFactory {
            descriptor: Describe::new("ai", "gateway", env!("CARGO_PKG_VERSION"))
                .actions(&ACTIONS)
                .summary(
                    "The tenant's AI gateway: model aliases over its ai providers with \
                     weighted routing, fallback and cooldown; budgets and rate limits that hold \
                     across replicas; PII redaction and guardrails; prompt templates; an \
                     exact-match cache; an audit record per call. Serves /v1/chat/completions, \
                     /v1/embeddings and /v1/models.",
                )
                .capabilities(&["openai_compatible", "streaming", "budgets", "redaction"])
                .config::<GatewayConfigFields>()
                .build(),
            store,
            ceiling: quotas.ai_tokens_per_day.map(|cap| cap.get()),
            audit: OnceLock::new(),
        }
    }
}

#[async_trait]
impl ProviderFactory for AiGatewayFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let store = self.store.clone().ok_or_else(|| {
            ProviderError::unavailable(
                "ai/gateway needs the platform store, which this process has not opened",
            )
            .with_retryable(false)
        })?;
        let config = config::parse(ctx.config)?;
        let client = ctx.client.ok_or_else(|| {
            ProviderError::unavailable(
                "ai/gateway runs only inside a runtime, which hands it the tenant's client",
            )
            .with_retryable(false)
        })?;
        let audit = self
            .audit
            .get_or_init(|| {
                crate::budget::start_sweeper(store.clone());
                AuditLog::start(store.clone())
            })
            .clone();
        Ok(Arc::new(Gateway {
            cache: ResponseCache::new(&config.cache),
            cooldowns: Cooldowns::new(config.cooldown),
            client,
            shared: Arc::new(Shared {
                tenant: ctx.tenant,
                config,
                store,
                audit,
                ceiling: self.ceiling,
            }),
        }))
    }
}

/// One tenant's gateway.
pub(crate) struct Gateway {
    pub(crate) shared: Arc<Shared>,
    pub(crate) client: Arc<dyn ProviderClient>,
    pub(crate) cache: Option<ResponseCache>,
    pub(crate) cooldowns: Cooldowns,
}

/// What a streamed chat's relay task needs after the call returned: shared with it.
pub(crate) struct Shared {
    pub(crate) tenant: TenantId,
    pub(crate) config: GatewayConfig,
    pub(crate) store: PlatformStore,
    pub(crate) audit: AuditLog,
    /// The operator's daily token ceiling for this tenant.
    pub(crate) ceiling: Option<u64>,
}

impl std::ops::Deref for Gateway {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Gateway {
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    #[serde(default)]
    since_ms: Option<i64>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default = "default_page")]
    limit: u32,
}

fn default_page() -> u32 {
    100
}

#[async_trait]
impl Provider for Gateway {
    async fn invoke(&self, ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        match call.action.as_str() {
            "chat_completions" => {
                let request = ChatRequest::from_openai(call.params)?;
                if request.stream {
                    return Err(crate::wire::unprocessable(
                        "/stream",
                        "a streamed chat is answered by POST /v1/chat/completions",
                    ));
                }
                let (answer, id, created) = self.chat(ctx, request).await?;
                Ok(answer.to_openai(&id, created))
            }
            "chat" => {
                let (answer, ..) = self
                    .chat(ctx, ChatRequest::from_domain(call.params, false)?)
                    .await?;
                Ok(answer.to_domain())
            }
            "embeddings" => {
                let request = EmbedRequest::from_openai(call.params)?;
                let base64 = request.base64;
                let (model, vectors, tokens) = self.embed(ctx, request).await?;
                Ok(crate::wire::embeddings(&model, vectors, tokens, base64))
            }
            "embed" => {
                let (model, vectors, _) = self
                    .embed(ctx, EmbedRequest::from_domain(call.params)?)
                    .await?;
                let dimensions = vectors
                    .first()
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                Ok(json!({"model": model, "dimensions": dimensions, "vectors": vectors}))
            }
            "models" => Ok(self.models()),
            "audit" => self.audit_page(call.params).await,
            "usage" => self.usage().await,
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("ai/gateway has no action {other:?}"),
            )),
        }
    }

    async fn stream(
        &self,
        ctx: &CallContext,
        call: Invocation,
    ) -> Result<EventStream, ProviderError> {
        match call.action.as_str() {
            "chat_completions" => {
                self.chat_stream(ctx, ChatRequest::from_openai(call.params)?)
                    .await
            }
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("ai/gateway does not stream {other:?}"),
            )),
        }
    }

    /// Up while configured: the targets' own health is theirs to report.
    async fn health(&self) -> Health {
        Health {
            status: HealthStatus::Up,
            dependencies: Vec::new(),
        }
    }
}

impl Gateway {
    /// `/v1/models`: the tenant's aliases, which are the model names its callers use.
    fn models(&self) -> Value {
        let data: Vec<Value> = self
            .config
            .aliases
            .keys()
            .map(|alias| json!({"id": alias, "object": "model", "created": 0, "owned_by": self.tenant.as_str()}))
            .collect();
        json!({"object": "list", "data": data})
    }

    /// The tenant's audit records, newest first, a page at a time.
    async fn audit_page(&self, params: Value) -> Result<Value, ProviderError> {
        let p: AuditParams = switchyard_spi::parse_params(params)?;
        let rows = self
            .store
            .ai_audit_list(
                &self.tenant,
                p.since_ms,
                p.before.as_deref(),
                p.limit.clamp(1, 1000),
            )
            .await
            .map_err(store_error)?;
        let next = (rows.len() == p.limit.clamp(1, 1000) as usize)
            .then(|| rows.last().map(|r| r.id.clone()))
            .flatten();
        let records: Vec<Value> = rows
            .into_iter()
            .map(|row| {
                let mut record = row.record;
                record["id"] = json!(row.id);
                record["at_ms"] = json!(row.at_ms);
                record
            })
            .collect();
        Ok(json!({"records": records, "next": next}))
    }

    /// What the tenant's limits have counted in their current windows.
    async fn usage(&self) -> Result<Value, ProviderError> {
        let buckets = self
            .store
            .ai_usage(&self.tenant)
            .await
            .map_err(store_error)?;
        let buckets: Vec<Value> = buckets
            .into_iter()
            .map(|b| json!({"bucket": b.bucket, "cap": b.cap, "spent": b.spent, "reserved": b.reserved}))
            .collect();
        Ok(json!({"buckets": buckets}))
    }
}

/// The store failed: said without its words, which may name the server.
pub(crate) fn store_error(e: switchyard_platform_store::StoreError) -> ProviderError {
    tracing::error!(error = %e, "ai/gateway: platform store failed");
    ProviderError::new(
        ErrorCode::Internal,
        "the platform store failed; see the server log",
    )
    .with_retryable(true)
}
