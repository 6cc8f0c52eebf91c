//! Writes: an upsert by external id is idempotent.

use serde_json::json;

use super::{connected, source};
use crate::Subject;

pub async fn an_upsert_by_external_id_is_idempotent(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let (stream, field) = source
        .upsert_target()
        .expect("the source provides source:upsert");
    let tenant = connected(s, "acme").await;
    let external_id = format!("ext-{}", tenant.tenant.as_str());
    let params = |version: u32| {
        json!({
            "stream": stream,
            "external_id_field": field,
            "records": [source.upsert_record(&external_id, version)],
        })
    };
    let first = tenant.ok("upsert", params(1)).await;
    assert_eq!(first["results"][0]["created"], true, "{name}: {first}");
    let again = tenant.ok("upsert", params(1)).await;
    assert_eq!(again["results"][0]["created"], false, "{name}: {again}");
    assert_eq!(
        again["results"][0]["id"], first["results"][0]["id"],
        "{name}"
    );
    let changed = tenant.ok("upsert", params(2)).await;
    assert_eq!(changed["results"][0]["created"], false, "{name}: {changed}");
    assert_eq!(
        source.versions_held(&external_id).await,
        [2],
        "{name}: the system should hold one record, at the second version"
    );
}
