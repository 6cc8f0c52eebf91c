//! Saving a tenant's config: the checks, the start of a new instance before anything is
//! stored, the save and the swap, which a configure and a rollback share
//! ([`Runtime::apply_config`]); and how a refused secret reference is told to the tenant.

use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem, TenantId};
use switchyard_spi::{CallContext, StartContext};

use super::{Runtime, store_problem};
use crate::events::LifecycleEvent;
use crate::registry::Registered;
use crate::secrets::{Owner, SecretError, literal_credentials};
use crate::store::{ConfigNote, StoredConfig};

impl Runtime {
    /// Validates, starts a new instance with it, persists it as the next version, then swaps it
    /// in. A config the provider refuses to start with is not persisted, and the old instance
    /// keeps serving. The platform's own configure (a service's set-up, tools, tests): the
    /// version is recorded as the `system`'s; a tenant's admin configures through
    /// [`Runtime::configure_as`].
    pub async fn configure(
        self: &Arc<Self>,
        tenant: &TenantId,
        domain: &str,
        name: &str,
        body: Value,
    ) -> Result<Value, Problem> {
        let ctx = CallContext {
            tenant: tenant.clone(),
            request_id: String::new(),
            subject: None,
            service: None,
        };
        self.configure_as(&ctx, domain, name, body).await
    }

    /// Checks `config` for `tenant`'s provider at `index`, starts an instance with it (unless
    /// an admin holds the provider stopped), saves it as the next version with `note`, and
    /// swaps the instance in: what a configure and a rollback both do.
    pub(super) async fn apply_config(
        self: &Arc<Self>,
        tenant: &TenantId,
        index: usize,
        registered: &Registered,
        config: &Value,
        note: &ConfigNote,
    ) -> Result<StoredConfig, Problem> {
        let d = registered.descriptor();
        let schema = &d.config_schema;
        let literals = literal_credentials(schema, config);
        if !literals.is_empty() {
            return Err(Problem::new(
                ErrorCode::SecretRequired,
                format!(
                    "config for {} holds a credential where a secret:// reference belongs",
                    registered.id()
                ),
            )
            .with_errors(literals));
        }
        // Before anything is stored, even a config for an instance held stopped.
        self.secrets
            .check_tenant_config(tenant, &self.secret_scope, config)
            .await
            .map_err(|e| self.secret_problem(tenant, &registered.id(), e))?;
        let errors = registered.config.check(config);
        if !errors.is_empty() {
            return Err(Problem::new(
                ErrorCode::ConfigInvalid,
                format!("config for {} is invalid", registered.id()),
            )
            .with_errors(errors));
        }
        let slot = self.slot(tenant, index);
        let fresh = if slot.is_held_stopped() {
            None
        } else {
            let (resolved, fingerprint) = self
                .secrets
                .resolve_config_as(Owner::Tenant(tenant, &self.secret_scope), config)
                .await
                .map_err(|e| self.secret_problem(tenant, &registered.id(), e))?;
            let start = StartContext {
                tenant: tenant.clone(),
                config: resolved,
                client: self.client_for(tenant, registered),
            };
            slot.remember_secrets(fingerprint);
            Some(registered.factory.start(start).await.map_err(|e| {
                // An outage, the egress guard's refusal (403, the operator's ceiling) and a
                // rule the config schema cannot state (422) keep their own codes; anything
                // else is the config's fault.
                let code = if matches!(
                    e.code,
                    ErrorCode::ProviderUnavailable
                        | ErrorCode::EgressForbidden
                        | ErrorCode::ConfigUnprocessable
                ) {
                    e.code
                } else {
                    ErrorCode::ConfigInvalid
                };
                Problem::new(
                    code,
                    format!("{} refused the config: {}", registered.id(), e.detail),
                )
                .with_errors(e.errors)
            })?)
        };
        let stored = self
            .store
            .save_config_noted(tenant, &d.domain, &d.name, config, note)
            .await
            .map_err(store_problem)?;
        if let Some(provider) = fresh {
            slot.swap(provider, stored.version).await;
        }
        self.emit(
            tenant,
            index,
            LifecycleEvent::Configured,
            json!({"version": stored.version}),
        );
        Ok(stored)
    }

    /// A tenant's reference refused or unresolved, as the tenant may see it: the field and
    /// what it may name instead, nothing of the host.
    fn secret_problem(&self, tenant: &TenantId, provider: &str, e: SecretError) -> Problem {
        match e {
            SecretError::Forbidden { pointer, why } => Problem::new(
                ErrorCode::SecretForbidden,
                format!(
                    "{provider} config names a secret outside this tenant's space; its references may point at {}",
                    self.secret_scope.allowed(tenant.as_str())
                ),
            )
            .with_errors(vec![FieldError {
                pointer,
                detail: why.into(),
            }]),
            // A well-formed reference (the schema's pattern) that names no secret is a rule
            // no schema can state: 422, like a provider's own (ADR 23).
            unresolved @ SecretError::Unresolved { .. } => Problem::new(
                ErrorCode::ConfigUnprocessable,
                format!("{provider} config: {unresolved}"),
            ),
            malformed => Problem::new(ErrorCode::ConfigInvalid, format!("{provider} config: {malformed}")),
        }
    }
}
