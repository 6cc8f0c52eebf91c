//! The consumer side of at-least-once delivery: an event id is acted on once.

use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};

use crate::Dialect;

const TABLE: &str = "switchyard_inbox";

/// The ids of events one consumer has already handled, kept in its own database.
///
/// Put [`Inbox::statement`] first in the `transaction` that applies an event: a second delivery
/// of the same event then violates the inbox's primary key, the whole transaction is refused
/// with `conflict`, and nothing is applied twice.
#[derive(Debug, Clone)]
pub struct Inbox {
    db: String,
    dialect: Dialect,
    consumer: String,
}

impl Inbox {
    pub fn new(db: &str, consumer: &str) -> Result<Self, Problem> {
        Ok(Inbox {
            db: db.into(),
            dialect: Dialect::of(db)?,
            consumer: consumer.into(),
        })
    }

    pub async fn install(&self, client: &dyn ProviderClient) -> Result<(), Problem> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (
                consumer VARCHAR(128) NOT NULL,
                event_id VARCHAR(64) NOT NULL,
                PRIMARY KEY (consumer, event_id)
            )"
        );
        client
            .invoke(&self.db, "execute", json!({"sql": sql}))
            .await?;
        Ok(())
    }

    /// Records `event_id` as handled; fails with `conflict` if it already was.
    pub fn statement(&self, event_id: &str) -> Value {
        json!({
            "sql": format!(
                "INSERT INTO {TABLE} (consumer, event_id) VALUES ({})",
                self.dialect.params(1, 2)
            ),
            "params": [self.consumer, event_id],
        })
    }

    /// Applies `statements` for the event `event_id` unless it was applied before. Answers
    /// whether they ran this time.
    pub async fn apply_once(
        &self,
        client: &dyn ProviderClient,
        event_id: &str,
        statements: Vec<Value>,
    ) -> Result<bool, Problem> {
        let mut batch = vec![self.statement(event_id)];
        batch.extend(statements);
        match client
            .invoke(&self.db, "transaction", json!({"statements": batch}))
            .await
        {
            Ok(_) => Ok(true),
            // A conflict from the business statements themselves is not a duplicate: look.
            Err(problem) if problem.code == ErrorCode::Conflict => {
                if self.seen(client, event_id).await? {
                    Ok(false)
                } else {
                    Err(problem)
                }
            }
            Err(problem) => Err(problem),
        }
    }

    pub async fn seen(&self, client: &dyn ProviderClient, event_id: &str) -> Result<bool, Problem> {
        let sql = format!(
            "SELECT 1 AS seen FROM {TABLE} WHERE consumer = {} AND event_id = {}",
            self.dialect.param(1),
            self.dialect.param(2)
        );
        let answer = client
            .invoke(
                &self.db,
                "query",
                json!({"sql": sql, "params": [self.consumer, event_id]}),
            )
            .await?;
        Ok(answer["row_count"].as_u64().unwrap_or(0) > 0)
    }
}
