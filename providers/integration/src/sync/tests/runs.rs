use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_contracts::ActionValidators;
use switchyard_spi::{ErrorCode, ProviderFactory};
use tokio::sync::Notify;

use super::destinations::{Client, Crash, Tenant, TestDatabase, tenant};
use super::{Source, factory};

const WAIT: u64 = 25_000;

fn db(table: &str) -> Value {
    json!({"db": {"provider": "db/postgres", "table": table}})
}

fn config(source: &str, streams: Value) -> Value {
    json!({"source": source, "token": "tok_live_51SECRETVALUE", "streams": streams})
}

async fn sync(t: &Tenant, stream: &str, mode: &str, destination: Value) -> Value {
    let run = t
        .ok(
            "sync",
            json!({"stream": stream, "mode": mode, "destination": destination, "wait_ms": WAIT}),
        )
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    run
}

async fn count(client: &Client, sql: &str) -> i64 {
    client.rows(sql).await[0]["n"].as_i64().unwrap()
}

#[tokio::test]
async fn an_incremental_sync_writes_each_record_once_and_keeps_the_largest_cursor() {
    let pg = TestDatabase::create("incremental").await;
    let root = tempfile::tempdir().unwrap();
    let source = Source::seeded("incremental", 250, 100);
    let acme = tenant("acme");
    let client = Client::new(&acme, &pg, root.path(), None).await;
    let engine = factory(&root.path().join("vec"));
    let t = Tenant::start(
        engine.clone(),
        &acme,
        config("incremental", json!({})),
        client.clone(),
    )
    .await;

    let run = sync(&t, "items", "incremental", db("items")).await;
    assert_eq!(
        (run["records"].as_i64(), run["pages"].as_i64()),
        (Some(250), Some(3))
    );
    assert_eq!(run["cursor"], json!(1250));
    assert_eq!(count(&client, "SELECT count(*) AS n FROM items").await, 250);

    source.put(7, 2000, "seven, renamed");
    source.put(251, 2001, "new");
    let run = sync(&t, "items", "incremental", db("items")).await;
    // From the stored cursor, inclusive: the record at 1250 again, and the two changed.
    assert_eq!(run["records"], 3, "{run}");
    assert_eq!(run["cursor"], json!(2001));
    assert_eq!(
        count(&client, "SELECT count(*) AS n FROM items").await,
        251,
        "one row per id"
    );
    let seven = client.rows("SELECT record FROM items WHERE id = '7'").await;
    let record: Value = serde_json::from_str(seven[0]["record"].as_str().unwrap()).unwrap();
    assert_eq!(record["name"], "seven, renamed");
    let state = t.ok("state", json!({"stream": "items"})).await;
    assert_eq!(state["streams"][0]["cursor"], json!(2001));
    assert_eq!(state["streams"][0]["last_run"]["run_id"], run["run_id"]);

    // A cursor set by reset: the next incremental sync reads from it, here nothing.
    let set = t
        .ok(
            "reset",
            json!({"stream": "items", "destination": db("items"), "cursor": 5000}),
        )
        .await;
    assert_eq!(set["reset"], 1);
    let run = sync(&t, "items", "incremental", db("items")).await;
    assert_eq!(run["records"], 0, "{run}");
    let state = t.ok("state", json!({"stream": "items"})).await;
    assert_eq!(state["streams"][0]["cursor"], json!(5000));
    // A cursor names the one destination it is for.
    let descriptor = engine.descriptor().action("reset").unwrap();
    let validators = ActionValidators::compile("integration/vec", descriptor).unwrap();
    let refused = validators
        .params
        .check(&json!({"stream": "items", "cursor": 5000}));
    assert!(!refused.is_empty(), "a cursor without a destination passed");
}

/// A process stopping between the destination's ack of a page and the checkpoint (the
/// hardest place): the store's cursor is behind the destination, never ahead; after a
/// restart the run resumes from it, and the destination holds each record once with the
/// cursor at its largest value.
#[test]
fn a_run_killed_after_an_ack_resumes_from_the_store_without_loss_or_duplicates() {
    let root = tempfile::tempdir().unwrap();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    let before = runtime();
    let pg = before.block_on(TestDatabase::create("crash"));
    let source = Source::seeded("crash", 2000, 100);
    let acme = tenant("acme");
    let cfg = config("crash", json!({"items": {"destination": db("items")}}));
    let run_id = before.block_on(async {
        let reached = Arc::new(Notify::new());
        // Transaction 1 creates the table; 2..=8 are pages 1..=7.
        let crash = Crash {
            after: 8,
            reached: reached.clone(),
        };
        let client = Client::new(&acme, &pg, root.path(), Some(crash)).await;
        let engine = factory(&root.path().join("vec"));
        let t = Tenant::start(engine.clone(), &acme, cfg.clone(), client.clone()).await;
        let run = t
            .ok("sync", json!({"stream": "items", "mode": "incremental"}))
            .await;
        reached.notified().await;
        let state = t.ok("state", json!({})).await;
        // Page 7 is in the table; the cursor is page 6's last.
        assert_eq!(state["streams"][0]["cursor"], json!(1600), "{state}");
        assert_eq!(state["streams"][0]["last_run"]["status"], "running");
        assert_eq!(count(&client, "SELECT count(*) AS n FROM items").await, 700);
        run["run_id"].as_str().unwrap().to_owned()
    });
    // Every task of the first process stops where it is.
    before.shutdown_background();

    let after = runtime();
    after.block_on(async {
        let client = Client::new(&acme, &pg, root.path(), None).await;
        let engine = factory(&root.path().join("vec"));
        let t = Tenant::start(engine.clone(), &acme, cfg, client.clone()).await;
        let run = t
            .ok(
                "sync",
                json!({"stream": "items", "mode": "incremental", "wait_ms": WAIT}),
            )
            .await;
        assert_eq!(run["run_id"], run_id, "the interrupted run goes on: {run}");
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["cursor"], json!(3000));
        let rows = client
            .rows(
                "SELECT count(*) AS n, count(DISTINCT id) AS ids, max(cursor::bigint) AS top, \
                 sum(deleted) AS gone FROM items",
            )
            .await;
        assert_eq!(
            (&rows[0]["n"], &rows[0]["ids"], &rows[0]["top"]),
            (&json!(2000), &json!(2000), &json!(3000)),
            "{rows:?}"
        );
        let state = t.ok("state", json!({"stream": "items"})).await;
        assert_eq!(state["streams"][0]["cursor"], json!(3000));
    });
    after.shutdown_background();
    drop(source);
}

#[tokio::test]
async fn a_full_refresh_deletes_what_the_system_no_longer_has() {
    let pg = TestDatabase::create("tombstones").await;
    let root = tempfile::tempdir().unwrap();
    let source = Source::seeded("tombstones", 30, 10);
    let acme = tenant("acme");
    let client = Client::new(&acme, &pg, root.path(), None).await;
    let engine = factory(&root.path().join("vec"));
    let t = Tenant::start(
        engine.clone(),
        &acme,
        config("tombstones", json!({})),
        client.clone(),
    )
    .await;
    let first = sync(&t, "orders", "full", db("orders")).await;
    assert_eq!(
        (first["records"].as_i64(), first["deleted"].as_i64()),
        (Some(30), Some(0))
    );
    for id in [3, 14, 30] {
        source.delete(id, 0);
    }
    let second = sync(&t, "orders", "full", db("orders")).await;
    assert_eq!(
        (second["records"].as_i64(), second["deleted"].as_i64()),
        (Some(27), Some(3))
    );
    let gone = client
        .rows("SELECT id FROM orders WHERE deleted = 1 ORDER BY id::int")
        .await;
    assert_eq!(
        gone,
        [json!({"id": "3"}), json!({"id": "14"}), json!({"id": "30"})]
    );
    assert_eq!(count(&client, "SELECT count(*) AS n FROM orders").await, 30);
    // A third full refresh finds nothing new to delete.
    let third = sync(&t, "orders", "full", db("orders")).await;
    assert_eq!(third["deleted"], 0);
}

#[tokio::test]
async fn an_incremental_sync_carries_the_deleted_feed() {
    let pg = TestDatabase::create("feed").await;
    let root = tempfile::tempdir().unwrap();
    let source = Source::seeded("feed", 20, 50);
    let acme = tenant("acme");
    let client = Client::new(&acme, &pg, root.path(), None).await;
    let engine = factory(&root.path().join("vec"));
    let t = Tenant::start(
        engine.clone(),
        &acme,
        config("feed", json!({})),
        client.clone(),
    )
    .await;
    sync(&t, "items", "incremental", db("items")).await;
    source.delete(4, 5000);
    source.delete(5, 5001);
    let run = sync(&t, "items", "incremental", db("items")).await;
    assert_eq!(run["deleted"], 2, "{run}");
    let gone = client
        .rows("SELECT id FROM items WHERE deleted = 1 ORDER BY id")
        .await;
    assert_eq!(gone, [json!({"id": "4"}), json!({"id": "5"})]);
}

#[tokio::test]
async fn a_mapping_change_remaps_the_kept_records_without_calling_the_system() {
    let pg = TestDatabase::create("remap").await;
    let root = tempfile::tempdir().unwrap();
    let source = Source::seeded("remap", 120, 50);
    let acme = tenant("acme");
    let client = Client::new(&acme, &pg, root.path(), None).await;
    let engine = factory(&root.path().join("vec"));
    let mapped = |fields: Value| {
        config(
            "remap",
            json!({"items": {"mapping": fields, "destination": db("items")}}),
        )
    };
    let t = Tenant::start(
        engine.clone(),
        &acme,
        mapped(json!({"label": ".name"})),
        client.clone(),
    )
    .await;
    t.ok(
        "sync",
        json!({"stream": "items", "mode": "full", "wait_ms": WAIT}),
    )
    .await;
    let row = client.rows("SELECT record FROM items WHERE id = '9'").await;
    assert_eq!(row[0]["record"], r#"{"label":"r9"}"#);

    let calls = source.calls();
    let t = Tenant::start(
        engine.clone(),
        &acme,
        mapped(json!({"title": ".name", "n": ".id"})),
        client.clone(),
    )
    .await;
    let run = t
        .ok("remap", json!({"stream": "items", "wait_ms": WAIT}))
        .await;
    assert_eq!(
        (run["status"].as_str(), run["mode"].as_str()),
        (Some("completed"), Some("remap"))
    );
    assert_eq!(run["records"], 120);
    assert_eq!(source.calls(), calls, "a remap calls the system 0 times");
    let row = client.rows("SELECT record FROM items WHERE id = '9'").await;
    let record: Value = serde_json::from_str(row[0]["record"].as_str().unwrap()).unwrap();
    assert_eq!(record, json!({"n": 9, "title": "r9"}));
}

#[tokio::test]
async fn a_bus_destination_gets_a_message_per_record_and_per_delete_and_events_go_to_the_events_bus()
 {
    let pg = TestDatabase::create("bus").await;
    let root = tempfile::tempdir().unwrap();
    let source = Source::seeded("bus", 25, 10);
    let acme = tenant("acme");
    let client = Client::new(&acme, &pg, root.path(), None).await;
    let engine = factory(&root.path().join("vec"));
    let mut cfg = config("bus", json!({}));
    cfg["events"] = json!({"provider": "bus/embedded", "records": true});
    let t = Tenant::start(engine.clone(), &acme, cfg, client.clone()).await;
    let topic = json!({"bus": {"provider": "bus/embedded", "topic": "items"}});
    sync(&t, "items", "incremental", topic.clone()).await;
    source.delete(2, 9000);
    sync(&t, "items", "incremental", topic).await;
    use switchyard_client::ProviderClient;
    let replay = |topic: &str| {
        client.invoke(
            "bus/embedded",
            "replay",
            json!({"topic": topic, "max_records": 1000}),
        )
    };
    let items = replay("items").await.unwrap();
    let records = items["records"].as_array().unwrap();
    // 25, then the record at the cursor again, then the delete.
    assert_eq!(records.len(), 27, "{items}");
    assert_eq!(records[26]["payload"], json!({"id": "2", "deleted": true}));
    assert_eq!(records[26]["key"], "2");
    let events = replay("integration").await.unwrap();
    let kinds: Vec<&str> = events["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["headers"]["ce_type"].as_str().unwrap())
        .collect();
    let of = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(of("integration.sync.started"), 2);
    assert_eq!(of("integration.sync.completed"), 2);
    assert_eq!(of("integration.record.upserted"), 26);
    assert_eq!(of("integration.record.deleted"), 1);
    let text = events.to_string();
    assert!(!text.contains("SECRETVALUE"), "no credential in an event");
    let described = asyncapi();
    for event in events["records"].as_array().unwrap() {
        let kind = event["headers"]["ce_type"].as_str().unwrap();
        let (_, message) = described["components"]["messages"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, m)| m["x-cloudevents-type"] == kind)
            .unwrap_or_else(|| panic!("{kind} is not in asyncapi/integration-events.json"));
        let name = message["payload"]["$ref"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let schema = &described["components"]["schemas"][name];
        let validator = jsonschema::validator_for(schema).unwrap();
        assert!(
            validator.is_valid(&event["payload"]),
            "{kind}: {}",
            event["payload"]
        );
        let headers =
            jsonschema::validator_for(&described["components"]["schemas"]["cloudEventHeaders"])
                .unwrap();
        assert!(headers.is_valid(&event["headers"]), "{}", event["headers"]);
    }
}

fn asyncapi() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../asyncapi/integration-events.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What AsyncAPI describes is exactly what the engines publish.
#[test]
fn the_asyncapi_integration_events_are_exactly_the_ones_published() {
    let doc = asyncapi();
    let mut described: Vec<&str> = doc["components"]["messages"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["x-cloudevents-type"].as_str().unwrap())
        .collect();
    let mut published = crate::sync::events::EVENT_TYPES.to_vec();
    described.sort_unstable();
    published.sort_unstable();
    assert_eq!(described, published);
}

#[tokio::test]
async fn a_received_webhook_is_verified_written_once_and_a_repeat_is_dropped() {
    let pg = TestDatabase::create("receive").await;
    let root = tempfile::tempdir().unwrap();
    let _source = Source::seeded("receive", 0, 10);
    let acme = tenant("acme");
    let client = Client::new(&acme, &pg, root.path(), None).await;
    let engine = factory(&root.path().join("vec"));
    let cfg = config("receive", json!({"items": {"destination": db("hooks")}}));
    let t = Tenant::start(engine.clone(), &acme, cfg, client.clone()).await;
    let body = json!({"id": "d-1", "stream": "items",
        "records": [{"id": 1, "updated": 5, "name": "a"}, {"id": 2, "updated": 6, "name": "b"}],
        "deleted": []})
    .to_string();
    let receive = |signature: &str| {
        t.call_with_payload(
            "receive",
            json!({"headers": {"X-Vec-Signature": signature}}),
            Some(bytes::Bytes::from(body.clone())),
        )
    };
    let refused = receive("forged").await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::SignatureInvalid);
    let first = receive("tok_live_51SECRETVALUE").await.unwrap();
    assert_eq!(
        first,
        json!({"delivery_id": "d-1", "stream": "items", "records": 2, "deleted": 0, "duplicate": false})
    );
    let again = receive("tok_live_51SECRETVALUE").await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(count(&client, "SELECT count(*) AS n FROM hooks").await, 2);
}

/// Two tenants of one engine: globex sees none of acme's cursors, raw records, runs or
/// deliveries, and no answer or error carries a credential.
#[tokio::test]
async fn a_tenant_sees_none_of_another_tenants_sync_state() {
    let pg = TestDatabase::create("tenants").await;
    let root = tempfile::tempdir().unwrap();
    let _source = Source::seeded("tenants", 40, 10);
    let engine = factory(&root.path().join("vec"));
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let acme_client = Client::new(&acme, &pg, root.path(), None).await;
    let globex_client = Client::new(&globex, &pg, root.path(), None).await;
    let a = Tenant::start(
        engine.clone(),
        &acme,
        config("tenants", json!({})),
        acme_client.clone(),
    )
    .await;
    let mut refused = config("tenants", json!({}));
    refused["token"] = json!("refused-tok_live_51SECRETVALUE");
    let g = Tenant::start(engine.clone(), &globex, refused, globex_client.clone()).await;

    let run = sync(&a, "items", "full", db("items")).await;
    assert_eq!(run["records"], 40);
    let state = g.ok("state", json!({})).await;
    assert_eq!(state, json!({"streams": []}), "no cursor or run of acme");
    let remap = g
        .ok(
            "remap",
            json!({"stream": "items", "destination": db("items"), "wait_ms": WAIT}),
        )
        .await;
    assert_eq!(remap["records"], 0, "no raw record of acme: {remap}");
    let reset = g.ok("reset", json!({"stream": "items"})).await;
    assert_eq!(reset["reset"], 0);
    assert_eq!(
        a.ok("state", json!({})).await["streams"][0]["cursor"],
        json!(1040),
        "globex's reset left acme's cursor"
    );
    let error = g
        .call_with_payload("check", json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::UpstreamCredentialsInvalid);
    for text in [
        error.to_string(),
        state.to_string(),
        run.to_string(),
        a.ok("state", json!({})).await.to_string(),
    ] {
        assert!(!text.contains("SECRETVALUE"), "{text}");
    }

    // An OAuth2 token kept for acme's connection is in acme's store alone.
    let token: crate::http::Token = serde_json::from_value(json!({
        "access_token": "at_SECRETVALUE", "refresh_token": "rt_SECRETVALUE",
        "obtained_at": 1, "expires_at": 3601, "origin": "vec"
    }))
    .unwrap();
    let acme_tokens =
        crate::sync::tokens::StoreTokens(engine.tenant(&acme).await.unwrap().store.clone());
    let globex_tokens =
        crate::sync::tokens::StoreTokens(engine.tenant(&globex).await.unwrap().store.clone());
    use crate::http::TokenStore;
    acme_tokens.save("vec", &token).await.unwrap();
    let loaded = acme_tokens.load("vec").await.unwrap().unwrap();
    assert_eq!(format!("{loaded:?}"), format!("{token:?}"));
    assert!(globex_tokens.load("vec").await.unwrap().is_none());
    let globex_file = std::fs::read(root.path().join("vec/globex.db")).unwrap();
    let wal = std::fs::read(root.path().join("vec/globex.db-wal")).unwrap_or_default();
    for bytes in [globex_file, wal] {
        assert!(!String::from_utf8_lossy(&bytes).contains("SECRETVALUE"));
    }
}

/// An instance with no provider client (a host that gives none) refuses a sync before it
/// records a run that could never write.
#[tokio::test]
async fn without_a_client_a_sync_is_refused_and_records_no_run() {
    use switchyard_spi::{CallContext, Invocation, StartContext};
    let root = tempfile::tempdir().unwrap();
    let _source = Source::seeded("clientless", 5, 5);
    let engine = factory(&root.path().join("vec"));
    let acme = tenant("acme");
    let instance = engine
        .start(StartContext {
            tenant: acme.clone(),
            config: config("clientless", json!({})),
            client: None,
        })
        .await
        .unwrap();
    let ctx = CallContext {
        tenant: acme,
        request_id: "sync-test".into(),
        subject: None,
        service: None,
    };
    let call = |action: &str, params: Value| Invocation {
        action: action.into(),
        params,
        payload: None,
    };
    let refused = instance
        .invoke(
            &ctx,
            call(
                "sync",
                json!({"stream": "items", "mode": "full", "destination": db("items")}),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::ProviderUnavailable);
    let state = instance
        .invoke(&ctx, call("state", json!({})))
        .await
        .unwrap();
    assert_eq!(state, json!({"streams": []}));
}

/// Until a tenant configures the connector its config is `{}`: the instance runs, and every
/// call answers provider_not_configured, not a retryable outage.
#[tokio::test]
async fn an_unconfigured_connector_answers_provider_not_configured() {
    use switchyard_spi::{CallContext, Invocation, StartContext};
    let root = tempfile::tempdir().unwrap();
    let engine = factory(&root.path().join("vec"));
    let acme = tenant("acme");
    let instance = engine
        .start(StartContext {
            tenant: acme.clone(),
            config: json!({}),
            client: None,
        })
        .await
        .expect("an unconfigured connector starts");
    let ctx = CallContext {
        tenant: acme,
        request_id: "sync-test".into(),
        subject: None,
        service: None,
    };
    for action in ["state", "check", "discover"] {
        let call = Invocation {
            action: action.into(),
            params: json!({}),
            payload: None,
        };
        let refused = instance.invoke(&ctx, call).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::ProviderNotConfigured, "{action}");
    }
}
