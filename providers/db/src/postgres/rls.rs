//! Pooled mode's isolation, installed in the shared database by [`provision`].
//!
//! Every tenant shares one database and one login role (the runtime role). Four layers keep
//! them apart:
//! - **Names**: each namespace — a tenant, or the service books of a tenant — gets a schema
//!   ([`tenant_schema`], [`books_schema`]), owned by the platform's owner role, and every call
//!   sets `search_path` to it, so `CREATE TABLE t` / `SELECT * FROM t` mean the namespace's own
//!   `t`.
//! - **Privileges**: each namespace has a role of its own ([`member_role`], NOLOGIN), the only
//!   one granted its schema, tables and sequences. Every call switches to it with
//!   `set_config('role', …, true)`; the runtime role itself holds no privilege on any
//!   namespace (NOINHERIT), so `LOCK TABLE`, `TRUNCATE`, `REFERENCES` or `nextval` on another
//!   tenant's objects fail with "permission denied for schema". Since the runtime role may
//!   switch to every namespace role, tenant SQL must not switch roles: `session` refuses `SET`,
//!   `RESET`, `DO` and `set_config`, and the functions that run SQL given as text
//!   (`query_to_xml`, `ts_stat`, …) are revoked here.
//! - **Rows**: an event trigger secures every table a tenant creates in the same statement:
//!   ownership moves to the owner role (the runtime role owns nothing, so it can neither
//!   disable nor drop what protects the rows), a `tenant_id` column defaulting to the table's
//!   tenant is added, row-level security is enabled *and forced*, and one policy admits only
//!   that tenant's rows, and only in calls holding that tenant's key
//!   (`switchyard.tenant_policy` in `provision.sql`).
//! - **Identity**: the current tenant is not `current_setting('app.tenant_id')` alone — tenants
//!   send SQL, and could set that themselves. It is proven by `app.tenant_key`, a keyed hash
//!   of the tenant id under a secret that only the admin role can read. The provider gets
//!   each tenant's key from the admin connection at start and sets both with
//!   `set_config(…, true)` (transaction-local) in every call. Row policies compare the key's
//!   digest with the one written into them; `switchyard.current_tenant()` (DDL, `metadata`) accepts
//!   `app.tenant_id` only with its key. Without a valid key no row matches.
//!
//! The runtime role is neither superuser, owner of tenant tables, nor BYPASSRLS; a namespace
//! role may create tables and views in its schema and nothing else (the trigger refuses
//! whatever would leave an object owned by it).
//!
//! Shared state a tenant could use against every other tenant is taken away: advisory locks
//! (one key space for the whole database: a session lock on the key `enroll` once took would
//! have blocked every start) are revoked, `enroll` serialises on a table lock no tenant may take,
//! and the pools discard every connection's session state when they get it back (see `pools`). The
//! catalogs that name other tenants' schemas, tables, columns, roles and policies are not
//! readable (`metadata` reads the tenant's own through `switchyard.tenant_columns`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use switchyard_spi::{ErrorCode, ProviderError, TenantId};

use super::errors;

/// The column every pooled tenant table gets; tenants cannot declare it themselves.
pub(crate) const TENANT_COLUMN: &str = "tenant_id";

/// A tenant's schema in the shared database: `t_` and the id with `-` as `_` (ids have no
/// `_`, so distinct ids stay distinct). Ids too long for a 63-byte identifier keep a prefix
/// and a stable hash of the whole id.
pub fn tenant_schema(tenant: &TenantId) -> String {
    let id = tenant.as_str().replace('-', "_");
    if id.len() <= 61 {
        return format!("t_{id}");
    }
    format!("t_{}_{:016x}", &id[..44], fnv(tenant.as_str()))
}

/// The schema of a tenant's service books (see `crate::books`): `s_` where the tenant's own
/// schema has `t_`, so no tenant id can name it.
pub fn books_schema(tenant: &TenantId) -> String {
    format!("s_{}", &tenant_schema(tenant)[2..])
}

/// The role a namespace's calls run as: the runtime role's name and the schema's, or a prefix
/// of them and a stable hash when together they exceed PostgreSQL's 63 bytes. Roles are
/// cluster-wide, so the runtime role's name keeps two deployments on one cluster apart.
pub fn member_role(app_role: &str, schema: &str) -> String {
    let name = format!("{app_role}_{schema}");
    if name.len() <= 63 {
        return name;
    }
    format!("{}_{:016x}", &name[..46], fnv(&name))
}

/// FNV-1a: tiny, dependency-free and stable across builds (the names it shortens persist).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The owner role of tenant objects, derived from the runtime role's name.
pub(crate) fn owner_role(app_role: &str) -> String {
    format!("{app_role}_owner")
}

/// Role names are spliced into DDL, so only plain lower-case identifiers are accepted (and
/// short enough that `<role>_owner` still fits PostgreSQL's 63-byte names).
fn check_role_name(role: &str) -> Result<(), ProviderError> {
    let valid = (1..=50).contains(&role.len())
        && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ProviderError::new(
            ErrorCode::ConfigInvalid,
            format!("app role {role:?} must be 1-50 characters of a-z, 0-9 and _"),
        ))
    }
}

/// The database part of provisioning: functions, tables, the event trigger, revocations and
/// the upgrade of older tables, in `provision.sql`. `@APP@`, `@OWNER@`, `@COLUMN@` and
/// `@DATABASE@` are replaced by checked names. Run under an advisory lock, so concurrent
/// provisioning of one database is safe.
const DATABASE_SETUP: &str = include_str!("provision.sql");

/// Creates (or updates) the runtime role `app_role`, its owner role and the isolation
/// machinery in the database `admin_url` points at. Idempotent; safe to run on every start.
///
/// `admin_url` must log in as a superuser: event triggers need one.
pub async fn provision(
    admin_url: &str,
    app_role: &str,
    app_password: &str,
) -> Result<(), ProviderError> {
    check_role_name(app_role)?;
    let owner = owner_role(app_role);
    let mut conn = PgConnection::connect_with(&admin_options(admin_url)?)
        .await
        .map_err(|e| with_context("cannot connect with the admin URL", e))?;
    ensure_roles(&mut conn, app_role, &owner, app_password).await?;
    let database: String = sqlx::query_scalar("SELECT quote_ident(current_database())")
        .fetch_one(&mut conn)
        .await
        .map_err(errors::from_sqlx)?;
    let script = DATABASE_SETUP
        .replace("@APP@", app_role)
        .replace("@OWNER@", &owner)
        .replace("@COLUMN@", TENANT_COLUMN)
        .replace("@DATABASE@", &database);
    let mut tx = conn.begin().await.map_err(errors::from_sqlx)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('switchyard.provision'))")
        .execute(&mut *tx)
        .await
        .map_err(errors::from_sqlx)?;
    tx.execute(script.as_str())
        .await
        .map_err(|e| with_context("provisioning the database failed", e))?;
    tx.commit().await.map_err(errors::from_sqlx)?;
    conn.close().await.map_err(errors::from_sqlx)
}

/// Roles are cluster-wide, so advisory locks (per database) cannot serialise their creation:
/// concurrent provisioning of several databases may collide on the role rows and is retried.
async fn ensure_roles(
    conn: &mut PgConnection,
    app_role: &str,
    owner: &str,
    app_password: &str,
) -> Result<(), ProviderError> {
    let attributes = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
    let create = |role: &str| {
        format!(
            "DO $$ BEGIN CREATE ROLE {role}; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    };
    // The password goes through format(%L) on the server, so no quoting happens here.
    let alter_app: String = sqlx::query_scalar(&format!(
        "SELECT format('ALTER ROLE {app_role} WITH LOGIN NOINHERIT {attributes} PASSWORD %L', $1::text)"
    ))
    .bind(app_password)
    .fetch_one(&mut *conn)
    .await
    .map_err(errors::from_sqlx)?;
    let statements = [
        create(app_role),
        create(owner),
        alter_app,
        format!("ALTER ROLE {owner} WITH NOLOGIN {attributes}"),
    ];
    for statement in &statements {
        let mut attempt = 0;
        loop {
            match conn.execute(statement.as_str()).await {
                Ok(_) => break,
                Err(e) if attempt < 5 && concurrent_catalog_update(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                }
                Err(e) => return Err(with_context("creating the runtime roles failed", e)),
            }
        }
    }
    Ok(())
}

/// "tuple concurrently updated" (XX000) and friends: another session changed the same role.
fn concurrent_catalog_update(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| matches!(&*code, "XX000" | "40001" | "40P01" | "23505"))
}

/// Parses the platform's admin URL without echoing it (it may hold a password).
pub(crate) fn admin_options(admin_url: &str) -> Result<PgConnectOptions, ProviderError> {
    PgConnectOptions::from_str(admin_url).map_err(|_| {
        ProviderError::unavailable("db/postgres: the platform's admin URL is not a valid URL")
            .with_retryable(false)
    })
}

fn with_context(context: &str, err: sqlx::Error) -> ProviderError {
    let mut error = errors::from_sqlx(err);
    error.detail = format!("db/postgres: {context}: {}", error.detail);
    error
}

/// What a pooled namespace's calls need: who it is (`app.tenant_id`), its schema, its role and
/// its key (a secret: never logged).
pub(crate) struct Enrollment {
    pub id: String,
    pub schema: String,
    pub role: String,
    pub key: String,
}

/// Which namespace of a tenant an instance serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Namespace {
    /// The tenant's own tables, reached through `/providers/db/postgres/*`.
    Tenant,
    /// The service books: tables only the tenant's hosted services reach (see `crate::books`).
    Books,
}

impl Namespace {
    /// The identity rows are pinned to: the tenant id, or `books:<id>` — a colon no tenant id
    /// has, so no tenant's rows and keys are a books namespace's.
    fn id(self, tenant: &TenantId) -> String {
        match self {
            Namespace::Tenant => tenant.as_str().to_owned(),
            Namespace::Books => format!("books:{tenant}"),
        }
    }

    fn schema(self, tenant: &TenantId) -> String {
        match self {
            Namespace::Tenant => tenant_schema(tenant),
            Namespace::Books => books_schema(tenant),
        }
    }
}

/// Ensures the namespace's schema and role exist and fetches its key, on the admin connection.
/// Namespace roles are cluster-wide: enrolling one tenant in two databases at once may collide
/// on the role rows, and is retried like the runtime roles are.
pub(crate) async fn enroll(
    admin: &PgPool,
    app_role: &str,
    tenant: &TenantId,
    namespace: Namespace,
) -> Result<Enrollment, ProviderError> {
    let id = namespace.id(tenant);
    let wanted = namespace.schema(tenant);
    let mut attempt = 0;
    loop {
        let enrolled: Result<(String, String, String), _> = sqlx::query_as(
            "SELECT home::text, member::text, tenant_key FROM switchyard.enroll($1, $2, $3)",
        )
        .bind(&id)
        .bind(&wanted)
        .bind(member_role(app_role, &wanted))
        .fetch_one(admin)
        .await;
        match enrolled {
            Ok((schema, role, key)) => {
                return Ok(Enrollment {
                    id,
                    schema,
                    role,
                    key,
                });
            }
            Err(e) if attempt < 5 && concurrent_catalog_update(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            Err(e) => return Err(with_context("cannot enroll the tenant", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    #[test]
    fn schema_names_are_distinct_valid_identifiers() {
        assert_eq!(tenant_schema(&tenant("acme-corp")), "t_acme_corp");
        let long_a = tenant(&"a".repeat(63));
        let long_b = tenant(&format!("{}b", "a".repeat(62)));
        let (a, b) = (tenant_schema(&long_a), tenant_schema(&long_b));
        assert_ne!(a, b);
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_eq!(tenant_schema(&long_a), a, "stable");
    }

    #[test]
    fn namespaces_get_distinct_schemas_and_roles_that_fit_in_a_name() {
        let acme = tenant("acme-corp");
        assert_eq!(books_schema(&acme), "s_acme_corp");
        assert_eq!(
            member_role("switchyard_app", "t_acme_corp"),
            "switchyard_app_t_acme_corp"
        );
        let long = tenant(&"a".repeat(63));
        let (own, books) = (tenant_schema(&long), books_schema(&long));
        assert_ne!(own, books);
        let roles = [
            member_role(&"r".repeat(50), &own),
            member_role(&"r".repeat(50), &books),
        ];
        assert_ne!(roles[0], roles[1]);
        assert!(roles.iter().all(|r| r.len() <= 63), "{roles:?}");
        assert_eq!(Namespace::Books.id(&acme), "books:acme-corp");
        assert!(TenantId::parse(&Namespace::Books.id(&acme)).is_err());
    }

    #[test]
    fn role_names_that_could_inject_sql_are_refused() {
        for bad in ["", "App", "a;drop", "a b", "9lives", &"a".repeat(51)] {
            assert!(check_role_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_role_name("switchyard_app").is_ok());
    }
}
