//! The outbox table and the relay that empties it onto the bus.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_client::{ProviderClient, provider_route};
use switchyard_contracts::{ErrorCode, Event, Problem, TenantId};
use tokio::sync::OnceCell;

use switchyard_contracts::event::now_rfc3339;

use crate::Dialect;
use crate::dialect::number_bare_placeholders;

const TABLE: &str = "switchyard_outbox";

/// The outbox of one tenant database, reached through a db provider.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: String,
    /// Learned from the provider's descriptor on first use ([`Dialect::of`]), once per process.
    dialect: Arc<OnceCell<Dialect>>,
}

/// A committed, not yet sent outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub seq: i64,
    pub event_id: String,
    pub topic: String,
    pub key: Option<String>,
    pub headers: Value,
    pub payload: Value,
}

impl Outbox {
    /// The outbox in the database behind db provider `db`, in the SQL dialect the provider
    /// declares (asked on first use). Refuses an id that names no db provider.
    pub fn new(db: &str) -> Result<Self, Problem> {
        Ok(Outbox {
            db: db_provider(db)?,
            dialect: Arc::default(),
        })
    }

    pub fn db(&self) -> &str {
        &self.db
    }

    /// The dialect the db provider declares.
    pub async fn dialect(&self, client: &dyn ProviderClient) -> Result<Dialect, Problem> {
        self.dialect
            .get_or_try_init(|| Dialect::of(client, &self.db))
            .await
            .copied()
    }

    /// Creates the outbox table if it is missing; safe to run at every start.
    pub async fn install(&self, client: &dyn ProviderClient) -> Result<(), Problem> {
        let dialect = self.dialect(client).await?;
        let text = dialect.long_text();
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (
                seq {auto},
                event_id VARCHAR(64) NOT NULL UNIQUE,
                topic VARCHAR(249) NOT NULL,
                msg_key VARCHAR(1024),
                headers {text} NOT NULL,
                payload {text} NOT NULL,
                created_at VARCHAR(40) NOT NULL,
                sent_at VARCHAR(40),
                UNIQUE (sent_at, seq)
            )",
            auto = dialect.auto_key()
        );
        // The relay's one read is "unsent rows in order"; without an index on (sent_at, seq)
        // it scans every row ever sent. The index is declared as a UNIQUE constraint (always
        // satisfied: seq is unique) because pooled db/postgres tenants may create tables but
        // not indexes.
        crate::ddl::create_beside_others(|| async {
            client
                .invoke(&self.db, "execute", json!({"sql": create}))
                .await
                .map(drop)
        })
        .await
    }

    /// The statement that records `event` for `tenant`: put it in the same `transaction` call
    /// as the business write it belongs to. Like the services' SQL it is written with SQLite's
    /// numbered placeholders: a batch sent through the service kit's `Db` is bound for the
    /// provider's dialect there; one sent straight to a db provider that is not SQLite is
    /// bound first with [`Dialect::bind_statement`].
    pub fn statement(&self, tenant: &TenantId, event: &Event) -> Value {
        json!({
            "sql": format!(
                "INSERT INTO {TABLE} (event_id, topic, msg_key, headers, payload, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ),
            "params": [
                event.id,
                event.topic,
                event.key,
                Value::Object(event.headers(tenant)).to_string(),
                event.data.to_string(),
                event.time,
            ],
        })
    }

    /// Like [`Outbox::statement`], but the row is written only when `guard` (a `SELECT` with
    /// bare `?` placeholders for `guard_params`, in order) finds a row, evaluated inside the
    /// same transaction.
    ///
    /// A state change and its event then commit together or not at all even though the
    /// `UPDATE` before it may change nothing: guard on the new state, and give the event an id
    /// derived from the change, so a change that already happened finds its event's id taken
    /// and the whole transaction is refused with `conflict`.
    pub fn statement_if(
        &self,
        tenant: &TenantId,
        event: &Event,
        guard: &str,
        guard_params: Vec<Value>,
    ) -> Value {
        let guard = number_bare_placeholders(guard, 7);
        let mut statement = self.statement(tenant, event);
        // The one-row derived table gives the `SELECT` of constants a `FROM`, which MySQL
        // needs before a `WHERE` and the others accept.
        statement["sql"] = json!(format!(
            "INSERT INTO {TABLE} (event_id, topic, msg_key, headers, payload, created_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6 FROM (SELECT 1 AS one) guarded \
             WHERE EXISTS ({guard})"
        ));
        if let Some(params) = statement["params"].as_array_mut() {
            params.extend(guard_params);
        }
        statement
    }

    /// Up to `limit` unsent rows, oldest first.
    pub async fn pending(
        &self,
        client: &dyn ProviderClient,
        limit: usize,
    ) -> Result<Vec<Pending>, Problem> {
        let sql = format!(
            "SELECT seq, event_id, topic, msg_key, headers, payload FROM {TABLE}
              WHERE sent_at IS NULL ORDER BY seq LIMIT {limit}"
        );
        let answer = client
            .invoke(&self.db, "query", json!({"sql": sql}))
            .await?;
        let rows = answer["rows"].as_array().cloned().unwrap_or_default();
        rows.iter().map(pending_row).collect()
    }

    /// Marks exactly these rows sent. Rows are named one by one, never as "everything up to
    /// seq N": a row numbered lower than one already sent may commit later, and a range would
    /// mark it sent without its ever having been published.
    pub async fn mark_sent(
        &self,
        client: &dyn ProviderClient,
        seqs: &[i64],
    ) -> Result<(), Problem> {
        if seqs.is_empty() {
            return Ok(());
        }
        let numbered: Vec<String> = (2..seqs.len() + 2).map(|n| format!("?{n}")).collect();
        let sql = format!(
            "UPDATE {TABLE} SET sent_at = ?1 WHERE sent_at IS NULL AND seq IN ({})",
            numbered.join(", ")
        );
        let mut params = vec![json!(now_rfc3339())];
        params.extend(seqs.iter().map(|s| json!(s)));
        let statement = self
            .dialect(client)
            .await?
            .bind_statement(json!({"sql": sql, "params": params}));
        client.invoke(&self.db, "execute", statement).await?;
        Ok(())
    }
}

/// `id` if it names a db provider: the outbox and inbox live in a database.
pub(crate) fn db_provider(id: &str) -> Result<String, Problem> {
    match provider_route(id)? {
        ("db", _) => Ok(id.to_owned()),
        _ => Err(Problem::new(
            ErrorCode::RequestInvalid,
            format!("{id:?} is not a db provider; the outbox and inbox live in a database"),
        )),
    }
}

fn pending_row(row: &Value) -> Result<Pending, Problem> {
    let broken = |what: &str| {
        Problem::new(
            ErrorCode::Internal,
            format!("outbox row without a readable {what}: {row}"),
        )
    };
    let text = |column: &str| row[column].as_str().ok_or_else(|| broken(column));
    let json_column = |column: &str| {
        text(column).and_then(|t| serde_json::from_str(t).map_err(|_| broken(column)))
    };
    Ok(Pending {
        seq: row["seq"].as_i64().ok_or_else(|| broken("seq"))?,
        event_id: text("event_id")?.to_owned(),
        topic: text("topic")?.to_owned(),
        key: row["msg_key"].as_str().map(str::to_owned),
        headers: json_column("headers")?,
        payload: json_column("payload")?,
    })
}

/// Told of the events the bus has acknowledged, before they are marked sent: the platform
/// records each in the tenant's audit log. An error leaves the rows pending, so they are
/// published and told again next round; a listener must therefore take an event it has seen
/// before as done (the audit log keeps one record per event id).
#[async_trait::async_trait]
pub trait Published: Send + Sync {
    async fn published(&self, tenant: &TenantId, events: &[Pending]) -> Result<(), Problem>;
}

/// Copies committed outbox rows to a bus provider, in outbox order, and marks them sent.
#[derive(Clone)]
pub struct Relay {
    outbox: Outbox,
    bus: String,
    batch: usize,
    published: Option<Arc<dyn Published>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("outbox", &self.outbox)
            .field("bus", &self.bus)
            .field("batch", &self.batch)
            .field("published", &self.published.is_some())
            .finish()
    }
}

impl Relay {
    /// `batch` rows are read per round (1..=500: each is one bound parameter when marking).
    pub fn new(outbox: Outbox, bus: &str, batch: usize) -> Self {
        Relay {
            outbox,
            bus: bus.into(),
            batch: batch.clamp(1, 500),
            published: None,
        }
    }

    /// Tells `listener` of every run of events the bus acknowledged, before marking it sent.
    pub fn with_published(mut self, listener: Arc<dyn Published>) -> Self {
        self.published = Some(listener);
        self
    }

    /// One round: publishes what is pending, topic run by topic run so the bus sees the rows in
    /// outbox order, marking each run sent once the bus has acknowledged it. Answers how many
    /// rows were sent.
    pub async fn run_once(&self, client: &dyn ProviderClient) -> Result<usize, Problem> {
        let pending = self.outbox.pending(client, self.batch).await?;
        let mut sent = 0;
        for run in pending.chunk_by(|a, b| a.topic == b.topic) {
            let messages: Vec<Value> = run
                .iter()
                .map(|p| {
                    let mut message = json!({"headers": p.headers, "payload": p.payload});
                    if let Some(key) = &p.key {
                        message["key"] = json!(key);
                    }
                    message
                })
                .collect();
            client
                .invoke(
                    &self.bus,
                    "publish",
                    json!({"topic": run[0].topic, "messages": messages}),
                )
                .await?;
            if let Some(listener) = &self.published {
                listener.published(client.tenant(), run).await?;
            }
            let seqs: Vec<i64> = run.iter().map(|p| p.seq).collect();
            self.outbox.mark_sent(client, &seqs).await?;
            sent += run.len();
        }
        Ok(sent)
    }

    /// Relays until `shutdown` resolves, sleeping `idle` when there is nothing to send and
    /// after a failed round (the failed rows stay pending and go again).
    pub async fn run(
        &self,
        client: &dyn ProviderClient,
        idle: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.run_once(client).await {
                Ok(0) => idle,
                Ok(sent) => {
                    tracing::info!(sent, db = self.outbox.db(), bus = %self.bus, "outbox relayed");
                    Duration::ZERO
                }
                Err(problem) => {
                    tracing::warn!(code = %problem.code, detail = %problem.detail, "outbox relay round failed; retrying");
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
