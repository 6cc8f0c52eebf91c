#![doc = include_str!("docs.md")]

mod client;
mod config;
mod operations;
mod signature;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ipnet::IpNet;
use reqwest::{Method, Url};
use serde_json::{Value, json};
use sqlx::SqlitePool;
use switchyard_contracts::SchemaError;
use switchyard_egress::Egress;
use switchyard_spi::{
    CallContext, ErrorCode, Health, Host, Invocation, Provider, ProviderDescriptor, ProviderError,
    ProviderFactory, StartContext, TenantId, parse_config,
};
use tokio::sync::OnceCell;

use crate::contract::{
    Checked, ExecuteParams, Executed, ReceiveParams, ReceiveResult, ReceivedEvent,
};
use crate::engine::{Engine, Instance, describe};
use crate::http::Secret;
use client::Stripe;
use config::PaymentsConfig;
use operations::{Authorize, Capture, OPERATIONS, PaymentId, Refund, payment, payment_id};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The event ids received, so a redelivered webhook is answered as a duplicate.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS received (
    event_id TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL
);";

/// The `integration/payments` engine: one file of received webhook ids per tenant (opened on
/// the tenant's first start, shared by its later instances), and the operator's egress
/// ceiling. Payments themselves live in the tenant's own payments account only.
pub(crate) struct PaymentsFactory {
    root: PathBuf,
    descriptor: ProviderDescriptor,
    egress: Egress,
    stores: Mutex<HashMap<TenantId, Arc<OnceCell<SqlitePool>>>>,
}

pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    let root = host.data.join("integration/payments");
    if let Err(e) = std::fs::create_dir_all(&root) {
        tracing::error!(root = %root.display(), error = %e, "cannot create the payments root");
    }
    Ok(Some(Arc::new(PaymentsFactory {
        root,
        descriptor: describe("payments", &["execute", "check", "receive"])
            .summary(
                "Card payments through the tenant's own payments account (Stripe's \
                 PaymentIntents API): authorize, capture, void, refund and get as execute \
                 operations, each mutating one under the caller's idempotency key; signed \
                 webhooks (Stripe-Signature) verified and deduplicated by receive.",
            )
            .capabilities(&["idempotency_keys", "webhooks", "ssrf_guard"])
            .config::<PaymentsConfig>()
            .build(),
        egress: Egress::new(&host.tenancy.egress),
        stores: Mutex::new(HashMap::new()),
    })))
}

impl PaymentsFactory {
    async fn store(&self, tenant: &TenantId) -> Result<SqlitePool, ProviderError> {
        let cell = {
            let mut stores = self
                .stores
                .lock()
                .map_err(|_| ProviderError::internal("the payments store registry is poisoned"))?;
            stores.entry(tenant.clone()).or_default().clone()
        };
        let path = self.root.join(format!("{}.db", tenant.as_str()));
        cell.get_or_try_init(|| async {
            crate::sqlite::open(&path, BUSY_TIMEOUT, SCHEMA)
                .await
                .map_err(|e| ProviderError::unavailable(format!("the payments store: {e}")))
        })
        .await
        .cloned()
    }
}

#[async_trait]
impl ProviderFactory for PaymentsFactory {
    fn node_local(&self) -> Option<&'static str> {
        Some("received webhook ids in files under this node's data dir")
    }

    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        if ctx
            .config
            .as_object()
            .is_some_and(serde_json::Map::is_empty)
        {
            return Ok(Arc::new(Unconfigured));
        }
        let config: PaymentsConfig = parse_config(ctx.config)?;
        let egress = match &config.allowed_networks {
            Some(networks) => {
                let parsed = networks
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        n.parse::<IpNet>().map_err(|_| {
                            ProviderError::field(
                                ErrorCode::ConfigUnprocessable,
                                &format!("/allowed_networks/{i}"),
                                format!("{n:?} is not a CIDR network such as 10.0.0.0/8"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.egress.narrowed(&parsed, "/allowed_networks")?
            }
            None => self.egress.clone(),
        };
        let origin = Url::parse(&config.api_url).map_err(|e| {
            ProviderError::field(
                ErrorCode::ConfigUnprocessable,
                "/api_url",
                format!("not a URL ({e})"),
            )
        })?;
        egress
            .check_url(&origin)
            .map_err(|refusal| refusal.at("/api_url"))?;
        let stripe = Stripe::new(origin, &Secret(config.secret_key), egress)?;
        Ok(Arc::new(Instance(Payments {
            stripe,
            webhook_secret: config.webhook_secret.map(Secret),
            tolerance_s: config.webhook_tolerance_s,
            store: self.store(&ctx.tenant).await?,
        })))
    }
}

/// A tenant that has not configured the engine: every call answers provider_not_configured.
struct Unconfigured;

#[async_trait]
impl Provider for Unconfigured {
    async fn invoke(&self, _: &CallContext, _: Invocation) -> Result<Value, ProviderError> {
        Err(ProviderError::new(
            ErrorCode::ProviderNotConfigured,
            "integration/payments is not configured for this tenant: configure its account first",
        ))
    }

    async fn health(&self) -> Health {
        Health::from_dependencies(Vec::new())
    }
}

/// One tenant's instance: its account and its webhook secret.
struct Payments {
    stripe: Stripe,
    webhook_secret: Option<Secret>,
    tolerance_s: u64,
    store: SqlitePool,
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every answer that is a payment shows its charge, for `amount_refunded`.
const EXPAND: (&str, &str) = ("expand[]", "latest_charge");

impl Payments {
    /// Runs `operation`; answers the payment (and for a refund the refund) and whether the
    /// API replayed a saved result.
    async fn run(
        &self,
        operation: &str,
        params: Value,
        key: Option<&str>,
    ) -> Result<(Value, bool), ProviderError> {
        let stripe = &self.stripe;
        match operation {
            "authorize" => {
                let p: Authorize = operations::parse(params)?;
                p.check()?;
                let amount = p.amount.to_string();
                let currency = p.currency.to_ascii_lowercase();
                let mut form = pairs(&[
                    ("amount", &amount),
                    ("currency", &currency),
                    ("capture_method", "manual"),
                    ("confirm", "true"),
                    ("payment_method", &p.payment_method),
                    ("metadata[reference]", &p.reference),
                    EXPAND,
                ]);
                if let Some(description) = &p.description {
                    form.push(("description".into(), description.clone()));
                }
                let answer = stripe
                    .call(Method::POST, "/v1/payment_intents", &form, key)
                    .await?;
                Ok((payment(&answer.body), answer.replayed))
            }
            "capture" => {
                let p: Capture = operations::parse(params)?;
                let id = payment_id(&p.payment_id)?;
                let mut form = pairs(&[EXPAND]);
                if let Some(amount) = p.amount {
                    form.push((
                        "amount_to_capture".into(),
                        operations::amount(amount, "/params/amount")?,
                    ));
                }
                let path = format!("/v1/payment_intents/{id}/capture");
                let answer = stripe.call(Method::POST, &path, &form, key).await?;
                Ok((payment(&answer.body), answer.replayed))
            }
            "void" => {
                let p: PaymentId = operations::parse(params)?;
                let path = format!("/v1/payment_intents/{}/cancel", payment_id(&p.payment_id)?);
                let answer = stripe
                    .call(Method::POST, &path, &pairs(&[EXPAND]), key)
                    .await?;
                Ok((payment(&answer.body), answer.replayed))
            }
            "refund" => {
                let p: Refund = operations::parse(params)?;
                p.check()?;
                let id = payment_id(&p.payment_id)?;
                let mut form = pairs(&[("payment_intent", id)]);
                if let Some(amount) = p.amount {
                    form.push((
                        "amount".into(),
                        operations::amount(amount, "/params/amount")?,
                    ));
                }
                if let Some(reason) = &p.reason {
                    form.push(("reason".into(), reason.clone()));
                }
                let refund = stripe.call(Method::POST, "/v1/refunds", &form, key).await?;
                let mut answer = self.get(id).await?;
                answer["refund"] = json!({
                    "refund_id": refund.body["id"],
                    "amount": refund.body["amount"],
                    "status": refund.body["status"],
                });
                Ok((answer, refund.replayed))
            }
            "get" => {
                let p: PaymentId = operations::parse(params)?;
                Ok((self.get(payment_id(&p.payment_id)?).await?, false))
            }
            other => Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/operation",
                format!(
                    "integration/payments has no operation {other:?}; it has {:?}",
                    OPERATIONS.map(|(name, _)| name)
                ),
            )),
        }
    }

    async fn get(&self, id: &str) -> Result<Value, ProviderError> {
        let path = format!("/v1/payment_intents/{id}");
        let answer = self
            .stripe
            .call(Method::GET, &path, &pairs(&[EXPAND]), None)
            .await?;
        Ok(payment(&answer.body))
    }
}

#[async_trait]
impl Engine for Payments {
    const NAME: &'static str = "payments";
    const DEPENDENCY: &'static str = "event_store";

    async fn execute(&self, _: &CallContext, p: ExecuteParams) -> Result<Executed, ProviderError> {
        let mutates = OPERATIONS
            .iter()
            .find(|(name, _)| *name == p.operation)
            .is_some_and(|(_, mutates)| *mutates);
        if mutates && p.idempotency_key.is_none() {
            return Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/idempotency_key",
                format!(
                    "{} changes the account: give it an idempotency key derived from the step, so \
                     a retried step runs it once",
                    p.operation
                ),
            ));
        }
        let key = if mutates {
            p.idempotency_key.as_deref()
        } else {
            None
        };
        let (result, replayed) = self.run(&p.operation, p.params, key).await?;
        Ok(Executed {
            operation: p.operation,
            result,
            replayed,
        })
    }

    async fn check(&self) -> Result<Checked, ProviderError> {
        self.stripe
            .call(Method::GET, "/v1/balance", &[], None)
            .await?;
        Ok(Checked {
            ok: true,
            detail: Some("the account's secret key is accepted".into()),
        })
    }

    async fn receive(
        &self,
        _: &CallContext,
        p: ReceiveParams,
        body: &[u8],
    ) -> Result<ReceiveResult, ProviderError> {
        let secret = self.webhook_secret.as_ref().ok_or_else(|| {
            ProviderError::new(
                ErrorCode::SignatureInvalid,
                "this tenant configured no webhook_secret: every inbound webhook is refused",
            )
        })?;
        let header = p
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("stripe-signature"))
            .map(|(_, value)| value.as_str());
        signature::verify(secret, header, body, now_s(), self.tolerance_s)?;
        let event: Value = serde_json::from_slice(body).map_err(|_| {
            ProviderError::new(
                ErrorCode::ParamsUnprocessable,
                "the webhook's body is not a JSON event",
            )
        })?;
        let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
            return Err(ProviderError::new(
                ErrorCode::ParamsUnprocessable,
                "the webhook's event has no id or type",
            ));
        };
        let object = &event["data"]["object"];
        let (stream, data) = match object["object"].as_str() {
            Some("charge") => ("charges", operations::payment_of_charge(object)),
            _ => ("payment_intents", payment(object)),
        };
        let inserted =
            sqlx::query("INSERT OR IGNORE INTO received (event_id, received_at) VALUES (?, ?)")
                .bind(id)
                .bind(now_s())
                .execute(&self.store)
                .await
                .map_err(|e| ProviderError::unavailable(format!("the payments store: {e}")))?;
        let duplicate = inserted.rows_affected() == 0;
        Ok(ReceiveResult {
            delivery_id: id.to_owned(),
            stream: stream.to_owned(),
            records: usize::from(!duplicate),
            deleted: 0,
            duplicate,
            event: Some(ReceivedEvent {
                kind: kind.to_owned(),
                object_id: data["payment_id"].as_str().unwrap_or_default().to_owned(),
                data,
            }),
        })
    }

    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        sqlx::query("SELECT 1")
            .execute(&self.store)
            .await
            .map_err(|e| ProviderError::unavailable(format!("the payments store: {e}")))?;
        Ok(None)
    }
}
