//! Tenant B can neither see nor redeliver tenant A's messages, nor collide with its keys.

use serde_json::json;
use switchyard_spi::ErrorCode;

use super::receiver::{Port, Receiver};
use super::{config, dead_letter_ids, secret};
use crate::Subject;

pub async fn tenant_b_cannot_see_or_redeliver_tenant_as_dead_letters(s: &Subject) {
    let name = s.name();
    let down = Port::closed().await;
    let acme = s
        .tenant_with_config(
            "acme",
            config(&down.url(), &secret(1), json!({"max_attempts": 1})),
        )
        .await;
    // Globex even has an endpoint of the same name, up: a redelivery would reach it.
    let receiver = Receiver::start(&secret(1)).await;
    let globex = s
        .tenant_with_config("globex", config(&receiver.url(), &secret(1), json!({})))
        .await;
    let dead = super::trigger(&acme, json!({"acme": "only"})).await;
    assert_eq!(dead["status"], "dead_lettered", "{name}: {dead}");
    let id = dead["message_id"].clone();

    assert!(dead_letter_ids(&globex).await.is_empty(), "{name}");
    let err = globex.err("redeliver", json!({"message_id": id})).await;
    assert_eq!(err.code, ErrorCode::ResourceNotFound, "{name}");
    assert!(
        receiver.requests().is_empty(),
        "{name}: nothing of acme's was sent"
    );
    assert_eq!(dead_letter_ids(&acme).await, [id], "{name}");
}

pub async fn idempotency_keys_are_per_tenant(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    let tenant_config = config(&receiver.url(), &secret(1), json!({}));
    let acme = s.tenant_with_config("acme", tenant_config.clone()).await;
    let globex = s.tenant_with_config("globex", tenant_config).await;
    let params =
        json!({"endpoint": "hook", "event_type": "a", "payload": 1, "idempotency_key": "shared"});
    let a = acme.ok("trigger", params.clone()).await;
    let b = globex.ok("trigger", params).await;
    assert_ne!(a["message_id"], b["message_id"], "{name}");
    assert_eq!(b["replayed"], false, "{name}");
    assert_eq!(receiver.requests().len(), 2, "{name}");
}
