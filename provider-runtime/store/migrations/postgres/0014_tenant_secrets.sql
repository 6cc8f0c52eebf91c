-- Tenant secrets written through the API (issue 24, docs/adr/0043): what the platform knows of
-- them, never their values, which live in Vault under the tenant's prefix only. `version`
-- counts the writes through the API; `updated_by` is the writer's subject.
CREATE TABLE tenant_secrets (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
