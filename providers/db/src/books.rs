//! The service books: where the business services (ledger, inventory, orders) keep their
//! tables, apart from the tenant's own database.
//!
//! A tenant key allowed `invoke:db` runs any SQL on the tenant's own database; if the ledger's
//! tables lived there, that key could `UPDATE gl_entry` and undo what the ledger guarantees
//! (balanced, append-only, approved postings). [`ServiceBooks`] therefore serves one db engine
//! as two: calls a hosted service makes (the runtime sets [`CallContext::service`], which no
//! request can) go to the tenant's *books* instance, every other call to the tenant's own.
//! The books instance comes from a second factory of the same engine that keeps its data
//! elsewhere (db/sqlite: another directory; db/postgres: another schema and role of the same
//! database, see `PostgresFactory::books`), and starts with the engine's defaults: the
//! tenant's config shapes its own database only.
//!
//! One books namespace serves all of a tenant's services: they are the platform's code and
//! share the outbox their events go through.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_spi::{
    CallContext, Health, Invocation, Provider, ProviderDescriptor, ProviderError, ProviderFactory,
    StartContext, TenantId,
};
use tokio::sync::OnceCell;

/// A db engine whose hosted services' calls reach the tenant's books instead of the tenant's
/// own database. Descriptor, config and health are the tenant's engine's.
pub struct ServiceBooks {
    own: Arc<dyn ProviderFactory>,
    books: Arc<dyn ProviderFactory>,
}

impl ServiceBooks {
    /// `own` serves the tenant's calls with the tenant's config; `books` (the same engine,
    /// keeping its data elsewhere) the services' calls with its defaults.
    pub fn new(own: Arc<dyn ProviderFactory>, books: Arc<dyn ProviderFactory>) -> Self {
        ServiceBooks { own, books }
    }
}

#[async_trait]
impl ProviderFactory for ServiceBooks {
    fn descriptor(&self) -> &ProviderDescriptor {
        self.own.descriptor()
    }

    fn node_local(&self) -> Option<&'static str> {
        self.own.node_local().or(self.books.node_local())
    }

    /// Starts the tenant's own instance; the books instance starts with the first service
    /// call, so a tenant that never uses a service never gets books.
    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let tenant = ctx.tenant.clone();
        Ok(Arc::new(Both {
            own: self.own.start(ctx).await?,
            books: OnceCell::new(),
            factory: self.books.clone(),
            tenant,
        }))
    }
}

/// One tenant's two instances.
struct Both {
    own: Arc<dyn Provider>,
    books: OnceCell<Arc<dyn Provider>>,
    factory: Arc<dyn ProviderFactory>,
    tenant: TenantId,
}

impl Both {
    async fn books(&self) -> Result<&Arc<dyn Provider>, ProviderError> {
        self.books
            .get_or_try_init(|| {
                self.factory.start(StartContext {
                    tenant: self.tenant.clone(),
                    config: json!({}),
                    client: None,
                })
            })
            .await
    }
}

#[async_trait]
impl Provider for Both {
    async fn invoke(&self, ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        if ctx.service.is_some() {
            return self.books().await?.invoke(ctx, call).await;
        }
        self.own.invoke(ctx, call).await
    }

    async fn health(&self) -> Health {
        self.own.health().await
    }

    async fn stop(&self) {
        self.own.stop().await;
        if let Some(books) = self.books.get() {
            books.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteFactory;

    fn ctx(service: Option<&str>) -> CallContext {
        CallContext {
            tenant: TenantId::parse("acme").unwrap(),
            request_id: "books".into(),
            subject: None,
            service: service.map(str::to_owned),
        }
    }

    fn call(action: &str, sql: &str) -> Invocation {
        Invocation {
            action: action.into(),
            params: json!({"sql": sql}),
            payload: None,
        }
    }

    #[tokio::test]
    async fn a_service_and_the_tenant_each_see_only_their_own_tables() {
        let (own, books) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let factory = ServiceBooks::new(
            Arc::new(SqliteFactory::new(own.path().into())),
            Arc::new(SqliteFactory::new(books.path().into())),
        );
        let instance = factory
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({}),
                client: None,
            })
            .await
            .unwrap();
        let ledger = ctx(Some("ledger"));
        instance
            .invoke(
                &ledger,
                call("execute", "CREATE TABLE gl_entry (debit TEXT)"),
            )
            .await
            .unwrap();
        let tables = "SELECT name FROM sqlite_master WHERE type = 'table'";
        let seen = instance
            .invoke(&ctx(None), call("query", tables))
            .await
            .unwrap();
        assert_eq!(seen["rows"], json!([]), "the tenant sees the books: {seen}");
        let err = instance
            .invoke(
                &ctx(None),
                call("execute", "UPDATE gl_entry SET debit = '0'"),
            )
            .await
            .unwrap_err();
        assert!(err.detail.contains("no such table"), "{err:?}");
        let seen = instance
            .invoke(&ledger, call("query", tables))
            .await
            .unwrap();
        assert_eq!(seen["rows"], json!([{"name": "gl_entry"}]));
        instance.stop().await;
    }
}
