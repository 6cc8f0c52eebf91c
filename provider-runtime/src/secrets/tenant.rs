//! A tenant's own secrets: `secret://vault/<name>` in its configs names `<name>` under the
//! tenant's Vault prefix ([`SecretScope::vault_location`]), the place its admins write with
//! `PUT /secrets/{name}` ([`SecretResolver::write_tenant_secret`]) and nowhere else.

use serde_json::Value;
use switchyard_contracts::TenantId;
use switchyard_spi::tenancy::SecretScope;

use super::{SecretError, SecretRef, SecretResolver, references, vault_error_kind};

/// The key of a tenant secret's value in its Vault entry.
pub const TENANT_SECRET_KEY: &str = "value";

/// The longest tenant secret name.
const MAX_SECRET_NAME: usize = 128;

impl SecretResolver {
    /// Writes `value` as `tenant`'s secret `name`: to Vault, at the place
    /// `secret://vault/<name>` in the tenant's configs resolves to, and nowhere else. The
    /// value is hidden from every log line first, whatever writes one later.
    pub async fn write_tenant_secret(
        &self,
        tenant: &TenantId,
        scope: &SecretScope,
        name: &str,
        value: &str,
    ) -> Result<(), WriteError> {
        let (mount, path) = valid_secret_name(name)
            .then(|| scope.vault_location(tenant.as_str(), name))
            .flatten()
            .ok_or(WriteError::Name)?;
        let (client, version) = self.vault.as_ref().ok_or(WriteError::NoVault)?;
        switchyard_telemetry::logs::register_secret(value);
        let data = std::collections::HashMap::from([(TENANT_SECRET_KEY, value)]);
        match version {
            1 => vaultrs::kv1::set(client, &mount, &path, &data).await,
            _ => vaultrs::kv2::set(client, &mount, &path, &data)
                .await
                .map(drop),
        }
        .map_err(|e| WriteError::Vault(vault_error_kind(&e)))
    }
}

/// Why a tenant secret was not written. Nothing of the value, nor of Vault's answer body.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("not a name inside this tenant's Vault prefix")]
    Name,
    /// The operator gave this platform no Vault: a setting, not an outage.
    #[error("this platform has no Vault for tenant secrets (VAULT_ADDR, VAULT_TOKEN)")]
    NoVault,
    #[error("Vault did not take the write: {0}")]
    Vault(String),
}

/// Whether `name` may name a tenant secret: one segment of 1 to [`MAX_SECRET_NAME`] plain
/// characters (`A-Z a-z 0-9 . _ -`) that does not start with `.` (so never `.` or `..`), the
/// rule `switchyard_contracts::openapi::history::SECRET_NAME_PATTERN` publishes.
pub fn valid_secret_name(name: &str) -> bool {
    (1..=MAX_SECRET_NAME).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A tenant's reference with its own secret's name replaced by where that secret lives.
pub(super) fn located(
    reference: SecretRef,
    tenant: &TenantId,
    scope: &SecretScope,
    pointer: &str,
) -> Result<SecretRef, SecretError> {
    let SecretRef::TenantVault(name) = reference else {
        return Ok(reference);
    };
    let (mount, path) = scope
        .vault_location(tenant.as_str(), &name)
        .ok_or_else(|| SecretError::Forbidden {
            pointer: pointer.to_owned(),
            why: "not a name inside this tenant's Vault prefix",
        })?;
    Ok(SecretRef::Vault {
        mount,
        path,
        key: TENANT_SECRET_KEY.to_owned(),
    })
}

/// Whether `tenant`'s `config` refers to its own secret `name`, by name
/// (`secret://vault/<name>`) or by the whole Vault path it lives at.
pub fn references_tenant_secret(
    config: &Value,
    tenant: &TenantId,
    scope: &SecretScope,
    name: &str,
) -> bool {
    let Some((mount, path)) = scope.vault_location(tenant.as_str(), name) else {
        return false;
    };
    references(config)
        .iter()
        .filter_map(|(pointer, text)| {
            let reference = SecretRef::parse(text).ok()?;
            located(reference, tenant, scope, pointer).ok()
        })
        .any(|reference| {
            matches!(reference, SecretRef::Vault { mount: m, path: p, .. } if m == mount && p == path)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Owner;
    use serde_json::json;

    #[tokio::test]
    async fn a_tenants_own_secret_name_resolves_under_its_prefix_only() {
        assert_eq!(
            SecretRef::parse("secret://vault/pg-dsn").unwrap(),
            SecretRef::TenantVault("pg-dsn".into())
        );
        for bad in [
            "secret://vault/.hidden",
            "secret://vault/..",
            "secret://vault/a b",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        let scope = SecretScope::default();
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        let resolver = SecretResolver::default();
        let config = json!({"mode": "siloed", "dsn": "secret://vault/pg-dsn"});
        resolver
            .check_tenant_config(&acme, &scope, &config)
            .await
            .unwrap();
        // Without Vault the name is located (under acme's prefix) and then not found.
        let err = resolver
            .resolve_config_as(Owner::Tenant(&acme, &scope), &config)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no Vault is configured"), "{err}");
        // The operator has no tenant prefix to read a name under.
        let err = resolver.resolve_config(&config).await.unwrap_err();
        assert!(err.to_string().contains("tenant's own secret"), "{err}");

        let long = json!({"dsn": "secret://vault/secret/tenants/acme/pg-dsn#value"});
        for (config, tenant, name, expected) in [
            (&config, &acme, "pg-dsn", true),
            (&long, &acme, "pg-dsn", true),
            (&config, &acme, "other", false),
            (&long, &globex, "pg-dsn", false),
            (
                &json!({"dsn": "secret://vault/secret/tenants/acme/pg-dsn#dsn"}),
                &acme,
                "pg-dsn",
                true,
            ),
            (&json!({"n": 1}), &acme, "pg-dsn", false),
        ] {
            assert_eq!(
                references_tenant_secret(config, tenant, &scope, name),
                expected,
                "{config} {tenant} {name}"
            );
        }
        // A name that is not one plain segment is written nowhere; a good one needs a Vault.
        let err = resolver
            .write_tenant_secret(&acme, &scope, "pg-dsn", "v")
            .await
            .unwrap_err();
        assert!(matches!(err, WriteError::NoVault), "{err}");
        for bad in ["../globex/pg", "a/b", ".", ""] {
            let err = resolver
                .write_tenant_secret(&acme, &scope, bad, "v")
                .await
                .unwrap_err();
            assert!(matches!(err, WriteError::Name), "{bad:?}: {err}");
        }
    }
}
