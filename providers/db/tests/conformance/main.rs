//! Conformance suite of the `db` domain: every enrolled engine must pass every test here, so a
//! caller cannot tell engines apart by params, results or error codes.
//!
//! Each test loops over [`engines`], each engine on its own fresh store (a temp directory, a
//! new PostgreSQL database); tests of optional behaviour are gated on the engine's declared
//! capabilities. SQL differs between engines only where the dialects do — placeholders, an
//! auto-numbered key, the text and binary types, recursive queries — and each engine supplies
//! those few snippets in its [`Dialect`]; the assertions are the same for every engine.
//!
//! `db/mssql` is enrolled only when `SWITCHYARD_TEST_MSSQL_URL` names a SQL Server, which
//! cannot run where the suite usually runs; [`db_mssql_enrolled`] then reports the skip.

mod execute;
mod metadata;
mod query;
mod tenancy;
mod transaction;

#[path = "../support/mssql.rs"]
mod ms;
#[path = "../support/mysql.rs"]
mod my;
#[path = "../support/postgres.rs"]
mod pg;
#[path = "../support/prefix.rs"]
mod prefix;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use switchyard_provider_db::{
    MssqlFactory, MysqlFactory, PostgresFactory, PostgresSettings, SqliteFactory,
};
use switchyard_spi::testkit::{Harness, TenantInstance};
use switchyard_spi::{ErrorCode, ProviderError, ProviderFactory};
use tempfile::TempDir;

/// Where one engine keeps a test's data; dropping it removes the data.
pub enum Store {
    Dir(TempDir),
    Postgres(pg::TestDatabase),
    Mysql(my::TestPrefix),
    Mssql(ms::TestPrefix),
}

impl Store {
    fn temp_dir() -> Pin<Box<dyn Future<Output = Store> + Send>> {
        Box::pin(async { Store::Dir(tempfile::tempdir().expect("temp dir")) })
    }

    fn postgres() -> Pin<Box<dyn Future<Output = Store> + Send>> {
        Box::pin(async { Store::Postgres(pg::TestDatabase::create("conformance").await) })
    }

    fn mysql() -> Pin<Box<dyn Future<Output = Store> + Send>> {
        Box::pin(async { Store::Mysql(my::test_prefix("c")) })
    }

    fn mssql() -> Pin<Box<dyn Future<Output = Store> + Send>> {
        Box::pin(async { Store::Mssql(ms::test_prefix("c")) })
    }

    fn prefix(&self) -> String {
        match self {
            Store::Mysql(p) => p.prefix.clone(),
            Store::Mssql(p) => p.prefix.clone(),
            _ => unreachable!("only a MySQL or SQL Server store has a database prefix"),
        }
    }

    fn dir(&self) -> std::path::PathBuf {
        match self {
            Store::Dir(dir) => dir.path().to_path_buf(),
            _ => unreachable!("only a directory store has a directory"),
        }
    }

    fn url(&self) -> String {
        match self {
            Store::Postgres(db) => db.url.clone(),
            _ => unreachable!("only a PostgreSQL store has a URL"),
        }
    }
}

/// A column type as DDL writes it (and `metadata` reports it), and the name `query` results
/// give it: result metadata carries no length on some engines, so SQL Server's
/// `VARBINARY(MAX)` is `VARBINARY` there.
pub struct Type {
    pub ddl: &'static str,
    pub in_results: &'static str,
}

/// The few SQL snippets that differ between engines.
pub struct Dialect {
    /// The `n`th (1-based) positional parameter.
    pub param: fn(usize) -> String,
    /// Column definition of an integer primary key numbered automatically.
    pub auto_id: &'static str,
    /// A 64-bit integer column type, and the name the engine reports for it.
    pub int64: &'static str,
    /// A type for Unicode text of any length that can be compared and sorted (SQL Server's
    /// `TEXT` can do neither). Columns that are keys or `UNIQUE` use `VARCHAR(40)` instead,
    /// which every engine can index.
    pub text: Type,
    /// The binary column type.
    pub blob: Type,
    /// A binary literal from hex digits.
    pub blob_literal: fn(&str) -> String,
    /// What a recursive common table expression starts with (T-SQL has no `RECURSIVE`).
    pub with_recursive: &'static str,
}

impl Dialect {
    /// `template` with `?1`, `?2`, … as this engine's parameters and `{auto_id}`, `{int64}`,
    /// `{text}`, `{blob}`, `{with_recursive}` as its snippets.
    pub fn sql(&self, template: &str) -> String {
        let template = template
            .replace("{auto_id}", self.auto_id)
            .replace("{int64}", self.int64)
            .replace("{text}", self.text.ddl)
            .replace("{blob}", self.blob.ddl)
            .replace("{with_recursive}", self.with_recursive);
        let mut out = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            let mut digits = String::new();
            while c == '?'
                && let Some(d) = chars.next_if(char::is_ascii_digit)
            {
                digits.push(d);
            }
            match digits.parse() {
                Ok(n) => out.push_str(&(self.param)(n)),
                Err(_) => out.push(c),
            }
        }
        out
    }
}

/// `TEXT`, as every engine but SQL Server writes and reports it.
const TEXT: Type = Type {
    ddl: "TEXT",
    in_results: "TEXT",
};

const SQLITE: Dialect = Dialect {
    param: |n| format!("?{n}"),
    auto_id: "INTEGER PRIMARY KEY",
    int64: "INTEGER",
    text: TEXT,
    blob: Type {
        ddl: "BLOB",
        in_results: "BLOB",
    },
    blob_literal: |hex| format!("X'{hex}'"),
    with_recursive: "WITH RECURSIVE",
};

const POSTGRES: Dialect = Dialect {
    param: |n| format!("${n}"),
    auto_id: "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    int64: "BIGINT",
    text: TEXT,
    blob: Type {
        ddl: "BYTEA",
        in_results: "BYTEA",
    },
    blob_literal: |hex| format!("'\\x{hex}'::bytea"),
    with_recursive: "WITH RECURSIVE",
};

const MYSQL: Dialect = Dialect {
    param: |_| "?".into(),
    auto_id: "INTEGER AUTO_INCREMENT PRIMARY KEY",
    int64: "BIGINT",
    text: TEXT,
    blob: Type {
        ddl: "BLOB",
        in_results: "BLOB",
    },
    blob_literal: |hex| format!("X'{hex}'"),
    with_recursive: "WITH RECURSIVE",
};

const MSSQL: Dialect = Dialect {
    param: |n| format!("@P{n}"),
    auto_id: "INT IDENTITY(1,1) PRIMARY KEY",
    int64: "BIGINT",
    text: Type {
        ddl: "NVARCHAR(MAX)",
        in_results: "NVARCHAR",
    },
    blob: Type {
        ddl: "VARBINARY(MAX)",
        in_results: "VARBINARY",
    },
    blob_literal: |hex| format!("0x{hex}"),
    with_recursive: "WITH",
};

/// Opens a fresh store for one test.
type Open = fn() -> Pin<Box<dyn Future<Output = Store> + Send>>;
/// Builds an engine's factory on a store; building again on the same store is a restart.
type Build = fn(&Store) -> Arc<dyn ProviderFactory>;
/// Whether the engine takes part in this run.
type Enrolled = fn() -> bool;

/// The engines that need no server, or one `scripts/test` starts: always enrolled, so a
/// missing server fails their tests rather than skipping them.
fn always() -> bool {
    true
}

/// db/mssql: only with a SQL Server named (see [`db_mssql_enrolled`]).
fn mssql_server() -> bool {
    std::env::var(ms::URL_VARIABLE).is_ok_and(|url| !url.trim().is_empty())
}

/// Every engine. Enrolling one more is one entry.
const ENGINES: &[(&str, Dialect, Open, Build, Enrolled)] = &[
    (
        "db/sqlite",
        SQLITE,
        Store::temp_dir,
        |s| Arc::new(SqliteFactory::new(s.dir())),
        always,
    ),
    (
        "db/postgres",
        POSTGRES,
        Store::postgres,
        |s| {
            Arc::new(PostgresFactory::new(PostgresSettings::new(
                s.url(),
                pg::APP_PASSWORD,
            )))
        },
        always,
    ),
    (
        "db/mysql",
        MYSQL,
        Store::mysql,
        |s| Arc::new(MysqlFactory::new(my::server_url()).with_database_prefix(&s.prefix())),
        always,
    ),
    (
        "db/mssql",
        MSSQL,
        Store::mssql,
        |s| {
            Arc::new(
                MssqlFactory::new(ms::server_url())
                    .with_secret("mssql-conformance-secret")
                    .with_database_prefix(&s.prefix()),
            )
        },
        mssql_server,
    ),
];

/// One enrolled engine with its own store, alive as long as the test holds it.
pub struct Engine {
    pub name: &'static str,
    pub dialect: &'static Dialect,
    pub harness: Harness,
    build: Build,
    store: Store,
}

impl Engine {
    /// A new factory on the same store, as after a process restart.
    pub fn restart(&self) -> Harness {
        Harness::new((self.build)(&self.store))
    }

    /// Shorthand for `self.dialect.sql(template)`.
    pub fn sql(&self, template: &str) -> String {
        self.dialect.sql(template)
    }
}

pub async fn engines() -> Vec<Engine> {
    let mut engines = Vec::with_capacity(ENGINES.len());
    for (name, dialect, open, build, _) in ENGINES.iter().filter(|engine| (engine.4)()) {
        let store = open().await;
        engines.push(Engine {
            name,
            dialect,
            harness: Harness::new(build(&store)),
            build: *build,
            store,
        });
    }
    engines
}

/// Asserts an error's code and, when given, that one of its field errors has `pointer`.
pub fn assert_error(engine: &str, err: &ProviderError, code: ErrorCode, pointer: Option<&str>) {
    assert_eq!(err.code, code, "{engine}: wrong code in {err:?}");
    if let Some(pointer) = pointer {
        assert!(
            err.errors.iter().any(|e| e.pointer == pointer),
            "{engine}: no field error at {pointer} in {err:?}"
        );
    }
}

/// `SELECT count(*)` of a table, through `query`.
pub async fn count(tenant: &TenantInstance, table: &str) -> i64 {
    let result = tenant
        .ok(
            "query",
            serde_json::json!({"sql": format!("SELECT count(*) AS n FROM {table}")}),
        )
        .await;
    result["rows"][0]["n"]
        .as_i64()
        .expect("count is an integer")
}

/// The `rows` of a query result.
pub fn rows(result: &Value) -> &Vec<Value> {
    result["rows"].as_array().expect("rows is an array")
}

#[test]
fn dialect_placeholders_are_numbered_like_the_template() {
    assert_eq!(
        POSTGRES.sql("SELECT ?1, '?', ?12 FROM t WHERE x = ?2"),
        "SELECT $1, '?', $12 FROM t WHERE x = $2"
    );
    assert_eq!(SQLITE.sql("VALUES (?1, ?)"), "VALUES (?1, ?)");
    assert_eq!(MYSQL.sql("VALUES (?1, '?', ?2)"), "VALUES (?, '?', ?)");
    assert_eq!(
        MSSQL.sql("{with_recursive} n AS (SELECT ?1 AS [?], ?10 FROM t WHERE x = ?2)"),
        "WITH n AS (SELECT @P1 AS [?], @P10 FROM t WHERE x = @P2)"
    );
}

/// No SQL Server can run where this suite usually runs, so without one this test is reported
/// as ignored with the reason instead of the suite silently passing without db/mssql. With
/// `SWITCHYARD_TEST_MSSQL_URL` set it runs, and fails unless db/mssql is among the engines
/// every other test here loops over.
#[tokio::test]
#[cfg_attr(
    not(mssql_server),
    ignore = "skipped: no MSSQL server (set SWITCHYARD_TEST_MSSQL_URL to run the db conformance suite on db/mssql)"
)]
async fn db_mssql_enrolled() {
    let names: Vec<&str> = engines().await.iter().map(|e| e.name).collect();
    assert!(
        names.contains(&"db/mssql"),
        "{} is set but db/mssql is not enrolled: {names:?}",
        ms::URL_VARIABLE
    );
}
