//! +stable: an instance whose object store restarts under it answers again by itself.

use serde_json::json;

use crate::Subject;
use crate::reconnect::answer_after_restart;
use crate::storage::{b64, content_of, put};

/// The same instance, never restarted itself, answers again soon after its object store
/// restarts, reads what the store kept and writes again; meanwhile it fails only with
/// retryable errors.
pub async fn the_instance_reconnects_after_its_backing_server_restarts(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
    put(&acme, "before.txt", b"kept").await;
    s.restart_backing().await;
    let got = answer_after_restart(&engine, &acme, "get", json!({"key": "before.txt"})).await;
    assert_eq!(
        got["content_base64"],
        b64(b"kept"),
        "{engine}: the object put before the restart"
    );
    put(&acme, "after.txt", b"new").await;
    assert_eq!(content_of(&acme, "after.txt").await, b"new", "{engine}");
}
