//! What the sync tests write to and how they call an engine: a throwaway PostgreSQL database
//! on the test server behind `db/postgres`, the embedded bus, a tenant-bound client over them
//! (the runtime's `StartContext::client` in the tests), and an engine's tenant instance called
//! as the runtime calls it (params and results checked against the contract).
//!
//! Shared by the in-crate sync tests (`src/sync/tests`) and the connector sync tests here.
//! Needs `SWITCHYARD_TEST_POSTGRES_URL`; fails without it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
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

/// The runtime role's password on the test server (every db test agrees on it).
const APP_PASSWORD: &str = "switchyard-test";

/// A throwaway database on the test server, dropped with its connections when this is.
pub struct TestDatabase {
    name: String,
    pub url: String,
}

fn server_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES_URL")
        .expect("SWITCHYARD_TEST_POSTGRES_URL is not set: source the test servers' environment")
}

impl TestDatabase {
    pub async fn create(purpose: &str) -> TestDatabase {
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
pub struct Crash {
    pub after: usize,
    pub reached: Arc<Notify>,
}

type Started = (Arc<dyn Provider>, Arc<dyn ProviderFactory>);

/// A tenant's client over the destinations' engines, started for that tenant.
pub struct Client {
    tenant: TenantId,
    /// By id: the tenant's instance and its engine (for the descriptor).
    providers: HashMap<String, Started>,
    transactions: AtomicUsize,
    crash: Option<Crash>,
}

impl Client {
    /// `db/postgres` on `db` and `bus/embedded` under `bus_root`, for `tenant`.
    pub async fn new(
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
    pub async fn rows(&self, sql: &str) -> Vec<Value> {
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

/// One tenant's instance of the engine, called as the runtime calls it: params and results
/// checked against the contract.
pub struct Tenant {
    pub id: TenantId,
    instance: Arc<dyn Provider>,
    factory: Arc<dyn ProviderFactory>,
}

impl Tenant {
    pub async fn start(
        factory: Arc<dyn ProviderFactory>,
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
            factory,
        }
    }

    pub async fn call_with_payload(
        &self,
        action: &str,
        params: Value,
        payload: Option<bytes::Bytes>,
    ) -> Result<Value, ProviderError> {
        let descriptor = self.factory.descriptor().action(action).unwrap();
        let name = format!("integration/{}", self.factory.descriptor().name);
        let validators = ActionValidators::compile(&name, descriptor).unwrap();
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

    pub async fn ok(&self, action: &str, params: Value) -> Value {
        self.call_with_payload(action, params, None)
            .await
            .unwrap_or_else(|e| panic!("{action}: {e}"))
    }
}

pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}
