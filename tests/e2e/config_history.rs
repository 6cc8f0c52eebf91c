//! Config history, rollback and tenant secrets through the API (issue 24, docs/adr/0043), on a
//! real `serve` with the shipped policy bundle: a configure, a second configure and a rollback
//! to version 1 bring version 1's behaviour back and leave three versions with actor and diff;
//! an admin rotates a tenant's database password through `PUT /secrets/{name}` and the provider
//! reconnects without a restart while neither password shows anywhere but in Vault.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::vault::{RealVault, start_shim};
use common::{
    Api, Server, cli, policy_bundle, postgres_admin_url, psql, tenant_with_key, write_config,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_contracts::schema::Compiled;
use switchyard_contracts::{TenantId, openapi};
use switchyard_runtime::PlatformStore;
use switchyard_runtime::store::{AuditFilter, AuditOrder};

async fn put(api: &Api, path: &str, body: Value) -> (StatusCode, Value) {
    let response = api
        .raw()
        .put(format!("{}{path}", api.base))
        .bearer_auth(api.key())
        .json(&body)
        .send()
        .await
        .unwrap();
    common::decode(response).await
}

/// Fails unless `answer` is what the served document publishes as component `name`.
fn assert_published(name: &str, answer: &Value) {
    let schema = Compiled::new(&openapi::component_schema(name), name).unwrap();
    assert_eq!(schema.check(answer), vec![], "{name}: {answer}");
}

/// A 10-byte value set in cache/memory: refused once `max_value_bytes` is 5.
async fn set_ten_bytes(api: &Api) -> StatusCode {
    api.post(
        "/providers/cache/memory/set",
        json!({"params": {"key": "k", "value": "0123456789"}}),
    )
    .await
    .0
}

/// The subject (`key:<id>`) of `api`'s key, which must be its tenant's only key.
async fn subject_of(api: &Api) -> String {
    let (status, keys) = api.get("/keys").await;
    assert_eq!(status, 200, "{keys}");
    format!("key:{}", keys["keys"][0]["id"].as_str().unwrap())
}

/// The tenant's audit records, newest first, read from the store's `audit_log` table.
async fn audit_records(data_dir: &Path, tenant: &str) -> Vec<Value> {
    let store = PlatformStore::open(data_dir).await.unwrap();
    let filter = AuditFilter {
        order: AuditOrder::NewestFirst,
        limit: 500,
        ..AuditFilter::default()
    };
    store
        .list_audit(&TenantId::parse(tenant).unwrap(), &filter)
        .await
        .unwrap()
        .into_iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_brings_version_one_back_and_the_history_shows_who_changed_what() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = policy_bundle(dir.path(), "r1");
    let config = write_config(
        dir.path(),
        &format!(
            "[policy]\nbundle = \"{}\"\n[tenancy.quotas]\nconfig_versions_kept = 3\n",
            bundle.display()
        ),
    );
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    // Before acme has a second key.
    let actor = subject_of(&acme).await;
    let developer = Api::new(
        &server,
        cli(
            dir.path(),
            &["key", "create", "--tenant", "acme", "--scopes", "invoke"],
        )
        .trim(),
    );
    let literal = "Literal-Credential-8d1f";
    let mut bodies = Vec::new();

    let configure = |max: u64| json!({"config": {"max_value_bytes": max}});
    let (status, v1) = acme
        .post("/providers/cache/memory/configure", configure(100_000))
        .await;
    assert_eq!(
        (status, v1["version"].clone()),
        (StatusCode::OK, json!(1)),
        "{v1}"
    );
    assert_eq!(set_ten_bytes(&acme).await, StatusCode::OK);
    let (status, v2) = acme
        .post("/providers/cache/memory/configure", configure(5))
        .await;
    assert_eq!(
        (status, v2["version"].clone()),
        (StatusCode::OK, json!(2)),
        "{v2}"
    );
    assert_ne!(
        set_ten_bytes(&acme).await,
        StatusCode::OK,
        "version 2 is running"
    );

    // A credential written where only a reference belongs is refused and echoed nowhere.
    for (path, body) in [
        (
            "/providers/ai/openai/configure",
            json!({"config": {"api_key": literal}}),
        ),
        (
            "/providers/cache/memory/configure",
            json!({"config": {"max_value_bytes": 5, "password": literal}}),
        ),
    ] {
        let (status, refused) = acme.post(path, body).await;
        assert!(status.is_client_error(), "{path}: {status} {refused}");
        bodies.push(refused.to_string());
    }

    // Without a Vault a secret cannot be written: a setting of the platform, not an outage.
    let (status, refused) = put(&acme, "/secrets/api-key", json!({"value": literal})).await;
    assert_eq!(
        (status, refused["code"].clone()),
        (StatusCode::CONFLICT, json!("conflict"))
    );
    bodies.push(refused.to_string());

    let started = Instant::now();
    let (status, v3) = acme
        .post(
            "/providers/cache/memory/configs/rollback",
            json!({"version": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v3}");
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["values"], json!({"max_value_bytes": 100_000}));
    assert_eq!(
        set_ten_bytes(&acme).await,
        StatusCode::OK,
        "version 1's behaviour is back"
    );
    println!(
        "rollback answered and swapped in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    let (status, history) = acme.get("/providers/cache/memory/configs").await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let versions = history["versions"].as_array().unwrap();
    let listed: Vec<(Value, Value, Value)> = versions
        .iter()
        .map(|v| {
            (
                v["version"].clone(),
                v["current"].clone(),
                v["note"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (json!(3), json!(true), json!("rollback to 1")),
            (json!(2), json!(false), Value::Null),
            (json!(1), json!(false), Value::Null),
        ]
    );
    assert!(
        versions.iter().all(|v| v["actor"] == actor.as_str()),
        "{history}"
    );
    let replaced = |old: u64, new: u64| json!([{"op": "replace", "path": "/max_value_bytes", "old": old, "new": new}]);
    assert_eq!(versions[0]["diff"], replaced(5, 100_000));
    assert_eq!(versions[1]["diff"], replaced(100_000, 5));
    assert_eq!(
        versions[2]["diff"],
        json!([{"op": "add", "path": "/max_value_bytes", "new": 100_000}])
    );
    assert_eq!(history["kept"], 3);
    assert_published("ConfigHistory", &history);
    assert_published("ConfigureResponse", &v3);
    bodies.push(history.to_string());

    // Unknown and pruned versions are 404 with one stable code; the detail says which.
    let (status, unknown) = acme
        .post(
            "/providers/cache/memory/configs/rollback",
            json!({"version": 9}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    assert_eq!(unknown["code"], "config_version_not_found");
    assert_published("Problem", &unknown);
    let (status, _) = acme
        .post("/providers/cache/memory/configure", configure(64))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, pruned) = acme
        .post(
            "/providers/cache/memory/configs/rollback",
            json!({"version": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{pruned}");
    assert_eq!(pruned["code"], "config_version_not_found");
    assert!(
        pruned["detail"].as_str().unwrap().contains("pruned"),
        "{pruned}"
    );
    let (status, bad) = acme
        .post(
            "/providers/cache/memory/configs/rollback",
            json!({"version": "2"}),
        )
        .await;
    assert_eq!(
        (status, bad["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("request_invalid"))
    );

    // Another tenant sees only its own (empty) history and cannot roll acme back, with or
    // without naming acme.
    let (status, theirs) = globex.get("/providers/cache/memory/configs").await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert_eq!(theirs["versions"], json!([]));
    let (status, refused) = globex
        .post(
            "/providers/cache/memory/configs/rollback",
            json!({"version": 2}),
        )
        .await;
    assert_eq!(
        (status, refused["code"].clone()),
        (StatusCode::NOT_FOUND, json!("config_version_not_found"))
    );
    let named = globex
        .raw()
        .post(format!(
            "{}/providers/cache/memory/configs/rollback",
            globex.base
        ))
        .bearer_auth(globex.key())
        .header("x-tenant-id", "acme")
        .json(&json!({"version": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), StatusCode::FORBIDDEN);
    // A key without the admin scope reads no history and rolls nothing back.
    for (status, body) in [
        developer.get("/providers/cache/memory/configs").await,
        developer
            .post(
                "/providers/cache/memory/configs/rollback",
                json!({"version": 2}),
            )
            .await,
    ] {
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::FORBIDDEN, json!("scope_forbidden"))
        );
    }
    let (_, after) = acme.get("/providers/cache/memory/configs").await;
    assert_eq!(
        after["versions"][0]["version"], 4,
        "nobody else changed acme's config"
    );

    // Every configure and the rollback are in acme's audit log with the caller and old/new.
    let records = audit_records(dir.path(), "acme").await;
    let changes: Vec<(Value, Value)> = records
        .iter()
        .filter(|r| r["entity"] == "provider/cache/memory")
        .map(|r| (r["operation"].clone(), r["new"]["max_value_bytes"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (json!("configure"), json!(64)),
            (json!("rollback"), json!(100_000)),
            (json!("configure"), json!(5)),
            (json!("configure"), json!(100_000)),
        ]
    );
    assert!(
        records
            .iter()
            .filter(|r| r["entity"] == "provider/cache/memory")
            .all(|r| r["actor"] == actor.as_str()
                && r["request_id"].is_string()
                && r["source"] == "127.0.0.1"),
        "each change names its caller, request and address: {records:?}"
    );
    assert!(
        !audit_records(dir.path(), "globex")
            .await
            .iter()
            .any(|r| r["entity"].as_str().unwrap().starts_with("provider/")),
        "globex's refused attempts changed nothing"
    );

    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    bodies.push(serde_json::to_string(&records).unwrap());
    for text in bodies.iter().chain([&log]) {
        assert!(
            !text.contains(literal),
            "the literal credential was shown: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_rotates_a_database_password_through_the_api_without_a_restart_or_a_leak() {
    let vault = RealVault::from_env();
    let shim = start_shim(vault.addr.clone()).await;
    let silo = Silo::create("rot");
    let admin = silo.admin.clone();
    let (first, second) = (silo.first.clone(), silo.second.clone());
    let (database, rotated_database) = (&silo.database, &silo.rotated_database);
    let dsn = |password: &str, db: &str| silo.dsn(password, db);

    let dir = tempfile::tempdir().unwrap();
    let bundle = policy_bundle(dir.path(), "r1");
    let mut env = vec![
        ("SWITCHYARD_POSTGRES_URL", admin.clone()),
        (
            "SWITCHYARD_POSTGRES_APP_PASSWORD",
            "app-role-password".to_owned(),
        ),
        ("VAULT_ADDR", format!("http://{shim}")),
        ("VAULT_TOKEN", vault.token.clone()),
        ("SWITCHYARD_VAULT_KV_VERSION", "1".to_owned()),
        // The periodic refresh would find the rotation too, in an hour: the write's own swap
        // is what this test measures.
        ("SWITCHYARD_SECRET_REFRESH_SECS", "3600".to_owned()),
        ("SWITCHYARD_LOG", "info".to_owned()),
    ];
    let config = write_config(
        dir.path(),
        &format!(
            "[policy]\nbundle = \"{}\"\n[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n",
            bundle.display()
        ),
    );
    let server = Server::start_with_env(dir.path(), &["--config", &config], &mut env);
    let pid = server.pid();
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    let mut bodies = Vec::new();

    let (status, written) = put(
        &acme,
        "/secrets/pg-dsn",
        json!({"value": dsn(&first, database)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    assert_eq!(
        (
            written["name"].clone(),
            written["version"].clone(),
            written["reference"].clone()
        ),
        (json!("pg-dsn"), json!(1), json!("secret://vault/pg-dsn"))
    );
    assert_published("SecretInfo", &written);
    bodies.push(written.to_string());
    let (status, configured) = acme
        .post(
            "/providers/db/postgres/configure",
            json!({"config": {"mode": "siloed", "dsn": "secret://vault/pg-dsn"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{configured}");
    assert_eq!(configured["values"]["dsn"], "secret://vault/pg-dsn");
    bodies.push(configured.to_string());
    let query = || {
        acme.post(
            "/providers/db/postgres/query",
            json!({"params": {"sql": "SELECT body FROM notes"}}),
        )
    };
    let (status, before) = query().await;
    assert_eq!(
        (status, before["data"]["rows"].clone()),
        (StatusCode::OK, json!([{"body": "before"}])),
        "{before}"
    );
    bodies.push(before.to_string());

    // Rotate: the server takes P2 and drops P1's sessions; the admin writes P2 through the API.
    silo.rotate_on_the_server();
    let rotated_at = Instant::now();
    let (status, rotated) = put(
        &acme,
        "/secrets/pg-dsn",
        json!({"value": dsn(&second, rotated_database)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["version"], 2);
    bodies.push(rotated.to_string());

    // Vault holds P2, at the tenant's own prefix.
    let held: Value = reqwest::Client::new()
        .get(format!("{}/v1/secret/tenants/acme/pg-dsn", vault.addr))
        .header("x-vault-token", &vault.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(held["data"]["value"], dsn(&second, rotated_database));

    let mut reconnected = None;
    while rotated_at.elapsed() < Duration::from_secs(10) {
        let (status, body) = query().await;
        bodies.push(body.to_string());
        if status == StatusCode::OK && body["data"]["rows"] == json!([{"body": "after"}]) {
            reconnected = Some(rotated_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reconnected =
        reconnected.expect("the provider did not pick up the rotated password within 10 s");
    println!(
        "rotation: write answered, first query on the new password after {:.0} ms",
        reconnected.as_secs_f64() * 1000.0
    );
    assert_eq!(server.pid(), pid);
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "serve was not restarted"
    );

    // The rotation kept the config version; the listing has metadata only.
    let (status, history) = acme.get("/providers/db/postgres/configs").await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(
        history["versions"].as_array().unwrap().len(),
        1,
        "{history}"
    );
    assert_eq!(
        history["versions"][0]["values"]["dsn"],
        "secret://vault/pg-dsn"
    );
    assert_eq!(
        history["versions"][0]["diff"],
        json!([{"op": "add", "path": "/dsn", "secret": true}, {"op": "add", "path": "/mode", "new": "siloed"}])
    );
    assert_published("ConfigHistory", &history);
    bodies.push(history.to_string());
    let (status, listed) = acme.get("/secrets").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["secrets"].as_array().unwrap().len(), 1);
    assert_eq!(listed["secrets"][0]["name"], "pg-dsn");
    assert_eq!(listed["secrets"][0]["version"], 2);
    assert_published("SecretList", &listed);
    bodies.push(listed.to_string());

    // Tenant B: its write lands under its own prefix, its list holds only its own, and a name
    // that could leave the prefix is refused.
    let (status, theirs) = put(
        &globex,
        "/secrets/pg-dsn",
        json!({"value": "globex-value-x"}),
    )
    .await;
    assert_eq!(
        (status, theirs["version"].clone()),
        (StatusCode::OK, json!(1)),
        "{theirs}"
    );
    let (_, their_list) = globex.get("/secrets").await;
    assert_eq!(their_list["secrets"].as_array().unwrap().len(), 1);
    assert_eq!(
        their_list["secrets"][0]["vault_reference"],
        "secret://vault/secret/tenants/globex/pg-dsn#value"
    );
    let acme_entry: Value = reqwest::Client::new()
        .get(format!("{}/v1/secret/tenants/acme/pg-dsn", vault.addr))
        .header("x-vault-token", &vault.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        acme_entry["data"]["value"],
        dsn(&second, rotated_database),
        "globex overwrote acme's"
    );
    let long = "n".repeat(129);
    for name in [".hidden", "a%2Fb", "a%2F..%2Facme", long.as_str()] {
        let (status, refused) =
            put(&globex, &format!("/secrets/{name}"), json!({"value": "x"})).await;
        assert_eq!(
            (status, refused["code"].clone()),
            (StatusCode::BAD_REQUEST, json!("secret_name_invalid")),
            "{name}"
        );
    }
    let (status, refused) = put(&globex, "/secrets/ok", json!({"value": 7})).await;
    assert_eq!(
        (status, refused["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("request_invalid"))
    );
    // Globex naming acme's secret in its own config reaches its own prefix or nothing.
    let (status, refused) = globex
        .post(
            "/providers/db/postgres/configure",
            json!({"config": {"mode": "siloed", "dsn": "secret://vault/secret/tenants/acme/pg-dsn#value"}}),
        )
        .await;
    assert_eq!(
        (status, refused["code"].clone()),
        (StatusCode::FORBIDDEN, json!("secret_forbidden")),
        "{refused}"
    );
    bodies.push(refused.to_string());

    // The audit log holds versions of the secret, never its value.
    let records = audit_records(dir.path(), "acme").await;
    let secret_ops: Vec<(Value, Value, Value)> = records
        .iter()
        .filter(|r| r["entity"] == "secret/pg-dsn")
        .map(|r| (r["operation"].clone(), r["old"].clone(), r["new"].clone()))
        .collect();
    assert_eq!(
        secret_ops,
        [
            (
                json!("rotate"),
                json!({"version": 1}),
                json!({"version": 2})
            ),
            (json!("create"), Value::Null, json!({"version": 1})),
        ]
    );
    assert!(
        records
            .iter()
            .any(|r| r["entity"] == "provider/db/postgres" && r["operation"] == "configure")
    );
    bodies.push(serde_json::to_string(&records).unwrap());

    // Neither password in any answer, the log, the audit rows, or any file of the data dir
    // (the platform store, its WAL, the policy bundle, the log).
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    let files = every_file(dir.path());
    assert!(files.iter().any(|(path, _)| path.ends_with("platform.db")));
    for secret in [&first, &second] {
        assert!(
            !log.contains(secret.as_str()),
            "a password reached serve's log"
        );
        assert!(
            bodies.iter().all(|b| !b.contains(secret.as_str())),
            "a password reached a response"
        );
        for (path, bytes) in &files {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a password reached {}",
                path.display()
            );
        }
    }
    drop(server);
}

/// Two replicas on one PostgreSQL platform store: a secret written through one restarts the
/// instance that uses it on the other, through the store's feed, without either restarting.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_through_one_replica_swaps_the_instance_on_the_other() {
    let vault = RealVault::from_env();
    // Its own name: the other test writes acme's `pg-dsn` in the same Vault.
    let shim = start_shim(vault.addr.clone()).await;
    let silo = Silo::create("rep");
    let store = common::Database::create("rots");
    let books = common::Database::create("rotb");
    let env = vec![
        ("SWITCHYARD_STORE_URL", store.url.clone()),
        ("SWITCHYARD_POSTGRES_URL", books.url.clone()),
        (
            "SWITCHYARD_POSTGRES_APP_PASSWORD",
            "app-role-password".to_owned(),
        ),
        ("SWITCHYARD_LEDGER_DB", "db/postgres".to_owned()),
        ("SWITCHYARD_INVENTORY_DB", "db/postgres".to_owned()),
        ("SWITCHYARD_ORDERS_DB", "db/postgres".to_owned()),
        ("SWITCHYARD_LIFECYCLE_BUS", "off".to_owned()),
        ("VAULT_ADDR", format!("http://{shim}")),
        ("VAULT_TOKEN", vault.token.clone()),
        ("SWITCHYARD_VAULT_KV_VERSION", "1".to_owned()),
        ("SWITCHYARD_SECRET_REFRESH_SECS", "3600".to_owned()),
    ];
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let config = write_config(
        dirs[0].path(),
        "[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n",
    );
    let replicas: Vec<Server> = dirs
        .iter()
        .map(|dir| Server::start_with_env(dir.path(), &["--config", &config], &mut env.clone()))
        .collect();
    let on_store = ["--store-url", store.url.as_str()];
    cli(
        dirs[0].path(),
        &[&on_store[..], &["tenant", "create", "acme"]].concat(),
    );
    let key = cli(
        dirs[0].path(),
        &[
            &on_store[..],
            &["key", "create", "--tenant", "acme", "--scopes", "*"],
        ]
        .concat(),
    );
    let (writer, reader) = (
        Api::new(&replicas[0], key.trim()),
        Api::new(&replicas[1], key.trim()),
    );
    let pids: Vec<u32> = replicas.iter().map(Server::pid).collect();

    let (status, written) = put(
        &writer,
        "/secrets/replica-dsn",
        json!({"value": silo.dsn(&silo.first, &silo.database)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    let (status, configured) = writer
        .post(
            "/providers/db/postgres/configure",
            json!({"config": {"mode": "siloed", "dsn": "secret://vault/replica-dsn"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{configured}");
    let query = || {
        reader.post(
            "/providers/db/postgres/query",
            json!({"params": {"sql": "SELECT body FROM notes"}}),
        )
    };
    let (status, before) = query().await;
    assert_eq!(
        (status, before["data"]["rows"].clone()),
        (StatusCode::OK, json!([{"body": "before"}])),
        "{before}"
    );

    silo.rotate_on_the_server();
    let rotated_at = Instant::now();
    let (status, rotated) = put(
        &writer,
        "/secrets/replica-dsn",
        json!({"value": silo.dsn(&silo.second, &silo.rotated_database)}),
    )
    .await;
    assert_eq!(
        (status, rotated["version"].clone()),
        (StatusCode::OK, json!(2)),
        "{rotated}"
    );
    let mut swapped = None;
    while rotated_at.elapsed() < Duration::from_secs(10) {
        let (status, body) = query().await;
        if status == StatusCode::OK && body["data"]["rows"] == json!([{"body": "after"}]) {
            swapped = Some(rotated_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let swapped = swapped.expect("the other replica kept the old password for 10 s");
    println!(
        "rotation through one replica: the other queried with the new password after {:.0} ms",
        swapped.as_secs_f64() * 1000.0
    );
    assert_eq!(replicas.iter().map(Server::pid).collect::<Vec<_>>(), pids);
    for (dir, _) in dirs.iter().zip(&replicas) {
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
        assert!(!log.contains(&silo.first) && !log.contains(&silo.second));
    }
}

/// A tenant's own PostgreSQL role with two databases, each holding one row in `notes`:
/// `before` in the first, `after` in the second. The test server trusts loopback logins, so a
/// wrong password would go unnoticed: the rotated DSN also names the second database, whose row
/// tells which DSN a query ran on. Dropped with the test.
struct Silo {
    admin: String,
    host: String,
    role: String,
    database: String,
    rotated_database: String,
    first: String,
    second: String,
}

impl Silo {
    fn create(purpose: &str) -> Silo {
        let admin = postgres_admin_url();
        let run = format!("{purpose}_{}_{}", std::process::id(), common::free_port());
        let silo = Silo {
            host: admin
                .split('@')
                .nth(1)
                .and_then(|h| h.split('/').next())
                .unwrap()
                .to_owned(),
            role: format!("r_{run}"),
            database: format!("d1_{run}"),
            rotated_database: format!("d2_{run}"),
            first: format!("P1-{run}-Rotate"),
            second: format!("P2-{run}-Rotate"),
            admin,
        };
        psql(
            &silo.admin,
            &format!("CREATE ROLE {} LOGIN PASSWORD '{}'", silo.role, silo.first),
        );
        let base = silo.admin.rsplit_once('/').unwrap().0.to_owned();
        for (db, row) in [
            (&silo.database, "before"),
            (&silo.rotated_database, "after"),
        ] {
            psql(
                &silo.admin,
                &format!("CREATE DATABASE {db} OWNER {}", silo.role),
            );
            psql(
                &format!("{base}/{db}"),
                &format!(
                    "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('{row}'); ALTER TABLE notes OWNER TO {}",
                    silo.role
                ),
            );
        }
        silo
    }

    fn dsn(&self, password: &str, db: &str) -> String {
        format!("postgres://{}:{password}@{}/{db}", self.role, self.host)
    }

    /// The server takes the second password and drops the sessions opened with the first.
    fn rotate_on_the_server(&self) {
        psql(
            &self.admin,
            &format!("ALTER ROLE {} PASSWORD '{}'", self.role, self.second),
        );
        psql(
            &self.admin,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{}'",
                self.role
            ),
        );
    }
}

impl Drop for Silo {
    fn drop(&mut self) {
        let drop = |sql: String| {
            let _ = std::process::Command::new("psql")
                .args([self.admin.as_str(), "-qAtc", &sql])
                .output();
        };
        for db in [&self.database, &self.rotated_database] {
            drop(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        }
        drop(format!("DROP ROLE IF EXISTS {}", self.role));
    }
}

/// Every file under `dir` with its bytes.
fn every_file(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(every_file(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            found.push((path, bytes));
        }
    }
    found
}
