-- Every policy decision the gateway took, with the bundle revision that took it.
CREATE TABLE policy_decisions (
    id         TEXT PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    tenant_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    allowed    INTEGER NOT NULL,
    reasons    TEXT NOT NULL,
    revision   TEXT NOT NULL,
    input      TEXT NOT NULL
);
-- Auditors page through one tenant's decisions, newest first.
CREATE INDEX policy_decisions_tenant_time ON policy_decisions(tenant_id, at_ms DESC, id DESC);
