//! Providers from outside this build: plugin libraries and remote services named by the
//! operator, registered beside the built-in engines (docs/write-a-provider.md).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use switchyard_runtime::Registry;
use switchyard_runtime::plugin::{self, PluginFactory};
use switchyard_runtime::remote::{self, RemoteFactory};
use switchyard_runtime::secrets::{SecretResolver, VaultSettings};

/// The plugin libraries and remote provider manifests to register.
#[derive(Debug, Default, Clone)]
pub struct External {
    pub plugins: Vec<PathBuf>,
    pub manifests: Vec<PathBuf>,
}

impl External {
    /// Those named by `SWITCHYARD_PLUGINS` and `SWITCHYARD_REMOTE_PROVIDERS`.
    pub fn from_env() -> External {
        External {
            plugins: plugin::configured(),
            manifests: remote::configured(),
        }
    }

    /// Loads every library and manifest into `registry`. One that cannot be used stops the
    /// start-up with its reason (a wrong ABI version, a manifest without endpoint): a provider
    /// the operator named is never silently left out.
    pub fn register(&self, registry: &mut Registry) -> Result<()> {
        for path in &self.plugins {
            let factory = PluginFactory::load(path)?;
            registry
                .register(Arc::new(factory))
                .with_context(|| format!("plugin {}", path.display()))?;
        }
        if self.manifests.is_empty() {
            return Ok(());
        }
        let secrets = SecretResolver::new(VaultSettings::from_env()).map_err(anyhow::Error::msg)?;
        let secrets = Arc::new(secrets);
        for path in &self.manifests {
            let factory = RemoteFactory::from_file(path, secrets.clone())?;
            registry
                .register(Arc::new(factory))
                .with_context(|| format!("remote provider {}", path.display()))?;
        }
        Ok(())
    }
}
