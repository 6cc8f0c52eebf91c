//! Idempotency keys: the same key answers the same message and never sends twice.

use serde_json::json;
use switchyard_spi::ErrorCode;

use super::receiver::Receiver;
use super::{config, secret};
use crate::Subject;

pub async fn the_same_key_answers_the_same_message_without_a_second_delivery(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    let acme = s
        .tenant_with_config("acme", config(&receiver.url(), &secret(1), json!({})))
        .await;
    let params = json!({"endpoint": "hook", "event_type": "orders.order.created",
                        "payload": {"order_id": "SO-9"}, "idempotency_key": "so-9"});
    let first = acme.ok("trigger", params.clone()).await;
    let second = acme.ok("trigger", params.clone()).await;
    assert_eq!(first["message_id"], second["message_id"], "{name}");
    assert_eq!(first["replayed"], false, "{name}");
    assert_eq!(second["replayed"], true, "{name}");
    assert_eq!(second["status"], "delivered", "{name}");
    assert_eq!(receiver.requests().len(), 1, "{name}");

    // Without a key, every trigger is a new message.
    let mut unkeyed = params.clone();
    unkeyed.as_object_mut().unwrap().remove("idempotency_key");
    let a = acme.ok("trigger", unkeyed.clone()).await;
    let b = acme.ok("trigger", unkeyed).await;
    assert_ne!(a["message_id"], b["message_id"], "{name}");
    assert_eq!(receiver.requests().len(), 3, "{name}");
}

pub async fn the_same_key_for_another_delivery_is_refused_unsent(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    let acme = s
        .tenant_with_config("acme", config(&receiver.url(), &secret(1), json!({})))
        .await;
    acme.ok(
        "trigger",
        json!({"endpoint": "hook", "event_type": "a", "payload": 1, "idempotency_key": "k"}),
    )
    .await;
    for other in [
        json!({"endpoint": "hook", "event_type": "a", "payload": 2, "idempotency_key": "k"}),
        json!({"endpoint": "hook", "event_type": "b", "payload": 1, "idempotency_key": "k"}),
    ] {
        let err = acme.err("trigger", other).await;
        assert_eq!(err.code, ErrorCode::IdempotencyKeyReused, "{name}");
    }
    assert_eq!(receiver.requests().len(), 1, "{name}");
}

pub async fn concurrent_triggers_with_one_key_deliver_once(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    let acme = s
        .tenant_with_config("acme", config(&receiver.url(), &secret(1), json!({})))
        .await;
    let params =
        json!({"endpoint": "hook", "event_type": "a", "payload": 1, "idempotency_key": "once"});
    let (a, b, c, d) = tokio::join!(
        acme.call("trigger", params.clone()),
        acme.call("trigger", params.clone()),
        acme.call("trigger", params.clone()),
        acme.call("trigger", params.clone()),
    );
    let mut ids = Vec::new();
    for answer in [a, b, c, d] {
        match answer {
            Ok(delivery) => ids.push(delivery["message_id"].clone()),
            Err(e) => assert_eq!(e.code, ErrorCode::IdempotencyInFlight, "{name}: {e:?}"),
        }
    }
    ids.dedup();
    assert!(ids.len() <= 1, "{name}: {ids:?}");
    assert_eq!(receiver.requests().len(), 1, "{name}");
}
