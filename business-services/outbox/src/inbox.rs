//! The consumer side of at-least-once delivery: an event id is acted on once.

use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};
use tokio::sync::OnceCell;

use crate::Dialect;
use crate::relay::db_provider;

const TABLE: &str = "switchyard_inbox";

/// The ids of events one consumer has already handled, kept in its own database.
///
/// [`Inbox::apply_once`] puts the inbox's row first in the `transaction` that applies an
/// event: a second delivery of the same event then violates the inbox's primary key, the whole
/// transaction is refused with `conflict`, and nothing is applied twice.
#[derive(Debug, Clone)]
pub struct Inbox {
    db: String,
    /// Learned from the provider's descriptor on first use ([`Dialect::of`]), once per process.
    dialect: Arc<OnceCell<Dialect>>,
    consumer: String,
}

impl Inbox {
    /// `consumer`'s inbox in the database behind db provider `db`. Refuses an id that names
    /// no db provider.
    pub fn new(db: &str, consumer: &str) -> Result<Self, Problem> {
        Ok(Inbox {
            db: db_provider(db)?,
            dialect: Arc::default(),
            consumer: consumer.into(),
        })
    }

    /// The dialect the db provider declares.
    pub async fn dialect(&self, client: &dyn ProviderClient) -> Result<Dialect, Problem> {
        self.dialect
            .get_or_try_init(|| Dialect::of(client, &self.db))
            .await
            .copied()
    }

    pub async fn install(&self, client: &dyn ProviderClient) -> Result<(), Problem> {
        self.dialect(client).await?;
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (
                consumer VARCHAR(128) NOT NULL,
                event_id VARCHAR(64) NOT NULL,
                PRIMARY KEY (consumer, event_id)
            )"
        );
        crate::ddl::create_beside_others(|| async {
            client
                .invoke(&self.db, "execute", json!({"sql": sql}))
                .await
                .map(drop)
        })
        .await
    }

    /// Applies `statements` (written with SQLite's numbered placeholders, bound here for the
    /// provider's dialect like the inbox's own) for the event `event_id` unless it was applied
    /// before. Answers whether they ran this time.
    pub async fn apply_once(
        &self,
        client: &dyn ProviderClient,
        event_id: &str,
        statements: Vec<Value>,
    ) -> Result<bool, Problem> {
        let dialect = self.dialect(client).await?;
        let record = json!({
            "sql": format!("INSERT INTO {TABLE} (consumer, event_id) VALUES (?1, ?2)"),
            "params": [self.consumer, event_id],
        });
        let batch: Vec<Value> = std::iter::once(record)
            .chain(statements)
            .map(|statement| dialect.bind_statement(statement))
            .collect();
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
        let query = json!({
            "sql": format!("SELECT 1 AS seen FROM {TABLE} WHERE consumer = ?1 AND event_id = ?2"),
            "params": [self.consumer, event_id],
        });
        let query = self.dialect(client).await?.bind_statement(query);
        let answer = client.invoke(&self.db, "query", query).await?;
        Ok(answer["row_count"].as_u64().unwrap_or(0) > 0)
    }
}
