//! The acceptance suite for integration connectors (the engines that serve `sync`): what
//! Airbyte's connector acceptance tests ask of a source, plus what Nango's users ask of a
//! sync — spec, check with valid and refused credentials, discovery, a basic read, full
//! refresh, incremental with a future and an abnormal cursor, deletes in both modes, a 429
//! replayed after its Retry-After, an expired token refreshed, an idempotent upsert, and
//! one tenant's syncs invisible to another.
//!
//! A connector is certified against a [`Source`]: the system it talks to (a real server,
//! or a contract-faithful fake of a SaaS API no test here can reach), which a check can
//! seed, change, throttle and count calls at, and a destination the checks read back. The
//! checks need the fixture `source`; a source that cannot throttle, expire tokens or take
//! writes does not provide `source:throttle`, `source:tokens` or `source:upsert`, and those
//! checks are skipped for it (and said so in the report).

mod read;
mod resilience;
mod spec;
mod state;
mod write;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_spi::TenantId;
use switchyard_spi::testkit::TenantInstance;

use crate::{Check, Level, Subject, check};
pub use read::*;
pub use resilience::*;
pub use spec::*;
pub use state::*;
pub use write::*;

/// The system a connector under test talks to, as a check drives it.
#[async_trait]
pub trait Source: Send + Sync {
    /// The stream the checks sync.
    fn stream(&self) -> &str;

    /// A tenant config that connects to this source and maps [`Source::stream`]'s records
    /// with `mapping` (output field → expression), with pages as small as the system allows
    /// (at most 10 records where it lets the caller choose), so that the few dozen records a
    /// check seeds span several pages.
    fn config(&self, mapping: Value) -> Value;

    /// The same connection with credentials the source refuses.
    fn refused_config(&self) -> Value;

    /// A mapping of [`Source::stream`] that keeps the record's key as `key`.
    fn mapping(&self) -> Value;

    /// The client the engine reaches `tenant`'s destination providers through (the runtime
    /// hands every in-process engine one bound to its tenant), and the destination the checks
    /// sync to: a table of a db provider that client serves.
    fn client(&self, tenant: &TenantId) -> Arc<dyn ProviderClient>;
    fn destination(&self, table: &str) -> Value;

    /// Creates `n` records of the stream; their primary keys, as the destination's `id`.
    async fn create(&self, n: usize) -> Vec<String>;
    /// Changes one record, so that an incremental read sees it again.
    async fn update(&self, key: &str);
    /// Deletes one record.
    async fn delete(&self, key: &str);
    /// The API calls the source has served so far (every request, answered or refused).
    fn calls(&self) -> u64;

    /// Makes the next `n` calls answer 429 with a `Retry-After` of at least 1 s
    /// (`source:throttle`).
    async fn throttle(&self, _n: usize) {}
    /// The 429s the source has answered so far.
    fn throttled(&self) -> u64 {
        0
    }
    /// Expires every access token the source has issued (`source:tokens`).
    async fn expire_tokens(&self) {}
    /// Tokens the source has issued so far (a refresh issues one).
    fn tokens_issued(&self) -> u64 {
        0
    }

    /// The stream and external-id field an upsert writes (`source:upsert`), a record of it
    /// with `external_id` at `version`, and the version of each record the system holds
    /// with that external id.
    fn upsert_target(&self) -> Option<(String, String)> {
        None
    }
    fn upsert_record(&self, _external_id: &str, _version: u32) -> Value {
        Value::Null
    }
    async fn versions_held(&self, _external_id: &str) -> Vec<u32> {
        Vec::new()
    }
}

/// The integration fixture's source, when the subject is a connector certified against one.
#[derive(Clone)]
pub struct SourceFixture(pub Arc<dyn Source>);

impl fmt::Debug for SourceFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source({})", self.0.stream())
    }
}

/// The acceptance checks, in the order reports list them.
pub fn checks() -> Vec<Check> {
    vec![
        // spec, check, discover
        check!(
            Level::Core,
            the_spec_publishes_a_config_schema_with_secret_credentials,
            requires = ["action:sync"]
        ),
        check!(
            Level::Core,
            check_passes_with_valid_credentials,
            requires = ["action:check", "fixture:source"]
        ),
        check!(
            Level::Core,
            check_with_refused_credentials_is_a_config_error_that_names_no_secret,
            requires = ["action:check", "fixture:source"]
        ),
        check!(
            Level::Core,
            discover_lists_the_stream_with_its_key_cursor_and_fields,
            requires = ["action:discover", "fixture:source"]
        ),
        // reads
        check!(
            Level::Core,
            a_basic_read_delivers_every_record_once,
            requires = ["action:sync", "fixture:source"]
        ),
        check!(
            Level::Core,
            a_second_full_refresh_leaves_each_record_once,
            requires = ["action:sync", "fixture:source"]
        ),
        check!(
            Level::Core,
            an_incremental_sync_reads_only_what_changed,
            requires = ["action:sync", "fixture:source"]
        ),
        check!(
            Level::Core,
            an_incremental_sync_from_a_future_cursor_reads_nothing,
            requires = ["action:sync", "action:reset", "fixture:source"]
        ),
        check!(
            Level::Core,
            an_abnormal_cursor_is_refused_clearly_and_loses_nothing,
            requires = ["action:sync", "action:reset", "fixture:source"]
        ),
        check!(
            Level::Core,
            a_full_refresh_carries_deletes_to_the_destination,
            requires = ["action:sync", "fixture:source"]
        ),
        check!(
            Level::Core,
            an_incremental_sync_carries_deletes_where_the_stream_has_a_feed,
            requires = ["action:sync", "action:discover", "fixture:source"]
        ),
        check!(
            Level::Core,
            state_shows_the_cursor_and_reset_forgets_it,
            requires = [
                "action:sync",
                "action:state",
                "action:reset",
                "fixture:source"
            ]
        ),
        // the system's limits and credentials
        check!(
            Level::Resilience,
            a_429_is_replayed_after_its_retry_after,
            requires = ["action:sync", "fixture:source", "fixture:source:throttle"]
        ),
        check!(
            Level::Resilience,
            an_expired_token_is_refreshed_and_the_sync_completes,
            requires = ["action:sync", "fixture:source", "fixture:source:tokens"]
        ),
        // writes
        check!(
            Level::Core,
            an_upsert_by_external_id_is_idempotent,
            requires = ["action:upsert", "fixture:source", "fixture:source:upsert"]
        ),
        // tenancy
        check!(
            Level::Isolation,
            a_tenant_sees_none_of_another_tenants_cursors_or_runs,
            requires = ["action:sync", "action:state", "fixture:source"]
        ),
    ]
}

/// How long a check waits for one sync run to finish.
const RUN_TIMEOUT: Duration = Duration::from_secs(50);

/// The source of the subject's fixture; the checks only run when there is one.
fn source(s: &Subject) -> Arc<dyn Source> {
    s.fixture::<super::Fixture>()
        .source
        .clone()
        .expect("the subject provides fixture:source")
        .0
}

/// `tenant`'s instance connected to the source, with its destination client.
async fn connect(s: &Subject, tenant: &str, config: Value) -> TenantInstance {
    let source = source(s);
    let id = TenantId::parse(&s.tenant_name(tenant)).expect("a valid tenant id");
    s.tenant_with_client(tenant, config, source.client(&id))
        .await
}

/// `tenant`'s instance with the source's own config and mapping.
async fn connected(s: &Subject, tenant: &str) -> TenantInstance {
    let source = source(s);
    connect(s, tenant, source.config(source.mapping())).await
}

/// Runs a sync of the source's stream in `mode` to `table` and waits for it to finish;
/// answers the finished run.
async fn sync(s: &Subject, tenant: &TenantInstance, mode: &str, table: &str) -> Value {
    let source = source(s);
    let params = json!({
        "stream": source.stream(),
        "mode": mode,
        "destination": source.destination(table),
        "wait_ms": 20_000,
    });
    let mut run = tenant.ok("sync", params).await;
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    while run["status"] == "running" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: the sync did not finish within {RUN_TIMEOUT:?}: {run}",
            s.name()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        run = last_run(tenant, source.stream(), &run["run_id"]).await;
    }
    run
}

/// The run `run_id` as `state` shows it.
async fn last_run(tenant: &TenantInstance, stream: &str, run_id: &Value) -> Value {
    let state = tenant.ok("state", json!({"stream": stream})).await;
    state["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("last_run"))
        .find(|run| &run["run_id"] == run_id)
        .cloned()
        .unwrap_or_else(|| panic!("state does not show run {run_id}: {state}"))
}

/// What the destination table holds for `tenant`: id → (deleted, mapped record).
async fn held(
    s: &Subject,
    tenant: &TenantInstance,
    table: &str,
) -> BTreeMap<String, (bool, Value)> {
    let source = source(s);
    let client = source.client(&tenant.tenant);
    let provider = source.destination(table)["db"]["provider"]
        .as_str()
        .expect("a db destination")
        .to_owned();
    let answer = client
        .invoke(
            &provider,
            "query",
            json!({"sql": format!("SELECT id, deleted, record FROM {table}")}),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: reading {table}: {e:?}", s.name()));
    let mut held = BTreeMap::new();
    for row in answer["rows"].as_array().expect("rows") {
        let id = match &row["id"] {
            Value::String(id) => id.clone(),
            other => other.to_string(),
        };
        let deleted =
            matches!(&row["deleted"], Value::Bool(true)) || row["deleted"].as_i64() == Some(1);
        let record = match &row["record"] {
            Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            other => other.clone(),
        };
        assert!(
            held.insert(id.clone(), (deleted, record)).is_none(),
            "{}: {table} holds {id} twice",
            s.name()
        );
    }
    held
}

/// The ids `held` shows as present (not deleted).
fn present(held: &BTreeMap<String, (bool, Value)>) -> Vec<String> {
    held.iter()
        .filter(|(_, (deleted, _))| !deleted)
        .map(|(id, _)| id.clone())
        .collect()
}
