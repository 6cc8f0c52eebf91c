use serde_json::json;
use switchyard_contracts::TenantId;
use time::OffsetDateTime;

use super::{Backend, Fresh};
use crate::{
    AuditEntry, AuditFilter, AuditOrder, AuditRecord, CSV_HEADER, ChainCheck, ExportFormat,
    PlatformStore,
};

fn entry(tenant: &str, actor: &str, entity: &str, operation: &str) -> AuditEntry {
    AuditEntry {
        tenant: tenant.into(),
        actor: actor.into(),
        entity: entity.into(),
        operation: operation.into(),
        old: None,
        new: Some(json!({"scopes": "read", "note": "a,\"quoted\"\nvalue"})),
        request_id: Some(format!("req-{entity}")),
        source: Some("127.0.0.1".into()),
    }
}

/// `count` records in `tenant`'s chain, alternating two actors and two kinds of entity.
async fn fill(store: &PlatformStore, tenant: &str, count: usize) -> Vec<AuditRecord> {
    let mut written = Vec::new();
    for n in 1..=count {
        let (actor, entity) = if n % 2 == 0 {
            ("key:admin", format!("api_key/k{n}"))
        } else {
            ("operator:op", format!("provider/db/p{n}"))
        };
        written.push(
            store
                .append_audit(entry(tenant, actor, &entity, "create"))
                .await
                .unwrap(),
        );
    }
    written
}

fn seqs(records: &[AuditRecord]) -> Vec<i64> {
    records.iter().map(|r| r.seq).collect()
}

fn filter(limit: u32) -> AuditFilter {
    AuditFilter {
        limit,
        ..AuditFilter::default()
    }
}

async fn execute(store: &PlatformStore, sql: &str) -> u64 {
    sqlx::query(sql)
        .execute(&store.pool)
        .await
        .unwrap()
        .rows_affected()
}

pub async fn records_page_by_seq_either_way_with_filters_and_stay_in_their_tenant(
    backend: Backend,
) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let written = fill(store, "acme", 6).await;
    fill(store, "globex", 3).await;
    let acme = TenantId::parse("acme").unwrap();

    let page = store.list_audit(&acme, &filter(4)).await.unwrap();
    assert_eq!(seqs(&page), [6, 5, 4, 3]);
    assert_eq!(page[0], written[5], "a record reads back as written");
    let rest = AuditFilter {
        after_seq: Some(3),
        ..filter(4)
    };
    assert_eq!(seqs(&store.list_audit(&acme, &rest).await.unwrap()), [2, 1]);
    let by_seq = AuditFilter {
        order: AuditOrder::BySeq,
        after_seq: Some(2),
        ..filter(3)
    };
    assert_eq!(
        seqs(&store.list_audit(&acme, &by_seq).await.unwrap()),
        [3, 4, 5]
    );

    // `_` in the prefix is a character, not LIKE's wildcard.
    let keys = AuditFilter {
        entity_prefix: Some("api_key/".into()),
        ..filter(10)
    };
    assert_eq!(
        seqs(&store.list_audit(&acme, &keys).await.unwrap()),
        [6, 4, 2]
    );
    execute(
        store,
        "UPDATE audit_log SET entity = 'apiXkey/k9' WHERE tenant_id = 'globex' AND seq = 2",
    )
    .await;
    let globex = TenantId::parse("globex").unwrap();
    assert_eq!(
        seqs(&store.list_audit(&globex, &keys).await.unwrap()),
        Vec::<i64>::new()
    );
    let operator = AuditFilter {
        actor: Some("operator:op".into()),
        operation: Some("create".into()),
        ..filter(10)
    };
    assert_eq!(
        seqs(&store.list_audit(&acme, &operator).await.unwrap()),
        [5, 3, 1]
    );
    let revoked = AuditFilter {
        operation: Some("revoke".into()),
        ..filter(10)
    };
    assert!(store.list_audit(&acme, &revoked).await.unwrap().is_empty());

    let mark = OffsetDateTime::now_utc();
    fill(store, "acme", 2).await;
    let since = AuditFilter {
        from: Some(mark),
        ..filter(10)
    };
    assert_eq!(
        seqs(&store.list_audit(&acme, &since).await.unwrap()),
        [8, 7]
    );
    let before = AuditFilter {
        to: Some(mark),
        ..filter(10)
    };
    assert_eq!(
        seqs(&store.list_audit(&acme, &before).await.unwrap()),
        [6, 5, 4, 3, 2, 1]
    );
    let none_after = AuditFilter {
        from: Some(mark + time::Duration::hours(1)),
        ..filter(10)
    };
    assert!(
        store
            .list_audit(&acme, &none_after)
            .await
            .unwrap()
            .is_empty()
    );

    // Every record of the page is acme's, whatever the filter.
    for record in store.list_audit(&acme, &filter(100)).await.unwrap() {
        assert_eq!(record.tenant, "acme");
    }
}

pub async fn an_untouched_chain_verifies_and_an_updated_record_is_named(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    assert_eq!(
        store.verify_audit_chain("acme").await.unwrap(),
        ChainCheck {
            records: 0,
            ok: true,
            first_bad_seq: None,
            why: None
        }
    );
    fill(store, "acme", 5).await;
    fill(store, "globex", 5).await;
    let clean = store.verify_audit_chain("acme").await.unwrap();
    assert!(clean.ok && clean.records == 5, "{clean:?}");

    let changed = execute(
        store,
        "UPDATE audit_log SET new_value = '{\"scopes\":\"*\"}' WHERE tenant_id = 'acme' AND seq = 3",
    )
    .await;
    assert_eq!(changed, 1);
    let check = store.verify_audit_chain("acme").await.unwrap();
    assert_eq!(
        (check.ok, check.first_bad_seq),
        (false, Some(3)),
        "{check:?}"
    );
    assert!(check.why.unwrap().contains("altered"));
    assert_eq!(check.records, 5);
    assert!(
        store.verify_audit_chain("globex").await.unwrap().ok,
        "another tenant's chain is its own"
    );

    // The same JSON written with other spacing hashes differently from what was hashed.
    execute(
        store,
        "UPDATE audit_log SET new_value = '{ \"note\":\"x\" }' WHERE tenant_id = 'globex' AND seq = 2",
    )
    .await;
    let check = store.verify_audit_chain("globex").await.unwrap();
    assert_eq!(check.first_bad_seq, Some(2), "{check:?}");
}

/// Whoever recomputes one record's hash after changing it still breaks the next link.
pub async fn a_rehashed_record_breaks_the_link_after_it(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let written = fill(store, "acme", 4).await;
    let mut forged = written[1].clone();
    forged.actor = "someone-else".into();
    forged.hash = forged.expected_hash();
    sqlx::query("UPDATE audit_log SET actor = $1, hash = $2 WHERE tenant_id = 'acme' AND seq = 2")
        .bind(&forged.actor)
        .bind(&forged.hash)
        .execute(&store.pool)
        .await
        .unwrap();
    let check = store.verify_audit_chain("acme").await.unwrap();
    assert_eq!(
        (check.ok, check.first_bad_seq),
        (false, Some(3)),
        "{check:?}"
    );
    assert!(check.why.unwrap().contains("does not point"));
}

pub async fn a_deleted_middle_record_or_tail_is_detected(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    fill(store, "acme", 5).await;
    fill(store, "globex", 5).await;
    execute(
        store,
        "DELETE FROM audit_log WHERE tenant_id = 'acme' AND seq = 3",
    )
    .await;
    let check = store.verify_audit_chain("acme").await.unwrap();
    assert_eq!(
        (check.ok, check.first_bad_seq),
        (false, Some(3)),
        "{check:?}"
    );
    assert_eq!(check.records, 4);
    assert!(check.why.unwrap().contains("missing"));

    execute(
        store,
        "DELETE FROM audit_log WHERE tenant_id = 'globex' AND seq >= 4",
    )
    .await;
    let check = store.verify_audit_chain("globex").await.unwrap();
    assert_eq!(
        (check.ok, check.first_bad_seq),
        (false, Some(4)),
        "{check:?}"
    );
    assert!(check.why.unwrap().contains("head"));

    // Taking the head too leaves records without one.
    execute(store, "DELETE FROM audit_heads WHERE tenant_id = 'globex'").await;
    let check = store.verify_audit_chain("globex").await.unwrap();
    assert_eq!(
        (check.ok, check.first_bad_seq),
        (false, Some(3)),
        "{check:?}"
    );
}

/// Writers appending to one chain at once take turns: every record gets its own place, the
/// numbers have no gap and the chain verifies.
pub async fn concurrent_appends_give_a_gapless_valid_chain(backend: Backend) {
    const WRITERS: usize = 50;
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_audit(entry("acme", "key:k", &format!("api_key/k{n}"), "create"))
                    .await
                    .unwrap()
                    .seq
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=WRITERS as i64).collect::<Vec<_>>());
    let check = store.verify_audit_chain("acme").await.unwrap();
    assert!(check.ok && check.records == WRITERS as u64, "{check:?}");
    eprintln!("{WRITERS} concurrent appends on {backend:?}: {elapsed:?}");
}

/// A business event repeated by the relay is recorded once, also when the repeats race.
pub async fn a_service_event_is_recorded_once_however_often_it_is_appended(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let event = |id: &str| AuditEntry {
        request_id: Some(id.into()),
        ..entry(
            "acme",
            "system:relay",
            "service/orders/o-1",
            "orders.order.created",
        )
    };
    let first = store.append_audit_once(event("ev-1")).await.unwrap();
    assert_eq!(first.map(|r| r.seq), Some(1));
    assert_eq!(store.append_audit_once(event("ev-1")).await.unwrap(), None);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let event = event("ev-2");
            tokio::spawn(async move { store.append_audit_once(event).await.unwrap() })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        written += usize::from(task.await.unwrap().is_some());
    }
    assert_eq!(written, 1);
    // Another tenant's event of the same id is its own; a gateway request id may recur.
    let elsewhere = AuditEntry {
        tenant: "globex".into(),
        ..event("ev-1")
    };
    assert!(store.append_audit_once(elsewhere).await.unwrap().is_some());
    for _ in 0..2 {
        store
            .append_audit(AuditEntry {
                request_id: Some("req-1".into()),
                ..entry("acme", "key:k", "api_key/k1", "create")
            })
            .await
            .unwrap();
    }
    assert!(store.verify_audit_chain("acme").await.unwrap().ok);
    let acme = TenantId::parse("acme").unwrap();
    assert_eq!(store.list_audit(&acme, &filter(10)).await.unwrap().len(), 4);
    let not_an_event = store
        .append_audit_once(entry("acme", "key:k", "api_key/k1", "create"))
        .await;
    assert!(not_an_event.is_err());
}

/// The export holds every record of the tenant, with its hashes, in `seq` order, across pages.
pub async fn the_export_holds_every_record_in_order_as_json_lines_or_csv(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let written = fill(store, "acme", 1001).await;
    fill(store, "globex", 2).await;
    let acme = TenantId::parse("acme").unwrap();

    let mut export = store.export_audit(&acme, ExportFormat::JsonLines);
    let mut lines = String::new();
    let mut chunks = 0;
    while let Some(chunk) = export.next_chunk().await.unwrap() {
        lines.push_str(&chunk);
        chunks += 1;
    }
    assert!(chunks >= 3, "{chunks} chunks");
    let read: Vec<AuditRecord> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(read, written);

    let mut export = store.export_audit(&acme, ExportFormat::Csv);
    let mut csv = String::new();
    while let Some(chunk) = export.next_chunk().await.unwrap() {
        csv.push_str(&chunk);
    }
    assert!(csv.starts_with(CSV_HEADER));
    // The note's comma and quotes stay inside one quoted field: one row per record.
    assert_eq!(csv.matches("\r\n").count(), 1 + written.len());
    let first_row = csv.split("\r\n").nth(1).unwrap();
    assert!(
        first_row.starts_with("acme,1,") && first_row.ends_with(&written[0].hash),
        "{first_row}"
    );
    assert!(
        first_row.contains(r#"""note"":""a,\""quoted\""\nvalue"""#),
        "{first_row}"
    );

    let empty = TenantId::parse("initech").unwrap();
    let mut export = store.export_audit(&empty, ExportFormat::Csv);
    assert_eq!(
        export.next_chunk().await.unwrap().as_deref(),
        Some(CSV_HEADER)
    );
    assert_eq!(export.next_chunk().await.unwrap(), None);
}
