//! Behaviour specific to `db/postgres` (its config, value mapping, siloed mode, health); the
//! contract every engine shares is checked by the conformance suite, pooled isolation by
//! `postgres_rls.rs`.
//!
//! Needs `SWITCHYARD_TEST_POSTGRES_URL` (set by `scripts/test`); fails without it.

#[path = "support/postgres.rs"]
mod pg;

use std::sync::Arc;

use serde_json::json;
use sqlx::{Connection, PgConnection};
use switchyard_contracts::domains;
use switchyard_provider_db::{PostgresFactory, PostgresSettings};
use switchyard_spi::tenancy::EgressCeiling;
use switchyard_spi::testkit::Harness;
use switchyard_spi::{ErrorCode, HealthStatus, ProviderFactory, StartContext, TenantId};

/// The engine as an operator who opens loopback (where the test server, and so every siloed
/// tenant's own database, listens) runs it.
fn engine(db: &pg::TestDatabase) -> Harness {
    Harness::new(Arc::new(
        PostgresFactory::new(PostgresSettings::new(db.url.clone(), pg::APP_PASSWORD)).with_egress(
            &EgressCeiling {
                allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
                allowed_ports: Vec::new(),
            },
        ),
    ))
}

#[test]
fn descriptor_serves_the_db_contract_with_rls() {
    let factory = PostgresFactory::new(PostgresSettings::new("postgres://unused/db", "x"));
    let descriptor = factory.descriptor();
    assert_eq!(
        (descriptor.domain.as_str(), descriptor.name.as_str()),
        ("db", "postgres")
    );
    assert_eq!(descriptor.actions, domains::actions("db"));
    for capability in ["transactions", "metadata", "rls"] {
        assert!(descriptor.has_capability(capability), "{capability}");
    }
    assert_eq!(descriptor.config_schema["additionalProperties"], false);
}

#[tokio::test]
async fn values_map_to_json_by_type() {
    let db = pg::TestDatabase::create("values").await;
    let harness = engine(&db);
    let t = harness.tenant("acme").await;
    let result = t
        .ok(
            "query",
            json!({"sql": "SELECT true AS b, 1::int2 AS i2, 2::int4 AS i4, 3::int8 AS i8, \
                1.5::float4 AS f4, 'NaN'::float8 AS nan, 123.4500::numeric AS n, \
                'x'::varchar(3) AS vc, 'y'::char(2) AS ch, '{\"a\": [1, null]}'::jsonb AS jb, \
                '{\"b\": 2}'::json AS j, '\\x00ff'::bytea AS raw, \
                '2024-02-29 12:34:56.789+02'::timestamptz AS tz, \
                '2024-02-29 12:34:56'::timestamp AS ts, '2024-02-29'::date AS d, \
                '08:09:10.5'::time AS tm, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, \
                NULL::text AS nothing, $1 AS param_bool, $2 AS param_text",
             "params": [true, "t"]}),
        )
        .await;
    assert_eq!(
        result["rows"][0],
        json!({
            "b": true, "i2": 1, "i4": 2, "i8": 3, "f4": 1.5, "nan": "NaN", "n": "123.4500",
            "vc": "x", "ch": "y ", "jb": {"a": [1, null]}, "j": {"b": 2}, "raw": "AP8=",
            "tz": "2024-02-29T10:34:56.789Z", "ts": "2024-02-29T12:34:56", "d": "2024-02-29",
            "tm": "08:09:10.5", "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "nothing": null,
            "param_bool": true, "param_text": "t"
        })
    );
    let types: Vec<&str> = result["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "BOOLEAN",
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "REAL",
            "DOUBLE PRECISION",
            "NUMERIC",
            "VARCHAR",
            "CHAR",
            "JSONB",
            "JSON",
            "BYTEA",
            "TIMESTAMPTZ",
            "TIMESTAMP",
            "DATE",
            "TIME",
            "UUID",
            "TEXT",
            "BOOLEAN",
            "TEXT"
        ]
    );
}

#[tokio::test]
async fn numerics_come_back_exactly_as_postgres_prints_them() {
    let db = pg::TestDatabase::create("numeric").await;
    let harness = engine(&db);
    let t = harness.tenant("acme").await;
    let result = t
        .ok(
            "query",
            json!({"sql": "SELECT v, v::text AS text FROM (VALUES (0.0001::numeric), \
                (-12345678901234567890.123456789), (1e20::numeric), (0::numeric), \
                (0.000012), (100000000.00), ('NaN'::numeric), ('-Infinity'::numeric)) AS x(v)"}),
        )
        .await;
    let rows = result["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    for row in rows {
        assert_eq!(row["v"], row["text"]);
    }
}

#[tokio::test]
async fn untyped_nulls_fit_any_column_and_strings_need_a_cast() {
    let db = pg::TestDatabase::create("binds").await;
    let harness = engine(&db);
    let t = harness.tenant("acme").await;
    t.ok("execute", json!({"sql": "CREATE TABLE days (d DATE)"}))
        .await;
    t.ok(
        "execute",
        json!({"sql": "INSERT INTO days VALUES ($1)", "params": [null]}),
    )
    .await;
    let err = t
        .err(
            "execute",
            json!({"sql": "INSERT INTO days VALUES ($1)", "params": ["2024-01-02"]}),
        )
        .await;
    assert_eq!(err.code, ErrorCode::StatementFailed);
    t.ok(
        "execute",
        json!({"sql": "INSERT INTO days VALUES ($1::date)", "params": ["2024-01-02"]}),
    )
    .await;
    let days = t
        .ok(
            "query",
            json!({"sql": "SELECT d FROM days ORDER BY d NULLS FIRST"}),
        )
        .await;
    assert_eq!(days["rows"], json!([{"d": null}, {"d": "2024-01-02"}]));
}

#[tokio::test]
async fn types_without_a_json_mapping_ask_for_a_cast() {
    let db = pg::TestDatabase::create("unmapped").await;
    let harness = engine(&db);
    let t = harness.tenant("acme").await;
    let err = t
        .err("query", json!({"sql": "SELECT '1 day'::interval AS span"}))
        .await;
    assert_eq!(err.code, ErrorCode::StatementFailed);
    assert!(err.detail.contains("span::text"), "{}", err.detail);
    let cast = t
        .ok(
            "query",
            json!({"sql": "SELECT '1 day'::interval::text AS span"}),
        )
        .await;
    assert_eq!(cast["rows"], json!([{"span": "1 day"}]));
}

#[tokio::test]
async fn statement_timeout_cancels_with_a_retryable_timeout() {
    let db = pg::TestDatabase::create("timeout").await;
    let harness = engine(&db);
    let t = harness
        .tenant_with_config("acme", json!({"statement_timeout_ms": 100}))
        .await;
    let err = t.err("query", json!({"sql": "SELECT pg_sleep(5)"})).await;
    assert_eq!(err.code, ErrorCode::Timeout, "{err:?}");
    assert!(err.retryable);
    t.ok("query", json!({"sql": "SELECT 1 AS still_usable"}))
        .await;
}

#[tokio::test]
async fn config_max_rows_is_a_ceiling_callers_can_only_lower() {
    let db = pg::TestDatabase::create("max_rows").await;
    let harness = engine(&db);
    let t = harness
        .tenant_with_config("acme", json!({"max_rows": 2}))
        .await;
    for (asked, expected) in [(None, 2), (Some(4), 2), (Some(1), 1)] {
        let mut params = json!({"sql": "SELECT generate_series(1, 5) AS x"});
        if let Some(asked) = asked {
            params["max_rows"] = json!(asked);
        }
        let result = t.ok("query", params).await;
        assert_eq!(result["row_count"], expected, "asked {asked:?}");
        assert_eq!(result["truncated"], true, "asked {asked:?}");
    }
}

#[tokio::test]
async fn invalid_config_is_refused_at_start() {
    let harness = Harness::new(Arc::new(PostgresFactory::new(PostgresSettings::new(
        "postgres://unused/db",
        "x",
    ))));
    for (config, pointer) in [
        (json!({"mode": "siloed"}), "/dsn"),
        (json!({"dsn": "postgres://h/db"}), "/dsn"),
        (json!({"max_connections": 0}), "/max_connections"),
    ] {
        let start = harness.factory.start(StartContext {
            tenant: TenantId::parse("acme").unwrap(),
            config: config.clone(),
            client: None,
        });
        let err = start.await.err().expect("start refused");
        assert_eq!(err.code, ErrorCode::ConfigInvalid, "{config}");
        assert_eq!(err.errors[0].pointer, pointer, "{config}");
    }
}

#[tokio::test]
async fn siloed_tenants_use_their_own_database_with_full_ddl() {
    let shared = pg::TestDatabase::create("silo_shared").await;
    let own = pg::TestDatabase::create("silo_own").await;
    let other = pg::TestDatabase::create("silo_other").await;
    let harness = engine(&shared);
    let siloed = harness
        .tenant_with_config("acme", json!({"mode": "siloed", "dsn": own.url}))
        .await;
    for sql in [
        "CREATE TABLE ledger (id SERIAL PRIMARY KEY, memo TEXT)",
        "INSERT INTO ledger (memo) VALUES ('rent')",
        // DDL a pooled tenant may not run: the database is the tenant's own.
        "CREATE INDEX ledger_memo ON ledger (memo)",
        "ALTER TABLE ledger ADD COLUMN amount INTEGER",
    ] {
        siloed.ok("execute", json!({"sql": sql})).await;
    }
    let metadata = siloed.ok("metadata", json!({})).await;
    assert_eq!(
        metadata["tables"][0]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["id", "memo", "amount"]
    );
    let mut direct = PgConnection::connect(&own.url).await.expect("connect");
    let memos: Vec<String> = sqlx::query_scalar("SELECT memo FROM public.ledger")
        .fetch_all(&mut direct)
        .await
        .expect("the row is in the tenant's database");
    assert_eq!(memos, ["rent"]);

    let neighbour = harness
        .tenant_with_config("globex", json!({"mode": "siloed", "dsn": other.url}))
        .await;
    let pooled = harness.tenant("initech").await;
    for t in [&neighbour, &pooled] {
        let err = t.err("query", json!({"sql": "SELECT * FROM ledger"})).await;
        assert_eq!(err.code, ErrorCode::StatementFailed);
        assert_eq!(t.ok("metadata", json!({})).await, json!({"tables": []}));
    }
}

#[tokio::test]
async fn a_siloed_dsn_the_operator_did_not_open_is_refused_at_start() {
    let own = pg::TestDatabase::create("silo_closed").await;
    let closed = PostgresFactory::new(PostgresSettings::new(own.url.clone(), pg::APP_PASSWORD));
    let by_name = own.url.replace("127.0.0.1", "localhost");
    for dsn in [&own.url, &by_name] {
        let err = closed
            .start(StartContext {
                tenant: TenantId::parse("acme").unwrap(),
                config: json!({"mode": "siloed", "dsn": dsn}),
                client: None,
            })
            .await
            .err()
            .expect("a dsn on loopback is refused without the operator's allowance");
        assert_eq!(err.code, ErrorCode::EgressForbidden, "{err:?}");
        assert_eq!(err.errors[0].pointer, "/dsn");
        assert!(!err.detail.contains(&own.url));
    }
}

#[tokio::test]
async fn health_is_up_while_running_and_down_once_stopped() {
    let db = pg::TestDatabase::create("health").await;
    let harness = engine(&db);
    let t = harness.tenant("acme").await;
    let health = t.provider.health().await;
    assert_eq!(health.status, HealthStatus::Up);
    assert_eq!(health.dependencies[0].name, "postgres");
    t.provider.stop().await;
    let health = t.provider.health().await;
    assert_eq!(health.status, HealthStatus::Down);
    let err = t.err("query", json!({"sql": "SELECT 1"})).await;
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    assert!(err.retryable);
}

#[tokio::test]
async fn an_unreachable_siloed_database_is_a_retryable_unavailable() {
    let db = pg::TestDatabase::create("unreachable").await;
    let harness = engine(&db);
    // Port 1 on loopback: nothing listens there.
    let t = harness
        .tenant_with_config(
            "acme",
            json!({"mode": "siloed", "dsn": "postgres://nobody@127.0.0.1:1/none"}),
        )
        .await;
    let err = t.err("query", json!({"sql": "SELECT 1"})).await;
    assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{err:?}");
    assert!(err.retryable);
}

#[tokio::test]
async fn a_cancelled_transaction_neither_commits_half_nor_leaks_into_the_next_call() {
    let db = pg::TestDatabase::create("cancel").await;
    let mut settings = PostgresSettings::new(db.url.clone(), pg::APP_PASSWORD);
    // One shared connection: the next call, another tenant's, reuses the cancelled one's.
    settings.max_connections = 1;
    let harness = Harness::new(Arc::new(PostgresFactory::new(settings)));
    let a = harness.tenant("alpha").await;
    let b = harness.tenant("beta").await;
    a.ok("execute", json!({"sql": "CREATE TABLE batch (i INTEGER)"}))
        .await;
    b.ok("execute", json!({"sql": "CREATE TABLE marks (i INTEGER)"}))
        .await;
    let statements: Vec<serde_json::Value> = (0..500)
        .map(|i| json!({"sql": "INSERT INTO batch VALUES ($1)", "params": [i]}))
        .collect();
    let batch = json!({"statements": statements});
    for (round, delay_ms) in [0, 1, 2, 5, 10, 20, 50].into_iter().enumerate() {
        let call = a.call("transaction", batch.clone());
        let _ = tokio::time::timeout(std::time::Duration::from_millis(delay_ms), call).await;
        let seen = b
            .ok(
                "execute",
                json!({"sql": "INSERT INTO marks SELECT 1 \
                               WHERE current_setting('app.tenant_id') = 'beta'"}),
            )
            .await;
        assert_eq!(seen["rows_affected"], 1, "round {round}");
        let marks = b
            .ok("query", json!({"sql": "SELECT count(*) AS n FROM marks"}))
            .await;
        assert_eq!(marks["rows"][0]["n"], round + 1, "round {round}");
        let rows = a
            .ok("query", json!({"sql": "SELECT count(*) AS n FROM batch"}))
            .await;
        let n = rows["rows"][0]["n"].as_i64().unwrap();
        assert_eq!(n % 500, 0, "round {round}: half a batch ({n} rows)");
    }
}
