//! Switchyard as a cluster on loopback: two `serve` replicas, each with its own data dir, on
//! one PostgreSQL platform store, PostgreSQL for the services' books, Redis and Kafka (tansu).
//! Nobody runs `switchyard relay` or `annotate-orders`: the replicas host those workers
//! themselves, one replica per tenant at a time under a lease in the store.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Database, Server, cli, eventually, free_port, psql};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Two replicas sharing everything but their data dirs and ports.
struct Cluster {
    store: Database,
    _books: Database,
    dirs: [tempfile::TempDir; 2],
    ports: [u16; 2],
    env: Vec<(&'static str, String)>,
    replicas: std::sync::Mutex<[Option<Server>; 2]>,
    http: reqwest::Client,
}

impl Cluster {
    fn start(purpose: &str) -> Cluster {
        let env = |name: &str| {
            std::env::var(name)
                .unwrap_or_else(|_| panic!("{name} is not set: run the suite with scripts/test"))
        };
        let store = Database::create(&format!("{purpose}s"));
        let books = Database::create(&format!("{purpose}b"));
        let env = vec![
            ("SWITCHYARD_STORE_URL", store.url.clone()),
            ("SWITCHYARD_POSTGRES_URL", books.url.clone()),
            ("SWITCHYARD_POSTGRES_APP_PASSWORD", "cluster-e2e".to_owned()),
            (
                "SWITCHYARD_KAFKA_BROKERS",
                env("SWITCHYARD_TEST_KAFKA_BROKERS"),
            ),
            (
                "SWITCHYARD_KAFKA_NAMESPACE",
                format!("{purpose}{}x{}", std::process::id(), free_port()),
            ),
            ("SWITCHYARD_REDIS_URL", env("SWITCHYARD_TEST_REDIS_URL")),
            ("SWITCHYARD_LEDGER_DB", "db/postgres".to_owned()),
            ("SWITCHYARD_INVENTORY_DB", "db/postgres".to_owned()),
            ("SWITCHYARD_ORDERS_DB", "db/postgres".to_owned()),
            ("SWITCHYARD_ORDERS_BUS", "bus/kafka".to_owned()),
            ("SWITCHYARD_LIFECYCLE_BUS", "off".to_owned()),
        ];
        let cluster = Cluster {
            store,
            _books: books,
            dirs: [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()],
            ports: [free_port(), free_port()],
            env,
            replicas: std::sync::Mutex::new([None, None]),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        for replica in 0..2 {
            cluster.restart(replica);
        }
        cluster
    }

    fn base(&self, replica: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[replica])
    }

    /// Starts (again) replica `n` on its own port and data dir; waits for `/healthz`.
    fn restart(&self, replica: usize) {
        let listen = format!("127.0.0.1:{}", self.ports[replica]);
        let mut env = self.env.clone();
        let server = Server::spawn_with_env(
            self.dirs[replica].path(),
            &["serve", "--listen", &listen],
            self.ports[replica],
            &mut env,
        );
        self.replicas.lock().unwrap()[replica] = Some(server);
    }

    fn kill9(&self, replica: usize) {
        if let Some(mut server) = self.replicas.lock().unwrap()[replica].take() {
            server.kill9();
        }
    }

    /// A tenant and a key for it, made by the CLI on the shared store alone.
    fn tenant(&self, name: &str) -> String {
        let store = ["--store-url", self.store.url.as_str()];
        let scratch = tempfile::tempdir().unwrap();
        cli(
            scratch.path(),
            &[&store[..], &["tenant", "create", name]].concat(),
        );
        cli(
            scratch.path(),
            &[
                &store[..],
                &["key", "create", "--tenant", name, "--scopes", "*"],
            ]
            .concat(),
        )
        .trim()
        .to_owned()
    }

    async fn post(
        &self,
        replica: usize,
        key: &str,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let sent = self
            .http
            .post(format!("{}{path}", self.base(replica)))
            .bearer_auth(key)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(response) => common::decode(response).await,
            Err(e) => (StatusCode::BAD_GATEWAY, json!({"transport": e.to_string()})),
        }
    }

    async fn ok(&self, replica: usize, key: &str, path: &str, params: Value) -> Value {
        let (status, body) = self
            .post(replica, key, path, &json!({"params": params}))
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body["data"].clone()
    }

    /// Both replicas' logs, for a failure to show.
    fn logs(&self) -> String {
        self.dirs
            .iter()
            .map(|dir| std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    fn lease_log(&self) -> Vec<(String, i64, String, i64, i64)> {
        psql(
            &self.store.url,
            "SELECT name, epoch, holder, acquired_ms, valid_until_ms FROM worker_lease_log
              WHERE name LIKE 'workers/%' ORDER BY name, epoch",
        )
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            (
                f[0].to_owned(),
                f[1].parse().unwrap(),
                f[2].to_owned(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
    }
}

/// Stock and a customer, so that orders can be taken.
async fn stock_up(cluster: &Cluster, key: &str) {
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
                   "quantity": "1000000", "unit_cost": "4.00"}),
        ),
    ] {
        cluster
            .ok(0, key, &format!("/services/inventory/{action}"), params)
            .await;
    }
    cluster
        .ok(
            1,
            key,
            "/services/orders/define_customer",
            json!({"customer": "globex", "name": "Globex Retail"}),
        )
        .await;
}

fn order(id: &str) -> Value {
    json!({"order_id": id, "customer": "globex", "warehouse": "main",
           "lines": [{"item": "sheet", "quantity": "1", "unit_price": "12.50", "currency": "EUR"}]})
}

/// Every `orders.order.created` on the tenant's Kafka topic: the order id of each, in order.
async fn created_on_kafka(cluster: &Cluster, key: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut from = 0;
    loop {
        let page = cluster
            .ok(
                0,
                key,
                "/providers/bus/kafka/replay",
                json!({"topic": "orders", "from_offset": from, "max_records": 1000}),
            )
            .await;
        let records = page["records"].as_array().cloned().unwrap_or_default();
        let Some(last) = records.last() else {
            return ids;
        };
        from = last["offset"].as_u64().unwrap() + 1;
        ids.extend(
            records
                .iter()
                .filter(|r| r["headers"]["ce_type"] == "orders.order.created")
                .map(|r| r["payload"]["order_id"].as_str().unwrap().to_owned()),
        );
    }
}

/// A replica's `/readyz` answer.
async fn readyz(server: &Server) -> Value {
    reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Creates `id` through the replicas in turn, retrying a replica that is down or an order still
/// in progress on a killed one with the same `Idempotency-Key`; true when one answered 200.
async fn create(cluster: &Cluster, key: &str, id: &str, first: usize) -> bool {
    for attempt in 0..40 {
        let replica = (first + attempt) % 2;
        let sent = cluster
            .http
            .post(format!("{}/services/orders/create", cluster.base(replica)))
            .bearer_auth(key)
            .header("idempotency-key", format!("create-{id}"))
            .json(&json!({"params": order(id)}))
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status();
            if status == StatusCode::OK {
                return true;
            }
            let body: Value = response.json().await.unwrap_or_default();
            // An order the killed replica wrote before it could answer: it exists.
            if status == StatusCode::CONFLICT && body["code"] == "conflict" {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_each_killed_once_relay_every_acknowledged_order_once_with_one_relay_per_tenant()
 {
    const ORDERS: usize = 2000;
    const CLIENTS: usize = 8;
    let cluster = Arc::new(Cluster::start("clu"));
    let key = cluster.tenant("acme");
    stock_up(&cluster, &key).await;

    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (cluster, key, next, acknowledged) = (
                cluster.clone(),
                key.clone(),
                next.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= ORDERS {
                        return;
                    }
                    let id = format!("SO-{n:05}");
                    if create(&cluster, &key, &id, n % 2).await {
                        acknowledged.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();
    // Each replica is killed once, mid-run, and started again a second later.
    for (replica, at) in [(0, ORDERS / 4), (1, ORDERS * 3 / 5)] {
        while next.load(Ordering::SeqCst) < at {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || {
            cluster.kill9(replica);
            std::thread::sleep(Duration::from_secs(1));
            cluster.restart(replica);
        })
        .await
        .unwrap();
        eprintln!("cluster: replica {replica} killed with SIGKILL at order {at} and restarted");
    }
    for client in clients {
        client.await.unwrap();
    }
    let load_time = started.elapsed();
    let acknowledged: Vec<String> = acknowledged.lock().unwrap().clone();

    // Every acknowledged order's event reaches Kafka; duplicates are republished rows.
    let published = eventually(
        "every acknowledged order on Kafka",
        Duration::from_secs(120),
        || async {
            let ids = created_on_kafka(&cluster, &key).await;
            let distinct: HashSet<&String> = ids.iter().collect();
            acknowledged
                .iter()
                .all(|id| distinct.contains(id))
                .then_some(ids)
        },
    )
    .await;
    let distinct: HashSet<&String> = published.iter().collect();
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for id in &published {
        *counts.entry(id).or_default() += 1;
    }
    let repeated = counts.values().filter(|n| **n > 1).count();
    eprintln!(
        "cluster: {} orders acknowledged of {ORDERS} in {:.1} s; orders.order.created on Kafka: {} records, {} distinct orders ({} published more than once, deduped by id); relayed {} of {} acknowledged",
        acknowledged.len(),
        load_time.as_secs_f64(),
        published.len(),
        distinct.len(),
        repeated,
        acknowledged
            .iter()
            .filter(|id| distinct.contains(id))
            .count(),
        acknowledged.len(),
    );
    assert!(
        acknowledged.len() >= ORDERS * 95 / 100,
        "{} acknowledged",
        acknowledged.len()
    );
    // Nothing was published that the services did not write: every id on Kafka is an order.
    for id in &distinct {
        let (status, _) = cluster
            .post(
                1,
                &key,
                "/services/orders/get",
                &json!({"params": {"order_id": id}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{id} is on Kafka but not an order");
    }

    // The annotator, hosted too, annotated every order.
    let started_waiting = Instant::now();
    for id in &acknowledged {
        eventually(
            &format!("the annotation of {id}"),
            Duration::from_secs(120),
            || async {
                let order = cluster
                    .ok(0, &key, "/services/orders/get", json!({"order_id": id}))
                    .await;
                order["category"].is_string().then_some(())
            },
        )
        .await;
    }
    eprintln!(
        "cluster: all {} acknowledged orders annotated ({:.1} s after the load)",
        acknowledged.len(),
        started_waiting.elapsed().as_secs_f64()
    );

    // The lease log: holdings of one tenant's workers never overlap.
    let log = cluster.lease_log();
    for pair in log.windows(2) {
        let ((name, epoch, holder, _, until), (next_name, next_epoch, next_holder, from, _)) =
            (&pair[0], &pair[1]);
        if name == next_name {
            assert_eq!(*next_epoch, epoch + 1, "{pair:?}");
            assert!(
                from > until,
                "{name}: holding {next_epoch} by {next_holder} began at {from}, before holding {epoch} by {holder} ended at {until}"
            );
        }
    }
    let holders: HashSet<&String> = log.iter().map(|row| &row.2).collect();
    eprintln!(
        "cluster: lease log of workers/acme: {} holdings by {} replica processes, none overlapping",
        log.len(),
        holders.len()
    );
    assert!(!log.is_empty());
}

/// Replica B answers with a config saved through replica A within a second, 100 times over,
/// while both serve a steady load that never sees an error; and a tenant created while the
/// cluster runs has its events relayed without anyone starting a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_config_saved_through_one_replica_is_served_by_the_other_within_a_second_under_load() {
    const TRIALS: usize = 100;
    let cluster = Arc::new(Cluster::start("clc"));
    let key = cluster.tenant("acme");
    let configure = |max: u64| json!({"config": {"max_value_bytes": max}});
    let (status, body) = cluster
        .post(
            0,
            &key,
            "/providers/cache/redis/configure",
            &configure(1_048_576),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cluster
        .ok(
            0,
            &key,
            "/providers/cache/redis/set",
            json!({"key": "k", "value": "v"}),
        )
        .await;

    // The load: reads on both replicas all along; every answer must be 200.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|n| {
            let (cluster, key, stop) = (cluster.clone(), key.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0usize, Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    let (status, body) = cluster
                        .post(
                            n % 2,
                            &key,
                            "/providers/cache/redis/get",
                            &json!({"params": {"key": "k"}}),
                        )
                        .await;
                    if status == StatusCode::OK {
                        ok += 1;
                    } else {
                        failed.push(format!("{status} {body}"));
                    }
                }
                (ok, failed)
            })
        })
        .collect();

    // Each trial flips the limit between 64 bytes and 1 MiB through replica 0, then asks
    // replica 1 to store a 200-byte value until its answer follows the new limit.
    let value = "x".repeat(200);
    let mut lags = Vec::new();
    for trial in 0..TRIALS {
        let small = trial % 2 == 0;
        let (status, body) = cluster
            .post(
                0,
                &key,
                "/providers/cache/redis/configure",
                &configure(if small { 64 } else { 1_048_576 }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let saved = Instant::now();
        loop {
            let (status, _) = cluster
                .post(
                    1,
                    &key,
                    "/providers/cache/redis/set",
                    &json!({"params": {"key": "probe", "value": value}}),
                )
                .await;
            if (status == StatusCode::OK) != small {
                lags.push(saved.elapsed());
                break;
            }
            assert!(
                saved.elapsed() < Duration::from_secs(5),
                "trial {trial}: replica 1 still served the old config after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (mut reads, mut failures) = (0, Vec::new());
    for task in load {
        let (ok, failed) = task.await.unwrap();
        reads += ok;
        failures.extend(failed);
    }
    lags.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (p50, p99, max) = (
        lags[lags.len() / 2],
        lags[lags.len() * 99 / 100 - 1],
        lags[lags.len() - 1],
    );
    eprintln!(
        "cluster: config through replica 0 served by replica 1 after p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({TRIALS} trials); {reads} reads under load, {} not 200",
        ms(p50),
        ms(p99),
        ms(max),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");

    // A tenant created now: its first order's event reaches Kafka, relayed by whichever
    // replica takes its lease.
    let newco = cluster.tenant("newco");
    stock_up(&cluster, &newco).await;
    let created = Instant::now();
    assert!(create(&cluster, &newco, "SO-NEW", 1).await);
    loop {
        let on_kafka = created_on_kafka(&cluster, &newco).await;
        if on_kafka == ["SO-NEW"] {
            break;
        }
        assert!(
            created.elapsed() < Duration::from_secs(30),
            "newco's order not on Kafka after 30 s but {on_kafka:?}; lease log {:?}; the replicas' logs:\n{}",
            cluster.lease_log(),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "cluster: a tenant created while the cluster ran had its first event relayed {:.2} s after its order, no command run",
        created.elapsed().as_secs_f64()
    );
    let log = cluster.lease_log();
    assert!(log.iter().any(|row| row.0 == "workers/newco"), "{log:?}");

    // SIGTERM: each replica gives its leases back as it stops, so none is left to run out.
    for replica in 0..2 {
        let mut server = cluster.replicas.lock().unwrap()[replica].take().unwrap();
        server.terminate();
        assert!(server.exited_within(Duration::from_secs(10)));
    }
    let still_held = psql(
        &cluster.store.url,
        "SELECT name, holder FROM worker_leases
          WHERE expires_ms >= (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
    );
    assert_eq!(
        still_held.trim(),
        "",
        "leases left to run out after SIGTERM; lease log {:?}; the replicas' logs:\n{}",
        cluster.lease_log(),
        cluster.logs()
    );
}

/// On a shared store, node-local engines are refused at start-up unless allowed, and what a
/// replica keeps to itself is listed in `/readyz`.
#[tokio::test(flavor = "multi_thread")]
async fn a_shared_store_refuses_node_local_engines_and_readyz_lists_what_stays_local() {
    let store = Database::create("cln");
    let dir = tempfile::tempdir().unwrap();
    // The services' books default to db/sqlite: a file on this node.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--data-dir"])
        .arg(dir.path())
        .args(["--store-url", &store.url, "serve", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .env("SWITCHYARD_LOG", "warn")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    for named in [
        "SWITCHYARD_LEDGER_DB=db/sqlite",
        "--lifecycle-bus bus/embedded",
        "--node-local allow",
    ] {
        assert!(said.contains(named), "{named} not in: {said}");
    }

    let mut env = vec![
        ("SWITCHYARD_STORE_URL", store.url.clone()),
        ("SWITCHYARD_NODE_LOCAL", "allow".to_owned()),
    ];
    let allowed = Server::start_with_env(dir.path(), &[], &mut env);
    let ready = readyz(&allowed).await;
    let kept: Vec<&str> = ready["node_local"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            assert_eq!(entry["state"], "kept", "{entry}");
            entry["what"].as_str().unwrap()
        })
        .collect();
    for engine in [
        "db/sqlite",
        "cache/memory",
        "bus/embedded",
        "storage/fs",
        "integration/webhook",
    ] {
        assert!(kept.contains(&engine), "{engine} not listed: {ready}");
    }
    assert!(
        !kept.contains(&"cache/redis") && !kept.contains(&"db/postgres"),
        "{ready}"
    );
    assert_node_local_refused_when_not_allowed(dir.path(), &store).await;
}

/// With the services and the lifecycle bus on shared engines, a replica starts without the
/// node-local engines: they are neither listed nor callable.
async fn assert_node_local_refused_when_not_allowed(dir: &Path, store: &Database) {
    let books = Database::create("clnb");
    let mut env = vec![
        ("SWITCHYARD_STORE_URL", store.url.clone()),
        ("SWITCHYARD_POSTGRES_URL", books.url.clone()),
        ("SWITCHYARD_POSTGRES_APP_PASSWORD", "cluster-e2e".to_owned()),
        ("SWITCHYARD_LEDGER_DB", "db/postgres".to_owned()),
        ("SWITCHYARD_INVENTORY_DB", "db/postgres".to_owned()),
        ("SWITCHYARD_ORDERS_DB", "db/postgres".to_owned()),
        ("SWITCHYARD_LIFECYCLE_BUS", "off".to_owned()),
    ];
    let server = Server::start_with_env(dir, &[], &mut env);
    let ready = readyz(&server).await;
    assert!(
        ready["node_local"]
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["state"] == "refused"),
        "{ready}"
    );
    let key = {
        let store_arg = ["--store-url", store.url.as_str()];
        cli(
            dir,
            &[&store_arg[..], &["tenant", "create", "acme"]].concat(),
        );
        cli(
            dir,
            &[
                &store_arg[..],
                &["key", "create", "--tenant", "acme", "--scopes", "*"],
            ]
            .concat(),
        )
        .trim()
        .to_owned()
    };
    let api = common::Api::new(&server, &key);
    let (status, body) = api
        .post(
            "/providers/cache/memory/get",
            json!({"params": {"key": "k"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "provider_not_found", "{body}");
}

/// One `serve` on the embedded defaults (SQLite store, bus/embedded): the relay and the
/// annotator run inside it from the tenant's first service call, with no command run.
#[tokio::test(flavor = "multi_thread")]
async fn one_serve_on_the_embedded_defaults_relays_and_annotates_orders_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![("SWITCHYARD_ORDERS_BUS", "bus/embedded".to_owned())];
    let server = Server::start_with_env(dir.path(), &[], &mut env);
    let key = common::tenant_with_key(dir.path(), "acme", "*");
    let api = common::Api::new(&server, &key);
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
            json!({"item": "sheet", "warehouse": "main", "bin": "main", "quantity": "5", "unit_cost": "4.00"}),
        ),
        (
            "orders",
            "define_customer",
            json!({"customer": "globex", "name": "Globex Retail"}),
        ),
        ("orders", "create", order("SO-1")),
    ] {
        api.service_ok(service, action, params).await;
    }
    let started = Instant::now();
    eventually(
        "the order's event on bus/embedded",
        Duration::from_secs(20),
        || async {
            let replay = api
                .ok(
                    "bus/embedded",
                    "replay",
                    json!({"topic": "orders", "from_offset": 0}),
                )
                .await;
            let types: Vec<Value> = replay["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["headers"]["ce_type"].clone())
                .collect();
            (types == [json!("orders.order.created")]).then_some(())
        },
    )
    .await;
    eventually("the annotation", Duration::from_secs(20), || async {
        let order = api
            .service_ok("orders", "get", json!({"order_id": "SO-1"}))
            .await;
        order["category"].is_string().then_some(())
    })
    .await;
    eprintln!(
        "cluster: one serve relayed and annotated its order {:.2} s after it was created",
        started.elapsed().as_secs_f64()
    );
    let ready = readyz(&server).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "switchyard_workers_tenants_held 1",
        "switchyard_workers_events_relayed_total{tenant=\"acme\"} 1",
    ] {
        assert!(
            metrics.lines().any(|line| line == series),
            "no {series} in:\n{metrics}"
        );
    }

    // Another tenant's hosted worker runs beside acme's and carries nothing of acme's: its
    // bus has no event, acme's still has its one.
    let globex = common::Api::new(&server, &common::tenant_with_key(dir.path(), "globex", "*"));
    globex
        .service_ok(
            "orders",
            "define_customer",
            json!({"customer": "initech", "name": "Initech"}),
        )
        .await;
    eventually("globex's worker", Duration::from_secs(20), || async {
        let metrics = reqwest::get(format!("{}/metrics", server.base))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics
            .lines()
            .any(|line| line == "switchyard_workers_tenants_held 2")
            .then_some(())
    })
    .await;
    let replay = json!({"topic": "orders", "from_offset": 0});
    let on_globex = globex.ok("bus/embedded", "replay", replay.clone()).await;
    assert_eq!(on_globex["records"], json!([]), "{on_globex}");
    let on_acme = api.ok("bus/embedded", "replay", replay).await;
    assert_eq!(
        on_acme["records"].as_array().map(Vec::len),
        Some(1),
        "{on_acme}"
    );
}
