#![doc = include_str!("docs.md")]

mod config;
mod delivery;
mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::Client;
use serde_json::json;
use switchyard_contracts::SchemaError;
use switchyard_egress::{Egress, Redirects};
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{
    CallContext, ErrorCode, Host, Provider, ProviderDescriptor, ProviderError, ProviderFactory,
    StartContext, TenantId,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::OnceCell;

use crate::contract::{
    DeadLetter, DeadLetterPage, DeadLettersParams, Delivery, RedeliverParams, TriggerParams,
};
use crate::engine::{Engine, Instance, describe};
use config::{Endpoint, WebhookConfig};
use delivery::{Budget, Report};
use store::{Inserted, Message, NewMessage, State, Store};

/// The largest payload, as JSON text. Receivers commonly refuse bodies past 1 MiB, and every
/// payload is kept in the tenant's store until delivered (or its retention ends).
const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// How long a statement waits for the database lock before the call fails as retryable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The `integration/webhook` engine. Owns one message store (database file) per tenant,
/// opened on the tenant's first start and shared by its later instances, so a reconfigured
/// tenant keeps its dead letters and idempotency keys.
pub struct WebhookFactory {
    root: PathBuf,
    descriptor: ProviderDescriptor,
    /// A cell per tenant, so opening one tenant's store does not hold up the others, and a
    /// failed open leaves the cell empty for the next start to retry.
    stores: Mutex<HashMap<TenantId, Arc<OnceCell<Arc<Store>>>>>,
    /// The operator's egress ceiling; a tenant's `allowed_networks` may only narrow it.
    egress: Egress,
}

impl WebhookFactory {
    /// An engine keeping its tenants' stores under `root`, which is created if missing. A
    /// failure to create it is logged here and surfaces as a failed start.
    pub fn new(root: PathBuf) -> Self {
        if let Err(e) = std::fs::create_dir_all(&root) {
            tracing::error!(root = %root.display(), error = %e, "cannot create the webhook root");
        }
        WebhookFactory {
            root,
            descriptor: describe("webhook", &["trigger", "dead_letters", "redeliver"])
                .summary(
                    "Signed webhook deliveries (Standard Webhooks) to the tenant's configured \
                     endpoints: retries with backoff, an SSRF guard, idempotency keys and a \
                     per-tenant dead-letter store.",
                )
                .capabilities(&[
                    "standard_webhooks",
                    "retries",
                    "dead_letters",
                    "idempotency_keys",
                    "ssrf_guard",
                ])
                .config::<config::WebhookConfigFields>()
                .build(),
            stores: Mutex::new(HashMap::new()),
            egress: Egress::default(),
        }
    }

    /// Holds every tenant's deliveries to the operator's egress ceiling (by default: no
    /// loopback, private or link-local receivers).
    pub fn with_egress(mut self, ceiling: &EgressCeiling) -> Self {
        self.egress = Egress::new(ceiling);
        self
    }

    async fn store(&self, tenant: &TenantId) -> Result<Arc<Store>, ProviderError> {
        let cell = {
            let mut stores = self
                .stores
                .lock()
                .map_err(|_| ProviderError::internal("the webhook store registry is poisoned"))?;
            stores.entry(tenant.clone()).or_default().clone()
        };
        let path = self.root.join(format!("{}.db", tenant.as_str()));
        cell.get_or_try_init(|| async {
            tracing::info!(tenant = %tenant, path = %path.display(), "opening webhook store");
            Store::open(&path, BUSY_TIMEOUT, now_ms())
                .await
                .map(Arc::new)
        })
        .await
        .cloned()
    }
}

#[async_trait]
impl ProviderFactory for WebhookFactory {
    fn node_local(&self) -> Option<&'static str> {
        Some("dead letters and delivery state in files under this node's data dir")
    }

    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config = WebhookConfig::from_value(ctx.config)?;
        let egress = match &config.allowed_networks {
            Some(networks) => self.egress.narrowed(networks, "/allowed_networks")?,
            None => self.egress.clone(),
        };
        // A URL whose port or IP literal the guard refuses can never be delivered to: refuse
        // it now, when the tenant configures it, rather than on every trigger.
        for (name, endpoint) in &config.endpoints {
            egress
                .check_url(&endpoint.url)
                .map_err(|refusal| refusal.at(&url_pointer(name)))?;
        }
        // No redirects: a delivery is signed for the receiver the tenant configured.
        let client = egress
            .client(Redirects::None)
            .user_agent(concat!("switchyard-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::internal(format!("HTTP client: {e}")))?;
        let store = self.store(&ctx.tenant).await?;
        Ok(Arc::new(Instance(Webhook {
            config,
            egress,
            client,
            store,
        })))
    }
}

/// One tenant's instance: its endpoints and egress guard; the store belongs to the factory.
struct Webhook {
    config: WebhookConfig,
    egress: Egress,
    client: Client,
    store: Arc<Store>,
}

impl Delivery {
    fn of(message: Message, replayed: bool) -> Self {
        let delivered = message.state == State::Delivered;
        Delivery {
            message_id: message.message_id,
            status: if delivered {
                "delivered"
            } else {
                "dead_lettered"
            },
            attempts: message.attempts,
            last_status: message.last_status,
            last_error: message.last_error.filter(|_| !delivered),
            replayed,
        }
    }
}

impl Webhook {
    fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.config.endpoints.get(name)
    }

    /// Every address the endpoint's host resolves to now. The client's resolver checks again
    /// at connect time; this check answers `egress_forbidden` before anything is stored.
    async fn vet(&self, endpoint: &Endpoint, name: &str) -> Result<(), ProviderError> {
        self.egress
            .vet_url(&endpoint.url)
            .await
            .map_err(|refusal| refusal.at(&url_pointer(name)))
    }
}

#[async_trait]
impl Engine for Webhook {
    const NAME: &'static str = "webhook";
    const DEPENDENCY: &'static str = "message_store";

    async fn trigger(
        &self,
        ctx: &CallContext,
        p: TriggerParams,
    ) -> Result<Delivery, ProviderError> {
        // Which endpoints exist is the tenant's config, not the schema: 422, not 400.
        let endpoint = self.endpoint(&p.endpoint).ok_or_else(|| {
            let known: Vec<&String> = self.config.endpoints.keys().collect();
            ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/endpoint",
                format!(
                    "no endpoint {:?} in this tenant's config; configured: {known:?}",
                    p.endpoint
                ),
            )
        })?;
        let payload = serde_json::to_string(&p.payload)
            .map_err(|e| ProviderError::internal(format!("payload not serializable: {e}")))?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ProviderError::field(
                ErrorCode::PayloadTooLarge,
                "/payload",
                format!(
                    "the payload is {} bytes as JSON; at most {MAX_PAYLOAD_BYTES}",
                    payload.len()
                ),
            ));
        }
        self.vet(endpoint, &p.endpoint).await?;
        let now = now_ms();
        let retention = i64::try_from(self.config.retention.as_millis()).unwrap_or(i64::MAX);
        if let Err(e) = self
            .store
            .prune_delivered(now.saturating_sub(retention))
            .await
        {
            tracing::warn!(error = %e.detail, "could not prune delivered webhooks; retrying next trigger");
        }
        let message_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        // The Standard Webhooks payload shape: type, timestamp, data.
        let body = json!({"type": p.event_type, "timestamp": rfc3339(now)?, "data": p.payload})
            .to_string();
        let inserted = self
            .store
            .insert(NewMessage {
                message_id: &message_id,
                idempotency_key: p.idempotency_key.as_deref(),
                endpoint: &p.endpoint,
                event_type: &p.event_type,
                payload: &payload,
                body: &body,
                created_at_ms: now,
            })
            .await?;
        if let Inserted::Existing(previous) = inserted {
            return replay(*previous, &p);
        }
        self.deliver(ctx, endpoint.clone(), message_id, body).await
    }

    async fn dead_letters(&self, p: DeadLettersParams) -> Result<DeadLetterPage, ProviderError> {
        let after = match p.cursor.as_deref() {
            None => 0,
            Some(cursor) => cursor
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq >= 0)
                .ok_or_else(|| {
                    // Cursors are opaque in the contract, so a wrong one breaks no schema.
                    ProviderError::field(
                        ErrorCode::ParamsUnprocessable,
                        "/cursor",
                        "not a cursor this provider returned",
                    )
                })?,
        };
        let limit = i64::from(p.limit);
        // One more than asked tells whether there is a next page.
        let mut page = self.store.dead_letters(after, limit + 1).await?;
        let more = page.len() > p.limit as usize;
        page.truncate(p.limit as usize);
        let next_cursor = more
            .then(|| page.last().map(|m| m.seq.to_string()))
            .flatten();
        let dead_letters = page
            .into_iter()
            .map(|m| {
                Ok(DeadLetter {
                    created_at: rfc3339(m.created_at_ms)?,
                    dead_lettered_at: rfc3339(m.dead_lettered_at_ms.unwrap_or(m.created_at_ms))?,
                    message_id: m.message_id,
                    endpoint: m.endpoint,
                    event_type: m.event_type,
                    payload: m.payload,
                    idempotency_key: m.idempotency_key,
                    attempts: m.attempts,
                    last_status: m.last_status,
                    last_error: m.last_error,
                })
            })
            .collect::<Result<_, ProviderError>>()?;
        Ok(DeadLetterPage {
            dead_letters,
            next_cursor,
        })
    }

    async fn redeliver(
        &self,
        ctx: &CallContext,
        p: RedeliverParams,
    ) -> Result<Delivery, ProviderError> {
        let Some(message) = self.store.claim_dead_letter(&p.message_id).await? else {
            return Err(match self.store.get(&p.message_id).await? {
                None => ProviderError::not_found(format!(
                    "no message {:?} for this tenant",
                    p.message_id
                )),
                Some(m) if m.state == State::Delivered => ProviderError::new(
                    ErrorCode::Conflict,
                    format!(
                        "message {:?} was delivered; only dead letters are redelivered",
                        p.message_id
                    ),
                ),
                Some(_) => ProviderError::new(
                    ErrorCode::Conflict,
                    format!(
                        "message {:?} is being delivered by another call",
                        p.message_id
                    ),
                ),
            });
        };
        // The endpoint's *current* config: fixing a wrong URL and redelivering is the point.
        let ready = match self.endpoint(&message.endpoint) {
            None => Err(ProviderError::new(
                ErrorCode::Conflict,
                format!(
                    "endpoint {:?} is no longer in this tenant's config; configure it to redeliver",
                    message.endpoint
                ),
            )),
            Some(endpoint) => self
                .vet(endpoint, &message.endpoint)
                .await
                .map(|()| endpoint.clone()),
        };
        match ready {
            Ok(endpoint) => {
                self.deliver(ctx, endpoint, message.message_id, message.body)
                    .await
            }
            Err(e) => {
                self.store.release(&message.message_id).await?;
                Err(e)
            }
        }
    }

    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        let count = self.store.count_dead_letters().await?;
        Ok(Some(format!("{count} dead letters")))
    }
}

impl Webhook {
    /// Runs one delivery of a message this call holds (`delivering`) to its end and records
    /// the outcome. It runs as its own task: if the caller goes away (a timeout, a dropped
    /// connection) the delivery still ends and is recorded, instead of leaving the message
    /// `delivering` until a restart.
    async fn deliver(
        &self,
        ctx: &CallContext,
        endpoint: Endpoint,
        message_id: String,
        body: String,
    ) -> Result<Delivery, ProviderError> {
        let client = self.client.clone();
        let store = self.store.clone();
        let budget = Budget::of(&self.config);
        let tenant = ctx.tenant.clone();
        let task = tokio::spawn(async move {
            let report: Report =
                delivery::deliver(&client, &store, &endpoint, &message_id, &body, budget).await;
            let finished = store.finish(&message_id, report.delivered, now_ms()).await;
            if !report.delivered {
                tracing::warn!(
                    tenant = %tenant,
                    message_id,
                    last_status = report.last_status,
                    last_error = report.last_error.as_deref().unwrap_or_default(),
                    "webhook dead-lettered"
                );
            }
            finished
        });
        let message = task
            .await
            .map_err(|e| ProviderError::internal(format!("the delivery task failed: {e}")))?
            // Something was sent: the runtime must not retry the call and send it again.
            .map_err(|e| e.with_retryable(false))?;
        Ok(Delivery::of(message, false))
    }
}

/// The answer for an idempotency key used before: the first trigger's message, if this call
/// asks for the same delivery.
fn replay(previous: Message, p: &TriggerParams) -> Result<Delivery, ProviderError> {
    if previous.endpoint != p.endpoint
        || previous.event_type != p.event_type
        || previous.payload != p.payload
    {
        return Err(ProviderError::field(
            ErrorCode::IdempotencyKeyReused,
            "/idempotency_key",
            "this idempotency key was used for another endpoint, event type or payload",
        ));
    }
    if previous.state == State::Delivering {
        return Err(ProviderError::new(
            ErrorCode::IdempotencyInFlight,
            format!(
                "message {} with this idempotency key is being delivered; ask again for its outcome",
                previous.message_id
            ),
        ));
    }
    Ok(Delivery::of(previous, true))
}

/// The config field of an endpoint's URL, which a refusal points at.
fn url_pointer(endpoint: &str) -> String {
    format!("/endpoints/{endpoint}/url")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn rfc3339(ms: i64) -> Result<String, ProviderError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| ProviderError::internal(format!("time {ms} ms is out of range")))
}

/// Always hosted: stores under the data directory, deliveries held to the operator's egress
/// ceiling.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(Some(Arc::new(
        WebhookFactory::new(host.data.join("integration/webhook"))
            .with_egress(&host.tenancy.egress),
    )))
}
