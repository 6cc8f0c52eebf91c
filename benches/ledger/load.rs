//! The ledger side: a runtime hosting the ledger on db/postgres as `switchyard` hosts it (the
//! services' books pooled with row-level security, the engine's defaults), and clients posting
//! through it in process for a fixed time, single journals or batches.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_contracts::TenantId;
use switchyard_ledger::{LedgerService, LedgerSettings};
use switchyard_provider_db::{PostgresFactory, PostgresSettings, ServiceBooks};
use switchyard_runtime::{PlatformStore, Registry, Runtime};
use switchyard_spi::CallContext;

use crate::server::own_cpu_seconds;

/// Accounts of each side (assets debited, income credited) that uniform postings draw from.
pub const ACCOUNTS: u64 = 100;

/// Which accounts a posting moves.
#[derive(Clone, Copy)]
pub enum Accounts {
    /// A pair drawn at random from `ACCOUNTS` of each side.
    Uniform,
    /// Every posting of every client on the same pair.
    Hot,
}

/// What one call posts.
#[derive(Clone, Copy)]
pub enum Call {
    /// `post_journal`: one journal.
    Single,
    /// `post_journals`: this many journals in one transaction.
    Batch(usize),
}

pub struct Ledger {
    rt: Arc<Runtime>,
    ctx: CallContext,
    /// Keeps the platform store's directory while the runtime uses it.
    _dir: tempfile::TempDir,
}

impl Ledger {
    /// The ledger of tenant `bench` on the PostgreSQL at `url` (a superuser URL).
    pub async fn start(url: &str) -> Ledger {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let tenant = TenantId::parse("bench").unwrap();
        store.create_tenant(&tenant).await.ok();
        let postgres = PostgresFactory::new(PostgresSettings::new(url, "bench-app-password"));
        let books = postgres.books();
        let mut registry = Registry::default();
        registry
            .register(Arc::new(ServiceBooks::new(
                Arc::new(postgres),
                Arc::new(books),
            )))
            .unwrap();
        let ledger = LedgerService::new(LedgerSettings {
            db: "db/postgres".into(),
            bus: None,
        })
        .unwrap();
        let rt = Arc::new(
            Runtime::new(registry, store, Default::default(), Default::default())
                .with_services(vec![Arc::new(ledger)])
                .unwrap(),
        );
        let ctx = CallContext {
            tenant,
            request_id: "bench".into(),
            subject: Some("bench".into()),
            service: None,
        };
        Ledger { rt, ctx, _dir: dir }
    }

    pub async fn call(&self, action: &str, params: Value) -> Result<Value, String> {
        self.rt
            .invoke_service(&self.ctx, "ledger", action, params)
            .await
            .map_err(|p| format!("ledger/{action}: {} {}", p.code, p.detail))
    }

    /// The uniform accounts of both sides and the hot pair.
    pub async fn create_accounts(&self) {
        let mut accounts: Vec<(String, &str)> = (0..ACCOUNTS)
            .flat_map(|n| {
                [
                    (format!("cash-{n}"), "asset"),
                    (format!("sales-{n}"), "income"),
                ]
            })
            .collect();
        accounts.push(("cash-hot".into(), "asset"));
        accounts.push(("sales-hot".into(), "income"));
        for (code, kind) in accounts {
            let account = json!({"code": code, "name": code, "type": kind, "currency": "EUR"});
            self.call("create_account", account).await.unwrap();
        }
    }

    /// Posts from `clients` clients until `secs` have passed, showing progress each second.
    /// Journal ids start with `phase`, so phases never collide.
    pub async fn run(
        self: &Arc<Self>,
        phase: &str,
        accounts: Accounts,
        call: Call,
        clients: usize,
        secs: u64,
    ) -> Result<Measured, String> {
        let posted = Arc::new(AtomicU64::new(0));
        let cpu_before = own_cpu_seconds();
        let deadline = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let mut posters = Vec::new();
        for client in 0..clients {
            let (ledger, posted, phase) = (self.clone(), posted.clone(), phase.to_owned());
            posters.push(tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let prefix = format!("{phase}-{client}-{n}");
                    let journals = ledger.post(&prefix, accounts, call).await?;
                    posted.fetch_add(journals, Ordering::Relaxed);
                    n += 1;
                }
                Ok::<_, String>(())
            }));
        }
        let progress = tokio::spawn(show_progress(phase.to_owned(), posted.clone(), secs));
        let mut outcome = Ok(());
        for poster in posters {
            let done = poster.await.unwrap();
            outcome = outcome.and(done);
        }
        progress.abort();
        let elapsed = started.elapsed().as_secs_f64();
        let journals = posted.load(Ordering::Relaxed);
        outcome?;
        let cpu_us = (own_cpu_seconds() - cpu_before) * 1e6 / journals.max(1) as f64;
        eprintln!(
            "{phase}: {journals} journals in {elapsed:.1} s, {:.0}/s, this process's CPU {cpu_us:.0} µs a journal",
            journals as f64 / elapsed
        );
        Ok(Measured {
            per_sec: journals as f64 / elapsed,
            journals,
            cpu_us,
        })
    }

    /// One call: one journal, or a batch of them; the number of journals it posted.
    pub async fn post(&self, prefix: &str, accounts: Accounts, call: Call) -> Result<u64, String> {
        match call {
            Call::Single => {
                self.call("post_journal", journal(prefix, accounts, 0))
                    .await?;
                Ok(1)
            }
            Call::Batch(size) => {
                let journals: Vec<Value> =
                    (0..size).map(|i| journal(prefix, accounts, i)).collect();
                self.call("post_journals", json!({ "journals": journals }))
                    .await?;
                Ok(size as u64)
            }
        }
    }
}

/// A two-line journal of 10.00 EUR; `prefix` and `item` make its id.
fn journal(prefix: &str, accounts: Accounts, item: usize) -> Value {
    let id = format!("{prefix}-{item}");
    let (cash, sales) = match accounts {
        Accounts::Hot => ("cash-hot".to_owned(), "sales-hot".to_owned()),
        Accounts::Uniform => {
            // std's randomly keyed hasher: a fresh, evenly spread draw per journal id.
            let draw = |side: &str| std::hash::RandomState::new().hash_one((side, &id)) % ACCOUNTS;
            (
                format!("cash-{}", draw("cash")),
                format!("sales-{}", draw("sales")),
            )
        }
    };
    json!({
        "journal_id": id,
        "posting_time": "2026-01-15T10:00:00Z",
        "lines": [
            {"account": cash, "debit": "10.00", "currency": "EUR"},
            {"account": sales, "credit": "10.00", "currency": "EUR"},
        ],
    })
}

/// What a phase measured.
pub struct Measured {
    pub per_sec: f64,
    pub journals: u64,
    /// CPU time of this whole process (service, runtime, provider, sqlx; and the clients,
    /// which are cheap) per journal: on a machine it shares with PostgreSQL, what the ledger's
    /// own side costs.
    pub cpu_us: f64,
}

async fn show_progress(phase: String, posted: Arc<AtomicU64>, secs: u64) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let journals = posted.load(Ordering::Relaxed);
        eprintln!(
            "{phase}: {elapsed:.0}/{secs} s, {journals} journals, {:.0}/s",
            journals as f64 / elapsed
        );
    }
}
