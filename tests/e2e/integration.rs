//! The integration domain through `switchyard serve`: a sync that `kill -9` interrupts
//! resumes after the restart without losing or doubling a record; a Shopify order arriving by
//! webhook becomes one order in `orders` however often it is delivered; and one tenant's
//! connections, cursors, raw records and tokens stay its own, with no token in any answer or
//! log line. No real shop is reachable here: the source is the fake Shopify Admin API.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Api, Server, tenant_with_key, write_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_integration_fakes::shopify::{FakeShopify, Options};

const SHOPIFY: &str = "integration/shopify";

/// An operator config that lets tenants reach loopback (where the fake shop listens) and
/// keep secret files under `<dir>/tenant-secrets/<tenant>/`; answers the config's path.
pub fn operator_config(dir: &Path) -> String {
    let secrets = dir.join("tenant-secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    write_config(
        dir,
        &format!(
            "[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n[tenancy.secrets]\nfile_dir = \"{}/{{tenant}}\"\n",
            secrets.display()
        ),
    )
}

/// Writes `value` as tenant `tenant`'s secret file `name`; answers its reference.
pub fn tenant_secret(dir: &Path, tenant: &str, name: &str, value: &str) -> String {
    let folder = dir.join("tenant-secrets").join(tenant);
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(name);
    std::fs::write(&path, value).unwrap();
    format!("secret://file{}", path.display())
}

/// Configures the tenant's Shopify connection to `fake`, with the secrets as references.
async fn configure_shopify(api: &Api, dir: &Path, tenant: &str, fake: &FakeShopify, extra: Value) {
    let options = fake.options();
    let mut config = json!({
        "shop_url": fake.base_url(),
        "access_token": tenant_secret(dir, tenant, "shopify-token", &options.access_token),
        "webhook_secret": tenant_secret(dir, tenant, "shopify-whsec", &options.webhook_secret),
        "allowed_networks": ["127.0.0.0/8"],
    });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    let (status, body) = api
        .post(
            &format!("/providers/{SHOPIFY}/configure"),
            json!({"config": config}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "configure shopify: {body}");
    assert!(
        !body.to_string().contains(&options.access_token),
        "the access token came back: {body}"
    );
}

/// The run of `stream` into `table` as `state` shows it (`None` before the first).
async fn last_run(api: &Api, stream: &str, table: &str) -> Option<Value> {
    let state = api.ok(SHOPIFY, "state", json!({"stream": stream})).await;
    state["streams"]
        .as_array()?
        .iter()
        .find(|s| s["destination"]["db"]["table"] == table)
        .and_then(|s| s.get("last_run").cloned())
}

/// Waits until the run of `stream` into `table` is no longer running; answers it.
async fn finished(api: &Api, stream: &str, table: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if let Some(run) = last_run(api, stream, table).await
            && run["status"] != "running"
        {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not finish within {within:?}: {:?}",
            last_run(api, stream, table).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn query(api: &Api, sql: &str) -> Vec<Value> {
    let answer = api.ok("db/sqlite", "query", json!({"sql": sql})).await;
    answer["rows"].as_array().expect("rows").clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_mid_sync_of_50000_records_resumes_to_each_record_exactly_once_fake_shopify() {
    const RECORDS: usize = 50_000;
    let fake = FakeShopify::start(Options::unlimited()).await;
    let ids: BTreeSet<String> = fake
        .add("orders", RECORDS)
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = operator_config(dir.path());
    let mut server = Server::start_with(dir.path(), &["--config", &config]);
    let key = tenant_with_key(dir.path(), "acme", "*");
    let api = Api::new(&server, &key);
    configure_shopify(
        &api,
        dir.path(),
        "acme",
        &fake,
        json!({"page_size": 250, "streams": {"orders": {"mapping": {"name": ".name", "total": ".total_price"}}}}),
    )
    .await;

    let sync = json!({
        "stream": "orders",
        "mode": "incremental",
        "destination": {"db": {"provider": "db/sqlite", "table": "shop_orders"}},
    });
    let started = api.ok(SHOPIFY, "sync", sync.clone()).await;
    assert_eq!(started["status"], "running", "{started}");

    // Kill the process once a good part, not all, of the records is written.
    let deadline = Instant::now() + Duration::from_secs(120);
    let written_before_kill = loop {
        let run = last_run(&api, "orders", "shop_orders")
            .await
            .expect("a run");
        let written = run["records"].as_u64().unwrap_or(0);
        assert_eq!(
            run["status"], "running",
            "the sync ended before the kill: {run}"
        );
        if written >= 10_000 {
            break written;
        }
        assert!(Instant::now() < deadline, "the sync never got going: {run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server.kill9();
    let calls_at_kill = fake.calls();

    let server = Server::start_with(dir.path(), &["--config", &config]);
    let api = Api::new(&server, &key);
    // The interrupted run resumes when the tenant's instance starts again (this very call
    // starts it); a new sync call answers the run already under way.
    let resumed = api.ok(SHOPIFY, "sync", sync).await;
    let run = finished(&api, "orders", "shop_orders", Duration::from_secs(300)).await;
    assert_eq!(run["status"], "completed", "{run} (resumed as {resumed})");

    let counts = query(
        &api,
        "SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS distinct_ids, SUM(deleted) AS deleted \
         FROM shop_orders",
    )
    .await;
    assert_eq!(counts[0]["n"], RECORDS, "{counts:?}");
    assert_eq!(counts[0]["distinct_ids"], RECORDS, "{counts:?}");
    assert_eq!(counts[0]["deleted"], 0, "{counts:?}");
    // Every one of the shop's ids, read back a page at a time (a query answers 10,000 rows).
    let mut held = BTreeSet::new();
    for page in 0..RECORDS / 10_000 {
        let rows = query(
            &api,
            &format!(
                "SELECT id FROM shop_orders ORDER BY id LIMIT 10000 OFFSET {}",
                page * 10_000
            ),
        )
        .await;
        held.extend(
            rows.iter()
                .map(|r| r["id"].as_str().expect("a text id").to_owned()),
        );
    }
    assert_eq!(held, ids, "the destination's records are not the shop's");

    // The stored cursor is where the destination's data says: its largest cursor value.
    let max = query(&api, "SELECT MAX(cursor) AS max FROM shop_orders").await;
    let cursor = run["cursor"].as_str().expect("a cursor").to_owned();
    assert_eq!(
        max[0]["max"].as_str(),
        Some(cursor.as_str()),
        "the cursor is not the destination's newest record"
    );
    // The resumed run read on from the checkpoint, not the whole shop again.
    let pages_after = fake.calls() - calls_at_kill;
    let all_pages = (RECORDS / 250) as u64;
    eprintln!(
        "kill -9 after {written_before_kill} records written; after the restart {pages_after} \
         calls to the shop (of {all_pages} pages); {RECORDS} rows, each once; cursor {cursor}"
    );
    assert!(
        pages_after < all_pages,
        "after the restart the sync read {pages_after} pages of {all_pages}: it did not resume \
         from its checkpoint ({written_before_kill} records were written before the kill)"
    );
}

/// A Shopify `orders/create` webhook body for one line of `sheet`.
fn shopify_order(id: u64, quantity: u32) -> Value {
    json!({
        "id": id,
        "name": format!("#{}", id % 10_000),
        "currency": "EUR",
        "updated_at": "2026-12-01T10:00:00+00:00",
        "customer": {"id": 115_310_627_314_723_954u64, "email": "buyer@example.com"},
        "line_items": [{"id": id + 1, "sku": "sheet", "quantity": quantity, "price": "4.50"}],
    })
}

/// The mapping from a Shopify order to `orders`' `create` params.
fn order_mapping() -> Value {
    json!({
        "order_id": "\"shopify-\\(.id)\"",
        "customer": "\"shopify-\\(.customer.id)\"",
        "warehouse": "\"main\"",
        "lines": ". as $order | [.line_items[] | {item: .sku, quantity: (.quantity | tostring), unit_price: .price, currency: $order.currency}]",
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shopify_order_by_webhook_becomes_one_order_however_often_delivered_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = operator_config(dir.path());
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    for (service, action, params) in [
        (
            "inventory",
            "define_item",
            json!({"item": "sheet", "name": "Sheet", "uom": "EA"}),
        ),
        (
            "inventory",
            "define_warehouse",
            json!({"warehouse": "main", "name": "Main"}),
        ),
        (
            "inventory",
            "define_bin",
            json!({"warehouse": "main", "bin": "main"}),
        ),
        (
            "inventory",
            "receive",
            json!({"item": "sheet", "warehouse": "main", "bin": "main", "quantity": "10", "unit_cost": "4.00"}),
        ),
        (
            "orders",
            "define_customer",
            json!({"customer": "shopify-115310627314723954", "name": "Buyer"}),
        ),
    ] {
        api.service_ok(service, action, params).await;
    }
    configure_shopify(
        &api,
        dir.path(),
        "acme",
        &fake,
        json!({"streams": {"orders": {
            "mapping": order_mapping(),
            "destination": {"service": {"name": "orders", "action": "create"}},
        }}}),
    )
    .await;

    let hook = format!("{}/inbound/acme/integration/shopify", server.base);
    let order = shopify_order(820_982_911_946_154_508, 3);
    let webhook = fake.webhook("orders/create", &order);
    // Shopify retries a delivery with the same webhook id; it may also send the same order
    // again under a new one (orders/updated with unchanged lines).
    for _ in 0..3 {
        assert_eq!(webhook.deliver(&hook).await.unwrap(), 200);
    }
    assert_eq!(
        fake.webhook("orders/create", &order)
            .deliver(&hook)
            .await
            .unwrap(),
        200
    );
    let created = api
        .service_ok(
            "orders",
            "get",
            json!({"order_id": "shopify-820982911946154508"}),
        )
        .await;
    assert_eq!(
        created["customer"], "shopify-115310627314723954",
        "{created}"
    );
    assert_eq!(
        created["lines"].as_array().map(Vec::len),
        Some(1),
        "{created}"
    );
    // Reserved once: 3 of the 10 sheets, however many deliveries.
    let stock = api
        .service_ok(
            "inventory",
            "stock",
            json!({"item": "sheet", "warehouse": "main"}),
        )
        .await;
    let reserved: f64 = stock["rows"][0]["reserved"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_default();
    assert_eq!(reserved, 3.0, "{stock}");

    // A forged delivery (signed with another secret) is refused and creates nothing.
    let forged = shopify_order(820_982_911_946_154_999, 1);
    let body = serde_json::to_vec(&forged).unwrap();
    let refused = reqwest::Client::new()
        .post(&hook)
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-webhook-id", "forged-1")
        .header(
            "x-shopify-hmac-sha256",
            switchyard_integration_fakes::shopify::sign("not-the-apps-secret", &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let (status, missing) = api
        .post(
            "/services/orders/get",
            json!({"params": {"order_id": "shopify-820982911946154999"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_reaches_none_of_another_tenants_connections_cursors_raw_records_or_tokens_fake_shopify()
 {
    let fake = FakeShopify::start(Options::default()).await;
    let acme_orders = fake.add("orders", 30);
    let dir = tempfile::tempdir().unwrap();
    let config = operator_config(dir.path());
    // The loudest log level a user may run: still no token in it.
    let mut env = vec![("SWITCHYARD_LOG", "debug".to_owned())];
    let server = Server::start_with_env(dir.path(), &["--config", &config], &mut env);
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    let token = fake.options().access_token;
    let whsec = fake.options().webhook_secret;
    configure_shopify(
        &acme,
        dir.path(),
        "acme",
        &fake,
        json!({
            "page_size": 10,
            "events": {"provider": "bus/embedded", "records": true},
            "streams": {"orders": {"mapping": {"name": ".name"}}},
        }),
    )
    .await;
    let into = |table: &str| json!({"db": {"provider": "db/sqlite", "table": table}});
    let run = acme
        .ok(
            SHOPIFY,
            "sync",
            json!({"stream": "orders", "mode": "incremental", "destination": into("orders"), "wait_ms": 20000}),
        )
        .await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["records"], acme_orders.len(), "{run}");

    // globex's view of integration/shopify: unconfigured, without cursors or runs.
    let (status, described) = globex.get(&format!("/providers/{SHOPIFY}")).await;
    assert_eq!(status, StatusCode::OK, "{described}");
    assert!(
        !described.to_string().contains("shopify-token"),
        "{described}"
    );
    let (status, state) = globex
        .post(
            &format!("/providers/{SHOPIFY}/state"),
            json!({"params": {}}),
        )
        .await;
    // Unconfigured for globex: every call answers provider_not_configured.
    assert!(
        status == StatusCode::CONFLICT && state["code"] == "provider_not_configured",
        "globex sees acme's cursors: {status} {state}"
    );
    // Unconfigured, globex cannot sync or re-map acme's kept raw records into its tables.
    let (status, remapped) = globex
        .post(
            &format!("/providers/{SHOPIFY}/remap"),
            json!({"params": {"stream": "orders", "destination": into("stolen"), "wait_ms": 20000}}),
        )
        .await;
    assert_ne!(
        status,
        StatusCode::OK,
        "globex re-mapped acme's raw records: {remapped}"
    );
    // Configured (here against the same fake shop, with a webhook secret of its own), globex
    // starts from nothing: no cursor, no raw records to re-map.
    let globex_whsec = tenant_secret(dir.path(), "globex", "own-whsec", "globex-own-app-secret");
    configure_shopify(
        &globex,
        dir.path(),
        "globex",
        &fake,
        json!({"webhook_secret": globex_whsec}),
    )
    .await;
    let state = globex.ok(SHOPIFY, "state", json!({})).await;
    assert_eq!(state["streams"], json!([]), "{state}");
    let remap = globex
        .ok(
            SHOPIFY,
            "remap",
            json!({"stream": "orders", "destination": into("stolen"), "wait_ms": 20000}),
        )
        .await;
    assert_eq!(
        remap["records"], 0,
        "globex re-mapped acme's raw records: {remap}"
    );
    // acme's table is acme's: globex's db/sqlite has none of its rows.
    let (status, theirs) = globex
        .post(
            "/providers/db/sqlite/query",
            json!({"params": {"sql": "SELECT COUNT(*) AS n FROM orders"}}),
        )
        .await;
    assert!(
        status != StatusCode::OK || theirs["data"]["rows"][0]["n"] == 0,
        "globex reads acme's rows: {theirs}"
    );
    // A webhook signed with acme's secret, sent to globex's path, is refused.
    let hook = format!("{}/inbound/globex/integration/shopify", server.base);
    let delivery = fake.webhook("orders/create", &shopify_order(1, 1));
    assert_eq!(delivery.deliver(&hook).await.unwrap(), 401);

    // No token in any answer, error, event or log line.
    let (_, acme_config) = acme.get(&format!("/providers/{SHOPIFY}")).await;
    assert!(!acme_config.to_string().contains(&token), "{acme_config}");
    assert!(
        acme_config.to_string().contains("secret://file"),
        "{acme_config}"
    );
    let (status, error) = acme
        .post(
            &format!("/providers/{SHOPIFY}/sync"),
            json!({"params": {"stream": "no_such_stream", "mode": "full", "destination": into("x")}}),
        )
        .await;
    assert_ne!(status, StatusCode::OK);
    assert!(!error.to_string().contains(&token), "{error}");
    let events = acme
        .ok(
            "bus/embedded",
            "replay",
            json!({"topic": "integration", "from_offset": 0, "max_records": 1000}),
        )
        .await;
    let events_text = events.to_string();
    assert!(
        events_text.contains("integration.sync.completed"),
        "no sync event was published: {events_text}"
    );
    assert!(
        events_text.contains("integration.record.upserted"),
        "{events_text}"
    );
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    for secret in [&token, &whsec] {
        assert!(
            !events_text.contains(secret.as_str()),
            "an event shows a secret"
        );
        assert!(!log.contains(secret.as_str()), "the log shows a secret");
    }
    assert!(log.len() > 1000, "the debug log is nearly empty: {log}");
}
