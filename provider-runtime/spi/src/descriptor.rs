//! What an engine says about itself, built the same way by every engine: its descriptor (the
//! domain's actions come from the published contract, never from the engine), its config
//! schema (derived from the config struct, so the struct is the one source of what a tenant
//! may configure: validation, the console's form and the docs), and its health from a probe;
//! and how a domain crate lists its built-in engines ([`builtins`]).

use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;
use switchyard_contracts::{SchemaError, domains};

use crate::tenancy::Tenancy;
use crate::{
    DependencyHealth, ErrorCode, Health, HealthStatus, ProviderDescriptor, ProviderError,
    ProviderFactory,
};

/// Builds the descriptor of engine `<domain>/<name>`:
///
/// ```
/// # #[derive(schemars::JsonSchema)]
/// # struct MemoryCacheConfig {}
/// let descriptor = switchyard_spi::Describe::new("cache", "memory", env!("CARGO_PKG_VERSION"))
///     .summary("In-process cache with per-key TTL; the embedded default.")
///     .capabilities(&["ttl", "atomic_incr"])
///     .config::<MemoryCacheConfig>()
///     .build();
/// assert_eq!(descriptor.actions.len(), 7);
/// ```
#[must_use]
pub struct Describe {
    descriptor: ProviderDescriptor,
}

impl Describe {
    /// Every action of the domain, an empty summary and capability list, and a config schema
    /// that accepts only an empty object (an engine without tenant config).
    pub fn new(domain: &str, name: &str, version: &str) -> Self {
        Describe {
            descriptor: ProviderDescriptor {
                domain: domain.into(),
                name: name.into(),
                version: version.into(),
                summary: String::new(),
                capabilities: Vec::new(),
                config_schema: serde_json::json!({
                    "type": "object", "additionalProperties": false, "properties": {}
                }),
                actions: domains::actions(domain),
            },
        }
    }

    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.descriptor.summary = summary.into();
        self
    }

    pub fn capabilities(mut self, capabilities: &[&str]) -> Self {
        self.descriptor.capabilities = capabilities.iter().map(|&c| c.into()).collect();
        self
    }

    /// The tenant config the engine reads, as [`config_schema`] derives it.
    pub fn config<C: JsonSchema>(mut self) -> Self {
        self.descriptor.config_schema = config_schema::<C>();
        self
    }

    /// A config schema built another way (the db engines build theirs from the same bounds
    /// their parsers check, `providers/db/src/limits.rs`).
    pub fn config_schema(mut self, schema: Value) -> Self {
        self.descriptor.config_schema = schema;
        self
    }

    /// Only these of the domain's actions, for an engine that offers a part of the domain
    /// (e.g. `ai/local` has no `chat`). Panics on a name the domain does not define: that is
    /// a bug in the engine, found by any test that builds it.
    pub fn actions(mut self, names: &[&str]) -> Self {
        self.descriptor.actions = domains::actions_named(&self.descriptor.domain, names);
        self
    }

    pub fn build(self) -> ProviderDescriptor {
        self.descriptor
    }
}

/// The JSON Schema of config type `C` as a descriptor serves it: draft 2020-12 with every
/// subschema inlined, so the console's form (which reads `properties` one level deep) and any
/// validator read it without resolving references, and without `$schema` or `title` (the
/// schema is a part of a descriptor, not a document of its own, and a struct's Rust name
/// says nothing to a tenant). Field doc comments become descriptions; `deny_unknown_fields`
/// becomes `additionalProperties: false`, with the comment's line wrapping undone (a paragraph
/// break stays). A `"default": null` that the property's type refuses
/// (an `Option` the schema keeps non-null: left out means the engine's default) is dropped, as
/// it would advertise a value the schema refuses.
pub fn config_schema<C: JsonSchema>() -> Value {
    let mut schema = SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<C>()
        .to_value();
    if let Some(root) = schema.as_object_mut() {
        root.remove("$schema");
        root.remove("title");
    }
    unwrap_descriptions(&mut schema);
    if let Some(properties) = schema["properties"].as_object_mut() {
        for property in properties.values_mut() {
            let nullable = match &property["type"] {
                Value::String(t) => t == "null",
                Value::Array(types) => types.iter().any(|t| t == "null"),
                _ => true,
            };
            if !nullable
                && property["default"].is_null()
                && let Some(property) = property.as_object_mut()
            {
                property.remove("default");
            }
        }
    }
    schema
}

/// Joins the lines a doc comment was wrapped into, in every `description` of `schema`.
fn unwrap_descriptions(schema: &mut Value) {
    match schema {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                match member {
                    Value::String(text) if name == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|paragraph| paragraph.replace('\n', " "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(member),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// A `#[schemars(transform = unconfigured_or_complete)]` for the config of an engine that
/// starts unconfigured (its calls answer provider_not_configured until the tenant configures
/// it): the empty object is valid, and any other config must have the struct's required
/// fields. The struct stays the source of which fields those are.
pub fn unconfigured_or_complete(schema: &mut schemars::Schema) {
    let required = schema
        .remove("required")
        .unwrap_or_else(|| Value::Array(Vec::new()));
    schema.insert(
        "anyOf".into(),
        serde_json::json!([
            {"maxProperties": 0, "description": "Not configured: calls answer provider_not_configured."},
            {"required": required}
        ]),
    );
}

/// Where the `switchyard` process hosts its built-in engines, handed to each domain crate's
/// `builtins`.
pub struct Host<'a> {
    /// The directory an embedded engine keeps its data under, in `<domain>/<name>`.
    pub data: &'a Path,
    /// Where the business services' books live (db engines keep them there, in
    /// `<domain>/<name>`): beside, not under, the tenants' own data, so a tenant's own calls
    /// can never reach them.
    pub books: &'a Path,
    /// The operator's ceilings every tenant's instance is held to.
    pub tenancy: &'a Tenancy,
}

/// One built-in engine: its factory when this process hosts it (an embedded engine always, a
/// production engine when its `SWITCHYARD_*` variables name its server), or why it cannot
/// start (a variable missing or malformed, named in the error).
pub type Builtin = fn(&Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError>;

/// The factories of `engines` this process hosts, in order: a domain crate's `builtins` is
/// this over its list of engines, so a new engine is one line in that list.
pub fn builtins(
    host: &Host,
    engines: &[Builtin],
) -> Result<Vec<Arc<dyn ProviderFactory>>, SchemaError> {
    let mut hosted = Vec::with_capacity(engines.len());
    for engine in engines {
        hosted.extend(engine(host)?);
    }
    Ok(hosted)
}

/// Reads a tenant's config into the engine's config type. The runtime checked it against the
/// derived schema already, so a failure here is what the schema cannot say (e.g. a number
/// past the type's range) and is reported as `config_invalid`.
pub fn parse_config<C: serde::de::DeserializeOwned>(config: Value) -> Result<C, ProviderError> {
    serde_json::from_value(config)
        .map_err(|e| ProviderError::new(ErrorCode::ConfigInvalid, e.to_string()))
}

/// An instance's health from one probe of its dependency `name`: up with what the probe
/// reported, or down with the probe's error.
pub fn probe_health(name: &str, probe: Result<Option<String>, ProviderError>) -> Health {
    let (status, detail) = match probe {
        Ok(detail) => (HealthStatus::Up, detail),
        Err(e) => (HealthStatus::Down, Some(e.detail)),
    };
    Health::from_dependencies(vec![DependencyHealth {
        name: name.into(),
        status,
        detail,
    }])
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;
    use switchyard_contracts::schema::Compiled;

    use super::*;

    /// A config as engines write them.
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        /// How long,
        /// in milliseconds.
        #[serde(default)]
        #[schemars(range(min = 1))]
        ttl_ms: Option<u64>,
        #[serde(default)]
        mode: Mode,
        /// Left out: the engine's; null refused.
        #[serde(default)]
        #[schemars(with = "u32")]
        limit: Option<u32>,
    }

    #[derive(Default, Deserialize, serde::Serialize, JsonSchema)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        #[default]
        Fast,
        Safe,
    }

    #[test]
    fn a_config_schema_is_inline_and_refuses_what_the_struct_refuses() {
        let schema = config_schema::<Example>();
        assert!(schema.get("$defs").is_none(), "{schema}");
        assert!(schema.get("$schema").is_none() && schema.get("title").is_none());
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(
            schema["properties"]["ttl_ms"]["description"],
            "How long, in milliseconds."
        );
        assert_eq!(
            schema["properties"]["ttl_ms"].get("default"),
            Some(&Value::Null)
        );
        assert!(schema["properties"]["limit"].get("default").is_none());
        assert_eq!(
            schema["properties"]["mode"]["enum"],
            json!(["fast", "safe"])
        );
        let compiled = Compiled::new(&schema, "example").unwrap();
        assert!(
            compiled
                .check(&json!({"ttl_ms": 5, "mode": "safe"}))
                .is_empty()
        );
        assert!(compiled.check(&json!({})).is_empty());
        for refused in [
            json!({"ttl_ms": 0}),
            json!({"mode": "slow"}),
            json!({"other": 1}),
            json!({"limit": null}),
        ] {
            assert!(!compiled.check(&refused).is_empty(), "{refused}");
        }
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(transform = unconfigured_or_complete)]
    #[allow(dead_code)]
    struct Server {
        url: String,
        #[serde(default)]
        model: Option<String>,
    }

    #[test]
    fn an_engine_that_starts_unconfigured_takes_nothing_or_its_required_fields() {
        let schema = config_schema::<Server>();
        assert!(schema.get("required").is_none(), "{schema}");
        let compiled = Compiled::new(&schema, "server").unwrap();
        for accepted in [
            json!({}),
            json!({"url": "u"}),
            json!({"url": "u", "model": "m"}),
        ] {
            assert!(compiled.check(&accepted).is_empty(), "{accepted}");
        }
        for refused in [
            json!({"model": "m"}),
            json!({"url": 1}),
            json!({"other": 1}),
        ] {
            assert!(!compiled.check(&refused).is_empty(), "{refused}");
        }
    }

    /// A factory that is only ever listed here, never started.
    struct Hosted(ProviderDescriptor);

    #[async_trait::async_trait]
    impl ProviderFactory for Hosted {
        fn descriptor(&self) -> &ProviderDescriptor {
            &self.0
        }

        async fn start(
            &self,
            _: crate::StartContext,
        ) -> Result<Arc<dyn crate::Provider>, ProviderError> {
            Err(ProviderError::internal("never started"))
        }
    }

    fn always(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
        Ok(Some(Arc::new(Hosted(
            Describe::new("cache", "a", "1").build(),
        ))))
    }

    fn unset(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
        Ok(None)
    }

    fn misconfigured(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
        Err(SchemaError {
            location: "cache/b".into(),
            message: "SWITCHYARD_B_URL is set but SWITCHYARD_B_KEY is not".into(),
        })
    }

    #[test]
    fn builtins_hosts_what_is_configured_and_stops_at_a_half_configured_engine() {
        let tenancy = Tenancy::default();
        let host = Host {
            data: Path::new("/nonexistent"),
            books: Path::new("/nonexistent"),
            tenancy: &tenancy,
        };
        let hosted = builtins(&host, &[unset, always, unset, always]).unwrap();
        assert_eq!(hosted.len(), 2);
        let refused = builtins(&host, &[always, misconfigured, always])
            .err()
            .expect("a half-configured engine stops the start");
        assert_eq!(refused.location, "cache/b");
    }

    #[test]
    fn a_descriptor_lists_the_domains_actions_or_the_ones_named() {
        let all = Describe::new("cache", "memory", "1").build();
        assert_eq!(all.actions, domains::actions("cache"));
        let some = Describe::new("ai", "local", "1")
            .actions(&["embed", "classify"])
            .build();
        let names: Vec<&str> = some.actions.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["embed", "classify"]);
    }
}
