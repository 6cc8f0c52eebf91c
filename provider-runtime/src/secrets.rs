//! Secret references in provider configs.
//!
//! A config value may be `secret://env/NAME`, `secret://file/<absolute path>`,
//! `secret://vault/<mount>/<path>#<key>`, or in a tenant's config `secret://vault/<name>`: the
//! tenant's own secret `name`, which its admins write through `PUT /secrets/{name}`
//! ([`SecretResolver::write_tenant_secret`]) and which lives at `<name>` under the tenant's
//! Vault prefix, key `value`. The stored config, every answer and every log line keep the
//! reference; only the provider instance receives the resolved value, when it starts.
//! Re-resolving on an interval, and at once after a write through the API, lets a rotated
//! secret reach the provider without a restart.
//!
//! Whose config it is decides what a reference may name ([`Owner`]): the operator's own
//! references (the store URL, remote provider manifests) resolve with the process's rights, a
//! tenant's only inside the [`SecretScope`] the operator set for it, because the provider it
//! configures talks to a server the tenant chose. A config schema marks secret-bearing fields
//! with `"x-secret": true` ([`SECRET_KEYWORD`]): there a literal is refused
//! ([`literal_credentials`]) and never shown back ([`masked`]).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_contracts::TenantId;
use switchyard_spi::tenancy::{SecretScope, SecretTarget};
use tokio::io::AsyncReadExt;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder, VaultClientSettingsBuilderError};
use vaultrs::error::ClientError;

mod credentials;
mod tenant;

pub(crate) use credentials::resolve_ref;
pub use credentials::{literal_credentials, masked};
use tenant::located;
pub use tenant::{TENANT_SECRET_KEY, WriteError, references_tenant_secret, valid_secret_name};

const PREFIX: &str = "secret://";

/// The config schema keyword marking a field whose value is a credential: only a `secret://`
/// reference is accepted there, and a literal stored before that rule is shown masked.
pub const SECRET_KEYWORD: &str = "x-secret";

/// The most a tenant's secret file may hold: a key or a DSN, not a data file to exfiltrate
/// piece by piece or a device to block on.
const MAX_TENANT_FILE_BYTES: u64 = 64 * 1024;

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
    /// `secret://vault/<name>`: the config's tenant's own secret, under its Vault prefix.
    TenantVault(String),
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
    /// A tenant's reference outside its space. Names the field only: the reference's target
    /// may be a host path, and whether it exists is none of the tenant's business.
    #[error("{pointer}: {why}")]
    Forbidden { pointer: String, why: &'static str },
}

/// Whose config is resolved, which decides what its references may name.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// The operator's own references (environment, CLI, config files): any of them.
    Operator,
    /// A tenant's provider config: only references inside `scope` for `tenant`.
    Tenant(&'a TenantId, &'a SecretScope),
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
            "vault" if !target.contains(['/', '#']) => {
                if !valid_secret_name(target) {
                    return Err(malformed(
                        "a tenant secret's name is 1 to 128 of A-Z a-z 0-9 . _ - and starts with none of .",
                    ));
                }
                Ok(SecretRef::TenantVault(target.to_owned()))
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

/// Why no Vault client could be built from the operator's settings.
#[derive(Debug, thiserror::Error)]
pub enum VaultSetupError {
    #[error("Vault settings: {0}")]
    Settings(#[from] VaultClientSettingsBuilderError),
    #[error("Vault client: {0}")]
    Client(#[from] ClientError),
}

#[derive(Default)]
pub struct SecretResolver {
    vault: Option<(VaultClient, u8)>,
}

impl SecretResolver {
    pub fn new(vault: Option<VaultSettings>) -> Result<Self, VaultSetupError> {
        let vault = match vault {
            None => None,
            Some(settings) => {
                let client_settings = VaultClientSettingsBuilder::default()
                    .address(&settings.address)
                    .token(settings.token.0.clone())
                    .build()?;
                let client = VaultClient::new(client_settings)?;
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
            SecretRef::TenantVault(_) => Err(unresolved(
                "names a tenant's own secret, which only a tenant's config may use".into(),
            )),
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
        self.resolve_config_as(Owner::Operator, config).await
    }

    /// [`SecretResolver::resolve_config`] for `owner`: a tenant's references are checked
    /// against its scope before anything is read.
    pub async fn resolve_config_as(
        &self,
        owner: Owner<'_>,
        config: &Value,
    ) -> Result<(Value, [u8; 32]), SecretError> {
        let mut digest = Sha256::new();
        let mut resolved = config.clone();
        for (pointer, text) in references(config) {
            let reference = SecretRef::parse(&text)?;
            let secret = match owner {
                Owner::Operator => self.resolve(&reference, &text).await?,
                Owner::Tenant(tenant, scope) => {
                    let reference = located(reference, tenant, scope, &pointer)?;
                    match permit(tenant, scope, &reference, &text, &pointer).await? {
                        Some(file) => read_tenant_file(&file)
                            .await
                            .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_owned()))
                            .map_err(|e| SecretError::Unresolved {
                                reference: text.clone(),
                                why: format!("cannot read the file: {}", e.kind()),
                            })?,
                        None => self.resolve(&reference, &text).await?,
                    }
                }
            };
            digest.update(text.as_bytes());
            digest.update(secret.0.as_bytes());
            // From now on no log line may show it, whoever writes it.
            switchyard_telemetry::logs::register_secret(&secret.0);
            if let Some(slot) = resolved.pointer_mut(&pointer) {
                *slot = Value::String(secret.0);
            }
        }
        Ok((resolved, digest.finalize().into()))
    }

    /// Checks, without reading any secret, that every reference in a tenant's config lies in
    /// the tenant's space; run before a config is stored, even one that will not start now.
    pub async fn check_tenant_config(
        &self,
        tenant: &TenantId,
        scope: &SecretScope,
        config: &Value,
    ) -> Result<(), SecretError> {
        for (pointer, text) in references(config) {
            let reference = located(SecretRef::parse(&text)?, tenant, scope, &pointer)?;
            permit(tenant, scope, &reference, &text, &pointer).await?;
        }
        Ok(())
    }
}

/// Every `secret://` string in `value`, with its JSON pointer, in document order.
fn references(value: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    leaves(value, &mut String::new(), &mut |pointer, leaf| {
        if let Some(text) = leaf.as_str().filter(|t| t.starts_with(PREFIX)) {
            found.push((pointer.to_owned(), text.to_owned()));
        }
    });
    found
}

fn leaves(value: &Value, pointer: &mut String, visit: &mut impl FnMut(&str, &Value)) {
    let at = pointer.len();
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                push_token(pointer, key);
                leaves(item, pointer, visit);
                pointer.truncate(at);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&index.to_string());
                leaves(item, pointer, visit);
                pointer.truncate(at);
            }
        }
        leaf => visit(pointer, leaf),
    }
}

/// Appends `/key` to a JSON pointer, escaped as RFC 6901 says.
fn push_token(pointer: &mut String, key: &str) {
    pointer.push('/');
    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
}

/// Whether `tenant` may use `reference`, found at `pointer`; for a file, the canonical path
/// to read: links inside the tenant's directory must not lead out of it.
async fn permit(
    tenant: &TenantId,
    scope: &SecretScope,
    reference: &SecretRef,
    text: &str,
    pointer: &str,
) -> Result<Option<PathBuf>, SecretError> {
    let forbidden = |why| SecretError::Forbidden {
        pointer: pointer.to_owned(),
        why,
    };
    let (target, why) = match reference {
        SecretRef::Env(name) => (
            SecretTarget::Env(name),
            "environment references are the operator's; tenants may not use them",
        ),
        SecretRef::File(path) => (
            SecretTarget::File(path.to_str().unwrap_or_default()),
            if scope.file_dir(tenant.as_str()).is_some() {
                "a file reference outside this tenant's secret directory"
            } else {
                "file references are not open to tenants on this platform"
            },
        ),
        SecretRef::Vault { mount, path, key } => (
            SecretTarget::Vault { mount, path, key },
            "a Vault reference outside this tenant's subtree",
        ),
        // Located before it gets here ([`located`]); a name alone permits nothing.
        SecretRef::TenantVault(_) => return Err(forbidden("a tenant secret's name, unresolved")),
    };
    if !scope.permits(tenant.as_str(), target) {
        return Err(forbidden(why));
    }
    let (SecretRef::File(path), Some(dir)) = (reference, scope.file_dir(tenant.as_str())) else {
        return Ok(None);
    };
    let missing = || SecretError::Unresolved {
        reference: text.to_owned(),
        why: "no such file in this tenant's secret directory".into(),
    };
    let dir = tokio::fs::canonicalize(&dir).await.map_err(|_| missing())?;
    let real = tokio::fs::canonicalize(path).await.map_err(|_| missing())?;
    if !real.starts_with(&dir) || real == dir {
        return Err(forbidden(why));
    }
    Ok(Some(real))
}

/// A tenant's secret file: a regular file of at most [`MAX_TENANT_FILE_BYTES`]. Checked before
/// opening too, since opening a FIFO would wait for a writer.
async fn read_tenant_file(path: &Path) -> std::io::Result<String> {
    let regular = |meta: std::fs::Metadata| {
        if meta.is_file() && meta.len() <= MAX_TENANT_FILE_BYTES {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a regular file of at most 64 KiB",
            ))
        }
    };
    regular(tokio::fs::metadata(path).await?)?;
    let file = tokio::fs::File::open(path).await?;
    regular(file.metadata().await?)?;
    let mut text = String::new();
    file.take(MAX_TENANT_FILE_BYTES)
        .read_to_string(&mut text)
        .await?;
    Ok(text)
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

    fn pointer_of(e: SecretError) -> String {
        match e {
            SecretError::Forbidden { pointer, .. } => pointer,
            other => panic!("not refused as forbidden: {other}"),
        }
    }

    #[tokio::test]
    async fn a_tenant_resolves_only_inside_its_own_space() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("acme")).unwrap();
        std::fs::create_dir_all(root.join("globex")).unwrap();
        std::fs::write(root.join("acme/key"), "acme-key\n").unwrap();
        std::fs::write(root.join("globex/key"), "globex-key").unwrap();
        std::fs::write(root.join("host.key"), "host").unwrap();
        std::os::unix::fs::symlink(root.join("host.key"), root.join("acme/link")).unwrap();
        let scope: SecretScope =
            serde_json::from_value(json!({"file_dir": format!("{}/{{tenant}}", root.display())}))
                .unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let owner = Owner::Tenant(&acme, &scope);
        let resolver = SecretResolver::default();
        let file = |path: &str| format!("secret://file{}/{path}", root.display());

        let own = json!({"auth": {"api_key": file("acme/key")}});
        let (resolved, _) = resolver.resolve_config_as(owner, &own).await.unwrap();
        assert_eq!(resolved, json!({"auth": {"api_key": "acme-key"}}));
        resolver
            .check_tenant_config(&acme, &scope, &own)
            .await
            .unwrap();

        for reference in [
            file("globex/key"),
            file("host.key"),
            file("acme/link"),
            file("acme/../host.key"),
            "secret://file/proc/self/environ".to_owned(),
            "secret://env/HOME".to_owned(),
            "secret://vault/secret/tenants/globex/x#k".to_owned(),
        ] {
            let config = json!({"list": [1, {"a/b": reference}]});
            let err = resolver
                .resolve_config_as(owner, &config)
                .await
                .unwrap_err();
            assert!(
                !err.to_string().contains(&root.display().to_string()),
                "{err}"
            );
            assert_eq!(pointer_of(err), "/list/1/a~1b", "{reference}");
            let err = resolver
                .check_tenant_config(&acme, &scope, &config)
                .await
                .unwrap_err();
            assert_eq!(pointer_of(err), "/list/1/a~1b", "{reference}");
        }
        // Inside its directory, a tenant still reads a key, not a data file.
        std::fs::write(root.join("acme/big"), vec![b'k'; 64 * 1024 + 1]).unwrap();
        let err = resolver
            .resolve_config_as(owner, &json!({"k": file("acme/big")}))
            .await
            .unwrap_err();
        assert!(matches!(err, SecretError::Unresolved { .. }), "{err}");
        // The operator's own references keep every kind.
        let (resolved, _) = resolver
            .resolve_config(&json!({"k": file("host.key")}))
            .await
            .unwrap();
        assert_eq!(resolved, json!({"k": "host"}));
    }
}
