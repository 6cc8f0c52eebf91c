//! `poll`: a group reads from its committed position (or an explicit offset) without moving it.

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{payloads, publish, record_offsets};
use crate::Subject;

pub async fn poll_returns_published_records_in_order_with_key_headers_and_payload(s: &Subject) {
    let acme = s.tenant("acme").await;
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    acme.ok(
        "publish",
        json!({"topic": "orders", "messages": [
            {"key": "o-1", "headers": {"source": "shop", "trace": "t1"}, "payload": {"id": 1, "lines": [1, 2]}},
            {"payload": "plain text"},
            {"key": "o-3", "payload": null}
        ]}),
    )
    .await;

    let result = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;

    let records = result["records"].as_array().expect("records");
    assert_eq!(record_offsets(&result), [0, 1, 2], "{}", s.name());
    assert_eq!(result["next_offset"], 3, "{}", s.name());
    assert_eq!(records[0]["key"], "o-1", "{}", s.name());
    assert_eq!(
        records[0]["headers"],
        json!({"source": "shop", "trace": "t1"}),
        "{}",
        s.name()
    );
    assert_eq!(records[0]["payload"], json!({"id": 1, "lines": [1, 2]}));
    assert_eq!(records[1]["key"], json!(null), "{}: missing key", s.name());
    assert_eq!(
        records[1]["headers"],
        json!({}),
        "{}: missing headers",
        s.name()
    );
    assert_eq!(records[1]["payload"], "plain text", "{}", s.name());
    assert_eq!(records[2]["payload"], json!(null), "{}", s.name());
    for record in records {
        let text = record["published_at"].as_str().expect("published_at");
        let at = OffsetDateTime::parse(text, &Rfc3339)
            .unwrap_or_else(|e| panic!("{}: published_at {text:?}: {e}", s.name()));
        assert!(
            at >= before,
            "{}: published_at {text} is in the past",
            s.name()
        );
        assert!(text.ends_with('Z'), "{}: {text} is not UTC", s.name());
    }
}

pub async fn poll_does_not_commit(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!(1), json!(2)]).await;

    let first = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;
    let again = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;

    assert_eq!(record_offsets(&first), [0, 1], "{}", s.name());
    assert_eq!(record_offsets(&again), [0, 1], "{}", s.name());
}

pub async fn groups_have_independent_positions(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!("a"), json!("b"), json!("c")]).await;

    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 2}),
    )
    .await;
    let billing = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;
    let shipping = acme
        .ok("poll", json!({"topic": "orders", "group": "shipping"}))
        .await;

    assert_eq!(payloads(&billing), [json!("c")], "{}", s.name());
    assert_eq!(
        payloads(&shipping),
        [json!("a"), json!("b"), json!("c")],
        "{}",
        s.name()
    );
}

pub async fn an_explicit_offset_overrides_the_committed_one(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(
        &acme,
        "orders",
        &[json!("a"), json!("b"), json!("c"), json!("d")],
    )
    .await;
    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 3}),
    )
    .await;

    let result = acme
        .ok(
            "poll",
            json!({"topic": "orders", "group": "billing", "offset": 1}),
        )
        .await;
    let after = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;

    assert_eq!(record_offsets(&result), [1, 2, 3], "{}", s.name());
    assert_eq!(result["next_offset"], 4, "{}", s.name());
    assert_eq!(
        record_offsets(&after),
        [3],
        "{}: the explicit poll moved the group",
        s.name()
    );
}

pub async fn max_records_pages_through_the_topic(s: &Subject) {
    let acme = s.tenant("acme").await;
    let sent: Vec<_> = (0..7).map(|i| json!(i)).collect();
    publish(&acme, "orders", &sent).await;

    let mut received = Vec::new();
    let mut pages = Vec::new();
    let mut offset = 0;
    loop {
        let page = acme
            .ok(
                "poll",
                json!({"topic": "orders", "group": "billing", "offset": offset, "max_records": 3}),
            )
            .await;
        let got = payloads(&page);
        if got.is_empty() {
            assert_eq!(page["next_offset"], offset, "{}", s.name());
            break;
        }
        pages.push(got.len());
        received.extend(got);
        offset = page["next_offset"].as_u64().expect("next_offset");
    }

    assert_eq!(pages, [3, 3, 1], "{}", s.name());
    assert_eq!(received, sent, "{}", s.name());
}

pub async fn an_unknown_topic_polls_empty_from_zero(s: &Subject) {
    let acme = s.tenant("acme").await;

    let result = acme
        .ok(
            "poll",
            json!({"topic": "never-written", "group": "billing"}),
        )
        .await;

    assert_eq!(
        result,
        json!({"records": [], "next_offset": 0}),
        "{}",
        s.name()
    );
}

pub async fn polling_past_the_end_returns_nothing_and_keeps_the_offset(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!(1)]).await;

    let result = acme
        .ok(
            "poll",
            json!({"topic": "orders", "group": "billing", "offset": 10}),
        )
        .await;

    assert_eq!(
        result,
        json!({"records": [], "next_offset": 10}),
        "{}",
        s.name()
    );
}
