//! What a user of the ledger can rely on, one scenario per rule, on both engines.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_client::{ProviderClient, Service};
use switchyard_contracts::{ActionValidators, ErrorCode, TenantId};
use switchyard_ledger::{LedgerService, LedgerSettings};
use switchyard_outbox::Outbox;
use switchyard_provider_db::postgres::books_schema;
use switchyard_runtime::RuntimeClient;
use switchyard_service_kit::testkit::{self, Caller};

use crate::support::{BUS, Books, Engine, Platform, journal};

const T1: &str = "2024-01-10T09:00:00Z";
const T2: &str = "2024-01-20T09:00:00Z";
const T3: &str = "2024-02-05T09:00:00Z";

/// A small chart: EUR cash, payables, equity, sales, rent; USD cash and sales.
async fn chart(books: &Books) {
    for (code, account_type, currency) in [
        ("1000", "asset", "EUR"),
        ("2000", "liability", "EUR"),
        ("3000", "equity", "EUR"),
        ("4000", "income", "EUR"),
        ("5000", "expense", "EUR"),
        ("1100", "asset", "USD"),
        ("4100", "income", "USD"),
    ] {
        books.account(code, account_type, currency).await;
    }
}

async fn event_count(books: &Books) -> usize {
    books.all_events().await.len()
}

on_both_engines!(
    the_chart_of_accounts_is_append_only_and_knows_normal_sides,
    a_posted_journal_reads_back_as_answered_from_every_view,
    the_same_journal_twice_has_one_effect_and_another_under_its_id_is_a_conflict,
    refused_journals_change_nothing,
    closed_periods_refuse_postings_at_or_before_their_end,
    a_journal_is_reversed_once_and_its_reversal_restores_the_balances,
    balances_as_of_a_time_and_statements_page_through_entries,
    one_tenant_sees_nothing_of_another,
    postings_and_their_events_commit_together_through_the_outbox,
    rebuild_replays_the_events_and_notices_a_tampered_projection,
    verify_names_the_first_journal_altered_or_deleted_behind_the_ledgers_back,
    books_from_before_the_chain_are_chained_once_by_the_next_process,
    a_batch_commits_together_and_each_of_its_journals_is_idempotent,
);

async fn the_chart_of_accounts_is_append_only_and_knows_normal_sides(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    let parent = books.account("1000", "asset", "EUR").await;
    assert_eq!(parent["normal_side"], "debit");
    assert!(parent.get("parent").is_none());
    let child = books
        .ok(
            "create_account",
            json!({"code": "1000.10", "name": "Petty cash", "type": "asset", "currency": "EUR", "parent": "1000"}),
        )
        .await;
    assert_eq!(child["parent"], "1000");
    for (code, account_type, side) in [
        ("2000", "liability", "credit"),
        ("3000", "equity", "credit"),
        ("4000", "income", "credit"),
        ("5000", "expense", "debit"),
    ] {
        let account = books.account(code, account_type, "EUR").await;
        assert_eq!(account["normal_side"], side, "{account_type}");
        assert_eq!(account["type"], account_type);
    }

    let duplicate = books
        .refused(
            "create_account",
            json!({"code": "1000", "name": "again", "type": "expense", "currency": "USD"}),
        )
        .await;
    assert_eq!(duplicate.code, ErrorCode::Conflict);
    let orphan = books
        .refused(
            "create_account",
            json!({"code": "6000", "name": "x", "type": "expense", "currency": "EUR", "parent": "9999"}),
        )
        .await;
    assert_eq!(orphan.code, ErrorCode::ResourceNotFound);
    assert_eq!(orphan.errors[0].pointer, "/parent");

    // Pages of two, in code order, until next_after is null.
    let mut codes = Vec::new();
    let mut params = json!({"limit": 2});
    loop {
        let page = books.ok("list_accounts", params.clone()).await;
        codes.extend(
            page["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["code"].as_str().unwrap().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(next) => params["after"] = json!(next),
            None => break,
        }
    }
    assert_eq!(codes, ["1000", "1000.10", "2000", "3000", "4000", "5000"]);
    let first = books.ok("list_accounts", json!({})).await;
    assert_eq!(first["accounts"][0]["name"], "account 1000");
}

async fn a_posted_journal_reads_back_as_answered_from_every_view(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    let mut params = journal(
        "INV-1",
        "2024-01-10T10:00:00+01:00",
        &[
            ("1000", "debit", "119.99", "EUR"),
            ("4000", "credit", "100.8300", "EUR"),
            ("2000", "credit", "19.16", "EUR"),
        ],
    );
    params["memo"] = json!("invoice 1");
    params["external_ref"] = json!("crm:order/77");
    params["lines"][0]["memo"] = json!("card payment");
    let posted = books.ok("post_journal", params).await;
    assert_eq!(posted["replayed"], false);
    assert_eq!(posted["posting_time"], "2024-01-10T09:00:00.000000Z");
    assert_eq!(posted["lines"][0]["debit"], "119.9900");
    assert_eq!(posted["lines"][0]["memo"], "card payment");
    assert_eq!(posted["lines"][1]["credit"], "100.8300");
    assert_eq!(posted["lines"][2]["line"], 3);
    assert!(posted.get("reverses").is_none());

    let mut stored = books
        .ok("get_journal", json!({"journal_id": "INV-1"}))
        .await;
    assert_eq!(stored["reversed_by"], Value::Null);
    stored.as_object_mut().unwrap().remove("reversed_by");
    let mut expected = posted.clone();
    expected.as_object_mut().unwrap().remove("replayed");
    assert_eq!(stored, expected);

    assert_eq!(
        books.balance("1000").await,
        ("119.9900".into(), "0.0000".into(), "119.9900".into())
    );
    assert_eq!(
        books.balance("4000").await,
        ("0.0000".into(), "100.8300".into(), "100.8300".into())
    );
    let usd = books.ok("balance", json!({"account": "1100"})).await;
    assert_eq!(usd["balance"], "0.0000");
    let wrong_currency = books
        .refused("balance", json!({"account": "1000", "currency": "USD"}))
        .await;
    assert_eq!(wrong_currency.code, ErrorCode::ParamsUnprocessable);

    let tb = books.trial_balance().await;
    assert_eq!(tb["balanced"], true);
    assert_eq!(
        tb["currencies"],
        json!([{"currency": "EUR", "debit_total": "119.9900", "credit_total": "119.9900", "balanced": true}])
    );
    assert_eq!(tb["accounts"].as_array().unwrap().len(), 3);

    let events = books.all_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["stream"], "journal-INV-1");
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[0]["event_type"], "journal.posted");
    assert_eq!(events[0]["payload"], expected);
    let stream = books.ok("events", json!({"stream": "journal-INV-1"})).await;
    assert_eq!(stream["events"], json!(events));
    assert_eq!(stream["next_after"], Value::Null);

    let statement = books.ok("statement", json!({"account": "1000"})).await;
    assert_eq!(statement["currency"], "EUR");
    assert_eq!(
        statement["entries"],
        json!([{"journal_id": "INV-1", "line": 1, "posting_time": "2024-01-10T09:00:00.000000Z",
                "debit": "119.9900", "memo": "card payment"}])
    );
    let rebuilt = books.ok("rebuild", json!({})).await;
    assert_eq!(
        rebuilt,
        json!({"events": 1, "equal": true, "differences": []})
    );
}

async fn the_same_journal_twice_has_one_effect_and_another_under_its_id_is_a_conflict(
    engine: Engine,
) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    let lines = [
        ("1000", "debit", "100", "EUR"),
        ("4000", "credit", "100", "EUR"),
    ];
    let first = books.post("J-1", T1, &lines).await.unwrap();
    // The same content, spelled differently (amount digits, time offset): a replay.
    let again = books
        .post(
            "J-1",
            "2024-01-10T10:00:00+01:00",
            &[
                ("1000", "debit", "100.00", "EUR"),
                ("4000", "credit", "100.0000", "EUR"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(again["replayed"], true);
    let mut original = first.clone();
    original["replayed"] = json!(true);
    assert_eq!(again, original, "the replay answers the original journal");
    assert_eq!(books.balance("1000").await.0, "100.0000");
    assert_eq!(event_count(&books).await, 1);

    for other in [
        journal(
            "J-1",
            T1,
            &[
                ("1000", "debit", "101", "EUR"),
                ("4000", "credit", "101", "EUR"),
            ],
        ),
        journal("J-1", T2, &lines),
        journal(
            "J-1",
            T1,
            &[
                ("5000", "debit", "100", "EUR"),
                ("4000", "credit", "100", "EUR"),
            ],
        ),
        {
            let mut with_memo = journal("J-1", T1, &lines);
            with_memo["memo"] = json!("a note");
            with_memo
        },
    ] {
        let problem = books.refused("post_journal", other.clone()).await;
        assert_eq!(problem.code, ErrorCode::Conflict, "{other}");
        assert!(
            problem.detail.contains("other content"),
            "{}",
            problem.detail
        );
    }
    assert_eq!(books.balance("1000").await.0, "100.0000");
    assert_eq!(books.balance("5000").await.0, "0.0000");
    assert_eq!(event_count(&books).await, 1);
}

async fn refused_journals_change_nothing(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    books
        .post(
            "J-0",
            T1,
            &[
                ("1000", "debit", "5", "EUR"),
                ("3000", "credit", "5", "EUR"),
            ],
        )
        .await
        .unwrap();
    let before = (books.trial_balance().await, books.all_events().await);

    let unbalanced = books
        .refused(
            "post_journal",
            journal(
                "J-1",
                T2,
                &[
                    ("1000", "debit", "100", "EUR"),
                    ("4000", "credit", "99.99", "EUR"),
                    ("1100", "debit", "10", "USD"),
                    ("4100", "credit", "10", "USD"),
                    ("1100", "credit", "0.5", "USD"),
                ],
            ),
        )
        .await;
    assert_eq!(unbalanced.code, ErrorCode::JournalUnbalanced);
    let off: Vec<&str> = unbalanced
        .errors
        .iter()
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(
        off,
        [
            "EUR: debits 100.0000 and credits 99.9900 differ by 0.0100",
            "USD: debits 10.0000 and credits 10.5000 differ by -0.5000"
        ]
    );

    let mismatch = books
        .refused(
            "post_journal",
            journal(
                "J-1",
                T2,
                &[
                    ("1000", "debit", "7", "USD"),
                    ("4100", "credit", "7", "USD"),
                ],
            ),
        )
        .await;
    assert_eq!(mismatch.code, ErrorCode::ParamsUnprocessable);
    assert_eq!(mismatch.errors.len(), 1);
    assert_eq!(mismatch.errors[0].pointer, "/lines/0/currency");
    assert!(mismatch.errors[0].detail.contains("kept in EUR"));

    let unknown = books
        .refused(
            "post_journal",
            journal(
                "J-1",
                T2,
                &[
                    ("1000", "debit", "7", "EUR"),
                    ("4999", "credit", "7", "EUR"),
                ],
            ),
        )
        .await;
    assert_eq!(unknown.code, ErrorCode::ResourceNotFound);
    assert_eq!(unknown.errors[0].pointer, "/lines/1/account");

    // Zero amounts are refused by the published schema itself (ADR 23), before the ledger.
    let zero = books.schema_refuses(
        "post_journal",
        &journal(
            "J-1",
            T2,
            &[
                ("1000", "debit", "0.00", "EUR"),
                ("4000", "credit", "0", "EUR"),
            ],
        ),
    );
    let pointers: Vec<&str> = zero.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/lines/0/debit", "/lines/1/credit"]);

    let after = (books.trial_balance().await, books.all_events().await);
    assert_eq!(after, before, "refusals left a trace");
    let missing = books
        .refused("get_journal", json!({"journal_id": "J-1"}))
        .await;
    assert_eq!(missing.code, ErrorCode::ResourceNotFound);
    // The id was never taken: the corrected journal posts.
    books
        .post(
            "J-1",
            T2,
            &[
                ("1000", "debit", "7", "EUR"),
                ("4000", "credit", "7", "EUR"),
            ],
        )
        .await
        .unwrap();
}

async fn closed_periods_refuse_postings_at_or_before_their_end(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    let lines = [
        ("1000", "debit", "10", "EUR"),
        ("4000", "credit", "10", "EUR"),
    ];
    books.post("JAN-1", T1, &lines).await.unwrap();
    let closed = books
        .ok(
            "close_period",
            json!({"through": "2024-01-31T23:59:59.999999Z"}),
        )
        .await;
    assert_eq!(closed["closed_through"], "2024-01-31T23:59:59.999999Z");

    for (id, time) in [
        ("JAN-2", "2024-01-31T23:59:59.999999Z"),
        ("JAN-3", T2),
        ("JAN-4", "2024-02-01T00:59:59+01:00"),
    ] {
        let problem = books
            .refused("post_journal", journal(id, time, &lines))
            .await;
        assert_eq!(problem.code, ErrorCode::PeriodClosed, "{time}");
    }
    books
        .post("FEB-1", "2024-02-01T00:00:00Z", &lines)
        .await
        .unwrap();
    // A retry of a journal posted before the close is still answered as the original.
    let replay = books.post("JAN-1", T1, &lines).await.unwrap();
    assert_eq!(replay["replayed"], true);
    // Reversing into the closed period is refused; into the open one it is fine.
    let back_dated = books
        .refused(
            "reverse_journal",
            json!({"journal_id": "JAN-1", "reversal_id": "JAN-1-R", "posting_time": T2}),
        )
        .await;
    assert_eq!(back_dated.code, ErrorCode::PeriodClosed);
    books
        .ok(
            "reverse_journal",
            json!({"journal_id": "JAN-1", "reversal_id": "JAN-1-R", "posting_time": T3}),
        )
        .await;

    let backwards = books
        .refused("close_period", json!({"through": "2024-01-15T00:00:00Z"}))
        .await;
    assert_eq!(backwards.code, ErrorCode::Conflict);
    books
        .ok(
            "close_period",
            json!({"through": "2024-01-31T23:59:59.999999Z"}),
        )
        .await;
    books
        .ok("close_period", json!({"through": "2024-02-29T23:59:59Z"}))
        .await;
    let problem = books
        .refused("post_journal", journal("FEB-2", T3, &lines))
        .await;
    assert_eq!(problem.code, ErrorCode::PeriodClosed);
    assert_eq!(books.balance("1000").await.2, "10.0000");
}

async fn a_journal_is_reversed_once_and_its_reversal_restores_the_balances(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    books
        .post(
            "J-0",
            T1,
            &[
                ("1000", "debit", "50", "EUR"),
                ("3000", "credit", "50", "EUR"),
            ],
        )
        .await
        .unwrap();
    let before = (
        books.balance("1000").await,
        books.balance("5000").await,
        books.balance("2000").await,
    );
    let original = books
        .post(
            "J-1",
            T1,
            &[
                ("5000", "debit", "30.25", "EUR"),
                ("1000", "credit", "20", "EUR"),
                ("2000", "credit", "10.25", "EUR"),
            ],
        )
        .await
        .unwrap();
    let reversal = books
        .ok(
            "reverse_journal",
            json!({"journal_id": "J-1", "reversal_id": "J-1-R", "posting_time": T2, "memo": "wrong supplier"}),
        )
        .await;
    assert_eq!(reversal["replayed"], false);
    assert_eq!(reversal["reverses"], "J-1");
    assert_eq!(reversal["memo"], "wrong supplier");
    assert_eq!(reversal["lines"][0]["credit"], "30.2500");
    assert_eq!(reversal["lines"][1]["debit"], "20.0000");
    assert_eq!(
        reversal["lines"][2]["debit"],
        original["lines"][2]["credit"]
    );
    let after = (
        books.balance("1000").await,
        books.balance("5000").await,
        books.balance("2000").await,
    );
    // Totals grew on both sides; the balances are back where they were.
    assert_eq!(after.0.2, before.0.2);
    assert_eq!(after.1.2, before.1.2);
    assert_eq!(after.2.2, before.2.2);
    assert_eq!(after.1.0, "30.2500");
    assert_eq!(after.1.1, "30.2500");

    let stored = books.ok("get_journal", json!({"journal_id": "J-1"})).await;
    assert_eq!(stored["reversed_by"], "J-1-R");
    let stream = books.ok("events", json!({"stream": "journal-J-1"})).await;
    let kinds: Vec<(i64, &str)> = stream["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_i64().unwrap(),
                e["event_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, [(1, "journal.posted"), (2, "journal.reversed")]);
    assert_eq!(
        stream["events"][1]["payload"],
        json!({"journal_id": "J-1", "reversed_by": "J-1-R", "posting_time": "2024-01-20T09:00:00.000000Z"})
    );

    // The same reversal again is a replay; a second, different reversal is refused.
    let replay = books
        .ok(
            "reverse_journal",
            json!({"journal_id": "J-1", "reversal_id": "J-1-R", "posting_time": T2, "memo": "wrong supplier"}),
        )
        .await;
    assert_eq!(replay["replayed"], true);
    let events = event_count(&books).await;
    let twice = books
        .refused(
            "reverse_journal",
            json!({"journal_id": "J-1", "reversal_id": "J-1-R2", "posting_time": T3}),
        )
        .await;
    assert_eq!(twice.code, ErrorCode::Conflict);
    assert!(
        twice.detail.contains("already reversed by J-1-R"),
        "{}",
        twice.detail
    );
    assert_eq!(event_count(&books).await, events);
    assert_eq!(books.balance("5000").await, after.1);
    // A reversal id is a journal id like any other.
    let reused = books
        .refused(
            "post_journal",
            journal(
                "J-1-R",
                T2,
                &[
                    ("1000", "debit", "1", "EUR"),
                    ("4000", "credit", "1", "EUR"),
                ],
            ),
        )
        .await;
    assert_eq!(reused.code, ErrorCode::Conflict);
    let unknown = books
        .refused(
            "reverse_journal",
            json!({"journal_id": "NOPE", "reversal_id": "NOPE-R", "posting_time": T2}),
        )
        .await;
    assert_eq!(unknown.code, ErrorCode::ResourceNotFound);
    assert_eq!(books.trial_balance().await["balanced"], true);
    assert_eq!(books.ok("rebuild", json!({})).await["equal"], true);
}

async fn balances_as_of_a_time_and_statements_page_through_entries(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    // Recorded out of posting-time order on purpose: the 3rd is back-dated.
    let postings = [
        ("S-1", "2024-01-05T00:00:00Z", "10"),
        ("S-2", "2024-01-15T00:00:00Z", "20"),
        ("S-3", "2024-01-01T00:00:00Z", "0.0001"),
        ("S-4", "2024-01-25T00:00:00Z", "40"),
        ("S-5", "2024-02-05T00:00:00Z", "50"),
    ];
    for (id, time, amount) in postings {
        books
            .post(
                id,
                time,
                &[
                    ("1000", "debit", amount, "EUR"),
                    ("4000", "credit", amount, "EUR"),
                ],
            )
            .await
            .unwrap();
    }
    let as_of = |time: &str| json!({"account": "4000", "as_of": time});
    let mid = books.ok("balance", as_of("2024-01-15T00:00:00Z")).await;
    assert_eq!(mid["balance"], "30.0001", "inclusive of the as_of time");
    assert_eq!(mid["as_of"], "2024-01-15T00:00:00.000000Z");
    let early = books.ok("balance", as_of("2023-12-31T00:00:00Z")).await;
    assert_eq!(early["balance"], "0.0000");
    let tb = books
        .ok("trial_balance", json!({"as_of": "2024-01-31T00:00:00Z"}))
        .await;
    assert_eq!(tb["currencies"][0]["debit_total"], "70.0001");
    assert_eq!(tb["balanced"], true);
    assert_eq!(books.balance("4000").await.2, "120.0001");

    // Pages of two: recording order, every entry once.
    let mut seen = Vec::new();
    let mut params = json!({"account": "1000", "limit": 2});
    loop {
        let page = books.ok("statement", params.clone()).await;
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        seen.extend(
            entries
                .iter()
                .map(|e| e["journal_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => params["cursor"] = json!(cursor),
            None => break,
        }
    }
    assert_eq!(seen, ["S-1", "S-2", "S-3", "S-4", "S-5"]);
    let january = books
        .ok(
            "statement",
            json!({"account": "1000", "from": "2024-01-05T00:00:00Z", "to": "2024-01-25T00:00:00Z"}),
        )
        .await;
    let ids: Vec<&str> = january["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["journal_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["S-1", "S-2", "S-4"]);
    let unknown = books.refused("statement", json!({"account": "9"})).await;
    assert_eq!(unknown.code, ErrorCode::ResourceNotFound);
}

async fn one_tenant_sees_nothing_of_another(engine: Engine) {
    let platform = Platform::new(engine).await;
    let acme = platform.books("acme");
    let globex = platform.books("globex");
    chart(&acme).await;
    acme.post(
        "J-1",
        T1,
        &[
            ("1000", "debit", "9", "EUR"),
            ("4000", "credit", "9", "EUR"),
        ],
    )
    .await
    .unwrap();

    let accounts = globex.ok("list_accounts", json!({})).await;
    assert_eq!(accounts["accounts"], json!([]));
    assert_eq!(
        globex
            .refused("get_journal", json!({"journal_id": "J-1"}))
            .await
            .code,
        ErrorCode::ResourceNotFound
    );
    assert_eq!(
        globex
            .refused("balance", json!({"account": "1000"}))
            .await
            .code,
        ErrorCode::ResourceNotFound
    );
    let tb = globex.trial_balance().await;
    assert_eq!(tb["accounts"], json!([]));
    assert_eq!(tb["currencies"], json!([]));
    assert!(globex.all_events().await.is_empty());
    assert_eq!(
        globex.ok("rebuild", json!({})).await,
        json!({"events": 0, "equal": true, "differences": []})
    );
    let chain = globex.ok("verify", json!({})).await;
    assert_eq!(
        (&chain["ok"], &chain["journals"]),
        (&json!(true), &json!(0)),
        "{chain}"
    );
    // globex keeps books of its own under the same codes and ids.
    globex.account("1000", "asset", "USD").await;
    globex.account("4000", "income", "USD").await;
    let own = globex
        .post(
            "J-1",
            T1,
            &[
                ("1000", "debit", "1", "USD"),
                ("4000", "credit", "1", "USD"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(own["replayed"], false);
    // A batch reaches globex's books alone, and each tenant's chain holds only its journals.
    globex
        .ok(
            "post_journals",
            json!({"journals": [{"journal_id": "J-2", "posting_time": T1, "lines": [
                {"account": "1000", "debit": "2", "currency": "USD"},
                {"account": "4000", "credit": "2", "currency": "USD"},
            ]}]}),
        )
        .await;
    assert_eq!(acme.balance("1000").await.2, "9.0000");
    assert_eq!(globex.balance("1000").await.2, "3.0000");
    assert_eq!(acme.all_events().await.len(), 1);
    for (books, journals) in [(&acme, 1), (&globex, 2)] {
        let chain = books.ok("verify", json!({})).await;
        assert_eq!(
            (&chain["ok"], &chain["journals"]),
            (&json!(true), &json!(journals)),
            "{chain}"
        );
    }
}

async fn postings_and_their_events_commit_together_through_the_outbox(engine: Engine) {
    let platform = Platform::with_bus(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    let posted = books
        .post(
            "J-1",
            T1,
            &[
                ("1000", "debit", "3", "EUR"),
                ("4000", "credit", "3", "EUR"),
            ],
        )
        .await
        .unwrap();
    books
        .post(
            "J-1",
            T1,
            &[
                ("1000", "debit", "3", "EUR"),
                ("4000", "credit", "3", "EUR"),
            ],
        )
        .await
        .unwrap();
    books
        .refused(
            "post_journal",
            journal(
                "J-2",
                T1,
                &[
                    ("1000", "debit", "3", "EUR"),
                    ("4000", "credit", "2", "EUR"),
                ],
            ),
        )
        .await;
    books
        .ok(
            "reverse_journal",
            json!({"journal_id": "J-1", "reversal_id": "J-1-R", "posting_time": T2}),
        )
        .await;

    let outbox = Outbox::new(engine.provider()).unwrap();
    let pending = outbox.pending(&books.client, 100).await.unwrap();
    let kinds: Vec<(&str, &str, Option<&str>)> = pending
        .iter()
        .map(|p| {
            (
                p.topic.as_str(),
                p.headers["ce_type"].as_str().unwrap(),
                p.key.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("ledger", "ledger.journal.posted", Some("J-1")),
            ("ledger", "ledger.journal.posted", Some("J-1-R"))
        ],
        "one event per posting: none for the replay or the refusal"
    );
    let mut expected = posted.clone();
    expected.as_object_mut().unwrap().remove("replayed");
    assert_eq!(pending[0].payload, expected);
    assert_eq!(pending[1].payload["reverses"], "J-1");

    let relay = platform.service.relay().unwrap();
    assert_eq!(relay.run_once(&books.client).await.unwrap(), 2);
    let records = books
        .client
        .invoke(
            BUS,
            "replay",
            json!({"topic": "ledger", "from_offset": 0, "max_records": 10}),
        )
        .await
        .unwrap();
    assert_eq!(records["records"].as_array().unwrap().len(), 2);
    assert_eq!(records["records"][0]["headers"]["ce_tenantid"], "acme");
}

async fn rebuild_replays_the_events_and_notices_a_tampered_projection(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    for n in 0..5 {
        books
            .post(
                &format!("J-{n}"),
                T1,
                &[
                    ("1000", "debit", "1.5", "EUR"),
                    ("4000", "credit", "1.5", "EUR"),
                ],
            )
            .await
            .unwrap();
    }
    books
        .ok(
            "reverse_journal",
            json!({"journal_id": "J-0", "reversal_id": "J-0-R", "posting_time": T2}),
        )
        .await;
    assert_eq!(
        books.ok("rebuild", json!({})).await,
        json!({"events": 7, "equal": true, "differences": []})
    );
    // Someone edits the projection behind the ledger's back (the ledger itself never does).
    books
        .client
        .invoke(
            engine.provider(),
            "execute",
            json!({"sql": "UPDATE gl_balance SET debit_total = debit_total + 1 WHERE account = '1000'"}),
        )
        .await
        .unwrap();
    let rebuilt = books.ok("rebuild", json!({})).await;
    assert_eq!(rebuilt["equal"], false);
    assert_eq!(
        rebuilt["differences"],
        json!([{
            "kind": "balance", "key": "1000 EUR",
            "from_events": {"debit_total": "7.5000", "credit_total": "1.5000"},
            "live": {"debit_total": "7.5001", "credit_total": "1.5000"},
        }])
    );
}

/// Runs `sql` on the books with the service's own client, as someone with the ledger's
/// credentials could; the ledger itself never updates or deletes a journal.
async fn tamper(books: &Books, engine: Engine, sql: &str) {
    books
        .client
        .invoke(engine.provider(), "execute", json!({"sql": sql}))
        .await
        .unwrap();
}

async fn verify_names_the_first_journal_altered_or_deleted_behind_the_ledgers_back(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    for n in 0..6 {
        books
            .post(
                &format!("J-{n}"),
                T1,
                &[
                    ("1000", "debit", "2.5", "EUR"),
                    ("4000", "credit", "2.5", "EUR"),
                ],
            )
            .await
            .unwrap();
    }
    books
        .ok(
            "reverse_journal",
            json!({"journal_id": "J-0", "reversal_id": "J-0-R", "posting_time": T2}),
        )
        .await;
    // A replay adds no link.
    let replay = books
        .post(
            "J-1",
            T1,
            &[
                ("1000", "debit", "2.5", "EUR"),
                ("4000", "credit", "2.5", "EUR"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(replay["replayed"], true);
    let untouched = books.ok("verify", json!({})).await;
    assert_eq!(untouched["ok"], true, "{untouched}");
    assert_eq!(untouched["journals"], 7, "{untouched}");
    assert_eq!(untouched["first_bad"], Value::Null);
    let links: i64 = untouched["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|lane| lane["seq"].as_i64().unwrap())
        .sum();
    assert_eq!(links, 7, "{untouched}");

    // An amount, changed and changed back: the chain sees the one unit.
    let amount = |delta: &str| {
        format!(
            "UPDATE gl_entry SET debit = debit {delta} WHERE journal_id = 'J-2' AND line_no = 1"
        )
    };
    tamper(&books, engine, &amount("+ 1")).await;
    let altered = books.ok("verify", json!({})).await;
    assert_eq!(altered["ok"], false, "{altered}");
    assert_eq!(altered["first_bad"], "J-2", "{altered}");
    assert!(
        altered["reason"].as_str().unwrap().starts_with("altered"),
        "{altered}"
    );
    tamper(&books, engine, &amount("- 1")).await;
    assert_eq!(books.ok("verify", json!({})).await["ok"], true);

    // A memo.
    tamper(
        &books,
        engine,
        "UPDATE gl_journal SET memo = 'nothing to see' WHERE journal_id = 'J-3'",
    )
    .await;
    let altered = books.ok("verify", json!({})).await;
    assert_eq!(altered["first_bad"], "J-3", "{altered}");
    tamper(
        &books,
        engine,
        "UPDATE gl_journal SET memo = NULL WHERE journal_id = 'J-3'",
    )
    .await;
    assert_eq!(books.ok("verify", json!({})).await["ok"], true);

    // A whole journal, link and all.
    for table in ["gl_seal", "gl_entry", "gl_journal"] {
        tamper(
            &books,
            engine,
            &format!("DELETE FROM {table} WHERE journal_id = 'J-4'"),
        )
        .await;
    }
    let deleted = books.ok("verify", json!({})).await;
    assert_eq!(deleted["ok"], false, "{deleted}");
    assert_eq!(deleted["first_bad"], "J-4", "{deleted}");
    assert!(
        deleted["reason"].as_str().unwrap().starts_with("deleted"),
        "{deleted}"
    );
}

async fn books_from_before_the_chain_are_chained_once_by_the_next_process(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    let lines = [
        ("1000", "debit", "3", "EUR"),
        ("4000", "credit", "3", "EUR"),
    ];
    for n in 0..4 {
        books.post(&format!("J-{n}"), T1, &lines).await.unwrap();
    }
    // The books as a ledger without the chain left them: no links, no heads.
    tamper(&books, engine, "DELETE FROM gl_seal").await;
    tamper(&books, engine, "DELETE FROM gl_chain").await;
    // A process of this version starting on them chains them on its first call.
    let service = Arc::new(
        LedgerService::new(LedgerSettings {
            db: engine.provider().into(),
            bus: None,
        })
        .unwrap(),
    );
    let upgraded = Caller::new(
        service.clone(),
        RuntimeClient::new(
            platform.runtime.clone(),
            TenantId::parse("acme").unwrap(),
            "service:ledger",
        ),
        testkit::validators(&*service),
    );
    let chained = upgraded.ok("verify", json!({})).await;
    assert_eq!(chained["ok"], true, "{chained}");
    assert_eq!(chained["journals"], 4, "{chained}");
    upgraded
        .ok("post_journal", journal("J-4", T1, &lines))
        .await;
    // Once: a journal that loses its link later is not chained again, it is reported.
    tamper(
        &books,
        engine,
        "DELETE FROM gl_seal WHERE journal_id = 'J-4'",
    )
    .await;
    let after = upgraded.ok("verify", json!({})).await;
    assert_eq!(after["ok"], false, "{after}");
    assert!(
        after["bad"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["journal_id"] == "J-4"),
        "{after}"
    );
}

async fn a_batch_commits_together_and_each_of_its_journals_is_idempotent(engine: Engine) {
    let platform = Platform::new(engine).await;
    let books = platform.books("acme");
    chart(&books).await;
    let sale = |id: &str, amount: &str| {
        journal(
            id,
            T1,
            &[
                ("1000", "debit", amount, "EUR"),
                ("4000", "credit", amount, "EUR"),
            ],
        )
    };
    books
        .post(
            "J-0",
            T1,
            &[
                ("1000", "debit", "1", "EUR"),
                ("4000", "credit", "1", "EUR"),
            ],
        )
        .await
        .unwrap();
    // Forty-four journals meet in some of the 256 lanes: the chain links several per lane in
    // one batch.
    let mut batch = vec![
        sale("J-0", "1"),
        sale("J-1", "2"),
        sale("J-2", "3"),
        sale("J-2", "3"),
    ];
    batch.extend((3..43).map(|n| sale(&format!("J-{n}"), "1")));
    let answer = books.ok("post_journals", json!({"journals": batch})).await;
    assert_eq!(answer["posted"], 42, "{answer}");
    assert_eq!(answer["replayed"], 2, "{answer}");
    let flags: Vec<(&str, bool)> = answer["journals"]
        .as_array()
        .unwrap()
        .iter()
        .take(4)
        .map(|j| {
            (
                j["journal_id"].as_str().unwrap(),
                j["replayed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [("J-0", true), ("J-1", false), ("J-2", false), ("J-2", true)]
    );
    assert_eq!(books.balance("1000").await.0, "46.0000");
    let verified = books.ok("verify", json!({})).await;
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["journals"], 43, "{verified}");
    let lanes = verified["lanes"].as_array().unwrap();
    assert!(
        lanes.iter().any(|lane| lane["seq"].as_i64().unwrap() >= 2),
        "{verified}"
    );
    let events = event_count(&books).await;

    // The same batch again: every journal a replay, nothing changes.
    let again = books.ok("post_journals", json!({"journals": batch})).await;
    assert_eq!(
        (again["posted"].clone(), again["replayed"].clone()),
        (json!(0), json!(44))
    );
    assert_eq!(event_count(&books).await, events);

    // One refused journal refuses the batch, and the problem points at it.
    let conflicting = books
        .refused(
            "post_journals",
            json!({"journals": [sale("N-1", "1"), sale("J-1", "2.5")]}),
        )
        .await;
    assert_eq!(conflicting.code, ErrorCode::Conflict, "{conflicting:?}");
    assert_eq!(conflicting.errors[0].pointer, "/journals/1");
    let unknown = journal(
        "N-2",
        T1,
        &[
            ("1000", "debit", "1", "EUR"),
            ("9999", "credit", "1", "EUR"),
        ],
    );
    let refused = books
        .refused(
            "post_journals",
            json!({"journals": [sale("N-1", "1"), sale("N-3", "1"), unknown]}),
        )
        .await;
    assert_eq!(refused.code, ErrorCode::ResourceNotFound, "{refused:?}");
    assert_eq!(refused.errors[0].pointer, "/journals/2/lines/1/account");
    let unbalanced = journal(
        "N-4",
        T1,
        &[
            ("1000", "debit", "1", "EUR"),
            ("4000", "credit", "2", "EUR"),
        ],
    );
    let refused = books
        .refused(
            "post_journals",
            json!({"journals": [sale("N-1", "1"), unbalanced]}),
        )
        .await;
    assert_eq!(refused.code, ErrorCode::JournalUnbalanced, "{refused:?}");
    assert_eq!(refused.errors[0].pointer, "/journals/1/lines");
    // Each journal fits a balance row; together they would not.
    let huge: Vec<Value> = (0..10)
        .map(|n| sale(&format!("H-{n}"), "99999999999999.9999"))
        .collect();
    let refused = books
        .refused("post_journals", json!({"journals": huge}))
        .await;
    assert_eq!(refused.code, ErrorCode::ParamsUnprocessable, "{refused:?}");
    assert_eq!(
        event_count(&books).await,
        events,
        "a refused batch wrote nothing"
    );
    let missing = books
        .refused("get_journal", json!({"journal_id": "N-1"}))
        .await;
    assert_eq!(missing.code, ErrorCode::ResourceNotFound);
}

/// The database's owner (who RLS does not hold) changes a posted amount in PostgreSQL itself,
/// then deletes another journal outright.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_journal_its_postgresql_owner_altered_or_deleted() {
    use sqlx::{Connection, Executor, PgConnection};

    let platform = Platform::new(Engine::Postgres).await;
    let books = platform.books("acme");
    chart(&books).await;
    for n in 0..4 {
        books
            .post(
                &format!("J-{n}"),
                T1,
                &[
                    ("1000", "debit", "10", "EUR"),
                    ("4000", "credit", "10", "EUR"),
                ],
            )
            .await
            .unwrap();
    }
    assert_eq!(books.ok("verify", json!({})).await["ok"], true);
    let schema = books_schema(&TenantId::parse("acme").unwrap());
    let mut owner = PgConnection::connect(platform.database_url().unwrap())
        .await
        .unwrap();
    owner
        .execute(
            format!(
                "UPDATE \"{schema}\".gl_entry SET debit = 100001
                  WHERE journal_id = 'J-1' AND line_no = 1"
            )
            .as_str(),
        )
        .await
        .unwrap();
    let altered = books.ok("verify", json!({})).await;
    assert_eq!(altered["ok"], false, "{altered}");
    assert_eq!(altered["first_bad"], "J-1", "{altered}");

    owner
        .execute(
            format!(
                "DELETE FROM \"{schema}\".gl_seal WHERE journal_id = 'J-2';
                 DELETE FROM \"{schema}\".gl_entry WHERE journal_id = 'J-2';
                 DELETE FROM \"{schema}\".gl_journal WHERE journal_id = 'J-2';"
            )
            .as_str(),
        )
        .await
        .unwrap();
    let deleted = books.ok("verify", json!({})).await;
    assert_eq!(deleted["first_bad"], "J-1", "{deleted}");
    let bad: Vec<&str> = deleted["bad"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["journal_id"].as_str().unwrap())
        .collect();
    assert!(bad.contains(&"J-2"), "{deleted}");
}

/// Every action's answer was checked against its result schema by `Books`; this makes sure
/// every action was called with its typical params at least once in one place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_answers_within_its_result_schema() {
    let platform = Platform::new(Engine::Sqlite).await;
    let books = platform.books("acme");
    chart(&books).await;
    let mut called = BTreeSet::new();
    let lines = [
        ("1000", "debit", "1", "EUR"),
        ("4000", "credit", "1", "EUR"),
    ];
    for (action, params) in [
        (
            "create_account",
            json!({"code": "9", "name": "n", "type": "equity", "currency": "CHF", "parent": "3000"}),
        ),
        ("list_accounts", json!({"limit": 3})),
        ("post_journal", journal("J-1", T1, &lines)),
        ("post_journal", journal("J-1", T1, &lines)),
        (
            "post_journals",
            json!({"journals": [journal("J-1", T1, &lines), journal("J-2", T1, &lines)]}),
        ),
        (
            "reverse_journal",
            json!({"journal_id": "J-1", "reversal_id": "R-1", "posting_time": T2}),
        ),
        ("get_journal", json!({"journal_id": "J-1"})),
        ("get_journal", json!({"journal_id": "R-1"})),
        ("close_period", json!({"through": T2})),
        (
            "balance",
            json!({"account": "1000", "currency": "EUR", "as_of": T1}),
        ),
        ("balance", json!({"account": "4000"})),
        ("trial_balance", json!({})),
        ("trial_balance", json!({"as_of": T1})),
        ("statement", json!({"account": "1000", "limit": 1})),
        ("events", json!({"stream": "journal-J-1", "limit": 1})),
        ("events", json!({})),
        ("rebuild", json!({})),
        ("verify", json!({})),
    ] {
        books.ok(action, params).await;
        called.insert(action);
    }
    let all: BTreeSet<&str> = platform
        .service
        .descriptor()
        .actions
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(called, all);
}

/// The contract refuses malformed params before the service sees them, as the runtime applies
/// it: floats for amounts, two sides on a line, too few or too many lines, bad codes.
#[test]
fn the_params_schemas_refuse_what_the_ledger_cannot_take() {
    let service = LedgerService::new(LedgerSettings {
        db: "db/sqlite".into(),
        bus: None,
    })
    .unwrap();
    let post = service
        .descriptor()
        .actions
        .iter()
        .find(|a| a.name == "post_journal")
        .unwrap();
    let validators = ActionValidators::compile("services/ledger", post).unwrap();
    let line = |extra: Value| {
        let mut line = json!({"account": "1000", "currency": "EUR"});
        line.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        line
    };
    let ok_line = line(json!({"debit": "1"}));
    let with_lines =
        |lines: Vec<Value>| json!({"journal_id": "J", "posting_time": T1, "lines": lines});
    assert!(
        validators
            .params
            .check(&with_lines(vec![
                ok_line.clone(),
                line(json!({"credit": "1"}))
            ]))
            .is_empty()
    );
    let refused = [
        (
            "a float amount",
            with_lines(vec![line(json!({"debit": 1.5})), ok_line.clone()]),
            "/lines/0/debit",
        ),
        (
            "five decimals",
            with_lines(vec![line(json!({"debit": "1.00001"})), ok_line.clone()]),
            "/lines/0/debit",
        ),
        (
            "a negative amount",
            with_lines(vec![line(json!({"credit": "-1"})), ok_line.clone()]),
            "/lines/0/credit",
        ),
        (
            "fifteen integer digits",
            with_lines(vec![
                line(json!({"debit": "100000000000000"})),
                ok_line.clone(),
            ]),
            "/lines/0/debit",
        ),
        (
            "both sides",
            with_lines(vec![
                line(json!({"debit": "1", "credit": "1"})),
                ok_line.clone(),
            ]),
            "/lines/0",
        ),
        (
            "no side",
            with_lines(vec![line(json!({})), ok_line.clone()]),
            "/lines/0",
        ),
        (
            "a lower-case currency",
            with_lines(vec![
                json!({"account": "1000", "currency": "eur", "debit": "1"}),
                ok_line.clone(),
            ]),
            "/lines/0/currency",
        ),
        ("one line", with_lines(vec![ok_line.clone()]), "/lines"),
        (
            "501 lines",
            with_lines(vec![ok_line.clone(); 501]),
            "/lines",
        ),
        (
            "a 65-character id",
            json!({"journal_id": "J".repeat(65), "posting_time": T1, "lines": [ok_line, ok_line]}),
            "/journal_id",
        ),
    ];
    for (what, params, pointer) in refused {
        let errors = validators.params.check(&params);
        assert!(
            errors.iter().any(|e| e.pointer == pointer),
            "{what}: {errors:?}"
        );
    }
}
