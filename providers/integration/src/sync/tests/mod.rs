//! The generic engine against real servers: PostgreSQL (through `db/postgres`) and the
//! embedded bus as destinations, an in-test connector over a Vec as the system (it counts the
//! calls it serves, so "no call" is measured, not assumed).
//!
//! Needs `SWITCHYARD_TEST_POSTGRES_URL` (scripts/test, or /work/briefs test-env); fails
//! without it.

mod runs;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ActionValidators, Problem};
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_provider_db::{PostgresFactory, PostgresSettings};
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::{
    CallContext, ErrorCode, Invocation, Provider, ProviderError, ProviderFactory, StartContext,
    TenantId,
};
use tokio::sync::Notify;

use super::{About, Factory, Settings};
use crate::connector::{
    Connect, Connector, Deleted, DeletedPage, Deletes, Field, Inbound, Link, Page, ReadFrom,
    Received, Stream, Upserted,
};

/// The runtime role's password on the test server (every db test agrees on it).
const APP_PASSWORD: &str = "switchyard-test";

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
                .map(|(id, at)| Deleted {
                    key: id.to_string(),
                    at: json!(at),
                })
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

/// A throwaway database on the test server, dropped with its connections when this is.
pub(super) struct TestDatabase {
    name: String,
    pub(super) url: String,
}

fn server_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES_URL")
        .expect("SWITCHYARD_TEST_POSTGRES_URL is not set: source the test servers' environment")
}

impl TestDatabase {
    pub(super) async fn create(purpose: &str) -> TestDatabase {
        let name = format!("sy_sync_{purpose}_{}", uuid::Uuid::now_v7().simple());
        let server = server_url();
        let mut admin = PgConnection::connect(&server).await.unwrap();
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap();
        let (base, _) = server.rsplit_once('/').unwrap();
        let query = server
            .split_once('?')
            .map_or(String::new(), |(_, q)| format!("?{q}"));
        TestDatabase {
            url: format!("{base}/{name}{query}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&server_url()).await {
                        let _ = admin
                            .execute(
                                format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
                            )
                            .await;
                    }
                })
        })
        .join();
    }
}

/// When a client stops answering: after its `n`-th db transaction was acknowledged, as a
/// process killed between a destination's ack and the checkpoint.
pub(super) struct Crash {
    pub(super) after: usize,
    pub(super) reached: Arc<Notify>,
}

type Started = (Arc<dyn Provider>, Arc<dyn ProviderFactory>);

/// A tenant's client over the destinations' engines, started for that tenant.
pub(super) struct Client {
    tenant: TenantId,
    /// By id: the tenant's instance and its engine (for the descriptor).
    providers: HashMap<String, Started>,
    transactions: AtomicUsize,
    crash: Option<Crash>,
}

impl Client {
    /// `db/postgres` on `db` and `bus/embedded` under `bus_root`, for `tenant`.
    pub(super) async fn new(
        tenant: &TenantId,
        db: &TestDatabase,
        bus_root: &std::path::Path,
        crash: Option<Crash>,
    ) -> Arc<Client> {
        let postgres: Arc<dyn ProviderFactory> = Arc::new(
            PostgresFactory::new(PostgresSettings::new(db.url.clone(), APP_PASSWORD)).with_egress(
                &EgressCeiling {
                    allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
                    allowed_ports: Vec::new(),
                },
            ),
        );
        let bus: Arc<dyn ProviderFactory> = Arc::new(EmbeddedBusFactory::new(bus_root.into()));
        let mut providers = HashMap::new();
        for (id, factory) in [("db/postgres", postgres), ("bus/embedded", bus)] {
            let instance = factory
                .start(StartContext {
                    tenant: tenant.clone(),
                    config: json!({}),
                    client: None,
                })
                .await
                .unwrap();
            providers.insert(id.to_owned(), (instance, factory));
        }
        Arc::new(Client {
            tenant: tenant.clone(),
            providers,
            transactions: AtomicUsize::new(0),
            crash,
        })
    }

    /// Rows of `sql` on the tenant's `db/postgres`.
    pub(super) async fn rows(&self, sql: &str) -> Vec<Value> {
        let answer = self
            .invoke("db/postgres", "query", json!({"sql": sql}))
            .await
            .unwrap();
        answer["rows"].as_array().unwrap().clone()
    }
}

#[async_trait]
impl ProviderClient for Client {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    async fn invoke(&self, provider: &str, action: &str, params: Value) -> Result<Value, Problem> {
        let Some((instance, factory)) = self.providers.get(provider) else {
            return Err(Problem::new(
                ErrorCode::ProviderNotFound,
                provider.to_owned(),
            ));
        };
        let descriptor = factory.descriptor().action(action).unwrap();
        let validators = ActionValidators::compile(provider, descriptor).unwrap();
        let refused = validators.params.check(&params);
        assert!(
            refused.is_empty(),
            "{provider}/{action} params: {refused:?}\n{params}"
        );
        let ctx = CallContext {
            tenant: self.tenant.clone(),
            request_id: "sync-test".into(),
            subject: None,
            service: None,
        };
        let call = Invocation {
            action: action.to_owned(),
            params,
            payload: None,
        };
        let answer = instance
            .invoke(&ctx, call)
            .await
            .map_err(|e| Problem::new(e.code, e.detail))?;
        if action == "transaction" {
            let n = self.transactions.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(crash) = &self.crash
                && n >= crash.after
            {
                crash.reached.notify_one();
                std::future::pending::<()>().await;
            }
        }
        Ok(answer)
    }

    async fn describe(&self, provider: &str) -> Result<Value, Problem> {
        let (_, factory) = &self.providers[provider];
        Ok(serde_json::to_value(factory.descriptor()).unwrap())
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

/// One tenant's instance of the engine, called as the runtime calls it: params and results
/// checked against the contract.
pub(super) struct Tenant {
    pub(super) id: TenantId,
    instance: Arc<dyn Provider>,
    factory: Arc<Factory<VecConnector>>,
}

impl Tenant {
    pub(super) async fn start(
        factory: &Arc<Factory<VecConnector>>,
        tenant: &TenantId,
        config: Value,
        client: Arc<Client>,
    ) -> Tenant {
        let instance = factory
            .start(StartContext {
                tenant: tenant.clone(),
                config,
                client: Some(client),
            })
            .await
            .unwrap();
        Tenant {
            id: tenant.clone(),
            instance,
            factory: factory.clone(),
        }
    }

    pub(super) async fn call_with_payload(
        &self,
        action: &str,
        params: Value,
        payload: Option<bytes::Bytes>,
    ) -> Result<Value, ProviderError> {
        let descriptor = self.factory.descriptor().action(action).unwrap();
        let validators = ActionValidators::compile("integration/vec", descriptor).unwrap();
        let refused = validators.params.check(&params);
        assert!(refused.is_empty(), "{action} params: {refused:?}\n{params}");
        let ctx = CallContext {
            tenant: self.id.clone(),
            request_id: "sync-test".into(),
            subject: None,
            service: None,
        };
        let call = Invocation {
            action: action.to_owned(),
            params,
            payload,
        };
        let answer = self.instance.invoke(&ctx, call).await?;
        let off = validators.result.check(&answer);
        assert!(
            off.is_empty(),
            "{action} answered off-contract: {off:?}\n{answer}"
        );
        Ok(answer)
    }

    pub(super) async fn ok(&self, action: &str, params: Value) -> Value {
        self.call_with_payload(action, params, None)
            .await
            .unwrap_or_else(|e| panic!("{action}: {e}"))
    }
}

pub(super) fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}
