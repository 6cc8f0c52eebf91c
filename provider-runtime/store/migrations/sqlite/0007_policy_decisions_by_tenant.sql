-- The decision log clustered by how it is read (one tenant, newest first) and nothing else:
-- every request writes a row, and the rowid table, its primary-key index on id and the
-- tenant/time index were three B-trees to insert into and commit. Nothing looks a decision up
-- by id alone.
CREATE TABLE policy_decisions_by_tenant (
    tenant_id    TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    id           TEXT NOT NULL,
    subject      TEXT NOT NULL,
    allowed      INTEGER NOT NULL,
    reasons      TEXT NOT NULL,
    revision     TEXT NOT NULL,
    input        TEXT NOT NULL,
    input_digest TEXT,
    PRIMARY KEY (tenant_id, at_ms, id)
) WITHOUT ROWID;
INSERT INTO policy_decisions_by_tenant
    (tenant_id, at_ms, id, subject, allowed, reasons, revision, input, input_digest)
    SELECT tenant_id, at_ms, id, subject, allowed, reasons, revision, input, input_digest
      FROM policy_decisions;
DROP TABLE policy_decisions;
ALTER TABLE policy_decisions_by_tenant RENAME TO policy_decisions;
