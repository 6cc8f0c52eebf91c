//! The ledger service through the real gateway: `/services/ledger/{action}` under API keys,
//! the policy's four-eyes rule, `Idempotency-Key`, tenancy — and a `kill -9` in the middle of
//! a stream of postings that loses no acknowledged journal.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Api, Server, cli, tenant_with_key, write_config};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn ledger(api: &Api, action: &str, params: Value) -> (StatusCode, Value) {
    api.post(
        &format!("/services/ledger/{action}"),
        json!({"params": params}),
    )
    .await
}

async fn ok(api: &Api, action: &str, params: Value) -> Value {
    let (status, body) = ledger(api, action, params).await;
    assert_eq!(status, StatusCode::OK, "ledger/{action}: {body}");
    body["data"].clone()
}

fn journal(id: &str, amount: &str) -> Value {
    json!({
        "journal_id": id,
        "posting_time": "2026-03-01T09:00:00Z",
        "memo": "e2e",
        "lines": [
            {"account": "1000", "debit": amount, "currency": "EUR"},
            {"account": "4000", "credit": amount, "currency": "EUR"},
        ],
    })
}

async fn chart(api: &Api) {
    for (code, kind) in [("1000", "asset"), ("4000", "income")] {
        ok(
            api,
            "create_account",
            json!({"code": code, "name": code, "type": kind, "currency": "EUR"}),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ledger_answers_through_the_gateway_under_policy_idempotency_and_tenancy() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = common::policy_bundle(dir.path(), "r1");
    let config = write_config(
        dir.path(),
        &format!("[policy]\nbundle = \"{}\"\n", bundle.display()),
    );
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let admin = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let developer = Api::new(
        &server,
        cli(
            dir.path(),
            &["key", "create", "--tenant", "acme", "--scopes", "invoke"],
        )
        .trim(),
    );
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    chart(&admin).await;

    let posted = ok(&developer, "post_journal", journal("J-1", "250.00")).await;
    assert_eq!(posted["replayed"], false);
    // Above the policy's approval threshold a developer is refused; an admin may post.
    let (status, denied) = ledger(&developer, "post_journal", journal("J-2", "20000.00")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{denied}");
    assert_eq!(denied["code"], "policy_denied");
    assert!(denied["decision_id"].is_string());
    ok(&admin, "post_journal", journal("J-2", "20000.00")).await;

    let (status, unbalanced) = ledger(
        &admin,
        "post_journal",
        json!({"journal_id": "J-3", "posting_time": "2026-03-01T09:00:00Z", "lines": [
            {"account": "1000", "debit": "10.00", "currency": "EUR"},
            {"account": "4000", "credit": "9.99", "currency": "EUR"},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{unbalanced}");
    assert_eq!(unbalanced["code"], "journal_unbalanced");

    // The gateway's Idempotency-Key replays the stored answer without a second posting.
    let send = || {
        admin
            .raw()
            .post(format!("{}/services/ledger/post_journal", server.base))
            .bearer_auth(admin.key())
            .header("Idempotency-Key", "idem-J-4")
            .json(&json!({"params": journal("J-4", "5.00")}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = send().await.unwrap();
    assert_eq!(second.headers()["idempotent-replayed"], "true");

    let trial = ok(&admin, "trial_balance", json!({})).await;
    assert_eq!(trial["balanced"], true, "{trial}");
    assert_eq!(
        trial["currencies"][0]["debit_total"], "20255.0000",
        "{trial}"
    );
    // Another tenant sees none of it.
    let (status, missing) = ledger(&globex, "get_journal", json!({"journal_id": "J-1"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let theirs = ok(&globex, "trial_balance", json!({})).await;
    assert_eq!(theirs["currencies"], json!([]), "{theirs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_mid_stream_loses_no_acknowledged_journal_and_doubles_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let key = tenant_with_key(dir.path(), "acme", "*");
    let api = Api::new(&server, &key);
    chart(&api).await;

    // Four posters until the kill; each remembers what was acknowledged and what was in flight.
    let mut posters = Vec::new();
    for p in 0..4 {
        let api = api.clone();
        posters.push(tokio::spawn(async move {
            let (mut acknowledged, mut unsure) = (Vec::new(), Vec::new());
            for n in 0.. {
                let id = format!("P{p}-{n}");
                // The process dies under this request: a failed send is an answer too.
                let sent = api
                    .raw()
                    .post(format!("{}/services/ledger/post_journal", api.base))
                    .bearer_auth(api.key())
                    .timeout(Duration::from_secs(5))
                    .json(&json!({"params": journal(&id, "10.00")}))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == StatusCode::OK => acknowledged.push(id),
                    _ => {
                        unsure.push(id);
                        break;
                    }
                }
            }
            (acknowledged, unsure)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    let (mut acknowledged, mut unsure) = (BTreeSet::new(), BTreeSet::new());
    for poster in posters {
        let (a, u) = poster.await.unwrap();
        acknowledged.extend(a);
        unsure.extend(u);
    }
    assert!(
        acknowledged.len() >= 20,
        "too few postings before the kill: {}",
        acknowledged.len()
    );

    let server = Server::start(dir.path());
    let api = Api::new(&server, &key);
    let mut present = 0usize;
    for id in &acknowledged {
        // Posting it again is a replay: it is there, once.
        let again = ok(&api, "post_journal", journal(id, "10.00")).await;
        assert_eq!(again["replayed"], true, "acknowledged {id} was lost");
        present += 1;
    }
    for id in &unsure {
        if ledger(&api, "get_journal", json!({"journal_id": id}))
            .await
            .0
            == StatusCode::OK
        {
            present += 1;
        }
    }
    let trial = ok(&api, "trial_balance", json!({})).await;
    assert_eq!(trial["balanced"], true, "{trial}");
    let expected = format!("{}.0000", present * 10);
    assert_eq!(
        trial["currencies"][0]["debit_total"],
        expected.as_str(),
        "{trial}"
    );
    let rebuilt = ok(&api, "rebuild", json!({})).await;
    assert_eq!(rebuilt["equal"], true, "{rebuilt}");
    // The hash chain is whole: every journal that made it is linked once, none half-linked.
    let verified = ok(&api, "verify", json!({})).await;
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["journals"], present, "{verified}");
    eprintln!(
        "ledger crash: {} acknowledged before kill -9, {} in flight, {present} present after restart",
        acknowledged.len(),
        unsure.len()
    );
}

/// `post_journals` over HTTP: one transaction, replays answered as such, a conflicting journal
/// refused as 409 pointing at it, and the books' hash chain whole afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_through_the_gateway_is_idempotent_per_journal_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    chart(&api).await;
    let batch = json!({"journals": [journal("B-1", "1.00"), journal("B-2", "2.00"), journal("B-3", "3.00")]});
    let first = ok(&api, "post_journals", batch.clone()).await;
    assert_eq!(
        (first["posted"].clone(), first["replayed"].clone()),
        (json!(3), json!(0))
    );
    let again = ok(&api, "post_journals", batch).await;
    assert_eq!(
        (again["posted"].clone(), again["replayed"].clone()),
        (json!(0), json!(3))
    );
    let (status, problem) = ledger(
        &api,
        "post_journals",
        json!({"journals": [journal("B-4", "4.00"), journal("B-2", "2.50")]}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "conflict", "{problem}");
    assert_eq!(problem["errors"][0]["pointer"], "/journals/1", "{problem}");
    let (status, _) = ledger(&api, "get_journal", json!({"journal_id": "B-4"})).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the refused batch wrote nothing"
    );
    let verified = ok(&api, "verify", json!({})).await;
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["journals"], 3, "{verified}");
}

/// The event a posting writes, relayed to the bus, is what `asyncapi/business-events.json`
/// says: its CloudEvents type, headers and payload schema.
#[tokio::test(flavor = "multi_thread")]
async fn a_relayed_posting_event_matches_its_asyncapi_description() {
    use switchyard_client::{HttpClient, ProviderClient};
    use switchyard_contracts::TenantId;
    use switchyard_contracts::schema::Compiled;

    let dir = tempfile::tempdir().unwrap();
    // This test relays by hand, as `switchyard relay` does: no hosted relay races it.
    let mut env = vec![
        ("SWITCHYARD_LEDGER_BUS", "bus/embedded".to_owned()),
        ("SWITCHYARD_HOSTED_WORKERS", "off".to_owned()),
    ];
    let server = Server::start_with_env(dir.path(), &[], &mut env);
    let key = tenant_with_key(dir.path(), "acme", "*");
    let api = Api::new(&server, &key);
    chart(&api).await;
    ok(&api, "post_journal", journal("J-ev", "42.50")).await;
    let client = HttpClient::new(&server.base, TenantId::parse("acme").unwrap(), &key);
    // The ledger's outbox is in its books: a relay holding a tenant key reaches it through the
    // outbox service, not the tenant's db provider.
    let relayed = client
        .invoke(
            "services/outbox",
            "relay",
            json!({"db": "db/sqlite", "bus": "bus/embedded", "max_events": 10}),
        )
        .await
        .unwrap();
    assert_eq!(relayed["sent"], 1);
    let records = client
        .invoke(
            "bus/embedded",
            "replay",
            json!({"topic": "ledger", "from_offset": 0}),
        )
        .await
        .unwrap();
    let record = &records["records"][0];

    let read = |path: &str| -> Value {
        let path = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let business = read("asyncapi/business-events.json");
    let message = &business["components"]["messages"]["journalPosted"];
    assert_eq!(
        message["x-cloudevents-type"],
        switchyard_ledger::JOURNAL_POSTED
    );
    assert_eq!(
        record["headers"]["ce_type"],
        switchyard_ledger::JOURNAL_POSTED
    );
    let contract = read("contracts/schemas/services/ledger.json");
    let payload = json!({"$ref": "#/$defs/journal", "$defs": contract["$defs"]});
    let errors = Compiled::new(&payload, "journal")
        .unwrap()
        .check(&record["payload"]);
    assert!(
        errors.is_empty(),
        "payload off its AsyncAPI schema: {errors:?}"
    );
    let events = read("asyncapi/provider-events.json");
    let headers = json!({"$ref": "#/components/schemas/cloudEventHeaders", "components": events["components"]});
    let errors = Compiled::new(&headers, "headers")
        .unwrap()
        .check(&record["headers"]);
    assert!(
        errors.is_empty(),
        "headers off their AsyncAPI schema: {errors:?}"
    );
    assert_eq!(record["payload"]["journal_id"], "J-ev");
}
