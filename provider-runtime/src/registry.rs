//! The registry of provider engines, keyed by `(domain, name)`, with their schemas compiled
//! once at registration.
//!
//! A provider's index is its identity for as long as the process lives: the runtime keys its
//! per-tenant slots and lifecycle events by it. A provider removed at runtime
//! (`DELETE /providers/register/...`) leaves an empty place, never reused, so an index held by
//! a request in flight can never name another provider. The registry is a value the runtime
//! swaps whole when an operator registers or removes a provider (see
//! [`Runtime::register_remote`](crate::Runtime::register_remote)): a clone copies one `Arc`
//! per provider, and readers never wait.

use std::collections::HashMap;
use std::sync::Arc;

use switchyard_contracts::schema::Compiled;
use switchyard_contracts::{ActionValidators, ProviderDescriptor, SchemaError};
use switchyard_spi::ProviderFactory;

/// How a provider came to be registered, which decides whether an operator may remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Built in, or named at start-up (`SWITCHYARD_PLUGINS`, `SWITCHYARD_REMOTE_PROVIDERS`):
    /// the process's configuration, which only a restart changes.
    Startup,
    /// Registered while serving by `POST /providers/register`; removable.
    Operator,
}

/// One registered engine.
pub struct Registered {
    pub factory: Arc<dyn ProviderFactory>,
    pub actions: HashMap<String, ActionValidators>,
    pub config: Compiled,
    pub origin: Origin,
}

impl Registered {
    /// Compiles the descriptor's schemas; one that does not compile is refused here, so a
    /// broken descriptor stops start-up (or a registration) instead of failing requests later.
    pub fn compile(
        factory: Arc<dyn ProviderFactory>,
        origin: Origin,
    ) -> Result<Registered, SchemaError> {
        let descriptor = factory.descriptor();
        let id = format!("{}/{}", descriptor.domain, descriptor.name);
        let mut actions = HashMap::new();
        for action in &descriptor.actions {
            actions.insert(action.name.clone(), ActionValidators::compile(&id, action)?);
        }
        let config = Compiled::new(&descriptor.config_schema, &format!("{id}#config"))?;
        Ok(Registered {
            factory,
            actions,
            config,
            origin,
        })
    }

    /// The engine with its schemas compiled on their first use ([`Compiled::deferred`]): for
    /// the engines built into the binary, whose schemas their tests compile.
    pub fn deferred(factory: Arc<dyn ProviderFactory>, origin: Origin) -> Registered {
        let descriptor = factory.descriptor();
        let id = format!("{}/{}", descriptor.domain, descriptor.name);
        let actions = descriptor
            .actions
            .iter()
            .map(|action| (action.name.clone(), ActionValidators::deferred(&id, action)))
            .collect();
        let config = Compiled::deferred(&descriptor.config_schema, &format!("{id}#config"));
        Registered {
            factory,
            actions,
            config,
            origin,
        }
    }

    pub fn descriptor(&self) -> &ProviderDescriptor {
        self.factory.descriptor()
    }

    pub fn id(&self) -> String {
        let d = self.descriptor();
        format!("{}/{}", d.domain, d.name)
    }
}

#[derive(Default, Clone)]
pub struct Registry {
    /// `None` where a provider was removed: indexes are never reused.
    providers: Vec<Option<Arc<Registered>>>,
}

impl Registry {
    /// Adds an engine at start-up. Refuses a duplicate `(domain, name)` and schemas that do
    /// not compile.
    pub fn register(&mut self, factory: Arc<dyn ProviderFactory>) -> Result<(), SchemaError> {
        self.add(Registered::compile(factory, Origin::Startup)?)
            .map(|_| ())
    }

    /// Adds an engine built into the binary, its schemas compiled on first use
    /// ([`Registered::deferred`]). Refuses a duplicate `(domain, name)`.
    pub fn register_builtin(
        &mut self,
        factory: Arc<dyn ProviderFactory>,
    ) -> Result<(), SchemaError> {
        self.add(Registered::deferred(factory, Origin::Startup))
            .map(|_| ())
    }

    /// Adds a compiled engine and answers its index; refuses a `(domain, name)` already taken.
    pub fn add(&mut self, registered: Registered) -> Result<usize, SchemaError> {
        let d = registered.descriptor();
        if self.index_of(&d.domain, &d.name).is_some() {
            return Err(SchemaError {
                location: registered.id(),
                message: "registered twice".into(),
            });
        }
        self.providers.push(Some(Arc::new(registered)));
        Ok(self.providers.len() - 1)
    }

    /// Unlists the engine at `index`; its place stays empty.
    pub fn remove(&mut self, index: usize) -> Option<Arc<Registered>> {
        self.providers.get_mut(index).and_then(Option::take)
    }

    pub fn index_of(&self, domain: &str, name: &str) -> Option<usize> {
        self.iter()
            .find(|(_, p)| p.descriptor().domain == domain && p.descriptor().name == name)
            .map(|(index, _)| index)
    }

    /// The engine at `index`, or `None` once it was removed.
    pub fn get(&self, index: usize) -> Option<&Arc<Registered>> {
        self.providers.get(index).and_then(Option::as_ref)
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &Arc<Registered>)> {
        self.providers
            .iter()
            .enumerate()
            .filter_map(|(index, p)| p.as_ref().map(|p| (index, p)))
    }

    pub fn descriptors(&self) -> Vec<ProviderDescriptor> {
        self.iter().map(|(_, p)| p.descriptor().clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::remote::RemoteFactory;

    fn remote(name: &str) -> Registered {
        let manifest = json!({"domain": "cache", "name": name, "version": "1",
                              "endpoint": "http://127.0.0.1:1"});
        let factory = RemoteFactory::from_manifest(&manifest, Default::default()).unwrap();
        Registered::compile(Arc::new(factory), Origin::Operator).unwrap()
    }

    #[test]
    fn a_removed_provider_leaves_its_index_empty_and_a_new_one_never_takes_it() {
        let mut registry = Registry::default();
        assert_eq!(registry.add(remote("a")).unwrap(), 0);
        assert_eq!(registry.add(remote("b")).unwrap(), 1);
        assert!(registry.add(remote("b")).is_err(), "registered twice");

        let snapshot = registry.clone();
        assert!(registry.remove(0).is_some());
        assert!(registry.get(0).is_none());
        assert_eq!(registry.index_of("cache", "a"), None);
        assert_eq!(registry.index_of("cache", "b"), Some(1));
        // The same name again is a new provider at a new index.
        assert_eq!(registry.add(remote("a")).unwrap(), 2);
        let names: Vec<String> = registry.descriptors().into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["b", "a"]);
        // A clone taken before the change (what a request in flight holds) is unchanged.
        assert_eq!(snapshot.index_of("cache", "a"), Some(0));
    }
}
