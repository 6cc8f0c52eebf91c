//! One tenant's messages: an SQLite database, `<root>/<tenant>.db`, like `bus/embedded`'s logs.
//!
//! Every triggered message is a row: its idempotency key, the exact body that is signed and
//! sent (so a redelivery sends the same bytes), and its state — `delivering` while a call is
//! sending it, then `delivered` or `dead_lettered`. Dead letters are the rows in that last
//! state; they stay until redelivered. Delivered rows are pruned after the tenant's retention,
//! which is how long an idempotency key is remembered.
//!
//! Every write is one statement, so concurrent calls never deadlock on a lock upgrade; the
//! `delivering` state is what keeps two calls from sending one message at once.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use switchyard_spi::ProviderError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id          TEXT    NOT NULL UNIQUE,
    idempotency_key     TEXT    UNIQUE,
    endpoint            TEXT    NOT NULL,
    event_type          TEXT    NOT NULL,
    payload             TEXT    NOT NULL,
    body                TEXT    NOT NULL,
    state               TEXT    NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_status         INTEGER,
    last_error          TEXT,
    created_at_ms       INTEGER NOT NULL,
    dead_lettered_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_state ON messages (state, seq);
CREATE INDEX IF NOT EXISTS delivered_by_age ON messages (created_at_ms) WHERE state = 'delivered';
";

/// What a restart leaves of a delivery that was under way.
const INTERRUPTED: &str = "delivery interrupted: the process stopped before it finished";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Delivering,
    Delivered,
    DeadLettered,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Delivering => "delivering",
            State::Delivered => "delivered",
            State::DeadLettered => "dead_lettered",
        }
    }

    fn parse(text: &str) -> Result<State, ProviderError> {
        match text {
            "delivering" => Ok(State::Delivering),
            "delivered" => Ok(State::Delivered),
            "dead_lettered" => Ok(State::DeadLettered),
            other => Err(ProviderError::internal(format!(
                "stored message state {other:?} is unknown"
            ))),
        }
    }
}

/// A message to store before its first attempt.
pub struct NewMessage<'a> {
    pub message_id: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub endpoint: &'a str,
    pub event_type: &'a str,
    pub payload: &'a str,
    pub body: &'a str,
    pub created_at_ms: i64,
}

/// A stored message, as read back.
#[derive(Debug, Clone)]
pub struct Message {
    pub seq: i64,
    pub message_id: String,
    pub idempotency_key: Option<String>,
    pub endpoint: String,
    pub event_type: String,
    pub payload: Value,
    pub body: String,
    pub state: State,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub dead_lettered_at_ms: Option<i64>,
}

pub enum Inserted {
    New,
    /// The idempotency key was used before: that message, untouched.
    Existing(Box<Message>),
}

#[derive(Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `path`. Messages a previous process left
    /// `delivering` are dead-lettered: nobody will finish them, and a dead letter is what an
    /// operator can see and redeliver.
    pub async fn open(
        path: &Path,
        busy_timeout: Duration,
        now_ms: i64,
    ) -> Result<Store, ProviderError> {
        let pool = crate::sqlite::open(path, busy_timeout, SCHEMA)
            .await
            .map_err(|e| storage_error("opening the message store", e))?;
        let interrupted = sqlx::query(
            "UPDATE messages SET state = 'dead_lettered', dead_lettered_at_ms = ?, last_error = ?
             WHERE state = 'delivering'",
        )
        .bind(now_ms)
        .bind(INTERRUPTED)
        .execute(&pool)
        .await
        .map_err(|e| storage_error("dead-lettering interrupted deliveries", e))?;
        if interrupted.rows_affected() > 0 {
            tracing::warn!(
                path = %path.display(),
                messages = interrupted.rows_affected(),
                "webhook deliveries interrupted by a restart were dead-lettered"
            );
        }
        Ok(Store { pool })
    }

    /// Stores a new message as `delivering`, unless its idempotency key is already taken:
    /// then the message stored under it is answered and nothing is written.
    pub async fn insert(&self, message: NewMessage<'_>) -> Result<Inserted, ProviderError> {
        let inserted = sqlx::query(
            "INSERT INTO messages (message_id, idempotency_key, endpoint, event_type, payload,
                                   body, state, created_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, 'delivering', ?)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(message.message_id)
        .bind(message.idempotency_key)
        .bind(message.endpoint)
        .bind(message.event_type)
        .bind(message.payload)
        .bind(message.body)
        .bind(message.created_at_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| storage_error("storing a message", e))?;
        if inserted.rows_affected() == 1 {
            return Ok(Inserted::New);
        }
        let key = message.idempotency_key.unwrap_or_default();
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE idempotency_key = ?"
        ))
        .bind(key)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| storage_error("reading a message by idempotency key", e))?;
        Ok(Inserted::Existing(Box::new(message_from(&row)?)))
    }

    /// Counts one attempt and what it got.
    pub async fn record_attempt(
        &self,
        message_id: &str,
        status: Option<u16>,
        error: Option<&str>,
    ) -> Result<(), ProviderError> {
        sqlx::query(
            "UPDATE messages SET attempts = attempts + 1, last_status = ?, last_error = ?
             WHERE message_id = ?",
        )
        .bind(status)
        .bind(error)
        .bind(message_id)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(|e| storage_error("counting an attempt", e))
    }

    /// Ends a delivery: `delivered`, or `dead_lettered` as of `now_ms`.
    pub async fn finish(
        &self,
        message_id: &str,
        delivered: bool,
        now_ms: i64,
    ) -> Result<Message, ProviderError> {
        let state = if delivered {
            State::Delivered
        } else {
            State::DeadLettered
        };
        let row = sqlx::query(&format!(
            "UPDATE messages SET state = ?,
                 dead_lettered_at_ms = CASE WHEN ? THEN dead_lettered_at_ms ELSE ? END
             WHERE message_id = ? RETURNING {COLUMNS}"
        ))
        .bind(state.as_str())
        .bind(delivered)
        .bind(now_ms)
        .bind(message_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| storage_error("recording a delivery's outcome", e))?;
        message_from(&row)
    }

    /// Takes a dead letter for redelivery (`delivering`), if it is one. `None` when there is
    /// no such message or it is not dead-lettered; [`Store::get`] tells which.
    pub async fn claim_dead_letter(
        &self,
        message_id: &str,
    ) -> Result<Option<Message>, ProviderError> {
        let row = sqlx::query(&format!(
            "UPDATE messages SET state = 'delivering'
             WHERE message_id = ? AND state = 'dead_lettered' RETURNING {COLUMNS}"
        ))
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| storage_error("claiming a dead letter", e))?;
        row.as_ref().map(message_from).transpose()
    }

    /// Puts a claimed dead letter back untouched, when its redelivery could not start.
    pub async fn release(&self, message_id: &str) -> Result<(), ProviderError> {
        sqlx::query("UPDATE messages SET state = 'dead_lettered' WHERE message_id = ?")
            .bind(message_id)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| storage_error("releasing a dead letter", e))
    }

    pub async fn get(&self, message_id: &str) -> Result<Option<Message>, ProviderError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE message_id = ?"
        ))
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| storage_error("reading a message", e))?;
        row.as_ref().map(message_from).transpose()
    }

    /// Up to `limit` dead letters after position `after`, oldest first.
    pub async fn dead_letters(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Message>, ProviderError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE state = 'dead_lettered' AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| storage_error("listing dead letters", e))?;
        rows.iter().map(message_from).collect()
    }

    pub async fn count_dead_letters(&self) -> Result<i64, ProviderError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE state = 'dead_lettered'")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| storage_error("counting dead letters", e))
    }

    /// Forgets delivered messages created before `before_ms`, and with them their keys.
    pub async fn prune_delivered(&self, before_ms: i64) -> Result<(), ProviderError> {
        sqlx::query("DELETE FROM messages WHERE state = 'delivered' AND created_at_ms < ?")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| storage_error("pruning delivered messages", e))
    }
}

const COLUMNS: &str = "seq, message_id, idempotency_key, endpoint, event_type, payload, body, \
                       state, attempts, last_status, last_error, created_at_ms, dead_lettered_at_ms";

fn message_from(row: &SqliteRow) -> Result<Message, ProviderError> {
    let column =
        |e: sqlx::Error| ProviderError::internal(format!("stored message unreadable: {e}"));
    let payload: String = row.try_get("payload").map_err(column)?;
    let state: String = row.try_get("state").map_err(column)?;
    Ok(Message {
        seq: row.try_get("seq").map_err(column)?,
        message_id: row.try_get("message_id").map_err(column)?,
        idempotency_key: row.try_get("idempotency_key").map_err(column)?,
        endpoint: row.try_get("endpoint").map_err(column)?,
        event_type: row.try_get("event_type").map_err(column)?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| ProviderError::internal(format!("stored payload unreadable: {e}")))?,
        body: row.try_get("body").map_err(column)?,
        state: State::parse(&state)?,
        attempts: row.try_get("attempts").map_err(column)?,
        last_status: row.try_get("last_status").map_err(column)?,
        last_error: row.try_get("last_error").map_err(column)?,
        created_at_ms: row.try_get("created_at_ms").map_err(column)?,
        dead_lettered_at_ms: row.try_get("dead_lettered_at_ms").map_err(column)?,
    })
}

/// SQLite's primary result codes for "someone else holds the lock".
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// A busy or unreachable database is `provider_unavailable` (retryable: nothing was sent when
/// it happens before delivery; callers that already sent turn retry off); anything else is
/// internal.
fn storage_error(doing: &str, error: sqlx::Error) -> ProviderError {
    let transient = match &error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        _ => false,
    };
    if transient {
        tracing::warn!(error = %error, "webhook store unavailable while {doing}");
        ProviderError::unavailable(format!("the webhook store is busy ({doing}); retry"))
    } else {
        tracing::error!(error = %error, "webhook store failed while {doing}");
        ProviderError::internal(format!("the webhook store failed while {doing}: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<'a>(id: &'a str, key: Option<&'a str>) -> NewMessage<'a> {
        NewMessage {
            message_id: id,
            idempotency_key: key,
            endpoint: "hook",
            event_type: "a",
            payload: "1",
            body: "{}",
            created_at_ms: 1,
        }
    }

    #[tokio::test]
    async fn a_delivery_interrupted_by_a_restart_is_dead_lettered_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acme.db");
        let store = Store::open(&path, Duration::from_secs(1), 0).await.unwrap();
        assert!(matches!(
            store.insert(message("msg_a", None)).await.unwrap(),
            Inserted::New
        ));
        drop(store);
        let reopened = Store::open(&path, Duration::from_secs(1), 42)
            .await
            .unwrap();
        let dead = reopened.get("msg_a").await.unwrap().unwrap();
        assert_eq!(dead.state, State::DeadLettered);
        assert_eq!(dead.dead_lettered_at_ms, Some(42));
        assert_eq!(dead.last_error.as_deref(), Some(INTERRUPTED));
        assert_eq!(reopened.count_dead_letters().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_taken_key_answers_the_stored_message_and_pruning_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("acme.db"), Duration::from_secs(1), 0)
            .await
            .unwrap();
        store.insert(message("msg_a", Some("k"))).await.unwrap();
        store.finish("msg_a", true, 5).await.unwrap();
        let Inserted::Existing(existing) = store.insert(message("msg_b", Some("k"))).await.unwrap()
        else {
            panic!("the key is taken");
        };
        assert_eq!(existing.message_id, "msg_a");
        assert!(store.get("msg_b").await.unwrap().is_none());
        store.prune_delivered(2).await.unwrap();
        assert!(store.get("msg_a").await.unwrap().is_none());
        assert!(matches!(
            store.insert(message("msg_b", Some("k"))).await.unwrap(),
            Inserted::New
        ));
    }
}
