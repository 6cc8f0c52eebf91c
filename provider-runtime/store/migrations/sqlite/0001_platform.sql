-- Platform state: tenants, their API keys and their provider configs.
CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

-- Only a SHA-256 of the key's secret part is kept: the key is shown once, at creation.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    secret_hash BLOB NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

-- Every configure is a new version; the highest version is the one in force.
CREATE TABLE provider_configs (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    domain     TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    config     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, domain, name, version)
);
