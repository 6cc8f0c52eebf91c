-- The AI gateway's budgets, shared by every replica on this store.
--
-- A bucket counts one limit of one tenant over one window; its name is built by the gateway
-- (e.g. 'key:k_abc|tokens|day|2026-12-07'), so a new window is a new row and an old one is
-- simply deleted once `expires_at_ms` (the end of its window) has passed. `spent` is what
-- finished calls used, `reserved` what calls in flight may still use: a call is admitted only
-- while spent + reserved + its reservation stays within `cap`. No foreign key to tenants, as
-- for the decision log: the gateway writes these rows for a tenant it has just authenticated.
CREATE TABLE ai_budget_buckets (
    tenant_id     TEXT    NOT NULL,
    bucket        TEXT    NOT NULL,
    cap           INTEGER NOT NULL,
    spent         INTEGER NOT NULL,
    reserved      INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, bucket)
) WITHOUT ROWID;
-- The sweep deletes ended windows across all tenants.
CREATE INDEX ai_budget_buckets_expiry ON ai_budget_buckets(expires_at_ms);

-- One row per call in flight: what it reserved in which buckets (JSON), until its lease runs
-- out. A replica that dies mid-call leaves its row behind; the sweep then counts the
-- reservation as spent, since the upstream may have charged for the call.
CREATE TABLE ai_reservations (
    tenant_id      TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    charges        TEXT    NOT NULL,
    lease_until_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX ai_reservations_lease ON ai_reservations(lease_until_ms);

-- The AI gateway's audit records, one JSON document per call, already redacted by the gateway.
-- Ids are UUIDv7 text, so ordering by id is ordering by time: a page is one index range.
CREATE TABLE ai_audit_records (
    tenant_id TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    at_ms     INTEGER NOT NULL,
    record    TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
-- Purging by age, and reading since a time, per tenant.
CREATE INDEX ai_audit_records_age ON ai_audit_records(tenant_id, at_ms);
