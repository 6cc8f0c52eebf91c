//! Dead letters: a receiver that is down produces them, they are listed page by page, survive
//! a restart, and `redeliver` sends them once the receiver is up.

use serde_json::json;
use switchyard_spi::ErrorCode;

use super::Fixture;
use super::receiver::Port;
use super::{config, dead_letter_ids, secret, trigger};
use crate::Subject;

pub async fn a_down_receiver_dead_letters_and_redeliver_succeeds_once_it_is_up(s: &Subject) {
    let name = s.name();
    let port = Port::closed().await;
    let acme = s
        .tenant_with_config("acme", config(&port.url(), &secret(1), json!({})))
        .await;
    let payload = json!({"order_id": "SO-7"});
    let answer = acme
        .ok(
            "trigger",
            json!({"endpoint": "hook", "event_type": "orders.order.created",
                   "payload": payload, "idempotency_key": "so-7-created"}),
        )
        .await;
    assert_eq!(answer["status"], "dead_lettered", "{name}: {answer}");
    assert_eq!(answer["attempts"], 3, "{name}");
    assert!(
        answer.get("last_status").is_none(),
        "{name}: no answer, no status"
    );
    assert!(
        answer["last_error"].as_str().unwrap().contains("connect"),
        "{name}: {answer}"
    );
    let id = answer["message_id"].as_str().unwrap().to_owned();

    let page = acme.ok("dead_letters", json!({"limit": 10})).await;
    let dead = &page["dead_letters"][0];
    assert_eq!(dead["message_id"], id.as_str(), "{name}");
    assert_eq!(dead["endpoint"], "hook", "{name}");
    assert_eq!(dead["event_type"], "orders.order.created", "{name}");
    assert_eq!(dead["payload"], payload, "{name}");
    assert_eq!(dead["idempotency_key"], "so-7-created", "{name}");
    assert_eq!(dead["attempts"], 3, "{name}");
    assert_eq!(page["next_cursor"], json!(null), "{name}");

    // Still down: redeliver spends a fresh budget and the message stays dead.
    let again = acme.ok("redeliver", json!({"message_id": id})).await;
    assert_eq!(again["status"], "dead_lettered", "{name}: {again}");
    assert_eq!(again["attempts"], 6, "{name}");

    let receiver = port.open(&secret(1)).await;
    let redelivered = acme.ok("redeliver", json!({"message_id": id})).await;
    assert_eq!(redelivered["status"], "delivered", "{name}: {redelivered}");
    assert_eq!(redelivered["message_id"], id.as_str(), "{name}");
    assert_eq!(redelivered["attempts"], 7, "{name}");
    let seen = receiver.requests();
    assert_eq!(seen.len(), 1, "{name}");
    assert!(seen[0].verified, "{name}");
    assert_eq!(
        seen[0].webhook_id, id,
        "{name}: the same webhook-id as the first try"
    );
    assert_eq!(seen[0].body["data"], payload, "{name}");
    assert!(dead_letter_ids(&acme).await.is_empty(), "{name}");

    // Delivered is delivered: no second redelivery, and the key replays the outcome.
    let twice = acme.err("redeliver", json!({"message_id": id})).await;
    assert_eq!(twice.code, ErrorCode::Conflict, "{name}");
    let replay = acme
        .ok(
            "trigger",
            json!({"endpoint": "hook", "event_type": "orders.order.created",
                   "payload": payload, "idempotency_key": "so-7-created"}),
        )
        .await;
    assert_eq!(replay["status"], "delivered", "{name}: {replay}");
    assert_eq!(replay["replayed"], true, "{name}");
    assert_eq!(receiver.requests().len(), 1, "{name}");
}

pub async fn dead_letters_are_listed_oldest_first_a_page_at_a_time(s: &Subject) {
    let name = s.name();
    let port = Port::closed().await;
    let acme = s
        .tenant_with_config(
            "acme",
            config(&port.url(), &secret(1), json!({"max_attempts": 1})),
        )
        .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(trigger(&acme, json!({"n": n})).await["message_id"].clone());
    }
    let first = acme.ok("dead_letters", json!({"limit": 2})).await;
    let page: Vec<_> = first["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message_id"].clone())
        .collect();
    assert_eq!(page, ids[..2], "{name}");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = acme
        .ok("dead_letters", json!({"limit": 2, "cursor": cursor}))
        .await;
    assert_eq!(second["dead_letters"][0]["message_id"], ids[2], "{name}");
    assert_eq!(
        second["dead_letters"].as_array().unwrap().len(),
        1,
        "{name}"
    );
    assert_eq!(second["next_cursor"], json!(null), "{name}");

    let bad = acme
        .err("dead_letters", json!({"limit": 2, "cursor": "page-two"}))
        .await;
    assert_eq!(bad.code, ErrorCode::ParamsUnprocessable, "{name}");
    assert_eq!(bad.errors[0].pointer, "/cursor", "{name}");
}

pub async fn dead_letters_survive_a_restart(s: &Subject) {
    let name = s.name();
    let port = Port::closed().await;
    let tenant_config = config(&port.url(), &secret(1), json!({"max_attempts": 1}));
    let before = s.tenant_with_config("acme", tenant_config.clone()).await;
    let id = trigger(&before, json!({"n": 1})).await["message_id"].clone();
    // A new factory over the same storage: the process restarted.
    let after = s.reopened().tenant_with_config("acme", tenant_config).await;
    assert_eq!(dead_letter_ids(&after).await, [id], "{name}");
    // Only a fixture knows where a built-in engine keeps its files.
    if let Some(storage) = &s.fixture::<Fixture>().storage {
        assert!(
            storage.join(format!("{}.db", after.tenant)).is_file(),
            "{name}: one database file per tenant"
        );
    }
}

pub async fn redeliver_of_an_unknown_message_is_not_found(s: &Subject) {
    let acme = s.tenant("acme").await;
    let err = acme
        .err(
            "redeliver",
            json!({"message_id": "msg_0190c1a3e0d47a3b9b2c5d6e7f801234"}),
        )
        .await;
    assert_eq!(err.code, ErrorCode::ResourceNotFound, "{}", s.name());
}

pub async fn redeliver_uses_the_endpoints_current_url(s: &Subject) {
    // Fixing a wrong URL and redelivering is how an operator clears dead letters.
    let name = s.name();
    let port = Port::closed().await;
    let wrong = s
        .tenant_with_config(
            "acme",
            config(&port.url(), &secret(1), json!({"max_attempts": 1})),
        )
        .await;
    let id = trigger(&wrong, json!({"n": 1})).await["message_id"].clone();
    let receiver = super::receiver::Receiver::start(&secret(1)).await;
    let fixed = s
        .tenant_with_config("acme", config(&receiver.url(), &secret(1), json!({})))
        .await;
    let answer = fixed.ok("redeliver", json!({"message_id": id})).await;
    assert_eq!(answer["status"], "delivered", "{name}: {answer}");
    assert_eq!(receiver.requests().len(), 1, "{name}");

    // An endpoint removed from the config cannot be redelivered to; the letter stays.
    let id = trigger(&wrong, json!({"n": 2})).await["message_id"].clone();
    let removed = s
        .tenant_with_config("acme", json!({"allowed_networks": ["127.0.0.0/8"]}))
        .await;
    let err = removed.err("redeliver", json!({"message_id": id})).await;
    assert_eq!(err.code, ErrorCode::Conflict, "{name}");
    assert_eq!(dead_letter_ids(&removed).await, [id], "{name}");
}
