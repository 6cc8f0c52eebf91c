//! Pooled mode's isolation, installed in the shared database by [`provision`].
//!
//! Every tenant shares one database and one runtime role. Three layers keep them apart:
//! - **Names**: each tenant gets a schema ([`tenant_schema`]), owned by the platform's owner
//!   role, and every call sets `search_path` to it, so `CREATE TABLE t` / `SELECT * FROM t`
//!   mean the tenant's own `t`.
//! - **Rows**: an event trigger secures every table a tenant creates in the same statement:
//!   ownership moves to the owner role (the runtime role owns nothing, so it can neither
//!   disable nor drop what protects the rows), a `tenant_id` column defaulting to the current
//!   tenant is added, row-level security is enabled *and forced*, and one policy admits only
//!   rows of the current tenant, in that tenant's own tables.
//! - **Identity**: the current tenant is not `current_setting('app.tenant_id')` alone — tenants
//!   send SQL, and could set that themselves. [`CURRENT_TENANT`] accepts `app.tenant_id` only
//!   together with `app.tenant_key`, a keyed hash of the tenant id under a secret that only the
//!   admin role can read. The provider gets each tenant's key from the admin connection at
//!   start and sets both with `set_config(…, true)` (transaction-local) in every call.
//!   Without a valid pair the current tenant is NULL, which matches no row.
//!
//! The runtime role is neither superuser, owner of tenant tables, nor BYPASSRLS; it may create
//! tables and views in its tenant's schema and nothing else (the trigger refuses whatever would
//! leave an object owned by the runtime role).

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
    // FNV-1a: tiny, dependency-free and stable across builds (the name is persisted).
    let hash = tenant
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("t_{}_{hash:016x}", &id[..44])
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

/// `SECURITY DEFINER` so that it can read the secret the caller cannot; `STABLE` so a policy
/// wrapping it in a sub-select evaluates it once per statement.
const CURRENT_TENANT: &str = r#"
CREATE OR REPLACE FUNCTION switchyard.current_tenant() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
  SELECT s.t FROM (SELECT nullif(current_setting('app.tenant_id', true), '') AS t) s
  WHERE current_setting('app.tenant_key', true) = switchyard.tenant_key(s.t)
$f$;
"#;

/// The database part of provisioning; `@APP@` and `@OWNER@` are replaced by checked role
/// names. Run under an advisory lock, so concurrent provisioning of one database is safe.
const DATABASE_SETUP: &str = r#"
CREATE SCHEMA IF NOT EXISTS switchyard;
REVOKE ALL ON SCHEMA switchyard FROM PUBLIC;
GRANT USAGE ON SCHEMA switchyard TO @APP@, @OWNER@;

CREATE TABLE IF NOT EXISTS switchyard.secret (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  key bytea NOT NULL
);
-- 244 random bits from two v4 UUIDs: no extension needed.
INSERT INTO switchyard.secret (key)
  VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
  ON CONFLICT DO NOTHING;
REVOKE ALL ON switchyard.secret FROM PUBLIC;

CREATE TABLE IF NOT EXISTS switchyard.tenants (
  tenant text PRIMARY KEY,
  schema_name name NOT NULL UNIQUE
);
REVOKE ALL ON switchyard.tenants FROM PUBLIC;

-- HMAC-like nesting, so the key of one tenant says nothing about another's.
CREATE OR REPLACE FUNCTION switchyard.tenant_key(tenant text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
  SELECT encode(sha256(s.key || sha256(s.key || convert_to(tenant, 'UTF8'))), 'hex')
  FROM switchyard.secret s
$f$;
REVOKE ALL ON FUNCTION switchyard.tenant_key(text) FROM PUBLIC;

@CURRENT_TENANT@
REVOKE ALL ON FUNCTION switchyard.current_tenant() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION switchyard.current_tenant() TO @APP@, @OWNER@;

-- Fired after each inserted row of a table with a one-column integer primary key, so that
-- execute can report last_insert_id; transaction-local, reset by the provider per statement.
CREATE OR REPLACE FUNCTION switchyard.remember_insert_id() RETURNS trigger
LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM pg_catalog.set_config('switchyard.last_insert_id',
                                pg_catalog.to_jsonb(NEW) ->> TG_ARGV[0], true);
  RETURN NULL;
END
$f$;

CREATE OR REPLACE FUNCTION switchyard.enroll(tenant text, wanted name)
RETURNS TABLE (home name, tenant_key text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
  found_home name;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('switchyard.enroll'));
  INSERT INTO switchyard.tenants AS t (tenant, schema_name) VALUES (enroll.tenant, wanted)
    ON CONFLICT DO NOTHING;
  SELECT t.schema_name INTO found_home FROM switchyard.tenants t WHERE t.tenant = enroll.tenant;
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', found_home, '@OWNER@');
  EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', found_home, '@APP@');
  RETURN QUERY SELECT found_home, switchyard.tenant_key(enroll.tenant);
END
$f$;
REVOKE ALL ON FUNCTION switchyard.enroll(text, name) FROM PUBLIC;

CREATE OR REPLACE FUNCTION switchyard.secure_tenant_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
  app constant name := '@APP@';
  owner constant name := '@OWNER@';
  current_id text;
  home name;
  cmd record;
  rel regclass;
  seq regclass;
  key_column name;
BEGIN
  IF session_user <> app THEN
    RETURN;
  END IF;
  current_id := switchyard.current_tenant();
  SELECT t.schema_name INTO home FROM switchyard.tenants t WHERE t.tenant = current_id;
  IF home IS NULL THEN
    RAISE EXCEPTION 'db/postgres: schema changes need a tenant context'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    -- Our own ALTER / POLICY / TRIGGER / GRANT below fire this trigger again: they need
    -- ownership the runtime role never has, so only creations of the runtime role matter.
    CONTINUE WHEN NOT (cmd.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE VIEW')
                       AND cmd.object_type IN ('table', 'view'));
    IF cmd.schema_name IS DISTINCT FROM home THEN
      RAISE EXCEPTION 'db/postgres: a tenant creates objects in its own schema only, not in %', cmd.schema_name
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    rel := cmd.objid;
    IF cmd.object_type = 'view' THEN
      EXECUTE format('ALTER VIEW %s OWNER TO %I', rel, owner);
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', rel, app);
      CONTINUE;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = rel AND (c.relkind <> 'r' OR c.relispartition))
       OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = rel) THEN
      RAISE EXCEPTION 'db/postgres: partitioned and inheriting tables are not supported in pooled mode'
        USING ERRCODE = 'feature_not_supported';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_constraint k JOIN pg_class r ON r.oid = k.confrelid
               WHERE k.conrelid = rel AND k.contype = 'f' AND r.relnamespace::regnamespace::name <> home) THEN
      RAISE EXCEPTION 'db/postgres: foreign keys may reference the tenant''s own tables only'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_attribute a
               WHERE a.attrelid = rel AND a.attname = '@COLUMN@' AND NOT a.attisdropped) THEN
      RAISE EXCEPTION 'db/postgres: the column name @COLUMN@ is reserved for row-level security'
        USING ERRCODE = 'duplicate_column';
    END IF;
    EXECUTE format('ALTER TABLE %s OWNER TO %I', rel, owner);
    EXECUTE format('ALTER TABLE %s ADD COLUMN @COLUMN@ text NOT NULL DEFAULT switchyard.current_tenant()', rel);
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', rel);
    -- Pinned to the table's tenant too: another tenant may not even park rows here.
    EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (%2$s) WITH CHECK (%2$s)', rel,
                   format('@COLUMN@ = %L AND @COLUMN@ = (SELECT switchyard.current_tenant())', current_id));
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, REFERENCES ON %s TO %I', rel, app);
    FOR seq IN SELECT d.objid::regclass FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
               WHERE d.refobjid = rel AND d.classid = 'pg_class'::regclass AND s.relkind = 'S' LOOP
      EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', seq, app);
    END LOOP;
    SELECT a.attname INTO key_column
      FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE i.indrelid = rel AND i.indisprimary AND i.indnkeyatts = 1
        AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype);
    IF FOUND THEN
      EXECUTE format('CREATE TRIGGER switchyard_last_insert_id AFTER INSERT ON %s FOR EACH ROW '
                     'EXECUTE FUNCTION switchyard.remember_insert_id(%L)', rel, key_column);
    END IF;
  END LOOP;
  -- Whatever else a tenant created (functions, types, sequences, materialized views) would
  -- stay owned by the shared runtime role, so any tenant could alter or drop it: refused.
  IF EXISTS (SELECT 1 FROM pg_shdepend d
             WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = app::regrole
               AND d.deptype = 'o'
               AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())) THEN
    RAISE EXCEPTION 'db/postgres: in pooled mode a tenant may create tables and views only'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
END
$f$;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'switchyard_secure_tenant_ddl') THEN
    CREATE EVENT TRIGGER switchyard_secure_tenant_ddl ON ddl_command_end
      EXECUTE FUNCTION switchyard.secure_tenant_ddl();
  END IF;
END
$$;

-- Session-spanning state a tenant could leave on a pooled connection for the next tenant:
-- temporary tables (they would shadow the next tenant's tables) are not allowed, and other
-- sessions' statement texts (pg_stat_activity shows them for the same role) are hidden.
REVOKE TEMPORARY ON DATABASE @DATABASE@ FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE @DATABASE@ TO @APP@;
REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_backend_activity(integer) FROM PUBLIC;
"#;

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
        .replace("@CURRENT_TENANT@", CURRENT_TENANT)
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

/// What a pooled tenant's calls need: its schema and its key (a secret: never logged).
pub(crate) struct Enrollment {
    pub schema: String,
    pub key: String,
}

/// Ensures the tenant's schema exists and fetches its key, on the admin connection.
pub(crate) async fn enroll(admin: &PgPool, tenant: &TenantId) -> Result<Enrollment, ProviderError> {
    let (schema, key): (String, String) =
        sqlx::query_as("SELECT home::text, tenant_key FROM switchyard.enroll($1, $2)")
            .bind(tenant.as_str())
            .bind(tenant_schema(tenant))
            .fetch_one(admin)
            .await
            .map_err(|e| with_context("cannot enroll the tenant", e))?;
    Ok(Enrollment { schema, key })
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
    fn role_names_that_could_inject_sql_are_refused() {
        for bad in ["", "App", "a;drop", "a b", "9lives", &"a".repeat(51)] {
            assert!(check_role_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_role_name("switchyard_app").is_ok());
    }
}
