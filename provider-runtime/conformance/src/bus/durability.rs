//! Durability across a process restart: a new factory over the same storage
//! ([`Subject::reopened`]) must find every acknowledged record and commit, whether the first
//! factory was dropped or never shut down at all.

use serde_json::{Value, json};
use switchyard_spi::testkit::Harness;

use super::{payloads, publish};
use crate::Subject;

/// Publishes and commits through `bus`, then returns what a restarted engine must still hold.
async fn write_and_commit(s: &Subject, bus: &Harness) -> Vec<Value> {
    let acme = bus.tenant("acme").await;
    let sent: Vec<Value> = (0..10).map(|i| json!({"n": i})).collect();
    assert_eq!(
        publish(&acme, "orders", &sent[..6]).await,
        [0, 1, 2, 3, 4, 5],
        "{}",
        s.name()
    );
    publish(&acme, "orders", &sent[6..]).await;
    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 4}),
    )
    .await;
    sent
}

/// Checks, through a new factory, that every record and the commit survived.
async fn assert_survived(s: &Subject, sent: &[Value]) {
    let bus = s.reopened();
    let acme = bus.tenant("acme").await;

    let all = acme
        .ok(
            "poll",
            json!({"topic": "orders", "group": "audit", "offset": 0}),
        )
        .await;
    let billing = acme
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;
    let next = publish(&acme, "orders", &[json!("after restart")]).await;

    assert_eq!(payloads(&all), sent, "{}: records lost", s.name());
    assert_eq!(
        payloads(&billing),
        sent[4..],
        "{}: committed offset lost",
        s.name()
    );
    assert_eq!(next, [10], "{}: offsets restarted", s.name());
}

pub async fn records_and_commits_survive_dropping_the_engine_without_stop(s: &Subject) {
    let bus = s.reopened();
    let sent = write_and_commit(s, &bus).await;
    drop(bus);

    assert_survived(s, &sent).await;
}

/// Closer to `kill -9`: the first engine is never dropped, so nothing it holds is closed,
/// flushed or checkpointed; the new engine must read the data while the old one still holds
/// the files. Leaking the first engine is the point of the test.
pub async fn records_and_commits_survive_an_engine_that_never_shuts_down(s: &Subject) {
    let bus = s.reopened();
    let sent = write_and_commit(s, &bus).await;
    std::mem::forget(bus);

    assert_survived(s, &sent).await;
}
