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
//!   that tenant's rows, and only in calls holding that tenant's key ([`TENANT_POLICY`]).
//! - **Identity**: the current tenant is not `current_setting('app.tenant_id')` alone — tenants
//!   send SQL, and could set that themselves. It is proven by `app.tenant_key`, a keyed hash
//!   of the tenant id under a secret that only the admin role can read. The provider gets
//!   each tenant's key from the admin connection at start and sets both with
//!   `set_config(…, true)` (transaction-local) in every call. Row policies compare the key's
//!   digest with the one written into them; [`CURRENT_TENANT`] (DDL, `metadata`) accepts
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

/// `SECURITY DEFINER` so that it can read the secret the caller cannot. Who runs a call's DDL
/// (the event trigger) and whose tables `metadata` lists; row policies check the key
/// themselves, more cheaply (see [`TENANT_POLICY`]).
const CURRENT_TENANT: &str = r#"
CREATE OR REPLACE FUNCTION switchyard.current_tenant() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
  SELECT s.t FROM (SELECT nullif(current_setting('app.tenant_id', true), '') AS t) s
  WHERE current_setting('app.tenant_key', true) = switchyard.tenant_key(s.t)
$f$;
"#;

/// The row filter (and check) of a pooled table of `tenant`: the table's rows, when the call
/// holds the tenant's key. Built-in functions only, in a sub-select that PostgreSQL runs once
/// per statement (an InitPlan), where calling `current_tenant()` — a definer's function,
/// which no query can inline, reading the secret table — cost ~65 µs per statement and per
/// inserted row. The key is compared by its SHA-256, so the policy (visible to the superuser,
/// and in dumps) holds no secret; `app.tenant_id` plays no part, so forging it gains nothing.
/// The literal tenant pins the rows too: no other tenant may even park rows in the table.
const TENANT_POLICY: &str = r#"
CREATE OR REPLACE FUNCTION switchyard.tenant_policy(tenant text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
  SELECT format('@COLUMN@ = %L AND (SELECT pg_catalog.sha256(pg_catalog.convert_to('
                'pg_catalog.current_setting(''app.tenant_key'', true), ''UTF8'')) = %L::bytea)',
                tenant, sha256(convert_to(switchyard.tenant_key(tenant), 'UTF8')))
$f$;
"#;

/// Existing databases upgrade at provisioning: tables secured when the policy and the column
/// default called `current_tenant()` get [`TENANT_POLICY`]'s policy and a constant default,
/// and last-insert-id triggers without a `WHEN` get one. Only those are altered (each `ALTER`
/// locks its table), so a second run changes nothing.
const UPGRADE_POLICIES: &str = r#"
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT p.polrelid::regclass AS rel, t.tenant
           FROM pg_policy p
           JOIN pg_class c ON c.oid = p.polrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN switchyard.tenants t ON t.schema_name = n.nspname
           WHERE p.polname = 'tenant_isolation'
             AND pg_get_expr(p.polqual, p.polrelid) LIKE '%current_tenant()%' LOOP
    EXECUTE format('ALTER POLICY tenant_isolation ON %s USING (%2$s) WITH CHECK (%2$s)',
                   r.rel, switchyard.tenant_policy(r.tenant));
    EXECUTE format('ALTER TABLE %s ALTER COLUMN @COLUMN@ SET DEFAULT %L', r.rel, r.tenant);
  END LOOP;
  FOR r IN SELECT t.tgrelid::regclass AS rel, a.attname AS key_column
           FROM pg_trigger t
           JOIN pg_index i ON i.indrelid = t.tgrelid AND i.indisprimary
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
           WHERE t.tgname = 'switchyard_last_insert_id' AND t.tgqual IS NULL LOOP
    EXECUTE switchyard.insert_id_trigger(r.rel, r.key_column);
  END LOOP;
END
$$;
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
-- The namespace's role; added after the first release, hence nullable and filled by enroll.
ALTER TABLE switchyard.tenants ADD COLUMN IF NOT EXISTS member name;
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

@TENANT_POLICY@
REVOKE ALL ON FUNCTION switchyard.tenant_policy(text) FROM PUBLIC;

-- Fired after each inserted row of a table with a one-column integer primary key, so that
-- execute can report last_insert_id; transaction-local, reset by the provider per statement.
-- Not fired at all (the trigger's WHEN, evaluated without calling plpgsql) in calls whose
-- statements all said they do not want the id: the provider sets switchyard.insert_ids off.
CREATE OR REPLACE FUNCTION switchyard.insert_id_trigger(rel regclass, key_column name) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $f$
  SELECT format('CREATE OR REPLACE TRIGGER switchyard_last_insert_id AFTER INSERT ON %s FOR EACH ROW '
                'WHEN (pg_catalog.current_setting(''switchyard.insert_ids'', true) IS DISTINCT FROM ''off'') '
                'EXECUTE FUNCTION switchyard.remember_insert_id(%L)', rel, key_column)
$f$;
REVOKE ALL ON FUNCTION switchyard.insert_id_trigger(regclass, name) FROM PUBLIC;

CREATE OR REPLACE FUNCTION switchyard.remember_insert_id() RETURNS trigger
LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM pg_catalog.set_config('switchyard.last_insert_id',
                                pg_catalog.to_jsonb(NEW) ->> TG_ARGV[0], true);
  RETURN NULL;
END
$f$;

DROP FUNCTION IF EXISTS switchyard.enroll(text, name);
-- Serialised by a lock on the tenant list: the runtime role has no privilege on it, so unlike
-- an advisory lock no tenant can take it and stall every other tenant's start.
CREATE OR REPLACE FUNCTION switchyard.enroll(tenant text, wanted name, wanted_member name)
RETURNS TABLE (home name, member name, tenant_key text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
  found_home name;
  found_member name;
BEGIN
  LOCK TABLE switchyard.tenants IN SHARE ROW EXCLUSIVE MODE;
  INSERT INTO switchyard.tenants AS t (tenant, schema_name, member)
    VALUES (enroll.tenant, wanted, wanted_member) ON CONFLICT DO NOTHING;
  UPDATE switchyard.tenants t SET member = wanted_member
    WHERE t.tenant = enroll.tenant AND t.member IS NULL;
  SELECT t.schema_name, t.member INTO found_home, found_member
    FROM switchyard.tenants t WHERE t.tenant = enroll.tenant;
  BEGIN
    EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE '
                   'NOREPLICATION NOBYPASSRLS', found_member);
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
  END;
  EXECUTE format('GRANT %I TO %I', found_member, '@APP@');
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', found_home, '@OWNER@');
  EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', found_home, found_member);
  EXECUTE format('GRANT USAGE ON SCHEMA switchyard TO %I', found_member);
  EXECUTE format('GRANT EXECUTE ON FUNCTION switchyard.current_tenant(), '
                 'switchyard.tenant_columns(text) TO %I', found_member);
  -- Schemas enrolled before namespace roles existed granted everything to the runtime role:
  -- their grants move to the namespace role.
  EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', found_home, '@APP@');
  EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %1$I FROM %2$I; '
                 'REVOKE ALL ON ALL SEQUENCES IN SCHEMA %1$I FROM %2$I', found_home, '@APP@');
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, REFERENCES ON ALL TABLES IN SCHEMA %1$I TO %2$I; '
                 'GRANT USAGE ON ALL SEQUENCES IN SCHEMA %1$I TO %2$I', found_home, found_member);
  RETURN QUERY SELECT found_home, found_member, switchyard.tenant_key(enroll.tenant);
END
$f$;
REVOKE ALL ON FUNCTION switchyard.enroll(text, name, name) FROM PUBLIC;

-- What `metadata` lists in pooled mode: the current tenant's tables, without the row-security
-- column. A definer's function, because the catalogs themselves are not readable (below).
CREATE OR REPLACE FUNCTION switchyard.tenant_columns(wanted text)
RETURNS TABLE (table_name text, column_name text, column_type text, not_null boolean, is_key boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
  SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
         coalesce(a.attnum = ANY (i.indkey), false)
  FROM switchyard.tenants t
  JOIN pg_namespace n ON n.nspname = t.schema_name
  JOIN pg_class c ON c.relnamespace = n.oid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
  WHERE t.tenant = switchyard.current_tenant() AND c.relkind IN ('r', 'p')
    AND (wanted IS NULL OR c.relname = wanted) AND a.attname <> '@COLUMN@'
  ORDER BY c.relname, a.attnum
$f$;
REVOKE ALL ON FUNCTION switchyard.tenant_columns(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION switchyard.secure_tenant_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
  app constant name := '@APP@';
  owner constant name := '@OWNER@';
  current_id text;
  home name;
  member name;
  cmd record;
  rel regclass;
  seq regclass;
  key_column name;
BEGIN
  IF session_user <> app THEN
    RETURN;
  END IF;
  current_id := switchyard.current_tenant();
  SELECT t.schema_name, t.member INTO home, member FROM switchyard.tenants t WHERE t.tenant = current_id;
  IF home IS NULL OR member IS NULL THEN
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
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', rel, member);
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
    -- The table's tenant as a constant: the policy's WITH CHECK refuses the row unless the
    -- call holds that tenant's key, so the default need not check it again per row.
    EXECUTE format('ALTER TABLE %s ADD COLUMN @COLUMN@ text NOT NULL DEFAULT %L', rel, current_id);
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', rel);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (%2$s) WITH CHECK (%2$s)', rel,
                   switchyard.tenant_policy(current_id));
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, REFERENCES ON %s TO %I', rel, member);
    FOR seq IN SELECT d.objid::regclass FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
               WHERE d.refobjid = rel AND d.classid = 'pg_class'::regclass AND s.relkind = 'S' LOOP
      EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', seq, member);
    END LOOP;
    SELECT a.attname INTO key_column
      FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE i.indrelid = rel AND i.indisprimary AND i.indnkeyatts = 1
        AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype);
    IF FOUND THEN
      EXECUTE switchyard.insert_id_trigger(rel, key_column);
    END IF;
  END LOOP;
  -- Whatever else a tenant created (functions, types, sequences, materialized views) would
  -- stay owned by the tenant's role, outside the row security: refused.
  IF EXISTS (SELECT 1 FROM pg_shdepend d
             WHERE d.refclassid = 'pg_authid'::regclass
               AND d.refobjid IN (app::regrole, member::regrole)
               AND d.deptype = 'o'
               AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())) THEN
    RAISE EXCEPTION 'db/postgres: in pooled mode a tenant may create tables and views only'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
END
$f$;

@UPGRADE_POLICIES@

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

-- Advisory locks share one key space across tenants: one tenant's lock would block another's
-- (or, held by a session, every later start). Tenants lock their own rows instead.
REVOKE EXECUTE ON FUNCTION
  pg_catalog.pg_advisory_lock(bigint), pg_catalog.pg_advisory_lock(integer, integer),
  pg_catalog.pg_advisory_lock_shared(bigint), pg_catalog.pg_advisory_lock_shared(integer, integer),
  pg_catalog.pg_try_advisory_lock(bigint), pg_catalog.pg_try_advisory_lock(integer, integer),
  pg_catalog.pg_try_advisory_lock_shared(bigint), pg_catalog.pg_try_advisory_lock_shared(integer, integer),
  pg_catalog.pg_advisory_xact_lock(bigint), pg_catalog.pg_advisory_xact_lock(integer, integer),
  pg_catalog.pg_advisory_xact_lock_shared(bigint), pg_catalog.pg_advisory_xact_lock_shared(integer, integer),
  pg_catalog.pg_try_advisory_xact_lock(bigint), pg_catalog.pg_try_advisory_xact_lock(integer, integer),
  pg_catalog.pg_try_advisory_xact_lock_shared(bigint), pg_catalog.pg_try_advisory_xact_lock_shared(integer, integer)
  FROM PUBLIC;

-- Everything that runs SQL given as a string, which the statement guard cannot read: a
-- `set_config('role', …)` hidden in one would switch to another tenant's role.
REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
  pg_catalog.query_to_xml(text, boolean, boolean, text),
  pg_catalog.query_to_xmlschema(text, boolean, boolean, text),
  pg_catalog.query_to_xml_and_xmlschema(text, boolean, boolean, text),
  pg_catalog.ts_stat(text), pg_catalog.ts_stat(text, text),
  pg_catalog.ts_rewrite(tsquery, text)
  FROM PUBLIC;

-- The catalogs that name other tenants' schemas, tables, columns, constraints, views,
-- policies (which hold tenant ids) and roles. information_schema stays: it shows only objects
-- the current role has a privilege on, i.e. the tenant's own.
REVOKE SELECT ON
  pg_catalog.pg_namespace, pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_attrdef,
  pg_catalog.pg_constraint, pg_catalog.pg_index, pg_catalog.pg_inherits, pg_catalog.pg_depend,
  pg_catalog.pg_description, pg_catalog.pg_policy, pg_catalog.pg_rewrite, pg_catalog.pg_trigger,
  pg_catalog.pg_sequence, pg_catalog.pg_roles, pg_catalog.pg_user, pg_catalog.pg_auth_members,
  pg_catalog.pg_shdepend, pg_catalog.pg_tables, pg_catalog.pg_views, pg_catalog.pg_indexes,
  pg_catalog.pg_policies, pg_catalog.pg_sequences, pg_catalog.pg_matviews,
  pg_catalog.pg_stat_all_tables, pg_catalog.pg_stat_user_tables,
  pg_catalog.pg_stat_xact_all_tables, pg_catalog.pg_stat_xact_user_tables,
  pg_catalog.pg_statio_all_tables, pg_catalog.pg_statio_user_tables,
  pg_catalog.pg_stat_all_indexes, pg_catalog.pg_stat_user_indexes,
  pg_catalog.pg_statio_all_indexes, pg_catalog.pg_statio_user_indexes,
  pg_catalog.pg_statio_all_sequences, pg_catalog.pg_statio_user_sequences
  FROM PUBLIC;
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
        .replace("@TENANT_POLICY@", TENANT_POLICY)
        .replace("@UPGRADE_POLICIES@", UPGRADE_POLICIES)
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
