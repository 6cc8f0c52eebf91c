//! The consumer that annotates new orders: it reads `orders.order.created` from the tenant's
//! bus and asks the orders service to `annotate` each order.
//!
//! It commits its position only past orders whose annotation succeeded. When the AI provider
//! fails, the order stays unannotated (its `annotate` step says why), the position stays on
//! that event, and the next round reads it again: the order is annotated once the provider is
//! back, and no event is skipped. Annotating twice is harmless (the tags are overwritten with
//! the same labels), so at-least-once delivery needs no inbox here.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};

use crate::{ORDER_CREATED, SERVICE, TOPIC};

/// The consumer group the annotator reads the orders topic in.
pub const GROUP: &str = "orders-annotator";

/// One tenant's annotation consumer, reaching the bus and the orders service through a client.
#[derive(Debug, Clone)]
pub struct Annotator {
    bus: String,
    batch: u32,
}

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Round {
    /// Records read and committed past this round.
    pub read: usize,
    /// Orders annotated this round.
    pub annotated: usize,
    /// Whether the round stopped at an order it could not annotate; it is read again next time.
    pub held: bool,
}

impl Annotator {
    /// The annotator of the orders topic on `bus` (`bus/embedded`, `bus/kafka`).
    pub fn new(bus: &str) -> Result<Self, Problem> {
        switchyard_service_kit::expect_domain(bus, "bus")?;
        Ok(Annotator {
            bus: bus.into(),
            batch: 50,
        })
    }

    /// Reads what the group has not committed, annotates each new order, and commits past
    /// every record handled; stops at the first order whose annotation failed.
    pub async fn run_once(&self, client: &dyn ProviderClient) -> Result<Round, Problem> {
        let polled = client
            .invoke(
                &self.bus,
                "poll",
                json!({"topic": TOPIC, "group": GROUP, "max_records": self.batch}),
            )
            .await?;
        let records = polled["records"].as_array().cloned().unwrap_or_default();
        let mut round = Round::default();
        let mut position = None;
        for record in &records {
            let offset = record["offset"]
                .as_u64()
                .ok_or_else(|| Problem::new(ErrorCode::Internal, "a bus record without offset"))?;
            if record["headers"]["ce_type"] == ORDER_CREATED
                && let Some(order_id) = record["payload"]["order_id"].as_str()
            {
                if !self.annotate(client, order_id).await? {
                    round.held = true;
                    break;
                }
                round.annotated += 1;
            }
            round.read += 1;
            position = Some(offset + 1);
        }
        if let Some(offset) = position {
            client
                .invoke(
                    &self.bus,
                    "commit",
                    json!({"topic": TOPIC, "group": GROUP, "offset": offset}),
                )
                .await?;
        }
        Ok(round)
    }

    /// Whether the order is annotated now. An order that no longer exists needs nothing.
    async fn annotate(&self, client: &dyn ProviderClient, order_id: &str) -> Result<bool, Problem> {
        let order = match client
            .invoke(SERVICE, "annotate", json!({"order_id": order_id}))
            .await
        {
            Ok(order) => order,
            Err(problem) if problem.code == ErrorCode::ResourceNotFound => return Ok(true),
            Err(problem) if problem.retryable => {
                tracing::warn!(order_id, code = %problem.code, "annotating failed; will retry");
                return Ok(false);
            }
            Err(problem) => return Err(problem),
        };
        let done = annotate_step(&order).is_some_and(|s| s["status"] == "ok");
        if !done {
            tracing::warn!(
                order_id,
                error = annotate_step(&order)
                    .and_then(|s| s["error"].as_str())
                    .unwrap_or("none"),
                "order not annotated yet; will retry"
            );
        }
        Ok(done)
    }

    /// Annotates until `shutdown` resolves: a round as soon as the last one found work, else
    /// after `idle` (also after a held or failed round, so a failing AI is not hammered).
    pub async fn run(
        &self,
        client: &dyn ProviderClient,
        idle: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.run_once(client).await {
                Ok(Round {
                    read,
                    annotated,
                    held: false,
                }) if read > 0 => {
                    tracing::info!(read, annotated, "orders annotated");
                    Duration::ZERO
                }
                Ok(_) => idle,
                Err(problem) => {
                    tracing::warn!(code = %problem.code, detail = %problem.detail, "annotation round failed; retrying");
                    idle
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

fn annotate_step(order: &Value) -> Option<&Value> {
    order["steps"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "annotate")
}
