//! `evaluate`: the running bundle's decision, with the revision that made it. The subject of a
//! `fixture:policy` check decides with the product bundle (`/policies`) at revision
//! `conformance`.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use switchyard_spi::{ErrorCode, HealthStatus};

use super::deciding;
use crate::Subject;

/// A clerk invoking `db/sqlite/<action>`; the tenant is left to the engine.
pub fn clerk_invoking(action: &str) -> Value {
    json!({
        "subject": "oidc:ann", "roles": ["clerk"], "scopes": [],
        "operation": "invoke", "domain": "db", "provider": "sqlite", "action": action,
        "resource": {}
    })
}

pub async fn an_allowed_request_is_allowed_with_the_bundle_revision(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let result = acme
        .ok("evaluate", json!({"input": clerk_invoking("query")}))
        .await;
    assert_eq!(
        result,
        json!({"decision": {"allow": true, "reasons": []}, "revision": "conformance"}),
        "{engine}"
    );
}

pub async fn a_denied_request_is_denied_with_its_reasons(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
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

pub async fn a_reloaded_bundle_answers_from_the_next_call(s: &Subject) {
    let engine = s.name();
    let running = Arc::new(Mutex::new(Some("r1".to_owned())));
    let h = s.with_factory(deciding(s, running.clone()));
    let acme = h.tenant("acme").await;
    let ask = json!({"input": clerk_invoking("query")});
    assert_eq!(
        acme.ok("evaluate", ask.clone()).await["revision"],
        "r1",
        "{engine}"
    );
    *running.lock().unwrap_or_else(PoisonError::into_inner) = Some("r2".to_owned());
    assert_eq!(acme.ok("evaluate", ask).await["revision"], "r2", "{engine}");
    *running.lock().unwrap_or_else(PoisonError::into_inner) = Some("r1".to_owned());
}

pub async fn no_policy_answers_provider_not_configured(s: &Subject) {
    let engine = s.name();
    let h = s.with_factory(deciding(s, Arc::new(Mutex::new(None))));
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

pub async fn input_must_be_an_object(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    let err = acme.err("evaluate", json!({"input": ["admin"]})).await;
    assert_eq!(err.code, ErrorCode::ParamsInvalid, "{engine}");
}
