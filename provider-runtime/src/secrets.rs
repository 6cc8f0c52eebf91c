//! Secret references in provider configs.
//!
//! A config value may be `secret://env/NAME`, `secret://file/<absolute path>` or
//! `secret://vault/<mount>/<path>#<key>`. The stored config, every answer and every log line
//! keep the reference; only the provider instance receives the resolved value, when it starts.
//! Re-resolving on an interval lets a rotated secret reach the provider without a restart.

use std::path::PathBuf;

use serde_json::Value;
use sha2::{Digest, Sha256};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

const PREFIX: &str = "secret://";

/// A resolved secret. Its `Debug` never shows the value, so it cannot leak through a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl Secret {
    /// The value, for code that must hand it to a client outside any provider config, such
    /// as the platform store's URL; it is not to be logged.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    Vault {
        mount: String,
        path: String,
        key: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{reference}: not a secret reference ({why})")]
    Malformed {
        reference: String,
        why: &'static str,
    },
    /// Names the reference, never the value.
    #[error("{reference}: {why}")]
    Unresolved { reference: String, why: String },
}

impl SecretRef {
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let malformed = |why| SecretError::Malformed {
            reference: text.to_owned(),
            why,
        };
        let rest = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| malformed("must start with secret://"))?;
        let (kind, target) = rest
            .split_once('/')
            .ok_or_else(|| malformed("secret://<env|file|vault>/..."))?;
        match kind {
            "env" if !target.is_empty() && !target.contains('/') => {
                Ok(SecretRef::Env(target.to_owned()))
            }
            "file" => {
                let path = PathBuf::from(format!("/{}", target.trim_start_matches('/')));
                Ok(SecretRef::File(path))
            }
            "vault" => {
                let (location, key) = target
                    .split_once('#')
                    .ok_or_else(|| malformed("vault references end with #<key>"))?;
                let (mount, path) = location
                    .split_once('/')
                    .ok_or_else(|| malformed("secret://vault/<mount>/<path>#<key>"))?;
                if mount.is_empty() || path.is_empty() || key.is_empty() {
                    return Err(malformed("secret://vault/<mount>/<path>#<key>"));
                }
                Ok(SecretRef::Vault {
                    mount: mount.to_owned(),
                    path: path.to_owned(),
                    key: key.to_owned(),
                })
            }
            _ => Err(malformed("the kind must be env, file or vault")),
        }
    }
}

/// Where Vault is, when references to it are used. The token itself is a secret: it comes from
/// the environment (`VAULT_TOKEN`) or a file, never from a provider config.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    pub address: String,
    pub token: Secret,
    /// 1 or 2: KV secrets engine version of the mounts referenced.
    pub kv_version: u8,
}

impl VaultSettings {
    /// `VAULT_ADDR`, `VAULT_TOKEN` and `SWITCHYARD_VAULT_KV_VERSION` (default 2), when set.
    pub fn from_env() -> Option<Self> {
        let address = std::env::var("VAULT_ADDR").ok()?;
        let token = Secret(std::env::var("VAULT_TOKEN").ok()?);
        let kv_version = std::env::var("SWITCHYARD_VAULT_KV_VERSION")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        Some(VaultSettings {
            address,
            token,
            kv_version,
        })
    }
}

#[derive(Default)]
pub struct SecretResolver {
    vault: Option<(VaultClient, u8)>,
}

impl SecretResolver {
    pub fn new(vault: Option<VaultSettings>) -> Result<Self, String> {
        let vault = match vault {
            None => None,
            Some(settings) => {
                let client_settings = VaultClientSettingsBuilder::default()
                    .address(&settings.address)
                    .token(settings.token.0.clone())
                    .build()
                    .map_err(|e| format!("Vault settings: {e}"))?;
                let client =
                    VaultClient::new(client_settings).map_err(|e| format!("Vault client: {e}"))?;
                Some((client, settings.kv_version))
            }
        };
        Ok(SecretResolver { vault })
    }

    pub async fn resolve(&self, reference: &SecretRef, text: &str) -> Result<Secret, SecretError> {
        let unresolved = |why: String| SecretError::Unresolved {
            reference: text.to_owned(),
            why,
        };
        match reference {
            SecretRef::Env(name) => std::env::var(name)
                .map(Secret)
                .map_err(|_| unresolved("the variable is not set".into())),
            SecretRef::File(path) => tokio::fs::read_to_string(path)
                .await
                .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| unresolved(format!("cannot read the file: {}", e.kind()))),
            SecretRef::Vault { mount, path, key } => {
                let (client, version) = self.vault.as_ref().ok_or_else(|| {
                    unresolved("no Vault is configured (VAULT_ADDR, VAULT_TOKEN)".into())
                })?;
                let data: serde_json::Map<String, Value> = match version {
                    1 => vaultrs::kv1::get(client, mount, path).await,
                    _ => vaultrs::kv2::read(client, mount, path).await,
                }
                .map_err(|e| unresolved(format!("Vault read failed: {}", vault_error_kind(&e))))?;
                match data.get(key) {
                    Some(Value::String(s)) => Ok(Secret(s.clone())),
                    Some(other) => Ok(Secret(other.to_string())),
                    None => Err(unresolved(format!("no key {key:?} at that path"))),
                }
            }
        }
    }

    /// The config with every reference replaced by its value, for the provider only, and a
    /// fingerprint of the resolved values (to notice a rotation without keeping them around).
    pub async fn resolve_config(&self, config: &Value) -> Result<(Value, [u8; 32]), SecretError> {
        let mut digest = Sha256::new();
        let resolved = self.walk(config, &mut digest).await?;
        Ok((resolved, digest.finalize().into()))
    }

    fn walk<'a>(
        &'a self,
        value: &'a Value,
        digest: &'a mut Sha256,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Value, SecretError>> + Send + 'a>> {
        Box::pin(async move {
            match value {
                Value::String(text) if text.starts_with(PREFIX) => {
                    let secret = self.resolve(&SecretRef::parse(text)?, text).await?;
                    digest.update(text.as_bytes());
                    digest.update(secret.0.as_bytes());
                    // From now on no log line may show it, whoever writes it.
                    switchyard_telemetry::logs::register_secret(&secret.0);
                    Ok(Value::String(secret.0))
                }
                Value::Object(map) => {
                    let mut out = serde_json::Map::new();
                    for (k, v) in map {
                        out.insert(k.clone(), self.walk(v, digest).await?);
                    }
                    Ok(Value::Object(out))
                }
                Value::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for v in items {
                        out.push(self.walk(v, digest).await?);
                    }
                    Ok(Value::Array(out))
                }
                other => Ok(other.clone()),
            }
        })
    }
}

/// A Vault error without anything from the response body, which could echo request data.
fn vault_error_kind(e: &vaultrs::error::ClientError) -> String {
    match e {
        vaultrs::error::ClientError::APIError { code, .. } => format!("HTTP {code}"),
        vaultrs::error::ClientError::RestClientError { .. } => "cannot reach Vault".into(),
        _ => "unexpected answer".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_parse_and_malformed_ones_are_refused() {
        assert_eq!(
            SecretRef::parse("secret://env/PG_PASSWORD").unwrap(),
            SecretRef::Env("PG_PASSWORD".into())
        );
        assert_eq!(
            SecretRef::parse("secret://file/run/secrets/pg").unwrap(),
            SecretRef::File("/run/secrets/pg".into())
        );
        assert_eq!(
            SecretRef::parse("secret://vault/secret/db/pg#password").unwrap(),
            SecretRef::Vault {
                mount: "secret".into(),
                path: "db/pg".into(),
                key: "password".into()
            }
        );
        for bad in [
            "env/X",
            "secret://env/",
            "secret://vault/secret/db",
            "secret://vault/secret#k",
            "secret://ldap/x",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[tokio::test]
    async fn configs_resolve_env_and_file_references_and_rotation_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let resolver = SecretResolver::default();
        let config = json!({"dsn": format!("secret://file{}", file.display()), "pool": 4, "nested": [{"x": "plain"}]});
        let (resolved, first) = resolver.resolve_config(&config).await.unwrap();
        assert_eq!(
            resolved,
            json!({"dsn": "s3cret", "pool": 4, "nested": [{"x": "plain"}]})
        );
        std::fs::write(&file, "rotated").unwrap();
        let (_, second) = resolver.resolve_config(&config).await.unwrap();
        assert_ne!(first, second);
        let err = resolver
            .resolve_config(&json!({"p": "secret://env/SWITCHYARD_TEST_UNSET_VARIABLE"}))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("secret://env/SWITCHYARD_TEST_UNSET_VARIABLE"),
            "{err}"
        );
        assert_eq!(format!("{:?}", Secret("s3cret".into())), "Secret(***)");
    }
}
