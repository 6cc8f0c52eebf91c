//! A tenant admin writes and rotates the tenant's secrets through the API (docs/adr/0043):
//! `PUT /secrets/{name}` puts the value into Vault under the tenant's prefix — where
//! `secret://vault/<name>` in the tenant's configs resolves to — and never into the platform
//! store, which counts the writes only; `GET /secrets` lists names and versions.
//!
//! After a write every instance of the tenant whose config references the secret is started
//! anew with the same config version, re-resolving it, and swapped in while the old one
//! drains: here before the answer, on the other replicas when they hear the store's secret
//! feed ([`Runtime::refresh_tenant_secret`]). A replica that missed the notification still
//! catches up at its next periodic refresh ([`Runtime::refresh_secrets`]), which re-resolves
//! every running instance's references, whoever wrote the secrets.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::openapi::history::MAX_SECRET_LENGTH;
use switchyard_contracts::{ErrorCode, Problem, TenantId};
use switchyard_platform_store::SecretChange;
use switchyard_spi::{CallContext, StartContext};

use super::history::actor;
use super::{Runtime, store_problem};
use crate::lifecycle::Slot;
use crate::secrets::{
    Owner, TENANT_SECRET_KEY, WriteError, references_tenant_secret, valid_secret_name,
};

/// The body of `PUT /secrets/{name}`. Its value is never echoed, not even in an error: a
/// malformed body is refused without quoting it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretWrite {
    value: String,
}

impl Runtime {
    /// `PUT /secrets/{name}`: writes the value to Vault as `ctx`'s tenant's secret `name`,
    /// restarts the instances that use it, and answers its name, version and references.
    pub async fn write_secret(
        self: &Arc<Self>,
        ctx: &CallContext,
        name: &str,
        body: &[u8],
    ) -> Result<Value, Problem> {
        let tenant = &ctx.tenant;
        let (mount, path) = valid_secret_name(name)
            .then(|| self.secret_scope.vault_location(tenant.as_str(), name))
            .flatten()
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::SecretNameInvalid,
                    "a secret's name is 1 to 128 of A-Z a-z 0-9 . _ - and does not start with .",
                )
            })?;
        let write = serde_json::from_slice::<SecretWrite>(body)
            .ok()
            .filter(|w| (1..=MAX_SECRET_LENGTH).contains(&w.value.chars().count()))
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::RequestInvalid,
                    format!(
                        "the body must be {{\"value\": \"...\"}}, a string of 1 to {MAX_SECRET_LENGTH} characters"
                    ),
                )
            })?;
        self.secrets
            .write_tenant_secret(tenant, &self.secret_scope, name, &write.value)
            .await
            .map_err(|e| {
                let code = match e {
                    WriteError::Name => ErrorCode::SecretNameInvalid,
                    WriteError::NoVault => ErrorCode::Conflict,
                    WriteError::Vault(_) => ErrorCode::UpstreamUnavailable,
                };
                Problem::new(code, format!("the secret was not written: {e}"))
            })?;
        drop(write);
        let meta = self
            .store
            .record_secret_write(tenant, name, actor(ctx))
            .await
            .map_err(store_problem)?;
        let (operation, old) = if meta.version == 1 {
            ("create", None)
        } else {
            ("rotate", Some(json!({"version": meta.version - 1})))
        };
        self.audit(
            ctx,
            format!("secret/{name}"),
            operation,
            old,
            Some(json!({"version": meta.version})),
        )
        .await;
        let change = SecretChange {
            tenant: tenant.to_string(),
            name: name.to_owned(),
        };
        if let Err(e) = self.store.notify_secret_change(&change).await {
            tracing::warn!(%tenant, secret = name, error = %e, "the other replicas were not told of the rotation; they pick it up at their next secret refresh");
        }
        self.refresh_tenant_secret(tenant, name).await;
        Ok(json!({
            "name": name, "version": meta.version, "updated_at": meta.updated_at,
            "reference": format!("secret://vault/{name}"),
            "vault_reference": format!("secret://vault/{mount}/{path}#{TENANT_SECRET_KEY}"),
        }))
    }

    /// `GET /secrets`: the tenant's secrets written through the API, without values.
    pub async fn list_secrets(&self, tenant: &TenantId) -> Result<Value, Problem> {
        let secrets = self
            .store
            .tenant_secrets(tenant)
            .await
            .map_err(store_problem)?;
        let secrets: Vec<Value> = secrets
            .into_iter()
            .filter_map(|s| {
                let (mount, path) = self.secret_scope.vault_location(tenant.as_str(), &s.name)?;
                Some(json!({
                    "name": s.name, "version": s.version, "updated_at": s.updated_at,
                    "reference": format!("secret://vault/{}", s.name),
                    "vault_reference": format!("secret://vault/{mount}/{path}#{TENANT_SECRET_KEY}"),
                }))
            })
            .collect();
        Ok(json!({ "secrets": secrets }))
    }

    /// Restarts, with the same config version, every running instance of `tenant` whose
    /// config references its secret `name` and whose resolved secrets changed.
    pub async fn refresh_tenant_secret(self: &Arc<Self>, tenant: &TenantId, name: &str) {
        let scope = self.secret_scope.clone();
        self.refresh_secrets_where(|of, config| {
            of == tenant && references_tenant_secret(config, of, &scope, name)
        })
        .await;
    }

    /// Re-resolves the secret references of every running instance and restarts (hot swap)
    /// the ones whose secrets changed, so a rotation needs no restart of the process.
    pub async fn refresh_secrets(self: &Arc<Self>) {
        self.refresh_secrets_where(|_, _| true).await;
    }

    /// [`Runtime::refresh_secrets`] for the running instances whose tenant and stored config
    /// `which` picks; each restarted one keeps its config version.
    async fn refresh_secrets_where(self: &Arc<Self>, which: impl Fn(&TenantId, &Value) -> bool) {
        let slots: Vec<((TenantId, usize), Arc<Slot>)> = match self.slots.read() {
            Ok(slots) => slots.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return,
        };
        for ((tenant, index), slot) in slots {
            if slot.lease().is_none() {
                continue;
            }
            let Some(registered) = self.registered(index) else {
                continue;
            };
            let d = registered.descriptor();
            let Ok(Some(stored)) = self.store.current_config(&tenant, &d.domain, &d.name).await
            else {
                continue;
            };
            if !stored.values.to_string().contains("secret://") || !which(&tenant, &stored.values) {
                continue;
            }
            let owner = Owner::Tenant(&tenant, &self.secret_scope);
            match self.secrets.resolve_config_as(owner, &stored.values).await {
                Ok((resolved, fingerprint)) if slot.secrets_changed(&fingerprint) => {
                    let start = StartContext {
                        tenant: tenant.clone(),
                        config: resolved,
                        client: self.client_for(&tenant, &registered),
                    };
                    match registered.factory.start(start).await {
                        Ok(provider) => {
                            slot.swap(provider, stored.version).await;
                            slot.remember_secrets(fingerprint);
                            tracing::info!(tenant = %tenant, provider = %registered.id(), "secrets rotated; instance swapped");
                        }
                        Err(e) => {
                            tracing::warn!(tenant = %tenant, provider = %registered.id(), error = %e.detail, "restart with rotated secrets failed; the running instance stays")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(tenant = %tenant, provider = %registered.id(), error = %e, "secret refresh failed")
                }
            }
        }
    }
}
