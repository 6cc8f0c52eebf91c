-- The decision log's upload to an operator's collector (issue 24, docs/adr/0042).
--
-- Every decision gets a number in the order its batch committed: each write of the log takes
-- the next numbers from `decision_log_counter` in its own transaction, whose row lock it holds
-- until it commits, so a number becomes visible only after every smaller one. An uploader that
-- reads `seq > cursor` can therefore never pass a decision that commits later. Decisions
-- written before this migration have none and are not uploaded.
ALTER TABLE policy_decisions ADD COLUMN seq INTEGER;
CREATE INDEX policy_decisions_seq ON policy_decisions(seq) WHERE seq IS NOT NULL;

CREATE TABLE decision_log_counter (
    name TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
INSERT INTO decision_log_counter (name, last) VALUES ('decisions', 0);

-- The last decision the collector acknowledged (2xx): advanced only after an upload succeeded,
-- and only from the value the uploader read, so two uploaders never move it backwards.
CREATE TABLE decision_upload_cursor (
    name       TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO decision_upload_cursor (name, seq, updated_at) VALUES ('opa', 0, '1970-01-01T00:00:00Z');
