//! `storage/__NAME__`: a storage provider plugin (put, get, head, list, delete) keeping each
//! tenant's objects in memory. Keys are relative '/'-separated paths; one that could name
//! something outside the tenant's space (an empty, '.' or '..' segment, a leading '/', a
//! backslash, a control character) is refused. The engine owns the objects, so a tenant's new
//! instance (a reconfigure) keeps them; nothing survives the process: replace `Objects` with a
//! durable store for production. The runtime checks params and results against the storage
//! contract, so only what the schemas cannot say is checked here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use switchyard_plugin_abi::{Call, Instance, Plugin, PluginError, export_plugin};

struct Object {
    content: Vec<u8>,
    modified_at: String,
}

/// (tenant, key) → object; ordered, so a tenant's keys list in key order.
type Objects = BTreeMap<(String, String), Object>;

pub struct Engine {
    objects: Arc<Mutex<Objects>>,
}

impl Plugin for Engine {
    type Instance = Tenant;

    fn new() -> Self {
        Engine {
            objects: Arc::default(),
        }
    }

    fn descriptor(&self) -> Value {
        json!({
            "domain": "storage",
            "name": "__NAME__",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "storage/__NAME__: each tenant's objects in memory (a plugin skeleton)",
            "capabilities": [],
            "actions": ["put", "get", "head", "list", "delete"],
            "config_schema": {"type": "object", "additionalProperties": false, "properties": {}}
        })
    }

    fn start(&self, tenant: &str, _config: Value) -> Result<Tenant, PluginError> {
        Ok(Tenant {
            tenant: tenant.to_owned(),
            objects: self.objects.clone(),
        })
    }
}

/// One tenant's view of the shared objects: every key carries the tenant.
pub struct Tenant {
    tenant: String,
    objects: Arc<Mutex<Objects>>,
}

/// Now as RFC 3339 in UTC (`2026-01-31T12:00:00.123Z`), from the days-to-civil algorithm of
/// Howard Hinnant's date library, so the skeleton needs no date crate.
fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The key, or `params_invalid` at `/key` when it could leave the tenant's space.
fn checked(params: &Value) -> Result<&str, PluginError> {
    let key = params["key"].as_str().unwrap_or_default();
    let unsafe_key = key != key.trim()
        || key.contains('\\')
        || key.chars().any(char::is_control)
        || key.split('/').any(|s| matches!(s, "" | "." | ".."));
    if unsafe_key {
        return Err(PluginError::field(
            "params_invalid",
            "/key",
            "a key is a relative path of '/'-separated segments, none empty, '.' or '..'",
        ));
    }
    Ok(key)
}

fn meta(key: &str, object: &Object) -> Value {
    json!({"key": key, "size": object.content.len(), "modified_at": object.modified_at})
}

impl Tenant {
    fn lock(&self) -> MutexGuard<'_, Objects> {
        // A panic while holding the lock left whole objects behind: the map is still usable.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn id(&self, key: &str) -> (String, String) {
        (self.tenant.clone(), key.to_owned())
    }

    fn found<'a>(&self, objects: &'a Objects, key: &str) -> Result<&'a Object, PluginError> {
        objects
            .get(&self.id(key))
            .ok_or_else(|| PluginError::new("resource_not_found", format!("no object {key}")))
    }
}

impl Instance for Tenant {
    fn invoke(&self, call: Call) -> Result<Value, PluginError> {
        let p = &call.params;
        match call.action.as_str() {
            "put" => {
                let key = checked(p)?;
                let Some(encoded) = p["content_base64"].as_str() else {
                    // Nothing in the schema requires it (a raw body could carry it): 422.
                    return Err(PluginError::field(
                        "params_unprocessable",
                        "/content_base64",
                        "put needs content_base64",
                    ));
                };
                let content = STANDARD.decode(encoded).map_err(|e| {
                    PluginError::field("params_invalid", "/content_base64", e.to_string())
                })?;
                let object = Object {
                    content,
                    modified_at: now_rfc3339(),
                };
                let answer = meta(key, &object);
                self.lock().insert(self.id(key), object);
                Ok(answer)
            }
            "get" => {
                let key = checked(p)?;
                let objects = self.lock();
                let object = self.found(&objects, key)?;
                let mut answer = meta(key, object);
                answer["content_base64"] = json!(STANDARD.encode(&object.content));
                Ok(answer)
            }
            "head" => {
                let key = checked(p)?;
                let objects = self.lock();
                Ok(meta(key, self.found(&objects, key)?))
            }
            "delete" => {
                let key = checked(p)?;
                let removed = self.lock().remove(&self.id(key));
                Ok(json!({"deleted": removed.is_some()}))
            }
            "list" => {
                let prefix = p["prefix"].as_str().unwrap_or_default();
                let cursor = p["cursor"].as_str();
                let limit = p["limit"].as_u64().unwrap_or(100) as usize;
                let objects = self.lock();
                let mut matching = objects
                    .range(self.id(prefix)..)
                    .take_while(|((tenant, key), _)| {
                        *tenant == self.tenant && key.starts_with(prefix)
                    })
                    .filter(|((_, key), _)| cursor.is_none_or(|c| key.as_str() > c));
                let page: Vec<Value> = matching
                    .by_ref()
                    .take(limit)
                    .map(|((_, key), object)| meta(key, object))
                    .collect();
                let next_cursor = match matching.next() {
                    Some(_) => page.last().map(|o| o["key"].clone()).unwrap_or(Value::Null),
                    None => Value::Null,
                };
                Ok(json!({"objects": page, "next_cursor": next_cursor}))
            }
            other => Err(PluginError::new(
                "action_not_found",
                format!("storage/__NAME__ has no action {other:?}"),
            )),
        }
    }
}

export_plugin!(Engine);
