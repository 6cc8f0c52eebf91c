//! The connector SPI: what one third-party system (`integration/shopify`,
//! `integration/salesforce`, the declarative `integration/rest`) implements so that the
//! domain's sync machinery (`crate::sync`) can read, write and receive its records.
//!
//! A connector only speaks its system's API: which streams exist, one page of one stream,
//! one page of the system's deleted-record feed, an upsert by external id, and the check of
//! an inbound webhook's signature. Cursors, raw records, the mapping, destinations, deletes by
//! tombstone pass, events and retries of whole pages live once in `crate::sync`, for every
//! connector alike (Airbyte's split between a source and the platform that runs it).

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard_egress::Egress;
use switchyard_spi::{ErrorCode, ProviderError};

/// What the domain hands a connector when one tenant's instance starts.
pub(crate) struct Link {
    /// The operator's egress ceiling, narrowed by the tenant's `allowed_networks`: every call
    /// the connector makes goes through it (build the [`crate::http::Api`] with it).
    pub(crate) egress: Egress,
    /// The connection's OAuth2 tokens, kept in the tenant's own store: a connector that
    /// authenticates with OAuth2 hands it to [`crate::http::Auth::OAuth2`]; others ignore it.
    pub(crate) tokens: crate::http::Tokens,
}

/// How an engine is made from a tenant's config: the engine's config type (whose derived
/// JSON Schema is the engine's published config schema) and the connector built from it.
pub(crate) trait Connect: Connector + Sized {
    /// The engine's whole config: the system's own settings (base URL, credentials as
    /// `x-secret` references) beside `#[serde(flatten)] sync: crate::sync::Settings`, the
    /// domain's settings every connector shares (mappings, destinations, events, networks).
    type Config: DeserializeOwned + JsonSchema + Send + 'static;

    /// The shared part of `config`.
    fn settings(config: &Self::Config) -> &crate::sync::Settings;

    /// The connector for one tenant. Checks what the schema cannot (a URL the standard
    /// refuses: `config_unprocessable`) without calling the system: `check` does that.
    fn connect(config: Self::Config, link: Link) -> Result<Self, ProviderError>;
}

/// One stream a system offers (Airbyte's stream, Nango's model): `orders`, `Account`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Stream {
    pub(crate) name: String,
    /// The raw record's field that identifies it in the system (`id`, `Id`); a top-level
    /// field whose value is a string or an integer. Destinations dedupe on it.
    pub(crate) primary_key: String,
    /// The raw record's field an incremental read resumes after (`updated_at`,
    /// `SystemModstamp`); `None` when the stream can only be read whole.
    pub(crate) cursor_field: Option<String>,
    /// How deleted records are learnt: from the system's own feed, or only by a full
    /// refresh's tombstone pass (a record the destination holds that the read did not see).
    pub(crate) deletes: Deletes,
    /// The fields a record has, as far as the system says (custom fields included).
    pub(crate) fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Deletes {
    /// [`Connector::read_deleted`] answers the stream's deletions since a cursor.
    Feed,
    /// The system keeps no feed: deletes are found by a full refresh only.
    FullRefresh,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Field {
    pub(crate) name: String,
    /// A JSON Schema type name: `string`, `number`, `integer`, `boolean`, `object`, `array`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

/// Where a read starts. `since` is the stream's cursor value a previous sync stored (the
/// largest `cursor_field` it wrote); a connector answers the records whose cursor field is
/// **at or after** it (inclusive: two records may share a timestamp, and the destination
/// dedupes on the primary key). `page` is a token a previous page of this same read answered
/// as `next_page`; the connector alone knows what it means (a Link URL, a `nextRecordsUrl`,
/// an offset).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReadFrom<'a> {
    pub(crate) since: Option<&'a Value>,
    pub(crate) page: Option<&'a str>,
}

/// One page of a stream, as the system answered it.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// The records, raw (as the API answered them), in the order the API gave them.
    pub(crate) records: Vec<Value>,
    /// The token of the next page of this read; `None` when the read is done.
    pub(crate) next_page: Option<String>,
}

/// One page of a stream's deleted-record feed.
#[derive(Debug, Default)]
pub(crate) struct DeletedPage {
    /// The deleted records' primary keys. A feed answers deletions at or after the read's
    /// cursor; the sync carries each to the destination (a repeat is a harmless soft delete).
    pub(crate) deleted: Vec<String>,
    pub(crate) next_page: Option<String>,
}

/// What one upserted record became in the system.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Upserted {
    /// The record's external id, as given.
    pub(crate) external_id: String,
    /// The system's own id of the record.
    pub(crate) id: String,
    /// `true` when the upsert created the record, `false` when it updated (or found it
    /// unchanged).
    pub(crate) created: bool,
}

/// An inbound webhook, as the gateway received it: the headers (names lower-cased) and the
/// raw body, exactly the bytes that were signed.
#[derive(Debug)]
pub(crate) struct Inbound<'a> {
    pub(crate) headers: &'a BTreeMap<String, String>,
    pub(crate) body: &'a [u8],
}

/// What a verified inbound webhook carries.
#[derive(Debug)]
pub(crate) struct Received {
    /// The system's id of this delivery (`X-Shopify-Webhook-Id`), so a repeat is dropped.
    pub(crate) delivery_id: String,
    /// The stream the records belong to (`orders` for Shopify's `orders/create`).
    pub(crate) stream: String,
    /// Records created or updated, raw.
    pub(crate) records: Vec<Value>,
    /// Primary keys of records deleted.
    pub(crate) deleted: Vec<String>,
}

/// One third-party system's API, for one tenant's connection (built from the tenant's
/// config, holding its credentials and its outbound limiter).
///
/// Errors follow Airbyte's taxonomy, already applied by `crate::http`: credentials the
/// system refuses are `upstream_credentials_invalid` (not retryable), 408/5xx/network
/// failures `upstream_unavailable` (retryable), a 429 that outlived its retries
/// `rate_limited` (retryable), anything else the system refuses `provider_failed`.
#[async_trait]
pub(crate) trait Connector: Send + Sync + 'static {
    /// The engine's name under `integration/`.
    const NAME: &'static str;

    /// The streams the connection offers, with their fields (`discover`). May call the
    /// system (Salesforce's describe), so custom fields appear.
    async fn discover(&self) -> Result<Vec<Stream>, ProviderError>;

    /// Whether the connection works: one cheap authenticated call (`check`).
    async fn check(&self) -> Result<(), ProviderError>;

    /// One page of `stream`. An incremental read (`from.since` set) answers records in
    /// ascending order of the stream's cursor field, across pages, so that the sync may
    /// checkpoint its cursor after every page a destination acknowledged.
    async fn read(&self, stream: &str, from: ReadFrom<'_>) -> Result<Page, ProviderError>;

    /// One page of `stream`'s deletions since `from.since`, for streams whose
    /// [`Stream::deletes`] is [`Deletes::Feed`].
    async fn read_deleted(
        &self,
        stream: &str,
        _from: ReadFrom<'_>,
    ) -> Result<DeletedPage, ProviderError> {
        Err(ProviderError::field(
            ErrorCode::ParamsUnprocessable,
            "/stream",
            format!(
                "integration/{}'s stream {stream:?} has no deleted-record feed",
                Self::NAME
            ),
        ))
    }

    /// Creates or updates `records` of `stream` by `external_id_field`, idempotently: the
    /// same records sent twice leave the system as after the first time.
    async fn upsert(
        &self,
        stream: &str,
        _external_id_field: &str,
        _records: &[Value],
    ) -> Result<Vec<Upserted>, ProviderError> {
        Err(ProviderError::field(
            ErrorCode::ParamsUnprocessable,
            "/stream",
            format!(
                "integration/{} cannot write to stream {stream:?}",
                Self::NAME
            ),
        ))
    }

    /// Verifies an inbound webhook's signature with the tenant's secret for this system and
    /// reads what it carries; `signature_invalid` when it does not verify.
    fn receive(&self, _inbound: Inbound<'_>) -> Result<Received, ProviderError> {
        Err(ProviderError::new(
            ErrorCode::ActionNotFound,
            format!("integration/{} receives no webhooks", Self::NAME),
        ))
    }
}
