//! `replay`: reading from an offset or a time, moving no group.

use std::time::Duration;

use serde_json::json;
use switchyard_spi::ErrorCode;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::{payloads, publish, record_offsets};
use crate::Subject;

pub async fn replay_reads_from_an_offset_or_from_zero(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!("a"), json!("b"), json!("c")]).await;

    let from_one = acme
        .ok("replay", json!({"topic": "orders", "from_offset": 1}))
        .await;
    let from_start = acme.ok("replay", json!({"topic": "orders"})).await;

    assert_eq!(
        payloads(&from_one),
        [json!("b"), json!("c")],
        "{}",
        s.name()
    );
    assert_eq!(from_one["next_offset"], 3, "{}", s.name());
    assert_eq!(record_offsets(&from_start), [0, 1, 2], "{}", s.name());
}

pub async fn replay_from_a_time_starts_at_the_first_record_published_at_or_after_it(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!("old-1"), json!("old-2")]).await;
    // Records are stamped at millisecond resolution: wait so the next batch is later.
    tokio::time::sleep(Duration::from_millis(20)).await;
    publish(&acme, "orders", &[json!("new-1"), json!("new-2")]).await;
    let all = acme.ok("replay", json!({"topic": "orders"})).await;
    let cut = all["records"][2]["published_at"]
        .as_str()
        .expect("published_at")
        .to_owned();
    let cut_elsewhere = OffsetDateTime::parse(&cut, &Rfc3339)
        .expect("RFC 3339")
        .to_offset(UtcOffset::from_hms(2, 0, 0).expect("offset"))
        .format(&Rfc3339)
        .expect("formats");

    let from_cut = acme
        .ok("replay", json!({"topic": "orders", "from_time": cut}))
        .await;
    let from_cut_elsewhere = acme
        .ok(
            "replay",
            json!({"topic": "orders", "from_time": cut_elsewhere}),
        )
        .await;
    let from_long_ago = acme
        .ok(
            "replay",
            json!({"topic": "orders", "from_time": "2001-01-01T00:00:00Z"}),
        )
        .await;
    let from_future = acme
        .ok(
            "replay",
            json!({"topic": "orders", "from_time": "2999-01-01T00:00:00Z"}),
        )
        .await;

    assert_eq!(
        payloads(&from_cut),
        [json!("new-1"), json!("new-2")],
        "{}: from {cut}",
        s.name()
    );
    assert_eq!(
        from_cut_elsewhere,
        from_cut,
        "{}: {cut_elsewhere} is the same instant",
        s.name()
    );
    assert_eq!(record_offsets(&from_long_ago), [0, 1, 2, 3], "{}", s.name());
    assert_eq!(
        from_future,
        json!({"records": [], "next_offset": 4}),
        "{}: nothing yet, continue at the end",
        s.name()
    );
}

pub async fn replay_pages_with_max_records(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(
        &acme,
        "orders",
        &[json!(0), json!(1), json!(2), json!(3), json!(4)],
    )
    .await;

    let first = acme
        .ok("replay", json!({"topic": "orders", "max_records": 2}))
        .await;
    let second = acme
        .ok(
            "replay",
            json!({"topic": "orders", "from_offset": first["next_offset"], "max_records": 2}),
        )
        .await;

    assert_eq!(record_offsets(&first), [0, 1], "{}", s.name());
    assert_eq!(record_offsets(&second), [2, 3], "{}", s.name());
    assert_eq!(second["next_offset"], 4, "{}", s.name());
}

pub async fn replay_does_not_move_any_group(s: &Subject) {
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!("a"), json!("b")]).await;
    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 1}),
    )
    .await;

    acme.ok("replay", json!({"topic": "orders", "from_offset": 0}))
        .await;
    let billing = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;
    let shipping = acme
        .ok("poll", json!({"topic": "orders", "group": "shipping"}))
        .await;

    assert_eq!(record_offsets(&billing), [1], "{}", s.name());
    assert_eq!(record_offsets(&shipping), [0, 1], "{}", s.name());
}

pub async fn an_unparsable_time_is_params_invalid_at_from_time(s: &Subject) {
    let acme = s.tenant("acme").await;

    for bad in ["yesterday", "2024-13-01T00:00:00Z", "2024-01-01 10:00"] {
        let err = acme
            .err("replay", json!({"topic": "orders", "from_time": bad}))
            .await;
        assert_eq!(err.code, ErrorCode::ParamsInvalid, "{}: {bad}", s.name());
        assert!(
            err.errors.iter().any(|e| e.pointer == "/from_time"),
            "{}: {bad} -> {:?}",
            s.name(),
            err.errors
        );
    }
}

pub async fn an_offset_and_a_time_together_are_params_invalid(s: &Subject) {
    let acme = s.tenant("acme").await;

    let err = acme
        .err(
            "replay",
            json!({"topic": "orders", "from_offset": 0, "from_time": "2024-01-01T00:00:00Z"}),
        )
        .await;

    assert_eq!(err.code, ErrorCode::ParamsInvalid, "{}", s.name());
}
