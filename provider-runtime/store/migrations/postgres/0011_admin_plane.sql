-- The admin and audit planes (issue 24, docs/adr/0040): operators, a tenant's lifecycle and
-- limits, its part of the policy data, config history, and the entity-change audit log.

-- A tenant is `active`, `suspended` (every call refused with `tenant_suspended`) or
-- `deleting` (refused too; purged once `delete_after` has passed, unless resumed before).
ALTER TABLE tenants ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE tenants ADD COLUMN status_changed_at TEXT;
ALTER TABLE tenants ADD COLUMN delete_after TEXT;

-- The platform operators' credentials: above every tenant, never a tenant's key. Only a
-- SHA-256 of the secret part is kept; the key is shown once, when the CLI creates it.
CREATE TABLE operator_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- What the operator set for one tenant beyond the `[tenancy]` defaults: a JSON object
-- (rate limit, AI tokens per day, decision retention, ...), validated by the admin API.
CREATE TABLE tenant_limits (
    tenant_id  TEXT PRIMARY KEY,
    limits     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The tenant's part of the policy data (`data.switchyard.tenants.<tenant>`: role overrides,
-- `deny_actions`), written by the operator. `revision` grows with every write of any tenant,
-- so a gateway polling the highest one knows when to rebuild its policy.
CREATE TABLE tenant_policy (
    tenant_id  TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    revision   BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX tenant_policy_revision ON tenant_policy(revision);

-- Config history: who saved each version, and how it differs from the one before it (non-secret
-- fields only; secret fields appear as changed, never with their values).
ALTER TABLE provider_configs ADD COLUMN actor TEXT;
ALTER TABLE provider_configs ADD COLUMN diff TEXT;
ALTER TABLE provider_configs ADD COLUMN note TEXT;

-- The entity-change audit log, append-only and hash-chained per tenant (`_platform` for what
-- belongs to no tenant): each record's `hash` covers its fields and the previous record's
-- hash, so an altered or deleted record breaks the chain from there on. `audit_heads` holds
-- each chain's last record, written in the same transaction, so a removed tail shows too.
CREATE TABLE audit_log (
    tenant_id  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    entity     TEXT NOT NULL,
    operation  TEXT NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    request_id TEXT,
    source     TEXT,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL
);

-- Calls and errors per tenant and UTC day, added to by every gateway in batches: what an
-- operator reads as the tenant's usage, whichever replica served the calls.
CREATE TABLE tenant_usage (
    tenant_id TEXT NOT NULL,
    day       TEXT NOT NULL,
    calls     BIGINT NOT NULL,
    errors    BIGINT NOT NULL,
    tokens    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);
