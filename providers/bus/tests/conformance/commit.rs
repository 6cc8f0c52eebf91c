use serde_json::json;
use switchyard_spi::ErrorCode;

use crate::{engines, payloads, publish, record_offsets};

#[tokio::test]
async fn commit_then_poll_returns_nothing_new() {
    for engine in engines() {
        let bus = engine.harness();
        if !bus.has_capability("consumer_groups") {
            continue;
        }
        let acme = bus.tenant("acme").await;
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
            engine.name
        );
        assert_eq!(
            second,
            json!({"records": [], "next_offset": 3}),
            "{}",
            engine.name
        );

        publish(&acme, "orders", &[json!(4)]).await;
        let third = acme
            .ok("poll", json!({"topic": "orders", "group": "billing"}))
            .await;
        assert_eq!(payloads(&third), [json!(4)], "{}", engine.name);
    }
}

#[tokio::test]
async fn committing_past_the_end_is_a_conflict_and_changes_nothing() {
    for engine in engines() {
        let bus = engine.harness();
        if !bus.has_capability("consumer_groups") {
            continue;
        }
        let acme = bus.tenant("acme").await;
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

        assert_eq!(err.code, ErrorCode::Conflict, "{}: {err:?}", engine.name);
        assert!(!err.retryable, "{}", engine.name);
        assert_eq!(unknown_topic.code, ErrorCode::Conflict, "{}", engine.name);
        assert_eq!(record_offsets(&after), [1], "{}", engine.name);
    }
}

#[tokio::test]
async fn committing_the_end_is_allowed_and_committing_back_rewinds() {
    for engine in engines() {
        let bus = engine.harness();
        if !bus.has_capability("consumer_groups") {
            continue;
        }
        let acme = bus.tenant("acme").await;
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

        assert_eq!(
            payloads(&rewound),
            [json!("b"), json!("c")],
            "{}",
            engine.name
        );
        assert_eq!(empty_topic["committed"], 0, "{}", engine.name);
    }
}

#[tokio::test]
async fn commits_are_per_topic() {
    for engine in engines() {
        let bus = engine.harness();
        if !bus.has_capability("consumer_groups") {
            continue;
        }
        let acme = bus.tenant("acme").await;
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

        assert_eq!(record_offsets(&invoices), [0, 1], "{}", engine.name);
    }
}
