//! +stable: an instance whose database server restarts under it answers again by itself.

use serde_json::json;

use crate::Subject;
use crate::db::{count, dialect, rows};
use crate::reconnect::answer_after_restart;

/// The same instance, never restarted itself, answers again soon after its database server
/// restarts (its pooled connections are dead by then), reads what the server kept and
/// writes again; meanwhile it fails only with retryable errors.
pub async fn the_instance_reconnects_after_its_backing_server_restarts(s: &Subject) {
    let engine = s.name();
    let d = dialect(s);
    let t = s.tenant("acme").await;
    t.ok(
        "execute",
        json!({"sql": d.sql("CREATE TABLE kept (v {text})")}),
    )
    .await;
    t.ok(
        "execute",
        json!({"sql": "INSERT INTO kept VALUES ('before')"}),
    )
    .await;
    s.restart_backing().await;
    let read =
        answer_after_restart(&engine, &t, "query", json!({"sql": "SELECT v FROM kept"})).await;
    assert_eq!(
        rows(&read),
        &vec![json!({"v": "before"})],
        "{engine}: the row written before the restart"
    );
    t.ok(
        "execute",
        json!({"sql": "INSERT INTO kept VALUES ('after')"}),
    )
    .await;
    assert_eq!(count(&t, "kept").await, 2, "{engine}");
}
