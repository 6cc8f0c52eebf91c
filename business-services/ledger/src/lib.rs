//! The ledger business service: an event-sourced, double-entry general ledger built only
//! from providers (a db provider, and optionally a bus through the outbox).
//!
//! - **Double entry**: a journal is refused unless its debits equal its credits in every
//!   currency, so the trial balance nets to zero at every moment.
//! - **Event-sourced**: each posting appends `journal.posted` to `acc_event`, in the same db
//!   `transaction` as the projections it updates (`gl_entry` lines and `gl_balance` totals);
//!   `rebuild` replays the events and checks the projections against them.
//! - **Immutable**: there is no update or delete; a mistake is undone by a reversing journal.
//! - **Idempotent**: the client names each journal; the same journal again is answered from
//!   the store with `replayed: true`, a different one under the same id is a `conflict`.
//!
//! See README.md beside this crate for the tables and the reasons behind them.

mod accounts;
mod amount;
mod batch;
mod chain;
mod db;
mod journal;
mod posting;
mod rebuild;
mod reports;
mod schema;
mod statements;
mod verify;

use async_trait::async_trait;
use serde_json::Value;
use switchyard_client::{ProviderClient, Service, ServiceDescriptor};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_outbox::{Outbox, Relay};
use switchyard_service_kit::{Db, Installs, ServiceCore, params};

/// What the summary of `contracts/schemas/services/ledger.json` says (a test keeps them equal).
const SUMMARY: &str = "Event-sourced double-entry general ledger: a chart of accounts, balanced \
and immutable journals posted idempotently, reversals, period close, balances, trial balance, \
statements and a replay check.";

/// The CloudEvents type of the event every posting writes to the outbox when a bus is set;
/// `asyncapi/business-events.json` describes it, and a test holds the two together.
pub const JOURNAL_POSTED: &str = "ledger.journal.posted";

/// Where the ledger keeps its books and announces its postings.
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    /// The db provider holding each tenant's books: `db/sqlite` or `db/postgres`.
    pub db: String,
    /// A bus provider (`bus/embedded`, `bus/kafka`). When set, every posting also writes a
    /// `ledger.journal.posted` event (topic `ledger`) to the outbox in the posting's own
    /// transaction, and [`LedgerService::relay`] carries the outbox to this bus.
    pub bus: Option<String>,
}

/// The `ledger` service. One value serves every tenant: each call's client is bound to its
/// tenant, and the tenant's tables are created on its first call.
pub struct LedgerService {
    core: ServiceCore,
    /// Tenants whose books from before the hash chain this process has chained (or found
    /// chained already).
    chained: Installs,
}

/// One call's view of the books: the tenant's client and where its tables are.
pub(crate) struct Ledger<'a> {
    db: &'a Db,
    client: &'a dyn ProviderClient,
    outbox: Option<&'a Outbox>,
}

impl LedgerService {
    /// Refuses a db provider the service has no SQL for and a bus id that names no provider.
    pub fn new(settings: LedgerSettings) -> Result<Self, Problem> {
        Ok(LedgerService {
            core: ServiceCore::new(
                "ledger",
                env!("CARGO_PKG_VERSION"),
                SUMMARY,
                &settings.db,
                settings.bus,
            )?,
            chained: Installs::default(),
        })
    }

    /// The relay that publishes this service's outbox to its bus, one per tenant client;
    /// `None` without a bus. Run it beside the service (`Relay::run`).
    pub fn relay(&self) -> Option<Relay> {
        self.core.relay()
    }
}

#[async_trait]
impl Service for LedgerService {
    fn descriptor(&self) -> &ServiceDescriptor {
        &self.core.descriptor
    }

    async fn invoke(
        &self,
        client: &dyn ProviderClient,
        action: &str,
        p: Value,
    ) -> Result<Value, Problem> {
        self.core.install(client, schema::tables).await?;
        let ledger = Ledger {
            db: &self.core.db,
            client,
            outbox: self.core.outbox(),
        };
        self.chained
            .once(client.tenant(), || ledger.chain_existing())
            .await?;
        match action {
            "create_account" => ledger.create_account(params(p)?).await,
            "list_accounts" => ledger.list_accounts(params(p)?).await,
            "post_journal" => ledger.post_journal(params(p)?).await,
            "post_journals" => ledger.post_journals(params(p)?).await,
            "reverse_journal" => ledger.reverse_journal(params(p)?).await,
            "get_journal" => ledger.get_journal(params(p)?).await,
            "close_period" => ledger.close_period(params(p)?).await,
            "balance" => ledger.balance(params(p)?).await,
            "trial_balance" => ledger.trial_balance(params(p)?).await,
            "statement" => ledger.statement(params(p)?).await,
            "events" => ledger.events(params(p)?).await,
            "rebuild" => {
                params::<Empty>(p)?;
                ledger.rebuild().await
            }
            "verify" => {
                params::<Empty>(p)?;
                ledger.verify().await
            }
            other => Err(Problem::new(
                ErrorCode::ActionNotFound,
                format!("the ledger has no action {other:?}"),
            )),
        }
    }
}

/// `rebuild` and `verify` take no params.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_descriptor_is_the_contract_files() {
        let contract: Value = serde_json::from_str(include_str!(
            "../../../contracts/schemas/services/ledger.json"
        ))
        .unwrap();
        assert_eq!(contract["summary"], json!(SUMMARY));
        let service = LedgerService::new(LedgerSettings {
            db: "db/sqlite".into(),
            bus: None,
        })
        .unwrap();
        let names: Vec<&str> = service
            .descriptor()
            .actions
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "create_account",
                "list_accounts",
                "post_journal",
                "post_journals",
                "reverse_journal",
                "get_journal",
                "close_period",
                "balance",
                "trial_balance",
                "statement",
                "events",
                "rebuild",
                "verify"
            ]
        );
        for action in ["update_journal", "delete_journal", "delete_account"] {
            assert!(
                !names.contains(&action),
                "{action}: the ledger is append-only"
            );
        }
    }

    #[test]
    fn unsupported_engines_and_non_bus_ids_are_refused() {
        let settings = |db: &str, bus: Option<&str>| LedgerSettings {
            db: db.into(),
            bus: bus.map(str::to_owned),
        };
        for (db, bus) in [
            // Which SQL a db provider speaks is asked of it on the first call (ADR 28;
            // kit/tests/dialect.rs); here only an id naming no db provider is refused.
            ("cache/memory", None),
            ("db/sqlite", Some("cache/memory")),
            ("db/sqlite", Some("bus")),
        ] {
            assert!(
                LedgerService::new(settings(db, bus)).is_err(),
                "{db} {bus:?}"
            );
        }
        let with_bus = LedgerService::new(settings("db/postgres", Some("bus/kafka"))).unwrap();
        assert!(with_bus.relay().is_some());
    }
}
