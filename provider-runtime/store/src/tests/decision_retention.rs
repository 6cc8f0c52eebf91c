//! The decision log's retention (per tenant, in batches) and the numbers its upload reads by.

use std::collections::BTreeSet;

use serde_json::json;
use switchyard_contracts::TenantId;

use super::decisions::record;
use super::{Backend, Fresh};
use crate::{DecisionFilter, DecisionPurge, DecisionRecord, TenantLimits, retention_days};

const DAY_MS: i64 = 24 * 3600 * 1000;
const NOW: i64 = 1_800_000_000_000;

fn keyed(id: &str, at_ms: i64, tenant: &str, revision: &str, digest: &str) -> DecisionRecord {
    DecisionRecord {
        revision: revision.into(),
        input: json!({"digest": digest}),
        input_digest: Some(digest.into()),
        ..record(id, at_ms, tenant, true)
    }
}

async fn ids_of(store: &crate::PlatformStore, tenant: &str) -> BTreeSet<String> {
    let filter = DecisionFilter {
        limit: 1000,
        ..Default::default()
    };
    store
        .list_decisions(&TenantId::parse(tenant).unwrap(), &filter)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.decision_id)
        .collect()
}

async fn inputs(store: &crate::PlatformStore) -> BTreeSet<(String, String)> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT revision, digest FROM policy_inputs ORDER BY revision, digest")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    rows.into_iter().collect()
}

/// `brief` keeps its decisions 1 day (the operator's override), `steady` the default 90:
/// each loses exactly what is older than its own cutoff, the row at the cutoff itself stays,
/// and a backlog larger than a batch goes in several batches.
pub async fn retention_deletes_exactly_what_is_older_than_each_tenants_setting(backend: Backend) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["brief", "steady"]).await;
    store
        .set_tenant_limits(
            &TenantId::parse("brief").unwrap(),
            &TenantLimits {
                decision_retention_days: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let brief_cutoff = NOW - DAY_MS;
    let steady_cutoff = NOW - 90 * DAY_MS;
    let mut batch = vec![
        // Only the old revision's decisions refer to its input: it goes with them.
        keyed("b-out", brief_cutoff - 1, "brief", "old", "x"),
        keyed("b-at", brief_cutoff, "brief", "r1", "y"),
        keyed("b-in", brief_cutoff + 1, "brief", "r1", "y"),
        keyed("s-out", steady_cutoff - 1, "steady", "old", "x"),
        keyed("s-at", steady_cutoff, "steady", "r1", "z"),
        // Older than brief's cutoff, younger than the default: steady keeps it.
        keyed("s-day", brief_cutoff - DAY_MS, "steady", "r1", "z"),
    ];
    // A backlog of brief's, in batches of two: its own revision's inputs, several batches of
    // them too, go with it; three decisions in one millisecond, more than a batch, go at once.
    batch.extend((0..9).map(|i| {
        keyed(
            &format!("b-old{i}"),
            1000 + i,
            "brief",
            "old",
            &format!("o{i}"),
        )
    }));
    batch.extend((0..3).map(|i| keyed(&format!("b-tie{i}"), 500, "brief", "r1", "w")));
    store.record_decisions(&batch).await.unwrap();

    let purged = store.purge_decisions(90, NOW, 2).await.unwrap();
    assert_eq!(
        purged,
        DecisionPurge {
            decisions: 14,
            inputs: 10
        }
    );
    assert_eq!(
        ids_of(store, "brief").await,
        BTreeSet::from(["b-at".to_owned(), "b-in".to_owned()])
    );
    assert_eq!(
        ids_of(store, "steady").await,
        BTreeSet::from(["s-at".to_owned(), "s-day".to_owned()])
    );
    // r1 still decides: its inputs stay, even `w`, whose decisions all went (a running
    // revision may log a cached decision by that digest again).
    assert_eq!(
        inputs(store).await,
        [("r1", "w"), ("r1", "y"), ("r1", "z")]
            .map(|(r, d)| (r.to_owned(), d.to_owned()))
            .into()
    );
    let kept = store
        .list_decisions(
            &TenantId::parse("steady").unwrap(),
            &DecisionFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(kept.iter().all(|d| d.input == json!({"digest": "z"})));
    // Nothing more to do: a second run deletes nothing.
    assert_eq!(
        store.purge_decisions(90, NOW, 2).await.unwrap(),
        DecisionPurge::default()
    );
}

pub async fn an_override_of_zero_days_is_the_default(_backend: Backend) {
    assert_eq!(retention_days(90, None), 90);
    assert_eq!(retention_days(90, Some(7)), 7);
    assert_eq!(retention_days(90, Some(0)), 90);
}

/// Several writers commit batches at once while an uploader reads after its cursor and moves
/// it: it gets every decision exactly once, in numbers without holes, and a stale cursor
/// cannot move it back.
pub async fn the_upload_reads_every_decision_once_while_writers_commit(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    const WRITERS: usize = 4;
    const BATCHES: usize = 25;
    const PER_BATCH: usize = 5;
    let total = WRITERS * BATCHES * PER_BATCH;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..BATCHES {
                    let batch: Vec<DecisionRecord> = (0..PER_BATCH)
                        .map(|i| {
                            let id = format!("w{w}-b{b}-{i}");
                            record(&id, NOW + (b * PER_BATCH + i) as i64, "acme", true)
                        })
                        .collect();
                    store.record_decisions(&batch).await.unwrap();
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut numbers = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while seen.len() < total {
        assert!(std::time::Instant::now() < deadline, "read {}", seen.len());
        let cursor = store.decision_upload_cursor().await.unwrap();
        let page = store.decisions_after(cursor, 7).await.unwrap();
        let Some((last, _)) = page.last() else {
            tokio::task::yield_now().await;
            continue;
        };
        assert!(
            store
                .advance_decision_upload_cursor(cursor, *last)
                .await
                .unwrap()
        );
        for (seq, decision) in page {
            numbers.push(seq);
            seen.push(decision.decision_id);
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (total, total));
    assert_eq!(numbers, (1..=total as i64).collect::<Vec<_>>());
    let at = store.decision_upload_cursor().await.unwrap();
    assert_eq!(at, total as i64);
    // An uploader that read the cursor before this one moved it cannot move it back.
    assert!(!store.advance_decision_upload_cursor(3, 5).await.unwrap());
    assert_eq!(store.decision_upload_cursor().await.unwrap(), at);
    assert!(store.decisions_after(at, 10).await.unwrap().is_empty());
}
