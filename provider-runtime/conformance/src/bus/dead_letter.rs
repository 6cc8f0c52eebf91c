//! Dead letters (`max_deliveries` in the tenant config), as both engines' docs.md define them:
//! every `poll` from a group's committed position counts one delivery of the record at that
//! position; the poll that finds it already delivered `max_deliveries` times appends it to
//! `<topic>.dead-letter` instead and moves the group past it. A commit resets the count.

use serde_json::{Value, json};
use switchyard_spi::ErrorCode;

use super::{payloads, publish, record_offsets};
use crate::Subject;

fn poll(group: &str) -> Value {
    json!({"topic": "orders", "group": group})
}

pub async fn a_record_delivered_max_deliveries_times_moves_to_the_dead_letter_topic(s: &Subject) {
    let acme = s
        .tenant_with_config("acme", json!({"max_deliveries": 2}))
        .await;
    acme.ok(
        "publish",
        json!({"topic": "orders", "messages": [
            {"key": "o-1", "headers": {"event_id": "e-1", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, "payload": {"id": 1}},
            {"payload": {"id": 2}},
            {"payload": {"id": 3}}
        ]}),
    )
    .await;

    let first = acme.ok("poll", poll("billing")).await;
    let second = acme.ok("poll", poll("billing")).await;
    let third = acme.ok("poll", poll("billing")).await;

    assert_eq!(record_offsets(&first), [0, 1, 2], "{}", s.name());
    assert_eq!(record_offsets(&second), [0, 1, 2], "{}", s.name());
    assert_eq!(
        record_offsets(&third),
        [1, 2],
        "{}: the third delivery of offset 0 must dead-letter it",
        s.name()
    );
    assert_eq!(third["next_offset"], 3, "{}", s.name());

    let dead = acme
        .ok("replay", json!({"topic": "orders.dead-letter"}))
        .await;
    let records = dead["records"].as_array().expect("records");
    assert_eq!(records.len(), 1, "{}: {dead}", s.name());
    assert_eq!(records[0]["offset"], 0, "{}", s.name());
    assert_eq!(records[0]["key"], "o-1", "{}", s.name());
    assert_eq!(records[0]["payload"], json!({"id": 1}), "{}", s.name());
    let headers = &records[0]["headers"];
    assert_eq!(headers["event_id"], "e-1", "{}", s.name());
    assert_eq!(
        headers["traceparent"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "{}",
        s.name()
    );
    assert_eq!(headers["original_offset"], "0", "{}", s.name());
    assert_eq!(headers["deliveries"], "2", "{}", s.name());
    assert!(
        headers["dead_letter_reason"]
            .as_str()
            .is_some_and(|r| r.contains("billing")),
        "{}: {headers}",
        s.name()
    );
    assert_eq!(
        headers.as_object().map(|h| h.len()),
        Some(5),
        "{}: only the original headers plus the three dead-letter ones: {headers}",
        s.name()
    );

    // The group moved past the dead letter; another group still starts at 0.
    let billing = acme
        .ok(
            "poll",
            json!({"topic": "orders", "group": "billing", "max_records": 1}),
        )
        .await;
    let shipping = acme.ok("poll", poll("shipping")).await;
    assert_eq!(payloads(&billing), [json!({"id": 2})], "{}", s.name());
    assert_eq!(record_offsets(&shipping), [0, 1, 2], "{}", s.name());
}

pub async fn the_next_record_gets_its_own_count_after_a_dead_letter(s: &Subject) {
    let acme = s
        .tenant_with_config("acme", json!({"max_deliveries": 1}))
        .await;
    publish(&acme, "orders", &[json!("a"), json!("b"), json!("c")]).await;

    let polls = [
        acme.ok("poll", poll("billing")).await,
        acme.ok("poll", poll("billing")).await,
        acme.ok("poll", poll("billing")).await,
        acme.ok("poll", poll("billing")).await,
    ];

    let seen: Vec<Vec<u64>> = polls.iter().map(record_offsets).collect();
    assert_eq!(
        seen,
        [vec![0, 1, 2], vec![1, 2], vec![2], vec![]],
        "{}",
        s.name()
    );
    assert_eq!(polls[3]["next_offset"], 3, "{}", s.name());
    let dead = acme
        .ok("replay", json!({"topic": "orders.dead-letter"}))
        .await;
    assert_eq!(
        payloads(&dead),
        [json!("a"), json!("b"), json!("c")],
        "{}",
        s.name()
    );
    let originals: Vec<&Value> = dead["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| &r["headers"]["original_offset"])
        .collect();
    assert_eq!(originals, ["0", "1", "2"], "{}", s.name());
}

pub async fn a_commit_resets_the_delivery_count(s: &Subject) {
    let acme = s
        .tenant_with_config("acme", json!({"max_deliveries": 2}))
        .await;
    publish(&acme, "orders", &[json!("a"), json!("b")]).await;
    acme.ok("poll", poll("billing")).await;
    acme.ok("poll", poll("billing")).await;

    // Past the record and back: it is delivered afresh, twice, before it is dead-lettered.
    for offset in [1, 0] {
        acme.ok(
            "commit",
            json!({"topic": "orders", "group": "billing", "offset": offset}),
        )
        .await;
    }
    let after_rewind = [
        acme.ok("poll", poll("billing")).await,
        acme.ok("poll", poll("billing")).await,
        acme.ok("poll", poll("billing")).await,
    ];

    let seen: Vec<Vec<u64>> = after_rewind.iter().map(record_offsets).collect();
    assert_eq!(seen, [vec![0, 1], vec![0, 1], vec![1]], "{}", s.name());
}

pub async fn polls_at_an_explicit_offset_and_replays_count_no_delivery(s: &Subject) {
    let acme = s
        .tenant_with_config("acme", json!({"max_deliveries": 1}))
        .await;
    publish(&acme, "orders", &[json!("a"), json!("b")]).await;

    for _ in 0..3 {
        let explicit = acme
            .ok(
                "poll",
                json!({"topic": "orders", "group": "billing", "offset": 0}),
            )
            .await;
        assert_eq!(record_offsets(&explicit), [0, 1], "{}", s.name());
        acme.ok("replay", json!({"topic": "orders"})).await;
    }
    let first = acme.ok("poll", poll("billing")).await;
    let empty_topic = acme
        .ok(
            "poll",
            json!({"topic": "never-written", "group": "billing"}),
        )
        .await;

    assert_eq!(record_offsets(&first), [0, 1], "{}", s.name());
    assert_eq!(
        empty_topic,
        json!({"records": [], "next_offset": 0}),
        "{}",
        s.name()
    );
    let dead = acme
        .ok("replay", json!({"topic": "orders.dead-letter"}))
        .await;
    assert_eq!(
        dead,
        json!({"records": [], "next_offset": 0}),
        "{}",
        s.name()
    );
}

pub async fn without_max_deliveries_a_record_is_delivered_forever(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!("poison")]).await;

    for _ in 0..5 {
        let polled = acme.ok("poll", poll("billing")).await;
        assert_eq!(payloads(&polled), [json!("poison")], "{}", s.name());
    }
    let dead = acme
        .ok("replay", json!({"topic": "orders.dead-letter"}))
        .await;
    assert_eq!(
        dead,
        json!({"records": [], "next_offset": 0}),
        "{}",
        s.name()
    );
}

pub async fn dead_letters_stay_with_their_tenant(s: &Subject) {
    let config = json!({"max_deliveries": 1});
    let acme = s.tenant_with_config("acme", config.clone()).await;
    let globex = s.tenant_with_config("globex", config).await;
    publish(&acme, "orders", &[json!("acme-1")]).await;
    publish(&globex, "orders", &[json!("globex-1")]).await;
    acme.ok("poll", poll("billing")).await;
    acme.ok("poll", poll("billing")).await;

    let acme_dead = acme
        .ok("replay", json!({"topic": "orders.dead-letter"}))
        .await;
    let globex_dead = globex
        .ok("replay", json!({"topic": "orders.dead-letter"}))
        .await;
    let globex_billing = globex.ok("poll", poll("billing")).await;

    assert_eq!(payloads(&acme_dead), [json!("acme-1")], "{}", s.name());
    assert_eq!(
        globex_dead,
        json!({"records": [], "next_offset": 0}),
        "{}",
        s.name()
    );
    assert_eq!(
        payloads(&globex_billing),
        [json!("globex-1")],
        "{}: acme's dead letter moved globex's group",
        s.name()
    );
}

pub async fn a_topic_too_long_for_a_dead_letter_topic_is_params_invalid(s: &Subject) {
    let acme = s
        .tenant_with_config("acme", json!({"max_deliveries": 3}))
        .await;
    let longest = "x".repeat(249 - ".dead-letter".len());
    let too_long = format!("{longest}x");

    let ok = acme
        .ok("poll", json!({"topic": longest, "group": "billing"}))
        .await;
    let err = acme
        .err("poll", json!({"topic": too_long, "group": "billing"}))
        .await;

    assert_eq!(ok["records"], json!([]), "{}", s.name());
    assert_eq!(err.code, ErrorCode::ParamsInvalid, "{}", s.name());
    assert!(
        err.errors.iter().any(|e| e.pointer == "/topic"),
        "{}: {:?}",
        s.name(),
        err.errors
    );
}
