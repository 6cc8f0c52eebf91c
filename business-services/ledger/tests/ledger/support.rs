//! The ledger service on the shared in-process platform of `switchyard_service_kit::testkit`,
//! with the ledger's own helpers on top.

use std::ops::Deref;

use serde_json::{Value, json};
use switchyard_contracts::Problem;
use switchyard_ledger::{LedgerService, LedgerSettings};
use switchyard_service_kit::testkit::{self, Caller};

pub use testkit::{BUS, Engine};

pub struct Platform(testkit::Platform<LedgerService>);

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
        Platform(
            testkit::Platform::start(engine, |db| {
                LedgerService::new(LedgerSettings {
                    db: db.into(),
                    bus: bus.map(str::to_owned),
                })
                .unwrap()
            })
            .await,
        )
    }

    /// The ledger as `tenant` sees it.
    pub fn books(&self, tenant: &str) -> Books {
        Books(self.0.tenant(tenant))
    }
}

impl Deref for Platform {
    type Target = testkit::Platform<LedgerService>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// One tenant's ledger, checked against the contract on every call.
pub struct Books(Caller<LedgerService>);

impl Deref for Books {
    type Target = Caller<LedgerService>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Books {
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
