//! The registry of provider engines, keyed by `(domain, name)`, with their schemas compiled
//! once at registration.

use std::collections::HashMap;
use std::sync::Arc;

use switchyard_contracts::schema::Compiled;
use switchyard_contracts::{ActionValidators, ProviderDescriptor, SchemaError};
use switchyard_spi::ProviderFactory;

/// One registered engine.
pub struct Registered {
    pub factory: Arc<dyn ProviderFactory>,
    pub actions: HashMap<String, ActionValidators>,
    pub config: Compiled,
}

impl Registered {
    pub fn descriptor(&self) -> &ProviderDescriptor {
        self.factory.descriptor()
    }

    pub fn id(&self) -> String {
        let d = self.descriptor();
        format!("{}/{}", d.domain, d.name)
    }
}

#[derive(Default)]
pub struct Registry {
    providers: Vec<Registered>,
}

impl Registry {
    /// Adds an engine. Refuses a duplicate `(domain, name)` and schemas that do not compile,
    /// so a broken descriptor stops start-up instead of failing requests later.
    pub fn register(&mut self, factory: Arc<dyn ProviderFactory>) -> Result<(), SchemaError> {
        let descriptor = factory.descriptor();
        let id = format!("{}/{}", descriptor.domain, descriptor.name);
        if self
            .index_of(&descriptor.domain, &descriptor.name)
            .is_some()
        {
            return Err(SchemaError {
                location: id,
                message: "registered twice".into(),
            });
        }
        let mut actions = HashMap::new();
        for action in &descriptor.actions {
            actions.insert(action.name.clone(), ActionValidators::compile(&id, action)?);
        }
        let config = Compiled::new(&descriptor.config_schema, &format!("{id}#config"))?;
        self.providers.push(Registered {
            factory,
            actions,
            config,
        });
        Ok(())
    }

    pub fn index_of(&self, domain: &str, name: &str) -> Option<usize> {
        self.providers
            .iter()
            .position(|p| p.descriptor().domain == domain && p.descriptor().name == name)
    }

    pub fn get(&self, index: usize) -> &Registered {
        &self.providers[index]
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &Registered)> {
        self.providers.iter().enumerate()
    }

    pub fn descriptors(&self) -> Vec<ProviderDescriptor> {
        self.providers
            .iter()
            .map(|p| p.descriptor().clone())
            .collect()
    }
}
