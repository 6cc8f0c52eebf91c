#![doc = include_str!("docs.md")]

mod config;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use switchyard_policy::{DECISION_RULE, PolicyEngine};
use switchyard_spi::{
    ErrorCode, Provider, ProviderDescriptor, ProviderError, ProviderFactory, StartContext, TenantId,
};

use crate::contract::{Decision, EvaluateParams, EvaluateResult};
use crate::engine::{Engine, Instance, describe};

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
            descriptor: describe("opa", &["evaluate"])
                .summary(format!(
                    "Evaluates {DECISION_RULE} of the gateway's running policy bundle."
                ))
                .capabilities(&["rego"])
                .build(),
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
        Ok(Arc::new(Instance(OpaEvaluator {
            tenant: ctx.tenant,
            source: self.source.clone(),
        })))
    }
}

struct OpaEvaluator {
    tenant: TenantId,
    source: PolicySource,
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
}

#[async_trait]
impl Engine for OpaEvaluator {
    const NAME: &'static str = "opa";
    const DEPENDENCY: &'static str = "policy_bundle";

    async fn evaluate(&self, params: EvaluateParams) -> Result<EvaluateResult, ProviderError> {
        let engine = self.engine()?;
        let input = self.pin_tenant(params.input);
        // Like the gateway, keep the policy's error to the logs: it can quote bundle internals.
        let decision = engine.decide(&input).map_err(|e| {
            tracing::warn!(tenant = %self.tenant, error = %e, "policy evaluation failed");
            ProviderError::internal("the policy could not be evaluated")
        })?;
        Ok(EvaluateResult {
            decision: Decision {
                allow: decision.allow,
                reasons: decision.reasons,
            },
            revision: engine.bundle().revision().to_string(),
        })
    }

    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        let engine = self.engine()?;
        Ok(Some(format!(
            "bundle revision {}",
            engine.bundle().revision()
        )))
    }
}
