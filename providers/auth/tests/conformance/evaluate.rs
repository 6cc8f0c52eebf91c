//! `evaluate`: the running bundle's decision, with the revision that made it.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use switchyard_spi::{ErrorCode, HealthStatus};

use crate::{policy, policy_engines, product_policy};

/// A clerk invoking `db/sqlite/<action>`; the tenant is left to the engine.
pub fn clerk_invoking(action: &str) -> Value {
    json!({
        "subject": "oidc:ann", "roles": ["clerk"], "scopes": [],
        "operation": "invoke", "domain": "db", "provider": "sqlite", "action": action,
        "resource": {}
    })
}

#[tokio::test]
async fn an_allowed_request_is_allowed_with_the_bundle_revision() {
    for (engine, h) in policy_engines(product_policy()) {
        let acme = h.tenant("acme").await;
        let result = acme
            .ok("evaluate", json!({"input": clerk_invoking("query")}))
            .await;
        assert_eq!(
            result,
            json!({"decision": {"allow": true, "reasons": []}, "revision": "conformance"}),
            "{engine}"
        );
    }
}

#[tokio::test]
async fn a_denied_request_is_denied_with_its_reasons() {
    for (engine, h) in policy_engines(product_policy()) {
        let acme = h.tenant("acme").await;
        let result = acme
            .ok("evaluate", json!({"input": clerk_invoking("execute")}))
            .await;
        assert_eq!(result["decision"]["allow"], false, "{engine}");
        assert_eq!(
            result["decision"]["reasons"],
            json!(["no role grants invoke on db/sqlite/execute"]),
            "{engine}"
        );
    }
}

#[tokio::test]
async fn a_reloaded_bundle_answers_from_the_next_call() {
    let running = Arc::new(Mutex::new(policy("r1")));
    let source = {
        let running = running.clone();
        Arc::new(move || {
            Some(
                running
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            )
        })
    };
    for (engine, h) in policy_engines(source) {
        let acme = h.tenant("acme").await;
        let ask = json!({"input": clerk_invoking("query")});
        assert_eq!(
            acme.ok("evaluate", ask.clone()).await["revision"],
            "r1",
            "{engine}"
        );
        *running.lock().unwrap_or_else(PoisonError::into_inner) = policy("r2");
        assert_eq!(acme.ok("evaluate", ask).await["revision"], "r2", "{engine}");
        *running.lock().unwrap_or_else(PoisonError::into_inner) = policy("r1");
    }
}

#[tokio::test]
async fn no_policy_answers_provider_not_configured() {
    for (engine, h) in policy_engines(Arc::new(|| None)) {
        // Starting succeeds: the catalog lists the engine for every tenant.
        let acme = h.tenant("acme").await;
        let err = acme
            .err("evaluate", json!({"input": clerk_invoking("query")}))
            .await;
        assert_eq!(err.code, ErrorCode::ProviderNotConfigured, "{engine}");
        assert!(!err.retryable, "{engine}");
        assert_eq!(
            acme.provider.health().await.status,
            HealthStatus::Down,
            "{engine}"
        );
    }
}

#[tokio::test]
async fn input_must_be_an_object() {
    for (engine, h) in policy_engines(product_policy()) {
        let acme = h.tenant("acme").await;
        let err = acme.err("evaluate", json!({"input": ["admin"]})).await;
        assert_eq!(err.code, ErrorCode::ParamsInvalid, "{engine}");
    }
}
