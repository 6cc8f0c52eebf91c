//! Config history and rollback (docs/adr/0043): every configure saves who made it and how it
//! differs from the version before; `GET …/configs` lists the versions; `POST
//! …/configs/rollback` saves an earlier version's values as a new version and swaps it in
//! exactly like a configure. Each of them appends a record to the tenant's audit log.
//!
//! What is shown of a config never holds a credential: a field the provider's schema marks
//! `x-secret`, or one named like a credential ([`SECRET_FIELDS`]), appears in a diff as
//! changed without its values, and in a version's values only as the `secret://` reference it
//! holds, a literal as `***` ([`shown`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::masking::SECRET_FIELDS;
use switchyard_contracts::{ErrorCode, Problem, TenantId};
use switchyard_platform_store::{AuditEntry, ConfigNote, StoredConfig, VersionLookup};
use switchyard_spi::CallContext;

use super::{Runtime, store_problem};
use crate::registry::Registered;
use crate::secrets::{SECRET_KEYWORD, masked, resolve_ref};

/// Who a change is recorded as when the caller has no subject: the platform's own in-process
/// callers (a business service's set-up, the CLI, tests).
const SYSTEM_ACTOR: &str = "system";

/// The body of `POST …/configs/rollback`. `version` is read as JSON Schema reads an integer,
/// so `3.0` is version 3, as the published schema admits it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    version: serde_json::Number,
}

/// The largest integer a JSON number holds exactly (2^53 - 1), the schema's `maximum`.
const MAX_VERSION: f64 = 9_007_199_254_740_991.0;

impl RollbackRequest {
    fn version(&self) -> Option<i64> {
        let version = self.version.as_i64().or_else(|| {
            self.version
                .as_f64()
                .filter(|v| v.fract() == 0.0 && v.abs() <= MAX_VERSION)
                .map(|v| v as i64)
        })?;
        (1..=MAX_VERSION as i64)
            .contains(&version)
            .then_some(version)
    }
}

impl Runtime {
    /// [`Runtime::configure`] by the caller `ctx`: the new version records `ctx`'s subject and
    /// its diff against the version before, and the change is appended to the audit log.
    pub async fn configure_as(
        self: &Arc<Self>,
        ctx: &CallContext,
        domain: &str,
        name: &str,
        body: Value,
    ) -> Result<Value, Problem> {
        let (index, registered) = self.find_registered(domain, name)?;
        let Some(config) = body
            .get("config")
            .filter(|_| body.as_object().is_some_and(|o| o.len() == 1))
        else {
            return Err(Problem::new(
                ErrorCode::RequestInvalid,
                "the body must be {\"config\": {...}}",
            ));
        };
        // `5.0` where an integer is asked for is an integer (the schema says so), kept as `5`.
        let config = registered.config.with_integers(config.clone());
        self.save_version(ctx, index, &registered, config, None)
            .await
    }

    /// `GET /providers/{d}/{n}/configs`: the tenant's kept versions, newest first.
    pub async fn config_history(
        &self,
        tenant: &TenantId,
        domain: &str,
        name: &str,
    ) -> Result<Value, Problem> {
        let (_, registered) = self.find_registered(domain, name)?;
        let schema = &registered.descriptor().config_schema;
        let versions = self
            .store
            .config_history(tenant, domain, name)
            .await
            .map_err(store_problem)?;
        let versions: Vec<Value> = versions
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                json!({
                    "version": v.version, "at": v.at, "actor": v.note.actor, "diff": v.note.diff,
                    "note": v.note.note, "current": i == 0, "values": shown(schema, &v.values),
                })
            })
            .collect();
        Ok(json!({
            "provider": registered.id(),
            "kept": self.store.config_versions_kept(),
            "versions": versions,
        }))
    }

    /// `POST /providers/{d}/{n}/configs/rollback` with `{"version": N}`: version N's values
    /// saved as a new version (note `rollback to N`, diff against the current one) and swapped
    /// in like a configure, after the same checks. A version never saved, or pruned by the
    /// operator's `config_versions_kept`, is 404 `config_version_not_found`.
    pub async fn rollback_config(
        self: &Arc<Self>,
        ctx: &CallContext,
        domain: &str,
        name: &str,
        body: &[u8],
    ) -> Result<Value, Problem> {
        let version = serde_json::from_slice::<RollbackRequest>(body)
            .ok()
            .and_then(|r| r.version())
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::RequestInvalid,
                    "the body must be {\"version\": N}, N a version number from 1",
                )
            })?;
        let (index, registered) = self.find_registered(domain, name)?;
        let provider = registered.id();
        let values = match self
            .store
            .config_version(&ctx.tenant, domain, name, version)
            .await
            .map_err(store_problem)?
        {
            VersionLookup::Found(StoredConfig { values, .. }) => values,
            VersionLookup::Pruned { oldest_kept } => {
                return Err(Problem::new(
                    ErrorCode::ConfigVersionNotFound,
                    format!(
                        "version {version} of {provider}'s config was pruned: the platform keeps the newest {} versions, the oldest now {oldest_kept}",
                        self.store.config_versions_kept()
                    ),
                ));
            }
            VersionLookup::Never => {
                return Err(Problem::new(
                    ErrorCode::ConfigVersionNotFound,
                    format!(
                        "{provider}'s config has no version {version}; GET /providers/{provider}/configs lists them"
                    ),
                ));
            }
        };
        let note = format!("rollback to {version}");
        self.save_version(ctx, index, &registered, values, Some(note))
            .await
    }

    /// Saves `config` as the next version by `ctx` (after [`Runtime::apply_config`]'s checks
    /// and start), with its diff against the current version, and audits it: `configure`, or
    /// `rollback` when `note` says what it rolls back to.
    async fn save_version(
        self: &Arc<Self>,
        ctx: &CallContext,
        index: usize,
        registered: &Registered,
        config: Value,
        note: Option<String>,
    ) -> Result<Value, Problem> {
        let d = registered.descriptor();
        let schema = &d.config_schema;
        let previous = self
            .store
            .current_config(&ctx.tenant, &d.domain, &d.name)
            .await
            .map_err(store_problem)?
            .map(|c| c.values);
        let operation = if note.is_some() {
            "rollback"
        } else {
            "configure"
        };
        let note = ConfigNote {
            actor: Some(actor(ctx).to_owned()),
            diff: Some(diff(
                schema,
                previous.as_ref().unwrap_or(&json!({})),
                &config,
            )),
            note,
        };
        let stored = self
            .apply_config(&ctx.tenant, index, registered, &config, &note)
            .await?;
        self.audit(
            ctx,
            format!("provider/{}/{}", d.domain, d.name),
            operation,
            previous.map(|p| shown(schema, &p)),
            Some(shown(schema, &stored.values)),
        )
        .await;
        Ok(json!({
            "provider": registered.id(), "version": stored.version,
            "values": shown(schema, &stored.values), "updated_at": stored.updated_at,
        }))
    }

    /// Appends a change by `ctx` to its tenant's audit log. The change has happened by now, so
    /// a failed append is logged rather than answered: the caller must not retry a change
    /// that took effect.
    pub(super) async fn audit(
        &self,
        ctx: &CallContext,
        entity: String,
        operation: &str,
        old: Option<Value>,
        new: Option<Value>,
    ) {
        let entry = AuditEntry {
            tenant: ctx.tenant.to_string(),
            actor: actor(ctx).to_owned(),
            entity,
            operation: operation.to_owned(),
            old,
            new,
            request_id: Some(ctx.request_id.clone()).filter(|id| !id.is_empty()),
            source: CLIENT_ADDRESS.try_with(|a| a.to_string()).ok(),
        };
        let (tenant, entity) = (entry.tenant.clone(), entry.entity.clone());
        if let Err(e) = self.store.append_audit(entry).await {
            tracing::error!(%tenant, %entity, operation, error = %e, "the change took effect but its audit record was not written");
        }
    }
}

tokio::task_local! {
    /// The client's address while an admin's request is answered, for its audit records. The
    /// gateway in this process hands it over as the request's `IpAddr` extension; a gateway
    /// across HTTP signs no address, so the records of requests it forwards have none.
    pub(crate) static CLIENT_ADDRESS: std::net::IpAddr;
}

/// Who `ctx` is, for the history and the audit log.
pub(super) fn actor(ctx: &CallContext) -> &str {
    ctx.subject.as_deref().unwrap_or(SYSTEM_ACTOR)
}

/// A config as it may be shown: [`masked`] by its schema (literals in `x-secret` fields and
/// passwords in URLs), and a literal string in any field named like a credential as `***`;
/// `secret://` references stay as written.
pub fn shown(schema: &Value, config: &Value) -> Value {
    named_literals_masked(masked(schema, config))
}

fn named_literals_masked(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| match item {
                    Value::String(text)
                        if is_secret_name(&key) && !text.starts_with("secret://") =>
                    {
                        (key, json!("***"))
                    }
                    item => (key, named_literals_masked(item)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(named_literals_masked).collect()),
        other => other,
    }
}

fn is_secret_name(key: &str) -> bool {
    SECRET_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(key))
}

/// What changed from `old` to `new`, as `[{op: add|remove|replace, path, old, new}]` with
/// JSON pointers, object members compared one by one and anything else as a whole. A secret
/// field (its schema says `x-secret`, or its name is a credential's) shows as
/// `{op, path, secret: true}` and never with a value; other values as [`shown`].
pub fn diff(schema: &Value, old: &Value, new: &Value) -> Value {
    let shown_old = shown(schema, old);
    let shown_new = shown(schema, new);
    let mut walk = Walk {
        root: schema,
        shown: (&shown_old, &shown_new),
        pointer: String::new(),
        ops: Vec::new(),
    };
    walk.compare(Some(schema), None, Some(old), Some(new));
    Value::Array(walk.ops)
}

struct Walk<'a> {
    root: &'a Value,
    shown: (&'a Value, &'a Value),
    pointer: String,
    ops: Vec<Value>,
}

impl Walk<'_> {
    fn compare(
        &mut self,
        schema: Option<&Value>,
        key: Option<&str>,
        old: Option<&Value>,
        new: Option<&Value>,
    ) {
        let schema = schema.map(|s| resolve_ref(self.root, s));
        let secret = schema.is_some_and(|s| s.get(SECRET_KEYWORD) == Some(&Value::Bool(true)))
            || key.is_some_and(is_secret_name);
        match (old, new) {
            (Some(Value::Object(a)), Some(Value::Object(b))) if !secret => {
                let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for key in keys {
                    let sub = schema.and_then(|s| {
                        s.get("properties")
                            .and_then(|p| p.get(key))
                            .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
                    });
                    let at = self.pointer.len();
                    self.pointer.push('/');
                    self.pointer
                        .push_str(&key.replace('~', "~0").replace('/', "~1"));
                    self.compare(sub, Some(key), a.get(key), b.get(key));
                    self.pointer.truncate(at);
                }
            }
            (a, b) if a == b => {}
            (a, b) => {
                let op = match (a, b) {
                    (None, _) => "add",
                    (_, None) => "remove",
                    _ => "replace",
                };
                let mut entry = json!({"op": op, "path": self.pointer});
                if secret {
                    entry["secret"] = json!(true);
                } else {
                    if a.is_some() {
                        entry["old"] = self.shown.0.pointer(&self.pointer).cloned().into();
                    }
                    if b.is_some() {
                        entry["new"] = self.shown.1.pointer(&self.pointer).cloned().into();
                    }
                }
                self.ops.push(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "$defs": {"key": {"type": "string", "x-secret": true}},
            "properties": {
                "dsn": {"type": "string", "x-secret": true},
                "api_key": {"$ref": "#/$defs/key"},
                "max_connections": {"type": "integer"},
                "auth": {"type": "object", "properties": {"client_id": {"type": "string"}}}
            }
        })
    }

    #[test]
    fn a_diff_names_every_change_and_never_a_secret_value() {
        let old = json!({
            "dsn": "secret://vault/pg-a", "api_key": "secret://vault/k1", "max_connections": 4,
            "auth": {"client_id": "a", "password": "hunter2-old"}, "gone": [1, 2]
        });
        let new = json!({
            "dsn": "secret://vault/pg-b", "api_key": "secret://vault/k1", "max_connections": 8,
            "auth": {"client_id": "b", "password": "hunter2-new"}, "base_url": "http://u:pw-x@h/v1",
            "added": {"token": "tok-literal", "n": 1}
        });
        let ops = diff(&schema(), &old, &new);
        assert_eq!(
            ops,
            json!([
                {"op": "add", "path": "/added", "new": {"token": "***", "n": 1}},
                {"op": "replace", "path": "/auth/client_id", "old": "a", "new": "b"},
                {"op": "replace", "path": "/auth/password", "secret": true},
                {"op": "add", "path": "/base_url", "new": "http://u:***@h/v1"},
                {"op": "replace", "path": "/dsn", "secret": true},
                {"op": "remove", "path": "/gone", "old": [1, 2]},
                {"op": "replace", "path": "/max_connections", "old": 4, "new": 8},
            ])
        );
        let text = ops.to_string();
        for secret in ["pg-a", "pg-b", "hunter2", "pw-x", "tok-literal"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(diff(&schema(), &new, &new), json!([]));
        assert_eq!(
            diff(&schema(), &json!({}), &json!({"max_connections": 2})),
            json!([{"op": "add", "path": "/max_connections", "new": 2}])
        );
    }

    #[test]
    fn a_rollback_names_its_version_as_json_schema_reads_an_integer() {
        let version = |body: &str| {
            serde_json::from_str::<RollbackRequest>(body)
                .ok()
                .and_then(|r| r.version())
        };
        assert_eq!(version(r#"{"version": 3}"#), Some(3));
        assert_eq!(version(r#"{"version": 719.0}"#), Some(719));
        assert_eq!(
            version(r#"{"version": 9007199254740991}"#),
            Some(9_007_199_254_740_991)
        );
        for bad in [
            r#"{"version": 0}"#,
            r#"{"version": -1}"#,
            r#"{"version": 1.5}"#,
            r#"{"version": 9007199254740992}"#,
            r#"{"version": 1e300}"#,
            r#"{"version": "2"}"#,
            r#"{"version": 2, "x": 1}"#,
            r#"{}"#,
        ] {
            assert_eq!(version(bad), None, "{bad}");
        }
    }

    #[test]
    fn shown_values_keep_references_and_hide_literals() {
        let config = json!({"dsn": "secret://vault/pg", "api_key": "sk-live",
                            "nested": [{"password": "p4ss", "user": "ann"}], "max_connections": 3});
        assert_eq!(
            shown(&schema(), &config),
            json!({"dsn": "secret://vault/pg", "api_key": "***",
                   "nested": [{"password": "***", "user": "ann"}], "max_connections": 3})
        );
    }
}
