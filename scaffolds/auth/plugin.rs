//! `auth/__NAME__`: an auth provider plugin (evaluate) deciding by role: a request is allowed
//! when the input's `roles` name one of the tenant's `allow_roles` (config), and denied with its
//! reason otherwise. Replace `decide` with your policy engine; add `verify`/`introspect` (and
//! list them in the descriptor) to check tokens. The runtime checks params and results against
//! the auth contract, so only what the schemas cannot say is checked here.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use switchyard_plugin_abi::{Call, Instance, Plugin, PluginError, export_plugin};

pub struct Engine;

impl Plugin for Engine {
    type Instance = Tenant;

    fn new() -> Self {
        Engine
    }

    fn descriptor(&self) -> Value {
        json!({
            "domain": "auth",
            "name": "__NAME__",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "auth/__NAME__: allows a request whose roles meet the tenant's allow_roles (a plugin skeleton)",
            "capabilities": [],
            "actions": ["evaluate"],
            "config_schema": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "allow_roles": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": []}
                }
            }
        })
    }

    fn start(&self, _tenant: &str, config: Value) -> Result<Tenant, PluginError> {
        let allow_roles = config["allow_roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        Ok(Tenant { allow_roles })
    }
}

/// One tenant's policy: the roles it allows.
pub struct Tenant {
    allow_roles: BTreeSet<String>,
}

impl Tenant {
    fn decide(&self, input: &Value) -> Value {
        let allowed = input["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|role| self.allow_roles.contains(role));
        if allowed {
            json!({"allow": true, "reasons": []})
        } else {
            json!({"allow": false, "reasons": ["none of the input's roles is in this tenant's allow_roles"]})
        }
    }
}

impl Instance for Tenant {
    fn invoke(&self, call: Call) -> Result<Value, PluginError> {
        match call.action.as_str() {
            "evaluate" => {
                let roles: Vec<&str> = self.allow_roles.iter().map(String::as_str).collect();
                Ok(json!({
                    "decision": self.decide(&call.params["input"]),
                    "revision": format!("allow-roles:{}", roles.join(",")),
                }))
            }
            other => Err(PluginError::new(
                "action_not_found",
                format!("auth/__NAME__ has no action {other:?}"),
            )),
        }
    }
}

export_plugin!(Engine);
