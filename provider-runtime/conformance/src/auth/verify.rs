//! `verify`: a good token maps onto an identity; every bad one is a `valid: false` answer with
//! the reason, never the token.

use serde_json::{Value, json};
use switchyard_spi::ErrorCode;
use switchyard_spi::testkit::TenantInstance;

use super::idp::{Idp, now, tampered};
use super::trusting_idp;
use crate::Subject;

const ISSUER: &str = "https://idp.acme.test";

/// Verifies a token that must be refused, and returns the refusal's code.
async fn refusal(instance: &TenantInstance, token: &str) -> Value {
    let result = instance.ok("verify", json!({"token": token})).await;
    assert_eq!(result["valid"], false, "{result}");
    assert_eq!(result["identity"], Value::Null, "{result}");
    assert!(
        !result.to_string().contains(token),
        "the answer echoes the token"
    );
    result["error"]["code"].clone()
}

pub async fn a_valid_token_maps_onto_its_identity(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    let acme = trusting_idp(s, "acme", &idp).await;
    let token = idp.token(
        &s.tenant_name("acme"),
        json!({"scope": "read invoke:db", "roles": ["clerk", "auditor"]}),
    );
    let result = acme.ok("verify", json!({"token": token})).await;
    assert_eq!(
        result,
        json!({
            "valid": true,
            "identity": {
                "tenant": s.tenant_name("acme"), "subject": "oidc:ann",
                "scopes": ["read", "invoke:db"], "roles": ["clerk", "auditor"],
            },
            "error": null,
        }),
        "{}",
        s.name()
    );
}

pub async fn an_expired_token_is_token_expired(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    let acme = trusting_idp(s, "acme", &idp).await;
    let an_hour_ago = now() - 3600;
    let token = idp.token(
        &s.tenant_name("acme"),
        json!({"iat": an_hour_ago - 600, "exp": an_hour_ago}),
    );
    assert_eq!(
        refusal(&acme, &token).await,
        "token_expired",
        "{}",
        s.name()
    );
}

pub async fn a_tampered_token_is_token_invalid(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    let acme = trusting_idp(s, "acme", &idp).await;
    let promoted = tampered(
        &idp.token(&s.tenant_name("acme"), json!({})),
        json!({"roles": ["admin"]}),
    );
    assert_eq!(
        refusal(&acme, &promoted).await,
        "token_invalid",
        "{}",
        s.name()
    );
}

pub async fn a_token_for_another_audience_or_issuer_is_token_invalid(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    let acme = trusting_idp(s, "acme", &idp).await;
    let for_crm = idp.token(&s.tenant_name("acme"), json!({"aud": "crm"}));
    assert_eq!(
        refusal(&acme, &for_crm).await,
        "token_invalid",
        "{}",
        s.name()
    );
    let other_issuer = idp.token(
        &s.tenant_name("acme"),
        json!({"iss": "https://idp.evil.test"}),
    );
    assert_eq!(
        refusal(&acme, &other_issuer).await,
        "token_invalid",
        "{}",
        s.name()
    );
}

pub async fn a_token_signed_by_a_key_the_idp_does_not_publish_is_token_invalid(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    // Same issuer, same kid, another private key: only the signature tells them apart.
    let impostor = Idp::start(ISSUER).await;
    let acme = trusting_idp(s, "acme", &idp).await;
    let forged = impostor.token(&s.tenant_name("acme"), json!({}));
    assert_eq!(
        refusal(&acme, &forged).await,
        "token_invalid",
        "{}",
        s.name()
    );
}

pub async fn garbage_is_token_invalid(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    let acme = trusting_idp(s, "acme", &idp).await;
    assert_eq!(
        refusal(&acme, "not-a-jwt").await,
        "token_invalid",
        "{}",
        s.name()
    );
}

pub async fn an_empty_token_is_params_invalid(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    let acme = trusting_idp(s, "acme", &idp).await;
    let err = acme.err("verify", json!({"token": ""})).await;
    assert_eq!(err.code, ErrorCode::ParamsInvalid, "{}", s.name());
}

pub async fn an_unconfigured_engine_answers_provider_not_configured(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    let token = idp.token(&s.tenant_name("acme"), json!({}));
    // Starting with an empty config succeeds: the catalog lists the engine for everyone.
    let acme = s.tenant("acme").await;
    for action in ["verify", "introspect"] {
        let err = acme.err(action, json!({"token": token})).await;
        assert_eq!(err.code, ErrorCode::ProviderNotConfigured, "{}", s.name());
        assert!(
            !err.retryable,
            "{}: configuring is needed, not retrying",
            s.name()
        );
        assert!(
            err.detail.contains("issuer, audience and jwks_url"),
            "{}: {}",
            s.name(),
            err.detail
        );
    }
    assert_eq!(
        acme.provider.health().await.status,
        switchyard_spi::HealthStatus::Down,
        "{}",
        s.name()
    );
}

pub async fn unreachable_keys_are_provider_unavailable_and_retryable(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    let token = idp.token(&s.tenant_name("acme"), json!({}));
    let acme = s
        .tenant_with_config(
            "acme",
            json!({"issuer": ISSUER, "audience": idp.audience, "jwks_url": "http://127.0.0.1:1/jwks"}),
        )
        .await;
    let err = acme.err("verify", json!({"token": token})).await;
    assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{}", s.name());
    assert!(err.retryable, "{}", s.name());
    assert!(!err.detail.contains(&token), "{}", s.name());
}
