//! integration/shopify's syncs through the generic engine, as `switchyard` hosts it
//! (`builtins`), into PostgreSQL through `db/postgres`: the fake Shopify Admin API on loopback
//! is the system (no real shop is reachable here) and counts the calls it serves, so "a remap
//! calls the source 0 times" is measured at the source.
//!
//! Needs `SWITCHYARD_TEST_POSTGRES_URL`; fails without it.

#[path = "support/destinations.rs"]
mod destinations;

use std::path::Path;
use std::sync::Arc;

use destinations::{Client, Tenant, TestDatabase, tenant};
use serde_json::{Value, json};
use switchyard_integration_fakes::shopify::{FakeShopify, Options};
use switchyard_provider_integration::builtins;
use switchyard_spi::tenancy::{EgressCeiling, Tenancy};
use switchyard_spi::{ErrorCode, Host, ProviderFactory};

const WAIT: u64 = 25_000;

/// integration/shopify as `switchyard` lists it, loopback opened for the fake.
fn engine(data: &Path) -> Arc<dyn ProviderFactory> {
    let tenancy = Tenancy {
        egress: EgressCeiling {
            allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
            allowed_ports: Vec::new(),
        },
        ..Tenancy::default()
    };
    let host = Host {
        data,
        books: data,
        tenancy: &tenancy,
    };
    builtins(&host)
        .unwrap()
        .into_iter()
        .find(|f| f.descriptor().name == "shopify")
        .unwrap()
}

fn config(fake: &FakeShopify, mapping: Value) -> Value {
    let options = fake.options();
    json!({
        "shop_url": fake.base_url(),
        "access_token": options.access_token,
        "webhook_secret": options.webhook_secret,
        "page_size": 50,
        "streams": {"orders": {
            "mapping": mapping,
            "destination": {"db": {"provider": "db/postgres", "table": "shop_orders"}},
        }},
    })
}

async fn record(client: &Client, id: u64) -> Value {
    let rows = client
        .rows(&format!(
            "SELECT record, deleted FROM shop_orders WHERE id = '{id}'"
        ))
        .await;
    let mut record: Value = serde_json::from_str(rows[0]["record"].as_str().unwrap()).unwrap();
    record["_deleted"] = rows[0]["deleted"].clone();
    record
}

#[tokio::test]
async fn orders_sync_into_postgres_remap_with_0_calls_and_tombstones_fake_shopify() {
    let fake = FakeShopify::start(Options::unlimited()).await;
    let ids = fake.add("orders", 120);
    let pg = TestDatabase::create("shopify").await;
    let data = tempfile::tempdir().unwrap();
    let engine = engine(data.path());
    let acme = tenant("acme");
    let client = Client::new(&acme, &pg, data.path(), None).await;
    let first_mapping = json!({"order_id": ".id", "total": ".total_price"});
    let t = Tenant::start(
        engine.clone(),
        &acme,
        config(&fake, first_mapping),
        client.clone(),
    )
    .await;

    let run = t
        .ok(
            "sync",
            json!({"stream": "orders", "mode": "incremental", "wait_ms": WAIT}),
        )
        .await;
    assert_eq!(
        (run["status"].as_str(), run["records"].as_i64()),
        (Some("completed"), Some(120)),
        "{run}"
    );
    let order = fake.record("orders", ids[7]).unwrap();
    assert_eq!(
        record(&client, ids[7]).await,
        json!({"order_id": ids[7], "total": order["total_price"], "_deleted": 0})
    );
    let top = client
        .rows("SELECT max(cursor) AS top, count(*) AS n FROM shop_orders")
        .await;
    assert_eq!(top[0]["n"], 120);
    assert_eq!(
        run["cursor"], top[0]["top"],
        "the cursor is where the table says"
    );

    // A mapping change: a new instance, the same store; the kept raw orders are mapped again.
    let calls = fake.calls();
    let t = Tenant::start(
        engine.clone(),
        &acme,
        config(
            &fake,
            json!({"order_id": ".id | tostring", "email": ".email"}),
        ),
        client.clone(),
    )
    .await;
    let remap = t
        .ok("remap", json!({"stream": "orders", "wait_ms": WAIT}))
        .await;
    assert_eq!(
        (remap["status"].as_str(), remap["records"].as_i64()),
        (Some("completed"), Some(120)),
        "{remap}"
    );
    assert_eq!(fake.calls(), calls, "0 calls to the shop");
    assert_eq!(
        record(&client, ids[7]).await,
        json!({"order_id": ids[7].to_string(), "email": order["email"], "_deleted": 0})
    );

    // Orders have no deleted feed: a full refresh finds the two the shop no longer has.
    fake.delete("orders", ids[3]);
    fake.delete("orders", ids[90]);
    let full = t
        .ok(
            "sync",
            json!({"stream": "orders", "mode": "full", "wait_ms": WAIT}),
        )
        .await;
    assert_eq!(
        (full["records"].as_i64(), full["deleted"].as_i64()),
        (Some(118), Some(2)),
        "{full}"
    );
    assert_eq!(record(&client, ids[3]).await["_deleted"], 1);
    assert_eq!(record(&client, ids[90]).await["_deleted"], 1);
    assert_eq!(record(&client, ids[4]).await["_deleted"], 0);
}

#[tokio::test]
async fn a_webhook_order_lands_once_however_often_it_is_delivered_fake_shopify() {
    let fake = FakeShopify::start(Options::unlimited()).await;
    let id = fake.add("orders", 1)[0];
    let pg = TestDatabase::create("shopifyhook").await;
    let data = tempfile::tempdir().unwrap();
    let acme = tenant("acme");
    let client = Client::new(&acme, &pg, data.path(), None).await;
    let t = Tenant::start(
        engine(data.path()),
        &acme,
        config(&fake, json!({"order_id": ".id", "email": ".email"})),
        client.clone(),
    )
    .await;
    let hook = fake.webhook("orders/create", &fake.record("orders", id).unwrap());
    let receive = || {
        t.call_with_payload(
            "receive",
            json!({"headers": hook.headers}),
            Some(hook.body.clone().into()),
        )
    };
    let first = receive().await.unwrap();
    assert_eq!(
        (first["records"].as_i64(), first["duplicate"].as_bool()),
        (Some(1), Some(false)),
        "{first}"
    );
    let again = receive().await.unwrap();
    assert_eq!(again["duplicate"], true);
    let rows = client.rows("SELECT count(*) AS n FROM shop_orders").await;
    assert_eq!(rows[0]["n"], 1);
    assert_eq!(record(&client, id).await["order_id"], id);

    let mut forged = hook.body.clone();
    forged.extend_from_slice(b" ");
    let refused = t
        .call_with_payload(
            "receive",
            json!({"headers": hook.headers}),
            Some(forged.into()),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::SignatureInvalid);
}
