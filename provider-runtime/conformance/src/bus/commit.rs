//! `commit`: a group's position, per topic, never past the end.

use serde_json::json;
use switchyard_spi::ErrorCode;

use super::{payloads, publish, record_offsets};
use crate::Subject;

pub async fn commit_then_poll_returns_nothing_new(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!(1), json!(2), json!(3)]).await;
    let first = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;

    let committed = acme
        .ok(
            "commit",
            json!({"topic": "orders", "group": "billing", "offset": first["next_offset"]}),
        )
        .await;
    let second = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;

    assert_eq!(
        committed,
        json!({"topic": "orders", "group": "billing", "committed": 3}),
        "{}",
        s.name()
    );
    assert_eq!(
        second,
        json!({"records": [], "next_offset": 3}),
        "{}",
        s.name()
    );

    publish(&acme, "orders", &[json!(4)]).await;
    let third = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;
    assert_eq!(payloads(&third), [json!(4)], "{}", s.name());
}

pub async fn committing_past_the_end_is_a_conflict_and_changes_nothing(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!(1), json!(2)]).await;
    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 1}),
    )
    .await;

    let err = acme
        .err(
            "commit",
            json!({"topic": "orders", "group": "billing", "offset": 3}),
        )
        .await;
    let unknown_topic = acme
        .err(
            "commit",
            json!({"topic": "never-written", "group": "billing", "offset": 1}),
        )
        .await;
    let after = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;

    assert_eq!(err.code, ErrorCode::Conflict, "{}: {err:?}", s.name());
    assert!(!err.retryable, "{}", s.name());
    assert_eq!(unknown_topic.code, ErrorCode::Conflict, "{}", s.name());
    assert_eq!(record_offsets(&after), [1], "{}", s.name());
}

pub async fn committing_the_end_is_allowed_and_committing_back_rewinds(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!("a"), json!("b"), json!("c")]).await;

    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 3}),
    )
    .await;
    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 1}),
    )
    .await;
    let rewound = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;
    let empty_topic = acme
        .ok(
            "commit",
            json!({"topic": "never-written", "group": "billing", "offset": 0}),
        )
        .await;

    assert_eq!(payloads(&rewound), [json!("b"), json!("c")], "{}", s.name());
    assert_eq!(empty_topic["committed"], 0, "{}", s.name());
}

pub async fn commits_are_per_topic(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!(1), json!(2)]).await;
    publish(&acme, "invoices", &[json!(3), json!(4)]).await;

    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 2}),
    )
    .await;
    let invoices = acme
        .ok("poll", json!({"topic": "invoices", "group": "billing"}))
        .await;

    assert_eq!(record_offsets(&invoices), [0, 1], "{}", s.name());
}
