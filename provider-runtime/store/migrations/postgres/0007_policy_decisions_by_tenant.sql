-- The decision log keyed by how it is read (one tenant, newest first) and nothing else: every
-- request writes a row, and the primary key on id was a second index to maintain. Nothing
-- looks a decision up by id alone.
ALTER TABLE policy_decisions DROP CONSTRAINT policy_decisions_pkey;
DROP INDEX policy_decisions_tenant_time;
ALTER TABLE policy_decisions ADD PRIMARY KEY (tenant_id, at_ms, id);
