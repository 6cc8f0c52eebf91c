-- Remote providers the platform operator registered while serving (POST /providers/register),
-- registered again at start-up so a restart keeps them. The manifest is the operator's JSON;
-- its token is a secret:// reference, never the secret.
CREATE TABLE provider_registrations (
    domain        TEXT NOT NULL,
    name          TEXT NOT NULL,
    manifest      TEXT NOT NULL,
    certification TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    PRIMARY KEY (domain, name)
);
