//! The inventory service on real engines through the runtime's in-process client: stock
//! behaviour and tenancy (`stock`), the outbox (`events`), parallel issues (`concurrency`),
//! snapshot = replay under generated histories (`properties`), the seed's lot-genealogy
//! scenario (`genealogy`) and EPCIS 2.0 (`epcis`), each on db/sqlite and db/postgres.
//!
//! PostgreSQL tests need `SWITCHYARD_TEST_POSTGRES_URL` (a superuser URL; `scripts/test` sets
//! it) and fail without it. Each creates a throwaway database through
//! `switchyard_service_kit::testkit`, shared so every service makes test databases one way.

/// A test per engine for each scenario `async fn name(engine: Engine)`: `name::sqlite` and
/// `name::postgres`.
macro_rules! on_both_engines {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use crate::support::Engine;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(Engine::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(Engine::Postgres).await
                }
            }
        )*
    };
}

mod concurrency;
mod epcis;
mod events;
mod genealogy;
mod properties;
mod stock;
mod support;
