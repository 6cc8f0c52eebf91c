//! Cursors: what `state` shows, what `reset` forgets, and that they are the tenant's own.

use serde_json::{Value, json};

use super::{connected, held, source, sync};
use crate::Subject;

/// The stored cursor of the source's stream at `table`, as `state` shows it.
async fn cursor_at(
    s: &Subject,
    tenant: &switchyard_spi::testkit::TenantInstance,
    table: &str,
) -> Value {
    let source = source(s);
    let state = tenant.ok("state", json!({"stream": source.stream()})).await;
    // State answers the destination with its defaults filled in (`write`): match it by table.
    state["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|st| st["destination"]["db"]["table"] == table)
        .map(|st| st["cursor"].clone())
        .unwrap_or(Value::Null)
}

pub async fn state_shows_the_cursor_and_reset_forgets_it(s: &Subject) {
    let name = s.name();
    let source = source(s);
    source.create(12).await;
    let tenant = connected(s, "acme").await;
    let run = sync(s, &tenant, "incremental", "stated").await;
    let cursor = cursor_at(s, &tenant, "stated").await;
    assert!(
        !cursor.is_null(),
        "{name}: no cursor after an incremental sync: {run}"
    );
    assert_eq!(cursor, run["cursor"], "{name}: state and the run disagree");

    let reset = tenant
        .ok(
            "reset",
            json!({"stream": source.stream(), "destination": source.destination("stated")}),
        )
        .await;
    assert_eq!(reset["reset"], 1, "{name}: {reset}");
    assert!(cursor_at(s, &tenant, "stated").await.is_null(), "{name}");
    let again = sync(s, &tenant, "incremental", "stated").await;
    assert!(
        again["records"].as_u64() >= run["records"].as_u64(),
        "{name}: after a reset an incremental sync reads from the start: {again}"
    );
}

pub async fn a_tenant_sees_none_of_another_tenants_cursors_or_runs(s: &Subject) {
    let name = s.name();
    let source = source(s);
    source.create(6).await;
    let acme = connected(s, "acme").await;
    let run = sync(s, &acme, "incremental", "mine").await;
    assert_eq!(run["status"], "completed", "{name}: {run}");

    let globex = connected(s, "globex").await;
    let state = globex.ok("state", json!({})).await;
    assert_eq!(
        state["streams"],
        json!([]),
        "{name}: globex sees acme's cursors or runs: {state}"
    );
    // globex's first incremental sync reads from the start, into its own destination.
    let theirs = sync(s, &globex, "incremental", "mine").await;
    assert_eq!(theirs["records"], run["records"], "{name}: {theirs}");
    assert_ne!(theirs["run_id"], run["run_id"], "{name}");
    let reset = globex
        .ok(
            "reset",
            json!({"stream": source.stream(), "destination": source.destination("mine")}),
        )
        .await;
    assert_eq!(
        reset["reset"], 1,
        "{name}: globex resets its own cursor only"
    );
    assert!(
        !cursor_at(s, &acme, "mine").await.is_null(),
        "{name}: acme's cursor is gone"
    );
    assert!(!held(s, &acme, "mine").await.is_empty(), "{name}");
}
