use serde_json::json;
use switchyard_contracts::TenantId;

use super::{Backend, Fresh};
use crate::{DecisionFilter, DecisionRecord};

pub fn record(id: &str, at_ms: i64, tenant: &str, allowed: bool) -> DecisionRecord {
    DecisionRecord {
        decision_id: id.into(),
        at_ms,
        tenant: tenant.into(),
        subject: "key:1".into(),
        allowed,
        reasons: if allowed { vec![] } else { vec!["no".into()] },
        revision: "r1".into(),
        input: json!({"action": "query"}),
        input_digest: None,
    }
}

fn ids(records: &[DecisionRecord]) -> Vec<&str> {
    records.iter().map(|r| r.decision_id.as_str()).collect()
}

pub async fn decisions_page_newest_first_per_tenant_with_filters(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let mut batch: Vec<DecisionRecord> = (0..5)
        .map(|i| record(&format!("d{i}"), 1000 + i, "acme", i % 2 == 0))
        .collect();
    batch.push(record("g1", 1002, "globex", true));
    store.record_decisions(&batch).await.unwrap();
    let acme = TenantId::parse("acme").unwrap();

    let page = store
        .list_decisions(
            &acme,
            &DecisionFilter {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&page), ["d4", "d3"]);
    assert_eq!(page[0], batch[4], "a record reads back as written");
    let last = page.last().unwrap();
    let next = DecisionFilter {
        limit: 10,
        after: Some((last.at_ms, last.decision_id.clone())),
        ..Default::default()
    };
    let rest = store.list_decisions(&acme, &next).await.unwrap();
    assert_eq!(ids(&rest), ["d2", "d1", "d0"]);

    let denied = DecisionFilter {
        allowed: Some(false),
        limit: 10,
        ..Default::default()
    };
    let denied = store.list_decisions(&acme, &denied).await.unwrap();
    assert_eq!(ids(&denied), ["d3", "d1"]);
    assert_eq!(denied[0].reasons, ["no"]);
    let window = DecisionFilter {
        from_ms: Some(1001),
        to_ms: Some(1003),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list_decisions(&acme, &window).await.unwrap()),
        ["d2", "d1"]
    );
    let by_subject = |subject: &str| DecisionFilter {
        subject: Some(subject.into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_decisions(&acme, &by_subject("key:1"))
            .await
            .unwrap()
            .len(),
        5
    );
    assert!(
        store
            .list_decisions(&acme, &by_subject("key:2"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Decisions keyed by their input's digest store that input once per revision, and each reads
/// back with it: the first decision carries it, later ones only point at it.
pub async fn an_input_shared_by_decisions_is_stored_once_and_read_back_with_each(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let input = json!({"roles": ["clerk"], "action": "query"});
    let keyed = |id: &str, at_ms: i64, input: serde_json::Value| DecisionRecord {
        input,
        input_digest: Some("abc".into()),
        ..record(id, at_ms, "acme", true)
    };
    store
        .record_decisions(&[keyed("k1", 1, input.clone()), keyed("k2", 2, json!(null))])
        .await
        .unwrap();
    // A second writer (another replica) recording the same input again is no error.
    store
        .record_decisions(&[keyed("k3", 3, input.clone())])
        .await
        .unwrap();
    let acme = TenantId::parse("acme").unwrap();
    let all = DecisionFilter {
        limit: 10,
        ..Default::default()
    };
    let page = store.list_decisions(&acme, &all).await.unwrap();
    assert_eq!(ids(&page), ["k3", "k2", "k1"]);
    assert!(page.iter().all(|d| d.input == input), "{page:?}");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM policy_inputs")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    if matches!(backend, Backend::Sqlite) {
        // The batch's relaxed flush stays with the batch: every pooled connection is back at
        // FULL (2), which keys, configs and idempotency records rely on.
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut conn = store.pool.acquire().await.unwrap();
            let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(level, 2);
            held.push(conn);
        }
    }
}
