//! +stable: an instance whose broker restarts under it answers again by itself.

use serde_json::json;

use super::{payloads, publish};
use crate::Subject;
use crate::reconnect::answer_after_restart;

/// The same instance, never restarted itself, answers again soon after its broker restarts,
/// reads the records and the group position the broker kept, and publishes again at the next
/// offset; meanwhile it fails only with retryable errors.
pub async fn the_instance_reconnects_after_its_backing_server_restarts(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    publish(&acme, "orders", &[json!("first"), json!("second")]).await;
    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 1}),
    )
    .await;
    s.restart_backing().await;
    let billing = answer_after_restart(
        &engine,
        &acme,
        "poll",
        json!({"topic": "orders", "group": "billing"}),
    )
    .await;
    assert_eq!(
        payloads(&billing),
        [json!("second")],
        "{engine}: the records and the commit made before the restart"
    );
    let next = publish(&acme, "orders", &[json!("third")]).await;
    assert_eq!(next, [2], "{engine}: the offsets go on where they were");
}
