//! The generic engine against real servers: PostgreSQL (through `db/postgres`) and the
//! embedded bus as destinations, an in-test connector over a Vec as the system (it counts the
//! calls it serves, so "no call" is measured, not assumed).
//!
//! Needs `SWITCHYARD_TEST_POSTGRES_URL` (scripts/test sets it); fails without it.

#[path = "../../../tests/support/destinations.rs"]
mod destinations;
mod runs;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_spi::{ErrorCode, ProviderError};

use super::{About, Factory, Settings};
use crate::connector::{
    Connect, Connector, DeletedPage, Deletes, Field, Inbound, Link, Page, ReadFrom, Received,
    Stream, Upserted,
};

/// A system's records, shared by the test and every connector made over it.
pub(super) struct Source {
    /// id → record `{"id", "updated", "name"}`.
    pub(super) records: Mutex<BTreeMap<i64, Value>>,
    /// Deleted ids with when.
    pub(super) deleted: Mutex<Vec<(i64, i64)>>,
    pub(super) calls: AtomicUsize,
    pub(super) page_size: usize,
}

static SOURCES: LazyLock<Mutex<HashMap<String, Arc<Source>>>> = LazyLock::new(Default::default);

impl Source {
    /// A source named `name` with records 1..=n, `updated` = 1000 + id.
    pub(super) fn seeded(name: &str, n: i64, page_size: usize) -> Arc<Source> {
        let records = (1..=n)
            .map(|id| {
                (
                    id,
                    json!({"id": id, "updated": 1000 + id, "name": format!("r{id}")}),
                )
            })
            .collect();
        let source = Arc::new(Source {
            records: Mutex::new(records),
            deleted: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
            page_size,
        });
        SOURCES
            .lock()
            .unwrap()
            .insert(name.to_owned(), source.clone());
        source
    }

    pub(super) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(super) fn delete(&self, id: i64, at: i64) {
        self.records.lock().unwrap().remove(&id);
        self.deleted.lock().unwrap().push((id, at));
    }

    pub(super) fn put(&self, id: i64, updated: i64, name: &str) {
        self.records
            .lock()
            .unwrap()
            .insert(id, json!({"id": id, "updated": updated, "name": name}));
    }
}

/// The in-test connector: `items` has a deleted feed, `orders` only full-refresh deletes.
pub(super) struct VecConnector {
    source: Arc<Source>,
    token: String,
}

#[derive(Deserialize, JsonSchema)]
pub(super) struct VecConfig {
    source: String,
    /// A credential, to show that none reaches an answer.
    #[serde(default)]
    token: String,
    #[serde(flatten)]
    sync: Settings,
}

impl Connect for VecConnector {
    type Config = VecConfig;

    fn settings(config: &VecConfig) -> &Settings {
        &config.sync
    }

    fn connect(config: VecConfig, _: Link) -> Result<Self, ProviderError> {
        let source = SOURCES.lock().unwrap().get(&config.source).cloned();
        Ok(VecConnector {
            source: source.ok_or_else(|| ProviderError::internal("no such source"))?,
            token: config.token,
        })
    }
}

#[async_trait]
impl Connector for VecConnector {
    const NAME: &'static str = "vec";

    async fn discover(&self) -> Result<Vec<Stream>, ProviderError> {
        let fields = vec![
            Field {
                name: "id".into(),
                kind: "integer".into(),
            },
            Field {
                name: "updated".into(),
                kind: "integer".into(),
            },
        ];
        let stream = |name: &str, deletes| Stream {
            name: name.into(),
            primary_key: "id".into(),
            cursor_field: Some("updated".into()),
            deletes,
            fields: fields.clone(),
        };
        Ok(vec![
            stream("items", Deletes::Feed),
            stream("orders", Deletes::FullRefresh),
        ])
    }

    async fn check(&self) -> Result<(), ProviderError> {
        self.source.calls.fetch_add(1, Ordering::SeqCst);
        if self.token.starts_with("refused") {
            return Err(ProviderError::new(
                ErrorCode::UpstreamCredentialsInvalid,
                "vec refused the connection's credentials (401)",
            ));
        }
        Ok(())
    }

    async fn read(&self, _: &str, from: ReadFrom<'_>) -> Result<Page, ProviderError> {
        self.source.calls.fetch_add(1, Ordering::SeqCst);
        let since = from.since.and_then(Value::as_i64).unwrap_or(i64::MIN);
        let mut records: Vec<Value> = self
            .source
            .records
            .lock()
            .unwrap()
            .values()
            .filter(|r| r["updated"].as_i64().unwrap() >= since)
            .cloned()
            .collect();
        records.sort_by_key(|r| (r["updated"].as_i64(), r["id"].as_i64()));
        let offset: usize = from.page.map_or(0, |p| p.parse().unwrap());
        let end = (offset + self.source.page_size).min(records.len());
        Ok(Page {
            records: records[offset.min(end)..end].to_vec(),
            next_page: (end < records.len()).then(|| end.to_string()),
        })
    }

    async fn read_deleted(
        &self,
        _: &str,
        from: ReadFrom<'_>,
    ) -> Result<DeletedPage, ProviderError> {
        self.source.calls.fetch_add(1, Ordering::SeqCst);
        let since = from.since.and_then(Value::as_i64).unwrap_or(i64::MIN);
        let deleted = self.source.deleted.lock().unwrap();
        Ok(DeletedPage {
            deleted: deleted
                .iter()
                .filter(|(_, at)| *at >= since)
                .map(|(id, _)| id.to_string())
                .collect(),
            next_page: None,
        })
    }

    async fn upsert(
        &self,
        _: &str,
        field: &str,
        records: &[Value],
    ) -> Result<Vec<Upserted>, ProviderError> {
        self.source.calls.fetch_add(1, Ordering::SeqCst);
        Ok(records
            .iter()
            .map(|r| Upserted {
                external_id: r[field].as_str().unwrap_or_default().to_owned(),
                id: format!("v-{}", r[field].as_str().unwrap_or_default()),
                created: true,
            })
            .collect())
    }

    /// Signed when `x-vec-signature` is the token; the body is `{"id", "stream", "records",
    /// "deleted"}`.
    fn receive(&self, inbound: Inbound<'_>) -> Result<Received, ProviderError> {
        if inbound.headers.get("x-vec-signature") != Some(&self.token) {
            return Err(ProviderError::new(
                ErrorCode::SignatureInvalid,
                "the webhook's signature does not verify",
            ));
        }
        let body: Value = serde_json::from_slice(inbound.body)
            .map_err(|e| ProviderError::new(ErrorCode::ProviderFailed, e.to_string()))?;
        Ok(Received {
            delivery_id: body["id"].as_str().unwrap().to_owned(),
            stream: body["stream"].as_str().unwrap().to_owned(),
            records: body["records"].as_array().cloned().unwrap_or_default(),
            deleted: body["deleted"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect(),
        })
    }
}

/// The `integration/vec` engine under `root`.
pub(super) fn factory(root: &std::path::Path) -> Arc<Factory<VecConnector>> {
    Arc::new(Factory::<VecConnector>::new(
        root.into(),
        About {
            summary: "an in-test system",
            capabilities: &[],
            actions: super::ALL_ACTIONS,
        },
    ))
}
