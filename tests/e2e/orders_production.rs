//! The orders journey on production engines, through the gateway: `switchyard serve` keeps the
//! orders, the inventory and the ledger on PostgreSQL and relays the orders' outbox to Kafka
//! (tansu); a loopback receiver checks each webhook's Standard Webhooks signature with the
//! `standardwebhooks` crate; `switchyard relay` and `switchyard annotate-orders` run as their
//! own processes, as an operator would run them.

use crate::common;
#[allow(dead_code)]
#[path = "../../provider-runtime/conformance/src/integration/receiver.rs"]
mod receiver;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Api, Database, Server, eventually, free_port, tenant_with_key, write_config};
use receiver::{Port, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The endpoints' signing secret, in the tenant's secret directory.
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A worker process (`relay`, `annotate-orders`), killed when dropped.
struct Worker(Child);

impl Worker {
    fn spawn(args: &[&str], key: &str) -> Worker {
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .env("SWITCHYARD_API_KEY", key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a switchyard worker");
        Worker(child)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve` on PostgreSQL and Kafka for tenant acme, with its relay and annotator running.
struct Stack {
    api: Api,
    _workers: Vec<Worker>,
    _server: Server,
    _dir: tempfile::TempDir,
    _database: Database,
}

impl Stack {
    async fn start(purpose: &str, webhook_url: &str) -> Stack {
        let brokers = std::env::var("SWITCHYARD_TEST_KAFKA_BROKERS").expect(
            "SWITCHYARD_TEST_KAFKA_BROKERS is not set: run the suite with scripts/test (it starts tansu)",
        );
        let database = Database::create(purpose);
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut env = vec![
            ("SWITCHYARD_POSTGRES_URL", database.url.clone()),
            ("SWITCHYARD_POSTGRES_APP_PASSWORD", "orders-e2e".to_owned()),
            ("SWITCHYARD_KAFKA_BROKERS", brokers),
            (
                "SWITCHYARD_KAFKA_NAMESPACE",
                format!("{purpose}{}x{port}", std::process::id()),
            ),
            ("SWITCHYARD_LEDGER_DB", "db/postgres".to_owned()),
            ("SWITCHYARD_INVENTORY_DB", "db/postgres".to_owned()),
            ("SWITCHYARD_ORDERS_DB", "db/postgres".to_owned()),
            ("SWITCHYARD_ORDERS_BUS", "bus/kafka".to_owned()),
            ("SWITCHYARD_ORDERS_WEBHOOK", "erp".to_owned()),
            // The workers run as their own processes here, as an operator may run them.
            ("SWITCHYARD_HOSTED_WORKERS", "off".to_owned()),
        ];
        let secrets = dir.path().join("tenant-secrets");
        std::fs::create_dir_all(secrets.join("acme")).unwrap();
        std::fs::write(secrets.join("acme/whsec"), WHSEC).unwrap();
        let config = write_config(
            dir.path(),
            &format!(
                "[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n[tenancy.secrets]\nfile_dir = \"{}/{{tenant}}\"\n",
                secrets.display()
            ),
        );
        let server = Server::start_with_env(dir.path(), &["--config", &config], &mut env);
        let key = tenant_with_key(dir.path(), "acme", "*");
        let api = Api::new(&server, &key);
        let whsec = format!("secret://file{}/acme/whsec", secrets.display());
        configure_webhook(&api, webhook_url, &whsec).await;
        for (action, params) in [
            (
                "define_item",
                json!({"item": "sheet", "name": "Sheet", "uom": "EA"}),
            ),
            (
                "define_warehouse",
                json!({"warehouse": "main", "name": "Main"}),
            ),
            ("define_bin", json!({"warehouse": "main", "bin": "main"})),
            (
                "receive",
                json!({"item": "sheet", "warehouse": "main", "bin": "main",
                       "quantity": "10", "unit_cost": "4.00"}),
            ),
        ] {
            call(&api, "inventory", action, params).await;
        }
        call(
            &api,
            "orders",
            "define_customer",
            json!({"customer": "globex", "name": "Globex Retail"}),
        )
        .await;
        let gateway = server.base.clone();
        let workers = vec![
            Worker::spawn(
                &[
                    "relay",
                    "--gateway",
                    &gateway,
                    "--tenant",
                    "acme",
                    "--db",
                    "db/postgres",
                    "--bus",
                    "bus/kafka",
                    "--idle-ms",
                    "100",
                ],
                &key,
            ),
            Worker::spawn(
                &[
                    "annotate-orders",
                    "--gateway",
                    &gateway,
                    "--tenant",
                    "acme",
                    "--bus",
                    "bus/kafka",
                    "--idle-ms",
                    "200",
                ],
                &key,
            ),
        ];
        Stack {
            api,
            _workers: workers,
            _server: server,
            _dir: dir,
            _database: database,
        }
    }
}

async fn configure_webhook(api: &Api, url: &str, secret: &str) {
    let (status, body) = api
        .post(
            "/providers/integration/webhook/configure",
            json!({"config": {
                "endpoints": {"erp": {"url": url, "secret": secret}},
                "allowed_networks": ["127.0.0.0/8"],
                "max_attempts": 3,
                "initial_backoff_ms": 20,
                "max_backoff_ms": 50,
                "attempt_timeout_ms": 2000,
                "max_total_ms": 5000
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "configure webhook: {body}");
    assert!(
        !body.to_string().contains(WHSEC),
        "the signing secret came back: {body}"
    );
}

async fn call(api: &Api, service: &str, action: &str, params: Value) -> Value {
    let (status, body) = api
        .post(
            &format!("/services/{service}/{action}"),
            json!({"params": params}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{service}/{action}: {body}");
    body["data"].clone()
}

/// `create` with an `Idempotency-Key`, answering the status and the whole body.
async fn create(api: &Api, order: &Value, key: &str) -> (StatusCode, Value) {
    let response = api
        .raw()
        .post(format!("{}/services/orders/create", api.base))
        .bearer_auth(api.key())
        .header("idempotency-key", key)
        .json(&json!({"params": order}))
        .send()
        .await
        .unwrap();
    common::decode(response).await
}

fn order(id: &str, quantity: &str) -> Value {
    json!({"order_id": id, "customer": "globex", "warehouse": "main",
           "lines": [{"item": "sheet", "quantity": quantity, "unit_price": "12.50", "currency": "EUR"}]})
}

async fn stock(api: &Api) -> (String, String) {
    let answer = call(
        api,
        "inventory",
        "stock",
        json!({"item": "sheet", "warehouse": "main", "bin": "main"}),
    )
    .await;
    let row = &answer["rows"][0];
    (
        row["on_hand"].as_str().unwrap().to_owned(),
        row["available"].as_str().unwrap().to_owned(),
    )
}

fn step<'a>(order: &'a Value, name: &str) -> &'a Value {
    order["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {order}"))
}

/// The CloudEvents types on the tenant's `orders` topic in Kafka, read through the gateway.
async fn bus_types(api: &Api) -> Vec<String> {
    let answer = api
        .ok(
            "bus/kafka",
            "replay",
            json!({"topic": "orders", "from_offset": 0, "max_records": 100}),
        )
        .await;
    answer["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["headers"]["ce_tenantid"], "acme", "{r}");
            r["headers"]["ce_type"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_on_postgres_and_kafka_is_signed_annotated_from_the_bus_fulfilled_or_cancelled() {
    let receiver = Receiver::start(WHSEC).await;
    let stack = Stack::start("ordj", &receiver.url()).await;
    let api = &stack.api;

    // The same Idempotency-Key twice: one order, one reservation, one webhook.
    let (status, first) = create(api, &order("SO-1", "3"), "create-SO-1").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, again) = create(api, &order("SO-1", "3"), "create-SO-1").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["data"], first["data"],
        "the replay is not the same order"
    );
    assert_eq!(step(&first["data"], "webhook")["status"], "ok", "{first}");
    assert_eq!(stock(api).await, ("10".into(), "7".into()));
    let hooks = receiver.requests();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert!(hooks[0].verified, "the signature did not verify");
    assert_eq!(hooks[0].body["type"], "orders.order.created");
    assert_eq!(hooks[0].body["data"]["order_id"], "SO-1");

    // The relay carries the event to Kafka; the annotator reads it and tags the order.
    eventually(
        "orders.order.created on Kafka",
        Duration::from_secs(30),
        || async {
            bus_types(api)
                .await
                .contains(&"orders.order.created".to_owned())
                .then_some(())
        },
    )
    .await;
    let annotated = eventually("the annotation", Duration::from_secs(30), || async {
        let order = call(api, "orders", "get", json!({"order_id": "SO-1"})).await;
        order["category"].is_string().then_some(order)
    })
    .await;
    assert!(annotated["risk"].is_string(), "{annotated}");

    call(api, "orders", "confirm", json!({"order_id": "SO-1"})).await;
    let fulfilled = call(api, "orders", "fulfil", json!({"order_id": "SO-1"})).await;
    assert_eq!(fulfilled["status"], "fulfilled", "{fulfilled}");
    assert_eq!(stock(api).await, ("7".into(), "7".into()));
    for (account, expected) in [("4000-EUR", "37.5000"), ("5000-EUR", "12.0000")] {
        let balance = call(api, "ledger", "balance", json!({"account": account})).await;
        assert_eq!(balance["balance"], expected, "{account}: {balance}");
    }
    let trial = call(api, "ledger", "trial_balance", json!({})).await;
    assert_eq!(trial["balanced"], true, "{trial}");

    // Cancel path: the reservation comes back, the ledger does not move.
    call(api, "orders", "create", order("SO-2", "2")).await;
    assert_eq!(stock(api).await, ("7".into(), "5".into()));
    let cancelled = call(api, "orders", "cancel", json!({"order_id": "SO-2"})).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(stock(api).await, ("7".into(), "7".into()));
    let after = call(api, "ledger", "trial_balance", json!({})).await;
    assert_eq!(after["currencies"], trial["currencies"], "a cancel posted");

    let expected = [
        "orders.order.created",
        "orders.order.confirmed",
        "orders.order.fulfilled",
        "orders.order.created",
        "orders.order.cancelled",
    ];
    eventually(
        "every order event on Kafka",
        Duration::from_secs(30),
        || async { (bus_types(api).await == expected).then_some(()) },
    )
    .await;
    assert_eq!(receiver.requests().len(), 2, "one webhook per order");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_receiver_dead_letters_the_webhook_and_a_dead_ai_delays_the_annotation() {
    let port = Port::closed().await;
    let stack = Stack::start("ordf", &port.url()).await;
    let api = &stack.api;

    // The AI provider is down while the order is created.
    let (status, stopped) = api.post("/providers/ai/local/stop", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    let created = call(api, "orders", "create", order("SO-3", "1")).await;
    assert_eq!(created["status"], "created", "the order waits for nothing");
    let webhook = step(&created, "webhook");
    assert_eq!(webhook["status"], "failed", "{created}");
    assert!(
        webhook["error"].as_str().unwrap().contains("dead-lettered"),
        "{created}"
    );
    let letters = api
        .ok("integration/webhook", "dead_letters", json!({"limit": 10}))
        .await;
    let letters = letters["dead_letters"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["attempts"], 3, "{letters:?}");

    // The annotator has read the event and keeps the order for later.
    let waiting = eventually("a failed annotation", Duration::from_secs(30), || async {
        let order = call(api, "orders", "get", json!({"order_id": "SO-3"})).await;
        order["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "annotate" && s["status"] == "failed")
            .then_some(order)
    })
    .await;
    assert!(waiting.get("category").is_none(), "{waiting}");

    // The receiver comes back: redeliver succeeds, signed like the first attempt.
    let receiver = port.open(WHSEC).await;
    let delivered = api
        .ok(
            "integration/webhook",
            "redeliver",
            json!({"message_id": letters[0]["message_id"]}),
        )
        .await;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    let hooks = receiver.requests();
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].verified);
    assert_eq!(hooks[0].body["data"]["order_id"], "SO-3");

    // The AI provider comes back: the order is annotated without anyone asking again.
    let (status, started) = api.post("/providers/ai/local/start", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let annotated = eventually(
        "the annotation after recovery",
        Duration::from_secs(30),
        || async {
            let order = call(api, "orders", "get", json!({"order_id": "SO-3"})).await;
            order["category"].is_string().then_some(order)
        },
    )
    .await;
    assert_eq!(step(&annotated, "annotate")["status"], "ok", "{annotated}");
}
