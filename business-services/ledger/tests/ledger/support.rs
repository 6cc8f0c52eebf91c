//! An in-process platform per test: a runtime with a real db engine (SQLite in a temporary
//! directory, or PostgreSQL in a throwaway database) and the embedded bus, and the ledger
//! service calling them through the runtime's client, exactly as it runs in `switchyard serve`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_client::Service;
use switchyard_contracts::{ActionValidators, Problem, TenantId};
use switchyard_ledger::{LedgerService, LedgerSettings};
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_provider_db::{PostgresFactory, PostgresSettings, SqliteFactory};
use switchyard_runtime::{PlatformStore, Registry, Runtime, RuntimeClient};

use crate::pg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn provider(self) -> &'static str {
        match self {
            Engine::Sqlite => "db/sqlite",
            Engine::Postgres => "db/postgres",
        }
    }
}

pub const BUS: &str = "bus/embedded";

/// Fields drop in order: the runtime (and its pools) before the database it points at.
pub struct Platform {
    pub runtime: Arc<Runtime>,
    pub service: Arc<LedgerService>,
    validators: Arc<HashMap<String, ActionValidators>>,
    _dir: tempfile::TempDir,
    _database: Option<pg::TestDatabase>,
}

impl Platform {
    /// A platform whose ledger keeps its books on `engine`, without a bus.
    pub async fn new(engine: Engine) -> Platform {
        Platform::build(engine, None).await
    }

    /// The same, with postings also written to the outbox for `bus/embedded`.
    pub async fn with_bus(engine: Engine) -> Platform {
        Platform::build(engine, Some(BUS)).await
    }

    async fn build(engine: Engine, bus: Option<&str>) -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let mut registry = Registry::default();
        registry
            .register(Arc::new(EmbeddedBusFactory::new(dir.path().join("bus"))))
            .unwrap();
        let database = match engine {
            Engine::Sqlite => {
                registry
                    .register(Arc::new(SqliteFactory::new(dir.path().join("db"))))
                    .unwrap();
                None
            }
            Engine::Postgres => {
                let database = pg::TestDatabase::create("ledger").await;
                registry
                    .register(Arc::new(PostgresFactory::new(PostgresSettings::new(
                        database.url.clone(),
                        pg::APP_PASSWORD,
                    ))))
                    .unwrap();
                Some(database)
            }
        };
        let runtime = Arc::new(Runtime::new(
            registry,
            store,
            Default::default(),
            Default::default(),
        ));
        let service = LedgerService::new(LedgerSettings {
            db: engine.provider().into(),
            bus: bus.map(str::to_owned),
        })
        .unwrap();
        let validators = service
            .descriptor()
            .actions
            .iter()
            .map(|action| {
                let compiled = ActionValidators::compile("services/ledger", action).unwrap();
                (action.name.clone(), compiled)
            })
            .collect();
        Platform {
            runtime,
            service: Arc::new(service),
            validators: Arc::new(validators),
            _dir: dir,
            _database: database,
        }
    }

    /// The ledger as `tenant` sees it.
    pub fn books(&self, tenant: &str) -> Books {
        Books {
            service: self.service.clone(),
            client: RuntimeClient::new(
                self.runtime.clone(),
                TenantId::parse(tenant).unwrap(),
                "service:ledger",
            ),
            validators: self.validators.clone(),
        }
    }
}

/// One tenant's ledger. Every call is checked like the runtime checks it: params against the
/// action's params schema before, and every answer against its result schema after.
pub struct Books {
    service: Arc<LedgerService>,
    pub client: RuntimeClient,
    validators: Arc<HashMap<String, ActionValidators>>,
}

impl Books {
    pub async fn call(&self, action: &str, params: Value) -> Result<Value, Problem> {
        let validators = &self.validators[action];
        let refused = validators.params.check(&params);
        assert!(
            refused.is_empty(),
            "test sent invalid params to {action}: {params} {refused:?}"
        );
        let answer = self.service.invoke(&self.client, action, params).await;
        if let Ok(data) = &answer {
            let wrong = validators.result.check(data);
            assert!(
                wrong.is_empty(),
                "{action} answered outside its result schema: {data} {wrong:?}"
            );
        }
        answer
    }

    pub async fn ok(&self, action: &str, params: Value) -> Value {
        self.call(action, params.clone())
            .await
            .unwrap_or_else(|p| panic!("{action} {params} failed: {p:?}"))
    }

    pub async fn refused(&self, action: &str, params: Value) -> Problem {
        match self.call(action, params.clone()).await {
            Ok(data) => panic!("{action} {params} was accepted: {data}"),
            Err(problem) => problem,
        }
    }

    pub async fn account(&self, code: &str, account_type: &str, currency: &str) -> Value {
        self.ok(
            "create_account",
            json!({"code": code, "name": format!("account {code}"), "type": account_type, "currency": currency}),
        )
        .await
    }

    /// Posts `lines` (`(account, "debit"|"credit", amount, currency)`) as `journal_id`.
    pub async fn post(
        &self,
        journal_id: &str,
        posting_time: &str,
        lines: &[(&str, &str, &str, &str)],
    ) -> Result<Value, Problem> {
        self.call("post_journal", journal(journal_id, posting_time, lines))
            .await
    }

    /// `(debit_total, credit_total, balance)` of an account now.
    pub async fn balance(&self, account: &str) -> (String, String, String) {
        let b = self.ok("balance", json!({"account": account})).await;
        (
            b["debit_total"].as_str().unwrap().into(),
            b["credit_total"].as_str().unwrap().into(),
            b["balance"].as_str().unwrap().into(),
        )
    }

    pub async fn trial_balance(&self) -> Value {
        self.ok("trial_balance", json!({})).await
    }

    /// Every event of the tenant, in order.
    pub async fn all_events(&self) -> Vec<Value> {
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .ok("events", json!({"after": after, "limit": 1000}))
                .await;
            events.extend(page["events"].as_array().unwrap().iter().cloned());
            match page["next_after"].as_i64() {
                Some(next) => after = next,
                None => return events,
            }
        }
    }
}

/// `post_journal` params.
pub fn journal(journal_id: &str, posting_time: &str, lines: &[(&str, &str, &str, &str)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(account, side, amount, currency)| {
            let mut line = json!({"account": account, "currency": currency});
            line[*side] = json!(amount);
            line
        })
        .collect();
    json!({"journal_id": journal_id, "posting_time": posting_time, "lines": lines})
}
