//! Writing mapped records where the tenant said, through the tenant's own providers (the
//! tenant-bound client the runtime hands the instance): a db table, a bus topic, or a business
//! service's action. The sync never holds a driver or a broker connection of its own, so what
//! lands there passes the same schema checks, policies and isolation as the tenant's calls.
//!
//! A write answers only once the provider acknowledged it: a db page is one `transaction`, a
//! bus page one `publish`; the runner advances the stream's cursor after that answer.

use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::Problem;
use switchyard_outbox::Dialect;
use switchyard_spi::{ErrorCode, ProviderError};
use tokio::sync::OnceCell;

use crate::contract::{DbDestination, Destination, Write};

/// Rows per INSERT: 4 binds each, well under every engine's bind limit (999).
const ROWS_PER_STATEMENT: usize = 200;
/// The bus contract's most messages per publish.
const MESSAGES_PER_PUBLISH: usize = 1000;

/// One mapped record on its way to a destination.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The record's primary key in the system.
    pub(crate) id: String,
    pub(crate) record: Value,
    pub(crate) cursor: Option<Value>,
}

/// One destination of one run (or one received webhook).
pub(crate) struct Writer {
    client: Arc<dyn ProviderClient>,
    destination: Destination,
    /// A db destination's dialect and its table created, once per writer.
    table: OnceCell<Dialect>,
}

impl Writer {
    pub(crate) fn new(client: Arc<dyn ProviderClient>, destination: Destination) -> Self {
        Writer {
            client,
            destination,
            table: OnceCell::new(),
        }
    }

    /// Writes `items` (one id at most once); answers once the destination acknowledged them.
    pub(crate) async fn write(&self, items: &[Item], now: &str) -> Result<(), ProviderError> {
        if items.is_empty() {
            return Ok(());
        }
        match &self.destination {
            Destination::Db(db) => {
                let dialect = self.table(db).await?;
                let statements = items
                    .chunks(ROWS_PER_STATEMENT)
                    .map(|chunk| upsert(db, chunk, now))
                    .map(|statement| dialect.bind_statement(statement))
                    .collect();
                self.db_transaction(db, statements).await
            }
            Destination::Bus(bus) => {
                let messages = items
                    .iter()
                    .map(|item| json!({"key": item.id, "payload": item.record}))
                    .collect();
                self.publish(&bus.provider, &bus.topic, messages).await
            }
            Destination::Service(service) => {
                let route = format!("{}/{}", switchyard_client::SERVICES, service.name);
                for item in items {
                    self.client
                        .invoke(&route, &service.action, item.record.clone())
                        .await
                        .map_err(|p| refused(&route, p))?;
                }
                Ok(())
            }
        }
    }

    /// Carries deletes of `ids`; answers how many the destination took (a service takes
    /// none: a business service's own actions say what removing a record means).
    pub(crate) async fn delete(&self, ids: &[String], now: &str) -> Result<usize, ProviderError> {
        if ids.is_empty() {
            return Ok(0);
        }
        match &self.destination {
            Destination::Db(db) => {
                let dialect = self.table(db).await?;
                let statements = ids
                    .chunks(ROWS_PER_STATEMENT)
                    .map(|chunk| soft_delete(db, chunk, now))
                    .map(|statement| dialect.bind_statement(statement))
                    .collect();
                self.db_transaction(db, statements).await?;
                Ok(ids.len())
            }
            Destination::Bus(bus) => {
                let messages = ids
                    .iter()
                    .map(|id| json!({"key": id, "payload": {"id": id, "deleted": true}}))
                    .collect();
                self.publish(&bus.provider, &bus.topic, messages).await?;
                Ok(ids.len())
            }
            Destination::Service(_) => Ok(0),
        }
    }

    /// Empties an `overwrite` table before a full refresh's first page.
    pub(crate) async fn clear(&self) -> Result<(), ProviderError> {
        if let Destination::Db(db) = &self.destination
            && db.write == Write::Overwrite
        {
            self.table(db).await?;
            let sql = format!("DELETE FROM \"{}\"", db.table);
            self.db_transaction(db, vec![json!({"sql": sql, "params": []})])
                .await?;
        }
        Ok(())
    }

    /// The provider's dialect, with the table created if missing.
    async fn table(&self, db: &DbDestination) -> Result<Dialect, ProviderError> {
        self.table
            .get_or_try_init(|| async {
                let dialect = Dialect::of(self.client.as_ref(), &db.provider)
                    .await
                    .map_err(|p| refused(&db.provider, p))?;
                if dialect == Dialect::Mysql {
                    return Err(ProviderError::field(
                        ErrorCode::ParamsUnprocessable,
                        "/destination/db/provider",
                        format!(
                            "{} declares dialect:mysql; a sync writes to sqlite or postgres tables",
                            db.provider
                        ),
                    ));
                }
                let key = if db.write == Write::Append {
                    ""
                } else {
                    " PRIMARY KEY"
                };
                let sql = format!(
                    "CREATE TABLE IF NOT EXISTS \"{}\" (\"id\" TEXT NOT NULL{key}, \
                     \"record\" TEXT NOT NULL, \"cursor\" TEXT, \
                     \"deleted\" INTEGER NOT NULL DEFAULT 0, \"synced_at\" TEXT NOT NULL)",
                    db.table
                );
                self.db_transaction(db, vec![json!({"sql": sql, "params": []})])
                    .await?;
                Ok(dialect)
            })
            .await
            .copied()
    }

    async fn db_transaction(
        &self,
        db: &DbDestination,
        statements: Vec<Value>,
    ) -> Result<(), ProviderError> {
        self.client
            .invoke(
                &db.provider,
                "transaction",
                json!({"statements": statements}),
            )
            .await
            .map_err(|p| refused(&db.provider, p))?;
        Ok(())
    }

    async fn publish(
        &self,
        provider: &str,
        topic: &str,
        messages: Vec<Value>,
    ) -> Result<(), ProviderError> {
        for chunk in messages.chunks(MESSAGES_PER_PUBLISH) {
            self.client
                .invoke(
                    provider,
                    "publish",
                    json!({"topic": topic, "messages": chunk}),
                )
                .await
                .map_err(|p| refused(provider, p))?;
        }
        Ok(())
    }
}

/// A text cell for a cursor value: a string as it is (so `max(cursor)` in the table reads as
/// the stream's own timestamps), anything else as JSON.
fn cursor_cell(cursor: &Option<Value>) -> Value {
    match cursor {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(text)) => json!(text),
        Some(other) => json!(other.to_string()),
    }
}

/// One INSERT of `items` (SQLite's `?N` placeholders; bound for the dialect by the caller).
fn upsert(db: &DbDestination, items: &[Item], now: &str) -> Value {
    let mut sql = format!(
        "INSERT INTO \"{}\" (\"id\", \"record\", \"cursor\", \"deleted\", \"synced_at\") VALUES ",
        db.table
    );
    let mut params = Vec::with_capacity(items.len() * 3 + 1);
    params.push(json!(now));
    for (i, item) in items.iter().enumerate() {
        let n = params.len();
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(?{}, ?{}, ?{}, 0, ?1)", n + 1, n + 2, n + 3));
        params.push(json!(item.id));
        params.push(json!(item.record.to_string()));
        params.push(cursor_cell(&item.cursor));
    }
    if db.write != Write::Append {
        sql.push_str(
            " ON CONFLICT (\"id\") DO UPDATE SET \"record\" = excluded.\"record\", \
             \"cursor\" = excluded.\"cursor\", \"deleted\" = 0, \
             \"synced_at\" = excluded.\"synced_at\"",
        );
    }
    json!({"sql": sql, "params": params, "last_insert_id": false})
}

/// Marks `ids` deleted: an update in place, or (append) a row per delete.
fn soft_delete(db: &DbDestination, ids: &[String], now: &str) -> Value {
    let mut params = vec![json!(now)];
    let placeholders: Vec<String> = ids
        .iter()
        .map(|id| {
            params.push(json!(id));
            format!("?{}", params.len())
        })
        .collect();
    let sql = if db.write == Write::Append {
        format!(
            "INSERT INTO \"{}\" (\"id\", \"record\", \"cursor\", \"deleted\", \"synced_at\") VALUES {}",
            db.table,
            placeholders
                .iter()
                .map(|p| format!("({p}, 'null', NULL, 1, ?1)"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!(
            "UPDATE \"{}\" SET \"deleted\" = 1, \"synced_at\" = ?1 WHERE \"id\" IN ({})",
            db.table,
            placeholders.join(", ")
        )
    };
    json!({"sql": sql, "params": params, "last_insert_id": false})
}

/// A destination's refusal as the run's error, naming the provider.
fn refused(provider: &str, problem: Problem) -> ProviderError {
    ProviderError::new(
        problem.code,
        format!("destination {provider}: {}", problem.detail),
    )
    .with_retryable(problem.retryable)
}
