//! The ERP's long-running flows as durable workflows on Restate (docs/adr/0044): Quote-to-Cash
//! and Procure-to-Pay. Each is a Restate workflow service whose every side effect is one
//! journaled step calling a provider or a business service through the tenant's
//! [`ProviderClient`]; the crate holds no driver, like every other business service.
//!
//! Every definition has the shape `workflow/restate` relies on: `run` (the flow), a shared
//! `signal` that resolves one of its durable promises by name, and a shared `state` that
//! answers what the flow published (its step, its outcome, what it compensated).
//!
//! An instance's key is `<tenant>~<id>` (`switchyard_provider_workflow::instance_key`): the
//! tenant a flow acts for is read from its key, which only the provider (namespacing by the
//! caller's tenant) ever writes, never from its input.

mod approval;
mod flow;
mod journal_approval;
mod probe;
mod procure_to_pay;
mod quote_to_cash;

use std::sync::Arc;

use restate_sdk::endpoint::Endpoint;
use restate_sdk::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use switchyard_client::ProviderClient;
use switchyard_contracts::TenantId;

pub use journal_approval::JournalApproval;
pub use probe::StepProbe;
pub use procure_to_pay::ProcureToPay;
pub use quote_to_cash::QuoteToCash;

/// The events the workflows publish (`asyncapi/business-events.json`).
pub const INVOICE_ISSUED: &str = "billing.invoice.issued";
pub const EVENT_TYPES: [&str; 1] = [INVOICE_ISSUED];

/// What the flows are configured with beside their clients.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bus provider the flows publish their events to (`bus/embedded`, `bus/kafka`).
    pub bus: String,
}

/// Makes the client a flow of `tenant` acts through: in `serve`, the runtime's in-process
/// client bound to that tenant, with subject `workflow:<name>`.
pub type Clients = Arc<dyn Fn(TenantId, &'static str) -> Arc<dyn ProviderClient> + Send + Sync>;

/// The Restate endpoint serving every workflow definition, for `serve` to listen with and
/// register at the Restate server.
pub fn endpoint(clients: Clients, settings: Settings) -> Endpoint {
    Endpoint::builder()
        .bind(QuoteToCash::new(clients.clone(), settings))
        .bind(ProcureToPay::new(clients.clone()))
        .bind(JournalApproval::new(clients.clone()))
        .bind(StepProbe::new(clients))
        .build()
}

/// The tenant and the tenant's own id of an instance key.
fn tenant_of(key: &str) -> Result<(TenantId, &str), TerminalError> {
    let (tenant, id) = key
        .split_once('~')
        .ok_or_else(|| TerminalError::new(format!("instance key {key:?} names no tenant")))?;
    let tenant = TenantId::parse(tenant).map_err(|e| TerminalError::new(e.to_string()))?;
    Ok((tenant, id))
}

/// What the shared `signal` handler takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub name: String,
    #[serde(default)]
    pub payload: Value,
}

impl Signal {
    fn parse(signal: Json<Value>) -> Result<Signal, TerminalError> {
        serde_json::from_value(signal.into_inner())
            .map_err(|e| TerminalError::new_with_code(400, format!("signal: {e}")))
    }

    /// Resolves the durable promise the signal names, unless it was resolved before: the
    /// first value wins, a second signal changes nothing.
    async fn resolve(self, ctx: &SharedWorkflowContext<'_>) -> Result<(), HandlerError> {
        if ctx.peek_promise::<Json<Value>>(&self.name).await?.is_none() {
            ctx.resolve_promise(&self.name, Json(self.payload));
        }
        Ok(())
    }
}

/// What a flow published (`state`), for its shared `state` handler.
async fn published(ctx: &SharedWorkflowContext<'_>) -> Result<Json<Value>, HandlerError> {
    Ok(ctx
        .get::<Json<Value>>("state")
        .await?
        .unwrap_or_else(|| Json(Value::Object(Default::default()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_tenant_and_a_key_without_one_is_refused() {
        let (tenant, id) = tenant_of("acme~SO-1").unwrap();
        assert_eq!((tenant.as_str(), id), ("acme", "SO-1"));
        assert!(tenant_of("SO-1").is_err());
        assert!(tenant_of("Not A Tenant~x").is_err());
    }
}
