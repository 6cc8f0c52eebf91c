//! The ledger's invariants under generated histories, on both engines: whatever sequence of
//! postings, refusals, retries and reversals a client makes,
//! - the trial balance nets to zero in every currency,
//! - every account's balance is exactly what the accepted journals add up to,
//! - an unbalanced journal is refused and changes nothing,
//! - a journal posted twice has one effect,
//! - a reversal moves the balances it touches back by exactly the original's effect,
//! - replaying the event store gives the live projection.
//!
//! Each case runs in a tenant of its own on one platform (one database) per engine.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use switchyard_contracts::ErrorCode;

use crate::support::{Books, Engine, Platform, journal};

/// The accounts of every case: `(code, type, currency)`.
const ACCOUNTS: [(&str, &str, &str); 6] = [
    ("1000", "asset", "EUR"),
    ("2000", "liability", "EUR"),
    ("4000", "income", "EUR"),
    ("5000", "expense", "EUR"),
    ("1100", "asset", "USD"),
    ("4100", "income", "USD"),
];

/// Accounts by currency, as indexes into [`ACCOUNTS`].
const EUR: [usize; 4] = [0, 1, 2, 3];
const USD: [usize; 2] = [4, 5];

/// One leg: `units` (scale 4) moved from a credited to a debited account of one currency.
#[derive(Debug, Clone)]
struct Leg {
    debit: usize,
    credit: usize,
    units: i64,
}

#[derive(Debug, Clone)]
enum Step {
    /// A balanced journal of 1-4 legs (2-8 lines), possibly in both currencies.
    Post(Vec<Leg>),
    /// The same legs with one line's amount raised by `extra` units.
    Unbalanced(Vec<Leg>, i64),
    /// Sends the `n`th accepted posting again (modulo how many there are).
    Retry(usize),
    /// Reverses the `n`th accepted posting (modulo); a second reversal must be refused.
    Reverse(usize),
}

fn leg() -> impl Strategy<Value = Leg> {
    let accounts = prop_oneof![Just(&EUR[..]), Just(&USD[..])];
    (
        accounts,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        1_i64..=10_000_000_000,
    )
        .prop_map(|(accounts, a, b, units)| Leg {
            debit: *a.get(accounts),
            credit: *b.get(accounts),
            units,
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec(leg(), 1..=4).prop_map(Step::Post),
        1 => (prop::collection::vec(leg(), 1..=4), 1_i64..=1_000_000).prop_map(|(legs, extra)| Step::Unbalanced(legs, extra)),
        1 => any::<usize>().prop_map(Step::Retry),
        1 => any::<usize>().prop_map(Step::Reverse),
    ]
}

fn amount(units: i64) -> String {
    format!("{}.{:04}", units / 10_000, units % 10_000)
}

/// The lines of `legs`, debit then credit per leg, and the effect on each account's
/// `(debit, credit)` totals.
fn lines(legs: &[Leg]) -> (Vec<(String, &'static str, String, String)>, Effect) {
    let mut lines = Vec::new();
    let mut effect = Effect::new();
    for leg in legs {
        for (account, side) in [(leg.debit, "debit"), (leg.credit, "credit")] {
            let (code, _, currency) = ACCOUNTS[account];
            lines.push((code.into(), side, amount(leg.units), currency.into()));
            let totals = effect.entry(code).or_default();
            if side == "debit" {
                totals.0 += i128::from(leg.units);
            } else {
                totals.1 += i128::from(leg.units);
            }
        }
    }
    (lines, effect)
}

type Effect = BTreeMap<&'static str, (i128, i128)>;

fn borrowed<'a>(
    lines: &'a [(String, &'static str, String, String)],
) -> Vec<(&'a str, &'a str, &'a str, &'a str)> {
    lines
        .iter()
        .map(|(a, s, m, c)| (a.as_str(), *s, m.as_str(), c.as_str()))
        .collect()
}

/// Every account's `(debit_total, credit_total)` as the ledger reports it, in scaled units.
async fn totals(books: &Books) -> Effect {
    let mut totals = Effect::new();
    for (code, _, _) in ACCOUNTS {
        let b = books.ok("balance", json!({"account": code})).await;
        let units = |field: &str| -> i128 {
            let text = b[field].as_str().unwrap().replace('.', "");
            text.parse().unwrap()
        };
        totals.insert(code, (units("debit_total"), units("credit_total")));
    }
    totals
}

fn check_trial_balance(tb: &Value) -> Result<(), TestCaseError> {
    prop_assert_eq!(&tb["balanced"], &json!(true));
    for currency in tb["currencies"].as_array().unwrap() {
        prop_assert_eq!(
            &currency["debit_total"],
            &currency["credit_total"],
            "{}",
            tb
        );
    }
    Ok(())
}

/// Runs one generated history in a fresh tenant and checks every invariant along the way.
async fn history(books: &Books, steps: Vec<Step>) -> Result<(), TestCaseError> {
    for (code, account_type, currency) in ACCOUNTS {
        books.account(code, account_type, currency).await;
    }
    // What the accepted journals add up to, per account.
    let mut expected = Effect::new();
    // Accepted postings: id, params, effect, reversed already.
    let mut posted: Vec<(String, Value, Effect, bool)> = Vec::new();
    let mut events = 0;
    for (n, step) in steps.into_iter().enumerate() {
        let time = format!("2024-03-{:02}T12:00:00Z", 1 + n % 28);
        match step {
            Step::Post(legs) => {
                let (lines, effect) = lines(&legs);
                let id = format!("J-{n}");
                let params = journal(&id, &time, &borrowed(&lines));
                let answer = books.ok("post_journal", params.clone()).await;
                prop_assert_eq!(&answer["replayed"], &json!(false));
                for (code, (d, c)) in &effect {
                    let e = expected.entry(code).or_default();
                    e.0 += d;
                    e.1 += c;
                }
                posted.push((id, params, effect, false));
                events += 1;
            }
            Step::Unbalanced(legs, extra) => {
                let (mut lines, _) = lines(&legs);
                let units: i64 = lines[0].2.replace('.', "").parse().unwrap();
                lines[0].2 = amount(units + extra);
                let before = books.trial_balance().await;
                let problem = books
                    .refused(
                        "post_journal",
                        journal(&format!("U-{n}"), &time, &borrowed(&lines)),
                    )
                    .await;
                prop_assert_eq!(problem.code, ErrorCode::JournalUnbalanced);
                prop_assert_eq!(books.trial_balance().await, before);
            }
            Step::Retry(_) if posted.is_empty() => {}
            Step::Retry(which) => {
                let (_, params, _, _) = &posted[which % posted.len()];
                let answer = books.ok("post_journal", params.clone()).await;
                prop_assert_eq!(&answer["replayed"], &json!(true));
            }
            Step::Reverse(_) if posted.is_empty() => {}
            Step::Reverse(which) => {
                let index = which % posted.len();
                let (id, _, effect, reversed) = posted[index].clone();
                let before = totals(books).await;
                let params = json!({"journal_id": id, "reversal_id": format!("R-{n}"), "posting_time": time});
                if reversed {
                    let problem = books.refused("reverse_journal", params).await;
                    prop_assert_eq!(problem.code, ErrorCode::Conflict);
                    prop_assert_eq!(totals(books).await, before);
                } else {
                    books.ok("reverse_journal", params).await;
                    posted[index].3 = true;
                    events += 2;
                    // Each touched account's balance moved back by exactly the original's effect.
                    let after = totals(books).await;
                    for (code, (d, c)) in &effect {
                        let (b, a) = (before[code], after[code]);
                        prop_assert_eq!((a.0 - a.1) - (b.0 - b.1), c - d, "{}", code);
                        let e = expected.entry(code).or_default();
                        e.0 += c;
                        e.1 += d;
                    }
                }
            }
        }
        check_trial_balance(&books.trial_balance().await)?;
    }
    let actual = totals(books).await;
    for (code, _, _) in ACCOUNTS {
        prop_assert_eq!(
            actual[code],
            expected.get(code).copied().unwrap_or_default(),
            "{}",
            code
        );
    }
    prop_assert_eq!(books.all_events().await.len(), events);
    let rebuilt = books.ok("rebuild", json!({})).await;
    prop_assert_eq!(&rebuilt["equal"], &json!(true), "{}", rebuilt);
    prop_assert_eq!(&rebuilt["events"], &json!(events));
    Ok(())
}

fn run(engine: Engine, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let platform = runtime.block_on(Platform::new(engine));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let runs = Cell::new(0);
    let started = Instant::now();
    let outcome = runner.run(&prop::collection::vec(step(), 1..=12), |steps| {
        runs.set(runs.get() + 1);
        let books = platform.books(&format!("case-{}", runs.get()));
        runtime.block_on(history(&books, steps))
    });
    eprintln!(
        "{engine:?}: {} runs of {cases} generated histories (more when shrinking) in {:.1?}",
        runs.get(),
        started.elapsed()
    );
    // The pools close on the runtime they were made on.
    runtime.block_on(async move { drop(platform) });
    outcome.unwrap();
}

#[test]
fn generated_histories_keep_every_invariant_on_sqlite() {
    run(Engine::Sqlite, 64);
}

#[test]
fn generated_histories_keep_every_invariant_on_postgres() {
    run(Engine::Postgres, 32);
}
