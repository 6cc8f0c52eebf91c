-- db/postgres pooled mode: what `provision` (rls.rs) installs in the shared database;
-- @APP@, @OWNER@, @COLUMN@ and @DATABASE@ are replaced by checked names. Run under an
-- advisory lock, so concurrent provisioning of one database is safe.
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

-- switchyard.current_tenant():
-- `SECURITY DEFINER` so that it can read the secret the caller cannot. Asked once per call
-- at most: whose DDL the event trigger secures, whose tables `metadata` lists. Row policies
-- check the key themselves, more cheaply (see switchyard.tenant_policy).
CREATE OR REPLACE FUNCTION switchyard.current_tenant() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
  SELECT s.t FROM (SELECT nullif(current_setting('app.tenant_id', true), '') AS t) s
  WHERE current_setting('app.tenant_key', true) = switchyard.tenant_key(s.t)
$f$;
REVOKE ALL ON FUNCTION switchyard.current_tenant() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION switchyard.current_tenant() TO @APP@, @OWNER@;

-- switchyard.tenant_policy(tenant):
-- The row filter (and check) of a pooled table of `tenant`: the table's rows, when the call
-- holds the tenant's key. Built-in functions only, in a sub-select that PostgreSQL runs once
-- per statement (an InitPlan), where calling `current_tenant()` — a definer's function,
-- which no query can inline, reading the secret table — cost ~65 µs per statement and per
-- inserted row. The key is compared by its SHA-256, so the policy (visible to the superuser,
-- and in dumps) holds no secret; `app.tenant_id` plays no part, so forging it gains nothing.
-- The literal tenant pins the rows too: no other tenant may even park rows in the table.
CREATE OR REPLACE FUNCTION switchyard.tenant_policy(tenant text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
  SELECT format('@COLUMN@ = %L AND (SELECT pg_catalog.sha256(pg_catalog.convert_to('
                'pg_catalog.current_setting(''app.tenant_key'', true), ''UTF8'')) = %L::bytea)',
                tenant, sha256(convert_to(switchyard.tenant_key(tenant), 'UTF8')))
$f$;
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

-- Existing databases upgrade at provisioning: tables secured when the policy and the column
-- default called `current_tenant()` get switchyard.tenant_policy's policy and a constant
-- default, and last-insert-id triggers without a `WHEN` get one. Only those are altered (each `ALTER`
-- locks its table), so a second run changes nothing.
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
