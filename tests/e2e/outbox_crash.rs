//! The outbox under a crash: 10,000 writes, each with its event in the same transaction, while
//! `switchyard relay` copies the outbox to the bus and is killed with SIGKILL midway. After a
//! restart every event is on the bus at least once, and a consumer deduplicating with an inbox
//! applies each exactly once.

use crate::common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, tenant_with_key};
use serde_json::json;
use switchyard_client::{HttpClient, ProviderClient};
use switchyard_contracts::{Event, TenantId};
use switchyard_outbox::{Inbox, Outbox};

const DB: &str = "db/sqlite";
const BUS: &str = "bus/embedded";
const WRITES: usize = 10_000;
const WRITERS: usize = 4;

fn spawn_relay(server: &Server, key: &str, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(common::BIN)
        .args(["relay", "--gateway", &server.base, "--tenant", "acme"])
        .args(["--db", DB, "--bus", BUS, "--idle-ms", "20"])
        .env("SWITCHYARD_API_KEY", key)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("switchyard relay starts")
}

async fn count(client: &HttpClient, sql: &str) -> u64 {
    let answer = client
        .invoke(DB, "query", json!({"sql": sql}))
        .await
        .unwrap();
    answer["rows"][0]["n"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_killed_mid_stream_loses_no_event_and_an_inbox_applies_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let key = tenant_with_key(dir.path(), "acme", "*");
    let tenant = TenantId::parse("acme").unwrap();
    let client = Arc::new(HttpClient::new(&server.base, tenant.clone(), &key));
    let outbox = Outbox::new(DB).unwrap();
    outbox.install(&*client).await.unwrap();
    client
        .invoke(
            DB,
            "execute",
            json!({"sql": "CREATE TABLE orders (id TEXT PRIMARY KEY)"}),
        )
        .await
        .unwrap();
    let relay_log = dir.path().join("relay.log");
    let mut relay = spawn_relay(&server, &key, &relay_log);

    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (client, outbox, tenant) = (client.clone(), outbox.clone(), tenant.clone());
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..WRITES / WRITERS {
                let order = format!("o-{w}-{n}");
                let event = Event::new(
                    "orders.order.placed",
                    "/tests/outbox",
                    "orders",
                    json!({ "order_id": order }),
                )
                .with_key(order.clone());
                client
                    .invoke(
                        DB,
                        "transaction",
                        json!({"statements": [
                            {"sql": "INSERT INTO orders (id) VALUES (?1)", "params": [order]},
                            outbox.statement(&tenant, &event),
                        ]}),
                    )
                    .await
                    .unwrap();
                ids.push(event.id);
            }
            ids
        }));
    }

    // Kill the relay once it is well into the stream, while the writers are still going.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let sent = count(
            &client,
            "SELECT COUNT(*) AS n FROM switchyard_outbox WHERE sent_at IS NOT NULL",
        )
        .await;
        if sent >= 2_000 {
            break;
        }
        assert!(Instant::now() < deadline, "the relay never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relay.kill().unwrap();
    relay.wait().unwrap();
    let at_kill = count(
        &client,
        "SELECT COUNT(*) AS n FROM switchyard_outbox WHERE sent_at IS NOT NULL",
    )
    .await;
    assert!(
        at_kill < WRITES as u64,
        "the relay was killed only after the whole stream"
    );
    let mut relay = spawn_relay(&server, &key, &relay_log);

    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    assert_eq!(written.len(), WRITES);
    // A liveness guard, not a speed goal: alone this takes about a minute, but the suite runs
    // it beside browser, bench and build tests on two cores.
    let deadline = Instant::now() + Duration::from_secs(360);
    while count(
        &client,
        "SELECT COUNT(*) AS n FROM switchyard_outbox WHERE sent_at IS NULL",
    )
    .await
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "the restarted relay left rows unsent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.kill().unwrap();
    relay.wait().unwrap();
    let wrote_and_relayed = started.elapsed();

    // A consumer reading the whole topic, deduplicating with its inbox.
    let inbox = Inbox::new(DB, "billing").unwrap();
    inbox.install(&*client).await.unwrap();
    client
        .invoke(
            DB,
            "execute",
            json!({"sql": "CREATE TABLE billed (event_id TEXT PRIMARY KEY)"}),
        )
        .await
        .unwrap();
    let (mut delivered, mut applied, mut seen_on_bus) = (0usize, 0usize, HashSet::new());
    let mut offset = 0;
    loop {
        let page = client
            .invoke(
                BUS,
                "replay",
                json!({"topic": "orders", "from_offset": offset, "max_records": 1000}),
            )
            .await
            .unwrap();
        let records = page["records"].as_array().unwrap();
        if records.is_empty() {
            break;
        }
        for record in records {
            let id = record["headers"]["ce_id"].as_str().unwrap().to_owned();
            delivered += 1;
            let apply =
                vec![json!({"sql": "INSERT INTO billed (event_id) VALUES (?1)", "params": [id]})];
            if inbox.apply_once(&*client, &id, apply).await.unwrap() {
                applied += 1;
            }
            seen_on_bus.insert(id);
        }
        offset = page["next_offset"].as_u64().unwrap();
    }
    eprintln!(
        "outbox crash: {WRITES} writes relayed in {wrote_and_relayed:?}; relay killed after {at_kill} sent; \
         {delivered} deliveries, {} duplicates absorbed",
        delivered - applied
    );
    assert_eq!(
        seen_on_bus, written,
        "an event is missing from the bus, or a stranger is on it"
    );
    assert_eq!(
        applied, WRITES,
        "the inbox applied some event twice or not at all"
    );
    assert_eq!(
        count(&client, "SELECT COUNT(*) AS n FROM billed").await,
        WRITES as u64
    );
}
