//! `trigger`: one signed delivery to a named endpoint.

use serde_json::json;
use switchyard_spi::ErrorCode;

use super::receiver::Receiver;
use super::{config, secret, trigger};
use crate::Subject;

pub async fn a_trigger_is_delivered_once_signed_per_standard_webhooks(s: &Subject) {
    let name = s.name();
    let secret = secret(1);
    let receiver = Receiver::start(&secret).await;
    let acme = s
        .tenant_with_config("acme", config(&receiver.url(), &secret, json!({})))
        .await;
    let payload =
        json!({"order_id": "SO-1042", "total": "129.90", "lines": [{"sku": "A-1", "qty": 2}]});
    let answer = trigger(&acme, payload.clone()).await;
    assert_eq!(answer["status"], "delivered", "{name}: {answer}");
    assert_eq!(answer["attempts"], 1, "{name}");
    assert_eq!(answer["last_status"], 200, "{name}");
    assert_eq!(answer["replayed"], false, "{name}");
    assert!(answer.get("last_error").is_none(), "{name}: {answer}");

    let seen = receiver.requests();
    assert_eq!(seen.len(), 1, "{name}");
    assert!(seen[0].verified, "{name}: the signature must verify");
    assert_eq!(seen[0].webhook_id, answer["message_id"], "{name}");
    assert_eq!(seen[0].body["type"], "orders.order.created", "{name}");
    assert_eq!(seen[0].body["data"], payload, "{name}");
    assert!(seen[0].body["timestamp"].is_string(), "{name}");
    // A delivered message is no dead letter.
    assert!(super::dead_letter_ids(&acme).await.is_empty(), "{name}");
}

pub async fn a_signature_under_another_secret_does_not_verify(s: &Subject) {
    // The receiver's check is real: a provider signing with the wrong secret is refused (401,
    // not retried) and the message is dead-lettered.
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    let acme = s
        .tenant_with_config("acme", config(&receiver.url(), &secret(2), json!({})))
        .await;
    let answer = trigger(&acme, json!({"n": 1})).await;
    assert_eq!(answer["status"], "dead_lettered", "{name}: {answer}");
    assert_eq!(answer["last_status"], 401, "{name}");
    assert_eq!(answer["attempts"], 1, "{name}");
    assert!(!receiver.requests()[0].verified, "{name}");
}

pub async fn callers_name_an_endpoint_never_a_url(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    let acme = s
        .tenant_with_config("acme", config(&receiver.url(), &secret(1), json!({})))
        .await;
    let unknown = acme
        .err(
            "trigger",
            json!({"endpoint": "billing", "event_type": "x", "payload": {}}),
        )
        .await;
    assert_eq!(unknown.code, ErrorCode::ParamsUnprocessable, "{name}");
    assert_eq!(unknown.errors[0].pointer, "/endpoint", "{name}");
    let url = acme
        .err(
            "trigger",
            json!({"endpoint": receiver.url(), "event_type": "x", "payload": {}}),
        )
        .await;
    assert_eq!(url.code, ErrorCode::ParamsInvalid, "{name}");
    assert!(receiver.requests().is_empty(), "{name}");
}

pub async fn an_unconfigured_tenant_has_no_endpoints(s: &Subject) {
    let acme = s.tenant("acme").await;
    let err = acme
        .err(
            "trigger",
            json!({"endpoint": "hook", "event_type": "x", "payload": {}}),
        )
        .await;
    // An endpoint the tenant's config lacks breaks no schema: 422 (ADR 23).
    assert_eq!(err.code, ErrorCode::ParamsUnprocessable, "{}", s.name());
}

pub async fn an_oversized_payload_is_refused_unsent(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    let acme = s
        .tenant_with_config("acme", config(&receiver.url(), &secret(1), json!({})))
        .await;
    let err = acme
        .err(
            "trigger",
            json!({"endpoint": "hook", "event_type": "x", "payload": "x".repeat(1024 * 1024 + 1)}),
        )
        .await;
    assert_eq!(err.code, ErrorCode::PayloadTooLarge, "{name}");
    assert_eq!(err.errors[0].pointer, "/payload", "{name}");
    assert!(receiver.requests().is_empty(), "{name}");
}
