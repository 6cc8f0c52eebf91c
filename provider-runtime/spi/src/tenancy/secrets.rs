use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// The part of a template every tenant's own value replaces.
const TENANT: &str = "{tenant}";

/// Where a tenant's secret references may point. A provider config is written by a tenant
/// admin, yet its `secret://` references are resolved with the process's own rights; without a
/// scope, `secret://file/proc/self/environ` or `secret://env/SWITCHYARD_POSTGRES_URL` would hand
/// the platform's credentials to whichever server the tenant names in the same config. So a
/// tenant's reference resolves only inside that tenant's space:
///
/// - `secret://vault/<vault_mount>/<vault_prefix with the tenant>…#key`;
/// - `secret://file/<file_dir with the tenant>/…`, when the operator gives tenants a directory;
/// - never `secret://env/…`: the environment is the operator's.
///
/// The operator's own references (`SWITCHYARD_STORE_URL`, remote provider manifests) are not
/// tenant configs and keep every kind. Every template must contain `{tenant}`, so two tenants
/// never share a space.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Settings")]
pub struct SecretScope {
    vault_mount: String,
    vault_prefix: String,
    file_dir: Option<String>,
}

/// `[tenancy.secrets]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    /// The Vault KV mount tenants' secrets live in. Default `secret`.
    vault_mount: String,
    /// The path inside that mount under which a tenant's references must lie, `{tenant}`
    /// replaced by the tenant id. Default `tenants/{tenant}/`: a policy granting the platform's
    /// Vault token that subtree grants no more than tenants may name.
    vault_prefix: String,
    /// The directory (absolute, `{tenant}` replaced) a tenant's file references must lie in.
    /// Default none: tenants may not use file references, since any file the process can read
    /// (its data directory, `/proc/self/environ`) would otherwise be reachable.
    file_dir: Option<String>,
}

impl Default for SecretScope {
    fn default() -> Self {
        SecretScope {
            vault_mount: "secret".into(),
            vault_prefix: format!("tenants/{TENANT}/"),
            file_dir: None,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        let scope = SecretScope::default();
        Settings {
            vault_mount: scope.vault_mount,
            vault_prefix: scope.vault_prefix,
            file_dir: scope.file_dir,
        }
    }
}

impl TryFrom<Settings> for SecretScope {
    type Error = String;

    fn try_from(s: Settings) -> Result<Self, String> {
        if s.vault_mount.is_empty() || !s.vault_mount.chars().all(plain) {
            return Err("tenancy.secrets.vault_mount must be one path segment of a-z, A-Z, 0-9, '.', '_', '-'".into());
        }
        let prefix = s.vault_prefix.replace(TENANT, "t");
        if !s.vault_prefix.contains(TENANT)
            || !s.vault_prefix.ends_with('/')
            || !clean_relative(prefix.trim_end_matches('/'))
        {
            return Err(
                "tenancy.secrets.vault_prefix must be a relative path ending in '/' that contains {tenant}, e.g. \"tenants/{tenant}/\""
                    .into(),
            );
        }
        if let Some(dir) = &s.file_dir {
            let sample = dir.replace(TENANT, "t");
            let absolute = sample
                .strip_prefix('/')
                .is_some_and(|rest| clean_relative(rest.trim_end_matches('/')));
            if !dir.contains(TENANT) || !absolute {
                return Err(
                    "tenancy.secrets.file_dir must be an absolute path that contains {tenant}, e.g. \"/run/switchyard/tenant-secrets/{tenant}\""
                        .into(),
                );
            }
        }
        Ok(SecretScope {
            vault_mount: s.vault_mount,
            vault_prefix: s.vault_prefix,
            file_dir: s.file_dir,
        })
    }
}

/// What a tenant's `secret://` reference names.
#[derive(Debug, Clone, Copy)]
pub enum SecretTarget<'a> {
    Env(&'a str),
    /// The absolute path as written.
    File(&'a str),
    Vault {
        mount: &'a str,
        path: &'a str,
        key: &'a str,
    },
}

impl SecretScope {
    /// Whether `tenant` may write a reference to `target`, judged on its text: inside the
    /// tenant's space, and only plain ASCII segments (no `.`/`..`, no empty segment, no `%` or
    /// other escapes a later decoder could turn into one). A file that passes must still be
    /// canonicalized inside [`SecretScope::file_dir`] by whoever reads it: links show only then.
    pub fn permits(&self, tenant: &str, target: SecretTarget<'_>) -> bool {
        match target {
            SecretTarget::Env(_) => false,
            SecretTarget::Vault { mount, path, key } => {
                let prefix = self.vault_prefix.replace(TENANT, tenant);
                mount == self.vault_mount
                    && !key.is_empty()
                    && key.chars().all(plain)
                    && clean_relative(path)
                    && path.len() > prefix.len()
                    && path.starts_with(&prefix)
            }
            SecretTarget::File(path) => {
                let Some(dir) = self.file_dir(tenant) else {
                    return false;
                };
                let clean = path.strip_prefix('/').is_some_and(clean_relative);
                let path = Path::new(path);
                clean && path != dir && path.starts_with(&dir)
            }
        }
    }

    /// Where `tenant`'s secret `name` lives in Vault, as `(mount, path)`: the one place a
    /// tenant's own secrets are written through the API and the place `secret://vault/<name>`
    /// in its configs resolves to. `None` unless `name` is one plain segment (no `/`, not `.`
    /// or `..`), so the path can never leave the tenant's prefix.
    pub fn vault_location(&self, tenant: &str, name: &str) -> Option<(String, String)> {
        let path = format!("{}{name}", self.vault_prefix.replace(TENANT, tenant));
        (!name.contains('/') && clean_relative(name) && clean_relative(&path))
            .then(|| (self.vault_mount.clone(), path))
    }

    /// `tenant`'s secret directory, when the operator gave tenants one.
    pub fn file_dir(&self, tenant: &str) -> Option<PathBuf> {
        self.file_dir
            .as_ref()
            .map(|dir| PathBuf::from(dir.replace(TENANT, tenant)))
    }

    /// What a refused tenant may write instead, for its error message; names no host path.
    pub fn allowed(&self, tenant: &str) -> String {
        let vault = format!(
            "secret://vault/{}/{}<path>#<key>",
            self.vault_mount,
            self.vault_prefix.replace(TENANT, tenant)
        );
        match self.file_dir {
            Some(_) => format!("{vault}, or a file in this tenant's secret directory"),
            None => vault,
        }
    }
}

/// A character allowed in a reference's segments.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// `a/b/c`: segments of [`plain`] characters, none empty, `.` or `..`.
fn clean_relative(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty() && segment != "." && segment != ".." && segment.chars().all(plain)
        })
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(json: &str) -> Result<SecretScope, String> {
        #[derive(Deserialize)]
        struct Wrapper {
            secrets: SecretScope,
        }
        serde_json::from_str(json)
            .map(|w: Wrapper| w.secrets)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn by_default_tenants_reach_their_vault_subtree_only() {
        let scope = SecretScope::default();
        let vault = |mount, path, key| SecretTarget::Vault { mount, path, key };
        assert!(scope.permits("acme", vault("secret", "tenants/acme/openai", "key")));
        assert!(scope.permits("acme", vault("secret", "tenants/acme/db/pg", "dsn")));
        for (mount, path, key) in [
            ("secret", "tenants/globex/openai", "key"),
            ("secret", "tenants/acme", "key"),
            ("secret", "tenants/acme/", "key"),
            ("secret", "tenants/acme-2/x", "key"),
            ("secret", "platform/db", "password"),
            ("kv", "tenants/acme/openai", "key"),
            ("secret", "tenants/acme/../globex/openai", "key"),
            ("secret", "tenants/acme//x", "key"),
            ("secret", "tenants/acme/%2e%2e/x", "key"),
            ("secret", "tenants/acme/x", ""),
            ("secret", "tenants/acme/x", "k#y"),
        ] {
            assert!(
                !scope.permits("acme", vault(mount, path, key)),
                "{mount}/{path}#{key}"
            );
        }
        assert!(!scope.permits("acme", SecretTarget::Env("HOME")));
        assert!(!scope.permits("acme", SecretTarget::File("/run/secrets/acme/key")));
        assert_eq!(scope.file_dir("acme"), None);
    }

    #[test]
    fn a_tenant_secret_name_lies_in_the_tenants_own_prefix_or_nowhere() {
        let scope = SecretScope::default();
        let (mount, path) = scope.vault_location("acme", "pg-dsn").unwrap();
        assert_eq!(
            (mount.as_str(), path.as_str()),
            ("secret", "tenants/acme/pg-dsn")
        );
        let key = "value";
        assert!(scope.permits(
            "acme",
            SecretTarget::Vault {
                mount: &mount,
                path: &path,
                key
            }
        ));
        for bad in ["", ".", "..", "../globex/x", "a/b", "a b", "%2e%2e", "ü"] {
            assert_eq!(scope.vault_location("acme", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_file_directory_admits_files_below_the_tenants_own_directory() {
        let scope = scope(r#"{"secrets": {"file_dir": "/srv/secrets/{tenant}"}}"#).unwrap();
        assert_eq!(
            scope.file_dir("acme"),
            Some(PathBuf::from("/srv/secrets/acme"))
        );
        assert!(scope.permits("acme", SecretTarget::File("/srv/secrets/acme/openai")));
        assert!(scope.permits("acme", SecretTarget::File("/srv/secrets/acme/db/.pg-pass")));
        for path in [
            "/srv/secrets/acme",
            "/srv/secrets/acme/",
            "/srv/secrets/globex/openai",
            "/srv/secrets/acme-2/openai",
            "/srv/secrets/acme/../globex/openai",
            "/srv/secrets/acme/./openai",
            "/srv/secrets/acme//openai",
            "/srv/secrets/acme/%2e%2e/x",
            "/srv/secrets/acme/ü",
            "srv/secrets/acme/openai",
            "/proc/self/environ",
        ] {
            assert!(!scope.permits("acme", SecretTarget::File(path)), "{path}");
        }
    }

    #[test]
    fn templates_without_the_tenant_or_with_escapes_are_refused() {
        for bad in [
            r#"{"secrets": {"file_dir": "/srv/secrets"}}"#,
            r#"{"secrets": {"file_dir": "srv/{tenant}"}}"#,
            r#"{"secrets": {"file_dir": "/srv/../{tenant}"}}"#,
            r#"{"secrets": {"vault_prefix": "tenants/"}}"#,
            r#"{"secrets": {"vault_prefix": "tenants/{tenant}"}}"#,
            r#"{"secrets": {"vault_prefix": "/tenants/{tenant}/"}}"#,
            r#"{"secrets": {"vault_mount": "a/b"}}"#,
            r#"{"secrets": {"vault_mount": ""}}"#,
            r#"{"secrets": {"vault_path": "x"}}"#,
        ] {
            assert!(scope(bad).is_err(), "{bad}");
        }
        let custom =
            scope(r#"{"secrets": {"vault_mount": "kv", "vault_prefix": "org/{tenant}/app/"}}"#)
                .unwrap();
        assert!(custom.permits(
            "acme",
            SecretTarget::Vault {
                mount: "kv",
                path: "org/acme/app/ai",
                key: "k"
            }
        ));
        assert!(!custom.allowed("acme").contains("directory"));
    }
}
