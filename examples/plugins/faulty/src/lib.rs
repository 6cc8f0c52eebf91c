//! `cache/faulty`: a plugin that starts fine and panics on every call. The runtime must turn
//! each panic into a `provider_failed` answer and keep serving every other provider; the
//! plugin tests load it to prove that.

use serde_json::{Value, json};
use switchyard_plugin_abi::{Call, Instance, Plugin, PluginError, export_plugin};

pub struct Faulty;

impl Plugin for Faulty {
    type Instance = Faulty;

    fn new() -> Self {
        Faulty
    }

    fn descriptor(&self) -> Value {
        json!({
            "domain": "cache",
            "name": "faulty",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Test plugin: panics on every call.",
            "capabilities": [],
            "config_schema": {"type": "object"}
        })
    }

    fn start(&self, _tenant: &str, _config: Value) -> Result<Faulty, PluginError> {
        Ok(Faulty)
    }
}

impl Instance for Faulty {
    fn invoke(&self, call: Call) -> Result<Value, PluginError> {
        panic!("faulty plugin asked to {}", call.action)
    }
}

export_plugin!(Faulty);
