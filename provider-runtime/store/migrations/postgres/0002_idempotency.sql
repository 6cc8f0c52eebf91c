-- Idempotency-Key records: one per (tenant, key), so a retried POST replays the first answer
-- instead of running twice. `fingerprint` is a SHA-256 of the request (method, path, body):
-- the same key with a different request is refused rather than replayed.
-- `in_flight` rows hold a lease (the gateway that began the request may die); `done` rows
-- hold the stored response. Times are Unix milliseconds so lease and retention checks are
-- plain integer comparisons.
CREATE TABLE idempotency_records (
    tenant_id      TEXT   NOT NULL REFERENCES tenants(id),
    idem_key       TEXT   NOT NULL,
    fingerprint    BYTEA  NOT NULL,
    state          TEXT   NOT NULL CHECK (state IN ('in_flight', 'done')),
    lease_until_ms BIGINT NOT NULL,
    status         BIGINT,
    headers        TEXT,
    body           BYTEA,
    created_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idem_key)
);
-- Purging deletes by age across all tenants.
CREATE INDEX idempotency_records_created ON idempotency_records(created_at_ms);
