#![doc = include_str!("docs.md")]

mod config;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_contracts::domains;
use switchyard_policy::{DECISION_RULE, PolicyEngine};
use switchyard_spi::{
    CallContext, DependencyHealth, ErrorCode, Health, HealthStatus, Invocation, Provider,
    ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId, parse_params,
};

/// The running policy engine, asked on every call: the gateway owns the bundle and swaps it on
/// reload, so holding an engine here would keep answering with a retired revision. `None`
/// when the gateway runs without a policy.
pub type PolicySource = Arc<dyn Fn() -> Option<Arc<PolicyEngine>> + Send + Sync>;

/// What a tenant is told when the gateway runs without a policy bundle.
const NO_POLICY: &str = "no policy bundle is configured on this gateway";

pub struct OpaFactory {
    descriptor: ProviderDescriptor,
    source: PolicySource,
}

impl OpaFactory {
    pub fn new(source: PolicySource) -> Self {
        OpaFactory {
            descriptor: ProviderDescriptor {
                domain: "auth".into(),
                name: "opa".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                summary: format!(
                    "Evaluates {DECISION_RULE} of the gateway's running policy bundle."
                ),
                capabilities: vec!["rego".into()],
                config_schema: config::schema(),
                actions: domains::actions_named("auth", &["evaluate"]),
            },
            source,
        }
    }
}

#[async_trait]
impl ProviderFactory for OpaFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        config::check(&ctx.config)?;
        Ok(Arc::new(OpaEvaluator {
            tenant: ctx.tenant,
            source: self.source.clone(),
        }))
    }
}

struct OpaEvaluator {
    tenant: TenantId,
    source: PolicySource,
}

#[derive(Deserialize)]
struct EvaluateParams {
    input: Map<String, Value>,
}

impl OpaEvaluator {
    fn engine(&self) -> Result<Arc<PolicyEngine>, ProviderError> {
        // A state of the deployment, not an outage: not retryable (a gateway gains a policy only
        // by being restarted with one), and a 4xx rather than a server error.
        (self.source)()
            .ok_or_else(|| ProviderError::new(ErrorCode::ProviderNotConfigured, NO_POLICY))
    }

    /// Asks in the calling tenant's name whatever the input says: the policy reads the tenant's
    /// own overrides by `input.tenant`, and judges cross-tenant calls by comparing it with
    /// `target_tenant`, so both must be facts, not claims. An explicit `target_tenant` is kept:
    /// "may I act on tenant X" is a fair question, and the policy answers it with a denial.
    fn pin_tenant(&self, mut input: Map<String, Value>) -> Value {
        let tenant = Value::from(self.tenant.as_str());
        input
            .entry("target_tenant")
            .or_insert_with(|| tenant.clone());
        input.insert("tenant".into(), tenant);
        Value::Object(input)
    }

    fn evaluate(&self, params: EvaluateParams) -> Result<Value, ProviderError> {
        let engine = self.engine()?;
        let input = self.pin_tenant(params.input);
        // Like the gateway, keep the policy's error to the logs: it can quote bundle internals.
        let decision = engine.decide(&input).map_err(|e| {
            tracing::warn!(tenant = %self.tenant, error = %e, "policy evaluation failed");
            ProviderError::internal("the policy could not be evaluated")
        })?;
        Ok(json!({
            "decision": {"allow": decision.allow, "reasons": decision.reasons},
            "revision": engine.bundle().revision(),
        }))
    }
}

#[async_trait]
impl Provider for OpaEvaluator {
    async fn invoke(&self, _ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        match call.action.as_str() {
            "evaluate" => self.evaluate(parse_params(call.params)?),
            other => Err(ProviderError::new(
                ErrorCode::ActionNotFound,
                format!("auth/opa has no action {other}"),
            )),
        }
    }

    async fn health(&self) -> Health {
        let (status, detail) = match (self.source)() {
            Some(engine) => (
                HealthStatus::Up,
                format!("bundle revision {}", engine.bundle().revision()),
            ),
            None => (HealthStatus::Down, NO_POLICY.to_owned()),
        };
        Health::from_dependencies(vec![DependencyHealth {
            name: "policy_bundle".into(),
            status,
            detail: Some(detail),
        }])
    }
}
