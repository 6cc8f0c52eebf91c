//! The services' tests, in process: a runtime with a real db engine (SQLite in a temporary
//! directory, or PostgreSQL in a throwaway database) behind the service books, and the
//! embedded bus, and the service calling them through the runtime's client, exactly as it runs
//! in `switchyard serve`. Every
//! call is checked like the runtime checks it, against the action's params and result schemas.
//!
//! PostgreSQL needs `SWITCHYARD_TEST_POSTGRES_URL` (a superuser URL; `scripts/test` sets it).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use switchyard_client::Service;
use switchyard_contracts::{ActionValidators, FieldError, Problem, TenantId};
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_provider_db::{PostgresFactory, PostgresSettings, ServiceBooks, SqliteFactory};
use switchyard_runtime::{PlatformStore, Registry, Runtime, RuntimeClient};
use switchyard_spi::{ProviderDescriptor, ProviderFactory, StartContext};

/// Throwaway PostgreSQL databases: the db provider's own test helper, shared rather than
/// copied so every crate makes test databases one way.
#[path = "../../../providers/db/tests/support/postgres.rs"]
pub mod pg;

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

/// The bus of every platform.
pub const BUS: &str = "bus/embedded";

/// A runtime with `engine` and the embedded bus, and one service over it. Fields drop in
/// order: the runtime (and its pools) before the database it points at.
pub struct Platform<S> {
    pub runtime: Arc<Runtime>,
    pub service: Arc<S>,
    validators: Arc<HashMap<String, ActionValidators>>,
    _dir: tempfile::TempDir,
    _database: Option<pg::TestDatabase>,
}

impl<S: Service> Platform<S> {
    /// `service` builds the service from its db provider id.
    pub async fn start(engine: Engine, service: impl FnOnce(&str) -> S) -> Platform<S> {
        let service = service(engine.provider());
        let name = service.descriptor().name.clone();
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let mut registry = Registry::default();
        registry
            .register(Arc::new(EmbeddedBusFactory::new(dir.path().join("bus"))))
            .unwrap();
        let database = match engine {
            Engine::Sqlite => {
                registry
                    .register(Arc::new(ServiceBooks::new(
                        Arc::new(SqliteFactory::new(dir.path().join("db"))),
                        Arc::new(SqliteFactory::new(dir.path().join("books"))),
                    )))
                    .unwrap();
                None
            }
            Engine::Postgres => {
                let database = pg::TestDatabase::create(&name).await;
                let postgres = PostgresFactory::new(PostgresSettings::new(
                    database.url.clone(),
                    pg::APP_PASSWORD,
                ));
                let books = postgres.books();
                registry
                    .register(Arc::new(ServiceBooks::new(
                        Arc::new(postgres),
                        Arc::new(books),
                    )))
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
        Platform {
            runtime,
            validators: validators(&service),
            service: Arc::new(service),
            _dir: dir,
            _database: database,
        }
    }

    /// The superuser URL of the throwaway PostgreSQL database, for a test acting as its owner.
    pub fn database_url(&self) -> Option<&str> {
        self._database
            .as_ref()
            .map(|database| database.url.as_str())
    }

    /// The service as `tenant` sees it.
    pub fn tenant(&self, tenant: &str) -> Caller<S> {
        let subject = format!("service:{}", self.service.descriptor().name);
        Caller {
            service: self.service.clone(),
            client: RuntimeClient::new(
                self.runtime.clone(),
                TenantId::parse(tenant).unwrap(),
                &subject,
            ),
            validators: self.validators.clone(),
        }
    }
}

/// Each action's compiled params and result schemas, by action name.
pub fn validators<S: Service>(service: &S) -> Arc<HashMap<String, ActionValidators>> {
    let descriptor = service.descriptor();
    let id = format!("services/{}", descriptor.name);
    let validators = descriptor
        .actions
        .iter()
        .map(|action| {
            let compiled = ActionValidators::compile(&id, action).unwrap();
            (action.name.clone(), compiled)
        })
        .collect();
    Arc::new(validators)
}

/// One tenant's service. Every call is checked like the runtime checks it: params against
/// the action's params schema before, and every answer against its result schema after.
pub struct Caller<S> {
    service: Arc<S>,
    pub client: RuntimeClient,
    validators: Arc<HashMap<String, ActionValidators>>,
}

impl<S: Service> Caller<S> {
    pub fn new(
        service: Arc<S>,
        client: RuntimeClient,
        validators: Arc<HashMap<String, ActionValidators>>,
    ) -> Caller<S> {
        Caller {
            service,
            client,
            validators,
        }
    }

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

    /// Where the action's published params schema refuses `params`: the runtime answers those
    /// 400 `params_invalid` before the service runs, so [`Caller::call`] cannot send them.
    pub fn schema_refuses(&self, action: &str, params: &Value) -> Vec<FieldError> {
        self.validators[action].params.check(params)
    }

    pub async fn refused(&self, action: &str, params: Value) -> Problem {
        match self.call(action, params.clone()).await {
            Ok(data) => panic!("{action} {params} was accepted: {data}"),
            Err(problem) => problem,
        }
    }
}

/// A db engine registered under another name with capabilities of its own: what a plugin or
/// remote engine speaking a built-in engine's SQL looks like to a service, which knows only
/// its id and what its descriptor declares.
pub struct Renamed {
    engine: Arc<dyn ProviderFactory>,
    descriptor: ProviderDescriptor,
}

impl Renamed {
    /// `engine` as `db/<name>`, declaring exactly `capabilities`.
    pub fn new(engine: Arc<dyn ProviderFactory>, name: &str, capabilities: &[&str]) -> Renamed {
        let mut descriptor = engine.descriptor().clone();
        descriptor.name = name.into();
        descriptor.capabilities = capabilities.iter().map(|c| c.to_string()).collect();
        Renamed { engine, descriptor }
    }
}

#[async_trait::async_trait]
impl ProviderFactory for Renamed {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(
        &self,
        ctx: StartContext,
    ) -> Result<Arc<dyn switchyard_spi::Provider>, switchyard_spi::ProviderError> {
        self.engine.start(ctx).await
    }
}
