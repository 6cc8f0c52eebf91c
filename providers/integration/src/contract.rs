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

/// Where a stream's mapped records go (`$defs/destination`): through one of the tenant's own
/// providers, never around them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Destination {
    Db(DbDestination),
    Bus(BusDestination),
    Service(ServiceDestination),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DbDestination {
    /// A db provider of the tenant, `db/<name>`.
    #[schemars(regex(pattern = r"^db/[a-z0-9_-]{1,64}$"))]
    pub(crate) provider: String,
    /// The table, created if missing.
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_]{0,62}$"))]
    pub(crate) table: String,
    #[serde(default)]
    pub(crate) write: Write,
}

/// How records land in a db table (Airbyte's destination sync modes).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Write {
    /// One row per id, updated in place.
    #[default]
    Dedupe,
    /// A row per record written; none replaced.
    Append,
    /// A full sync empties the table before its first page, then dedupes.
    Overwrite,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BusDestination {
    /// A bus provider of the tenant, `bus/<name>`.
    #[schemars(regex(pattern = r"^bus/[a-z0-9_-]{1,64}$"))]
    pub(crate) provider: String,
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,200}$"))]
    pub(crate) topic: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceDestination {
    /// A business service, e.g. `orders`.
    #[schemars(regex(pattern = r"^[a-z0-9_-]{1,64}$"))]
    pub(crate) name: String,
    /// The action each mapped record is the params of, e.g. `create`.
    #[schemars(regex(pattern = r"^[a-z0-9_]{1,64}$"))]
    pub(crate) action: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    Full,
    Incremental,
    /// Not a params value: how a `remap` run is shown.
    Remap,
}

#[derive(Serialize)]
pub(crate) struct Discovered {
    pub(crate) streams: Vec<DiscoveredStream>,
}

#[derive(Serialize)]
pub(crate) struct DiscoveredStream {
    #[serde(flatten)]
    pub(crate) stream: crate::connector::Stream,
    pub(crate) modes: Vec<&'static str>,
}

#[derive(Serialize)]
pub(crate) struct Checked {
    pub(crate) ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct SyncParams {
    pub(crate) stream: String,
    pub(crate) mode: Mode,
    pub(crate) destination: Option<Destination>,
    #[serde(default)]
    pub(crate) wait_ms: u64,
}

#[derive(Deserialize)]
pub(crate) struct RemapParams {
    pub(crate) stream: String,
    pub(crate) destination: Option<Destination>,
    #[serde(default)]
    pub(crate) wait_ms: u64,
}

/// One run (`$defs/run`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    pub(crate) run_id: String,
    pub(crate) stream: String,
    pub(crate) mode: Mode,
    pub(crate) destination: Destination,
    /// `running`, `completed` or `failed`.
    pub(crate) status: &'static str,
    pub(crate) records: i64,
    pub(crate) deleted: i64,
    pub(crate) pages: i64,
    pub(crate) cursor: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<RunError>,
    /// RFC 3339 in UTC.
    pub(crate) started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) finished_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunError {
    pub(crate) code: String,
    pub(crate) detail: String,
}

#[derive(Deserialize)]
pub(crate) struct UpsertParams {
    pub(crate) stream: String,
    pub(crate) external_id_field: String,
    pub(crate) records: Vec<Value>,
}

#[derive(Serialize)]
pub(crate) struct UpsertResults {
    pub(crate) results: Vec<crate::connector::Upserted>,
}

#[derive(Deserialize)]
pub(crate) struct ReceiveParams {
    pub(crate) headers: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
pub(crate) struct ReceiveResult {
    pub(crate) delivery_id: String,
    pub(crate) stream: String,
    pub(crate) records: usize,
    pub(crate) deleted: usize,
    pub(crate) duplicate: bool,
    /// A command-style engine's verified event (the connectors write records instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) event: Option<ReceivedEvent>,
}

/// What a command-style engine received (`receive`'s `event`).
#[derive(Serialize)]
pub(crate) struct ReceivedEvent {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) object_id: String,
    pub(crate) data: Value,
}

/// `execute`'s params: one command of a command-style engine.
#[derive(Deserialize)]
pub(crate) struct ExecuteParams {
    pub(crate) operation: String,
    pub(crate) params: Value,
    pub(crate) idempotency_key: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct Executed {
    pub(crate) operation: String,
    pub(crate) result: Value,
    /// The system answered a saved result of an earlier call with the same key.
    pub(crate) replayed: bool,
}

#[derive(Deserialize)]
pub(crate) struct StateParams {
    pub(crate) stream: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct StreamState {
    pub(crate) stream: String,
    pub(crate) destination: Destination,
    pub(crate) cursor: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_run: Option<Run>,
}

#[derive(Serialize)]
pub(crate) struct States {
    pub(crate) streams: Vec<StreamState>,
}

#[derive(Deserialize)]
pub(crate) struct ResetParams {
    pub(crate) stream: String,
    pub(crate) destination: Option<Destination>,
    /// Set instead of forgotten (the schema requires a destination with it).
    pub(crate) cursor: Option<Value>,
}

#[derive(Serialize)]
pub(crate) struct Reset {
    pub(crate) reset: u64,
}
