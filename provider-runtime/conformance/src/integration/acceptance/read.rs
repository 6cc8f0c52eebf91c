//! Reads: a basic read, full refresh, incremental from the stored, a future and an abnormal
//! cursor, and deletes carried to the destination in both modes.

use serde_json::json;
use switchyard_spi::ErrorCode;

use super::{connected, held, present, source, sync};
use crate::Subject;

/// Records a check seeds: several pages of at most 10.
const SEEDED: usize = 25;

pub async fn a_basic_read_delivers_every_record_once(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let created = source.create(SEEDED).await;
    let tenant = connected(s, "acme").await;
    let run = sync(s, &tenant, "full", "basic_read").await;
    assert_eq!(run["status"], "completed", "{name}: {run}");
    let held = held(s, &tenant, "basic_read").await;
    for key in &created {
        let (deleted, record) = held
            .get(key)
            .unwrap_or_else(|| panic!("{name}: record {key} did not arrive: {run}"));
        assert!(!deleted, "{name}: {key} arrived deleted");
        assert_eq!(
            record["key"].to_string().trim_matches('"'),
            key,
            "{name}: {key} arrived mapped wrong: {record}"
        );
    }
    assert!(
        run["records"].as_u64().unwrap_or(0) >= SEEDED as u64 && run["pages"].as_u64() >= Some(1),
        "{name}: the run reports its records and pages: {run}"
    );
}

pub async fn a_second_full_refresh_leaves_each_record_once(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let created = source.create(SEEDED).await;
    let tenant = connected(s, "acme").await;
    sync(s, &tenant, "full", "refreshed").await;
    let first = held(s, &tenant, "refreshed").await;
    let run = sync(s, &tenant, "full", "refreshed").await;
    assert_eq!(run["status"], "completed", "{name}: {run}");
    let second = held(s, &tenant, "refreshed").await;
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>(),
        "{name}: a second full refresh changed which records the destination holds"
    );
    assert!(created.iter().all(|k| second.contains_key(k)), "{name}");
}

pub async fn an_incremental_sync_reads_only_what_changed(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let created = source.create(SEEDED).await;
    let tenant = connected(s, "acme").await;
    let first = sync(s, &tenant, "incremental", "incremental").await;
    assert_eq!(first["status"], "completed", "{name}: {first}");
    let all = first["records"].as_u64().expect("records");
    assert!(all >= SEEDED as u64, "{name}: {first}");

    source.update(&created[3]).await;
    let added = source.create(2).await;
    let second = sync(s, &tenant, "incremental", "incremental").await;
    assert_eq!(second["status"], "completed", "{name}: {second}");
    let read = second["records"].as_u64().expect("records");
    // The changed record and the two new ones; a read from an inclusive cursor may see the
    // newest record of the first run again, and nothing else.
    assert!(
        (3..=4).contains(&read),
        "{name}: the second incremental read {read} records, expected the 3 that changed: {second}"
    );
    let held = held(s, &tenant, "incremental").await;
    for key in created.iter().chain(&added) {
        assert!(held.contains_key(key), "{name}: {key} missing");
    }
    assert_ne!(
        first["cursor"], second["cursor"],
        "{name}: the cursor did not advance"
    );
}

pub async fn an_incremental_sync_from_a_future_cursor_reads_nothing(s: &Subject) {
    let name = s.name();
    let source = source(s);
    source.create(5).await;
    let tenant = connected(s, "acme").await;
    let first = sync(s, &tenant, "incremental", "future").await;
    let future = future_of(&first["cursor"]);
    tenant
        .ok(
            "reset",
            json!({"stream": source.stream(), "destination": source.destination("future"), "cursor": future}),
        )
        .await;
    let run = sync(s, &tenant, "incremental", "future").await;
    assert_eq!(run["status"], "completed", "{name}: {run}");
    assert_eq!(
        run["records"], 0,
        "{name}: a cursor in the future reads nothing: {run}"
    );
}

/// A cursor value later than any record: a year 9999 timestamp, or a much larger number.
fn future_of(cursor: &serde_json::Value) -> serde_json::Value {
    match cursor {
        serde_json::Value::Number(n) => {
            json!(n.as_i64().unwrap_or(0).saturating_mul(1000) + 1_000_000_000)
        }
        _ => json!("9999-12-31T23:59:59Z"),
    }
}

pub async fn an_abnormal_cursor_is_refused_clearly_and_loses_nothing(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let created = source.create(5).await;
    let tenant = connected(s, "acme").await;
    let first = sync(s, &tenant, "incremental", "abnormal").await;
    let reset = tenant
        .call(
            "reset",
            json!({"stream": source.stream(), "destination": source.destination("abnormal"), "cursor": {"not": ["a", "cursor"]}}),
        )
        .await;
    match reset {
        // Refused when set: the stored cursor is untouched.
        Err(err) => {
            assert!(
                matches!(
                    err.code,
                    ErrorCode::ParamsUnprocessable | ErrorCode::ParamsInvalid
                ),
                "{name}: {err:?}"
            );
            let run = sync(s, &tenant, "incremental", "abnormal").await;
            assert_eq!(run["status"], "completed", "{name}: {run}");
            assert!(
                run["records"].as_u64() <= Some(1),
                "{name}: the stored cursor was lost: {run}"
            );
        }
        // Accepted: the next run fails clearly and the destination keeps what it had.
        Ok(_) => {
            let run = sync(s, &tenant, "incremental", "abnormal").await;
            assert_eq!(
                run["status"], "failed",
                "{name}: an abnormal cursor ran: {run}"
            );
            assert!(
                run["error"].is_object() || run["error"].is_string(),
                "{name}: {run}"
            );
        }
    }
    let held = held(s, &tenant, "abnormal").await;
    assert!(
        created.iter().all(|k| held.contains_key(k)),
        "{name}: {first}"
    );
}

pub async fn a_full_refresh_carries_deletes_to_the_destination(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let created = source.create(SEEDED).await;
    let tenant = connected(s, "acme").await;
    sync(s, &tenant, "full", "tombstones").await;
    source.delete(&created[0]).await;
    source.delete(&created[SEEDED - 1]).await;
    let run = sync(s, &tenant, "full", "tombstones").await;
    assert_eq!(run["status"], "completed", "{name}: {run}");
    assert!(run["deleted"].as_u64() >= Some(2), "{name}: {run}");
    let held = held(s, &tenant, "tombstones").await;
    let present = present(&held);
    for gone in [&created[0], &created[SEEDED - 1]] {
        assert!(
            !present.contains(gone),
            "{name}: deleted {gone} is still present"
        );
    }
    for kept in &created[1..SEEDED - 1] {
        assert!(
            present.contains(kept),
            "{name}: {kept} was deleted by mistake"
        );
    }
}

pub async fn an_incremental_sync_carries_deletes_where_the_stream_has_a_feed(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let tenant = connected(s, "acme").await;
    let discovered = tenant.ok("discover", json!({})).await;
    let feed = discovered["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .any(|st| st["name"] == source.stream() && st["deletes"] == "feed");
    let created = source.create(8).await;
    sync(s, &tenant, "incremental", "feed_deletes").await;
    source.delete(&created[2]).await;
    let run = sync(s, &tenant, "incremental", "feed_deletes").await;
    assert_eq!(run["status"], "completed", "{name}: {run}");
    let after = present(&held(s, &tenant, "feed_deletes").await);
    if feed {
        assert!(
            !after.contains(&created[2]),
            "{name}: the stream has a deleted feed, yet the incremental sync kept {}: {run}",
            created[2]
        );
    } else {
        // Without a feed only a full refresh finds deletes: the incremental run must not
        // invent any, and the next full refresh must.
        assert!(after.contains(&created[2]), "{name}: {run}");
        sync(s, &tenant, "full", "feed_deletes").await;
        let refreshed = present(&held(s, &tenant, "feed_deletes").await);
        assert!(!refreshed.contains(&created[2]), "{name}");
    }
    assert!(after.contains(&created[3]), "{name}");
}
