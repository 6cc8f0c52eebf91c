//! Parallel posters on one hot account: the balance projection is incremented by the
//! database, so no update is lost, and journal ids make retries and duplicate submissions
//! harmless, on both engines.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::{Books, Engine, Platform, journal};

const POSTERS: usize = 16;
const JOURNALS_EACH: usize = 25;
const TIME: &str = "2024-05-01T08:00:00Z";

on_both_engines!(
    sixteen_posters_on_one_hot_account_lose_no_update,
    sixteen_posters_racing_the_same_journals_have_one_effect_each,
    overlapping_batches_racing_have_one_effect_per_journal,
);

/// A chart with one hot cash account and four sales accounts.
async fn chart(books: &Books) {
    books.account("1000", "asset", "EUR").await;
    for n in 0..4 {
        books.account(&format!("400{n}"), "income", "EUR").await;
    }
}

/// Posts `params`, retrying what the platform says is worth retrying (a busy database, a
/// pool without a free connection) with the same journal id, as a client should.
async fn post_retrying(books: &Books, params: Value) -> Value {
    call_retrying(books, "post_journal", params).await
}

async fn call_retrying(books: &Books, action: &str, params: Value) -> Value {
    let mut attempt = 0;
    loop {
        match books.call(action, params.clone()).await {
            Ok(answer) => return answer,
            Err(problem) if problem.retryable && attempt < 100 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * attempt.min(10))).await;
            }
            Err(problem) => panic!("posting {params} failed: {problem:?}"),
        }
    }
}

/// Journal `k` (1-based) of the run: `k × 0.0101` EUR from a sales account to cash.
fn hot_journal(id: &str, k: usize) -> Value {
    let units = k * 101;
    let amount = format!("{}.{:04}", units / 10_000, units % 10_000);
    let sales = format!("400{}", k % 4);
    journal(
        id,
        TIME,
        &[
            ("1000", "debit", &amount, "EUR"),
            (&sales, "credit", &amount, "EUR"),
        ],
    )
}

/// Every journal id on the hot account's statement, with how often it appears.
async fn statement_ids(books: &Books) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    let mut params = json!({"account": "1000", "limit": 500});
    loop {
        let page = books.ok("statement", params.clone()).await;
        for entry in page["entries"].as_array().unwrap() {
            *ids.entry(entry["journal_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => params["cursor"] = json!(cursor),
            None => return ids,
        }
    }
}

async fn sixteen_posters_on_one_hot_account_lose_no_update(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    let mut posters = JoinSet::new();
    for poster in 0..POSTERS {
        let books = platform.books("acme");
        posters.spawn(async move {
            for j in 0..JOURNALS_EACH {
                let k = poster * JOURNALS_EACH + j + 1;
                post_retrying(&books, hot_journal(&format!("P{poster}-{j}"), k)).await;
            }
        });
    }
    // verify, run while the books grow, sees postings it catches half-read (a head read
    // before their links, a lane begun after) as whole, never as tampering.
    while !posters.is_empty() {
        let audit = books.ok("verify", json!({})).await;
        assert_eq!(audit["ok"], true, "{audit}");
        while let Some(done) = posters.try_join_next() {
            done.unwrap();
        }
    }

    let n = POSTERS * JOURNALS_EACH;
    // Σ k × 101 units for k = 1..=400: 810.0200 EUR, to the last ten-thousandth.
    let expected = format!(
        "{}.{:04}",
        (101 * n * (n + 1) / 2) / 10_000,
        (101 * n * (n + 1) / 2) % 10_000
    );
    assert_eq!(expected, "810.0200");
    assert_eq!(
        books.balance("1000").await,
        (expected.clone(), "0.0000".into(), expected.clone())
    );
    let tb = books.trial_balance().await;
    assert_eq!(tb["balanced"], true);
    assert_eq!(tb["currencies"][0]["debit_total"], json!(expected));
    let ids = statement_ids(&books).await;
    assert_eq!(ids.len(), n, "every journal is on the statement");
    assert!(ids.values().all(|&count| count == 1), "no journal twice");
    assert_eq!(books.all_events().await.len(), n);
    let rebuilt = books.ok("rebuild", json!({})).await;
    assert_eq!(rebuilt["equal"], true, "{rebuilt}");
    let verified = books.ok("verify", json!({})).await;
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["journals"], n, "{verified}");
}

async fn sixteen_posters_racing_the_same_journals_have_one_effect_each(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    let mut posters = JoinSet::new();
    for _ in 0..POSTERS {
        let books = platform.books("acme");
        posters.spawn(async move {
            let mut first_effects = 0;
            for j in 0..JOURNALS_EACH {
                let answer = post_retrying(&books, hot_journal(&format!("D-{j}"), j + 1)).await;
                if answer["replayed"] == json!(false) {
                    first_effects += 1;
                }
            }
            first_effects
        });
    }
    let mut first_effects = 0;
    while let Some(done) = posters.join_next().await {
        first_effects += done.unwrap();
    }
    assert_eq!(
        first_effects, JOURNALS_EACH,
        "exactly one submission of each journal took effect; the rest were replays"
    );
    // Σ k × 101 units for k = 1..=25: 3.2825 EUR.
    assert_eq!(
        books.balance("1000").await,
        ("3.2825".into(), "0.0000".into(), "3.2825".into())
    );
    let ids = statement_ids(&books).await;
    assert_eq!(ids.len(), JOURNALS_EACH);
    assert!(ids.values().all(|&count| count == 1));
    assert_eq!(books.all_events().await.len(), JOURNALS_EACH);
    assert_eq!(books.ok("rebuild", json!({})).await["equal"], true);
    assert_eq!(books.ok("verify", json!({})).await["ok"], true);
}

/// Eight posters send batches of ten; each batch shares five journals with the next poster's,
/// and every poster sends its batch three times.
async fn overlapping_batches_racing_have_one_effect_per_journal(engine: Engine) {
    const BATCHERS: usize = 8;
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    let mut batchers = JoinSet::new();
    for b in 0..BATCHERS {
        let books = platform.books("acme");
        batchers.spawn(async move {
            let batch: Vec<Value> = (b * 5..b * 5 + 10)
                .map(|k| hot_journal(&format!("B-{k}"), k + 1))
                .collect();
            let mut first_effects = 0;
            for _ in 0..3 {
                let answer =
                    call_retrying(&books, "post_journals", json!({"journals": batch})).await;
                first_effects += answer["posted"].as_u64().unwrap();
            }
            first_effects
        });
    }
    let mut first_effects = 0;
    while let Some(done) = batchers.join_next().await {
        first_effects += done.unwrap();
    }
    let n = BATCHERS * 5 + 5;
    assert_eq!(first_effects, n as u64, "each journal took effect once");
    let ids = statement_ids(&books).await;
    assert_eq!(ids.len(), n);
    assert!(ids.values().all(|&count| count == 1));
    // Σ k × 101 units for k = 1..=45: 10.4535 EUR.
    assert_eq!(books.balance("1000").await.0, "10.4535");
    let verified = books.ok("verify", json!({})).await;
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["journals"], n, "{verified}");
}
