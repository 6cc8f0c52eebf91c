-- Work that exactly one replica may do at a time (a tenant's hosted outbox relay and event
-- consumers, a replica's own membership), leased on the store's clock. A lease whose
-- `expires_ms` has passed is free; taking it bumps `epoch`, so every holding has its own number.
CREATE TABLE worker_leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Every holding, kept for an auditor: who held which lease from when until when at the latest.
-- Two holdings of one lease never overlap: the next one starts after the last one's
-- `valid_until_ms` (tests/e2e/cluster.rs checks it after killing replicas).
CREATE TABLE worker_lease_log (
    name           TEXT    NOT NULL,
    epoch          INTEGER NOT NULL,
    holder         TEXT    NOT NULL,
    acquired_ms    INTEGER NOT NULL,
    valid_until_ms INTEGER NOT NULL,
    PRIMARY KEY (name, epoch)
) WITHOUT ROWID;
CREATE INDEX worker_lease_log_holder ON worker_lease_log(holder);

-- The tenants that have called a business service: the ones whose hosted workers run. A tenant
-- that never used one has no service books to relay from, and gets no worker.
CREATE TABLE hosted_tenants (
    tenant_id TEXT NOT NULL PRIMARY KEY,
    since     TEXT NOT NULL
) WITHOUT ROWID;
