//! Retries: 5xx and 429 are retried with backoff (and `Retry-After`), other statuses are not,
//! and a call never outlasts its budget.

use std::time::{Duration, Instant};

use serde_json::json;

use super::receiver::{Receiver, Reply};
use super::{config, secret, trigger};
use crate::Subject;

pub async fn server_errors_are_retried_with_the_same_id_until_delivered(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    receiver.script([Reply::status(503), Reply::status(500)]);
    let acme = s
        .tenant_with_config("acme", config(&receiver.url(), &secret(1), json!({})))
        .await;
    let answer = trigger(&acme, json!({"n": 1})).await;
    assert_eq!(answer["status"], "delivered", "{name}: {answer}");
    assert_eq!(answer["attempts"], 3, "{name}");
    let seen = receiver.requests();
    assert_eq!(seen.len(), 3, "{name}");
    for request in &seen {
        assert!(request.verified, "{name}: every attempt is signed anew");
        assert_eq!(request.webhook_id, answer["message_id"], "{name}");
    }
    // Backoff: 10 ms, then 20 ms, each plus up to as much jitter.
    assert!(
        seen[1].at - seen[0].at >= Duration::from_millis(10),
        "{name}"
    );
    assert!(
        seen[2].at - seen[1].at >= Duration::from_millis(20),
        "{name}"
    );
}

pub async fn retry_after_is_honoured_on_429_and_503(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    receiver.script([Reply::retry_after(429, "1"), Reply::retry_after(503, "1")]);
    let acme = s
        .tenant_with_config("acme", config(&receiver.url(), &secret(1), json!({})))
        .await;
    let answer = trigger(&acme, json!({"n": 1})).await;
    assert_eq!(answer["status"], "delivered", "{name}: {answer}");
    assert_eq!(answer["attempts"], 3, "{name}");
    let seen = receiver.requests();
    // The backoff alone would wait 10 to 40 ms; the receiver asked for a second each time.
    assert!(
        seen[1].at - seen[0].at >= Duration::from_millis(950),
        "{name}"
    );
    assert!(
        seen[2].at - seen[1].at >= Duration::from_millis(950),
        "{name}"
    );
}

pub async fn a_refusal_other_than_429_is_dead_lettered_without_retry(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    receiver.always(Reply::status(422));
    let acme = s
        .tenant_with_config("acme", config(&receiver.url(), &secret(1), json!({})))
        .await;
    let answer = trigger(&acme, json!({"n": 1})).await;
    assert_eq!(answer["status"], "dead_lettered", "{name}: {answer}");
    assert_eq!(answer["attempts"], 1, "{name}");
    assert_eq!(answer["last_status"], 422, "{name}");
    assert_eq!(receiver.requests().len(), 1, "{name}");
}

pub async fn attempts_stop_at_max_attempts(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    receiver.always(Reply::status(500));
    let acme = s
        .tenant_with_config(
            "acme",
            config(&receiver.url(), &secret(1), json!({"max_attempts": 4})),
        )
        .await;
    let answer = trigger(&acme, json!({"n": 1})).await;
    assert_eq!(answer["status"], "dead_lettered", "{name}: {answer}");
    assert_eq!(answer["attempts"], 4, "{name}");
    assert_eq!(answer["last_status"], 500, "{name}");
    assert_eq!(receiver.requests().len(), 4, "{name}");
}

pub async fn a_call_ends_within_max_total_ms_whatever_the_receiver_asks(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    // A minute's Retry-After does not fit a one-second budget: no second attempt.
    receiver.always(Reply::retry_after(503, "60"));
    let acme = s
        .tenant_with_config(
            "acme",
            config(&receiver.url(), &secret(1), json!({"max_total_ms": 1000})),
        )
        .await;
    let started = Instant::now();
    let answer = trigger(&acme, json!({"n": 1})).await;
    assert!(started.elapsed() < Duration::from_secs(2), "{name}");
    assert_eq!(answer["status"], "dead_lettered", "{name}: {answer}");
    assert_eq!(answer["attempts"], 1, "{name}");
    assert_eq!(answer["last_status"], 503, "{name}");
}
