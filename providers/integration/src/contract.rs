//! The integration domain's params and results (`contracts/schemas/domains/integration.json`)
//! as Rust types, shared by every engine so that they read and answer exactly the same shapes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize)]
pub(crate) struct TriggerParams {
    /// The name of one of the tenant's configured endpoints.
    pub(crate) endpoint: String,
    pub(crate) event_type: String,
    pub(crate) payload: Value,
    pub(crate) idempotency_key: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DeadLettersParams {
    pub(crate) limit: u32,
    pub(crate) cursor: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RedeliverParams {
    pub(crate) message_id: String,
}

/// The answer of trigger and redeliver.
#[derive(Serialize)]
pub(crate) struct Delivery {
    pub(crate) message_id: String,
    /// `delivered` or `dead_lettered`.
    pub(crate) status: &'static str,
    pub(crate) attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
    /// Whether this answers an earlier trigger with the same idempotency key.
    pub(crate) replayed: bool,
}

#[derive(Serialize)]
pub(crate) struct DeadLetter {
    pub(crate) message_id: String,
    pub(crate) endpoint: String,
    pub(crate) event_type: String,
    pub(crate) payload: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) idempotency_key: Option<String>,
    pub(crate) attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
    /// RFC 3339 in UTC.
    pub(crate) created_at: String,
    /// RFC 3339 in UTC.
    pub(crate) dead_lettered_at: String,
}

#[derive(Serialize)]
pub(crate) struct DeadLetterPage {
    pub(crate) dead_letters: Vec<DeadLetter>,
    pub(crate) next_cursor: Option<String>,
}
