use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use switchyard_contracts::TenantId;

use super::{Backend, Fresh};
use crate::{AuditRow, Bucket, Charge, PlatformStore, Reserve, StoreError};

const DAY: &str = "key:k_abc|tokens|day|2026-12-07";
const MONTH: &str = "tenant|cost|month|2026-12";
/// The end of every bucket's window in these tests, unless a test says otherwise.
const WINDOW_END_MS: i64 = 1_000_000;
const LEASE_UNTIL_MS: i64 = 60_000;

fn charge(bucket: &str, cap: i64, amount: i64) -> Charge {
    Charge {
        bucket: bucket.into(),
        cap,
        amount,
        expires_at_ms: WINDOW_END_MS,
    }
}

async fn reserve(
    store: &PlatformStore,
    tenant: &TenantId,
    id: &str,
    charges: &[Charge],
) -> Reserve {
    store
        .ai_reserve(tenant, id, charges, LEASE_UNTIL_MS)
        .await
        .unwrap()
}

/// `(cap, spent, reserved)` of one bucket, or None if it does not exist.
async fn counts(store: &PlatformStore, tenant: &TenantId, bucket: &str) -> Option<(i64, i64, i64)> {
    store
        .ai_usage(tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.bucket == bucket)
        .map(|b| (b.cap, b.spent, b.reserved))
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// Three replicas (independently opened stores on one database) reserve 200 × 10 against one
/// cap of 1000 at once: exactly 100 are granted, the bucket never holds more than its cap, and
/// settling every grant at 7 leaves 700 spent and nothing reserved.
pub async fn concurrent_reservations_from_several_replicas_never_exceed_the_cap(backend: Backend) {
    let fresh = Fresh::new(backend).await;
    let replicas = [
        fresh.store.clone(),
        fresh.reopen().await,
        fresh.reopen().await,
    ];
    let acme = acme();
    // A bucket that exists before the race, so the watcher has something to read from the start.
    assert_eq!(
        reserve(&replicas[0], &acme, "warm-up", &[charge(DAY, 1000, 0)]).await,
        Reserve::Granted
    );
    assert!(replicas[0].ai_settle(&acme, "warm-up", &[]).await.unwrap());

    let racing = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (store, acme, racing) = (replicas[1].clone(), acme.clone(), racing.clone());
        tokio::spawn(async move {
            let mut looks = 0;
            while racing.load(Ordering::SeqCst) {
                let (cap, spent, reserved) = counts(&store, &acme, DAY).await.unwrap();
                assert!(spent + reserved <= cap, "{spent} + {reserved} > {cap}");
                looks += 1;
            }
            looks
        })
    };
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (store, acme) = (replicas[i % replicas.len()].clone(), acme.clone());
            tokio::spawn(async move {
                let id = format!("r{i}");
                let outcome = reserve(&store, &acme, &id, &[charge(DAY, 1000, 10)]).await;
                (id, outcome)
            })
        })
        .collect();
    let mut granted = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (id, Reserve::Granted) => granted.push(id),
            (_, Reserve::Refused { bucket, cap, .. }) => {
                assert_eq!((bucket.as_str(), cap), (DAY, 1000))
            }
        }
    }
    racing.store(false, Ordering::SeqCst);
    assert!(
        watcher.await.unwrap() > 0,
        "the watcher looked at least once"
    );
    assert_eq!(granted.len(), 100);
    assert_eq!(
        counts(&replicas[2], &acme, DAY).await,
        Some((1000, 0, 1000))
    );

    let settles: Vec<_> = granted
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let (store, acme) = (replicas[i % replicas.len()].clone(), acme.clone());
            tokio::spawn(async move { store.ai_settle(&acme, &id, &[(DAY.into(), 7)]).await })
        })
        .collect();
    for settle in settles {
        assert!(settle.await.unwrap().unwrap());
    }
    assert_eq!(counts(&replicas[0], &acme, DAY).await, Some((1000, 700, 0)));
}

/// A call counted against two buckets is refused as a whole when the second is full: the
/// first is not charged either.
pub async fn a_reservation_over_several_buckets_is_all_or_nothing(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let acme = acme();
    assert_eq!(
        reserve(store, &acme, "fill", &[charge(MONTH, 50, 50)]).await,
        Reserve::Granted
    );

    let both = [charge(DAY, 1000, 10), charge(MONTH, 50, 1)];
    assert_eq!(
        reserve(store, &acme, "r1", &both).await,
        Reserve::Refused {
            bucket: MONTH.into(),
            cap: 50,
            spent: 0,
            reserved: 50
        }
    );
    // Not even created: the refused call left no trace, not its reservation either.
    assert_eq!(counts(store, &acme, DAY).await, None);
    assert!(!store.ai_settle(&acme, "r1", &[]).await.unwrap());

    assert!(
        store
            .ai_settle(&acme, "fill", &[(MONTH.into(), 40)])
            .await
            .unwrap()
    );
    assert_eq!(reserve(store, &acme, "r1", &both).await, Reserve::Granted);
    assert_eq!(counts(store, &acme, DAY).await, Some((1000, 0, 10)));
    assert_eq!(counts(store, &acme, MONTH).await, Some((50, 40, 1)));
}

/// The same bucket name in two tenants is two budgets, and neither tenant's usage or audit
/// records show, page or purge the other's.
pub async fn one_tenants_budgets_and_audit_records_are_invisible_to_another(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let acme = acme();
    let globex = TenantId::parse("globex").unwrap();

    assert_eq!(
        reserve(store, &acme, "r1", &[charge(DAY, 10, 10)]).await,
        Reserve::Granted
    );
    // acme's full bucket does not refuse globex, and acme's reservation id is not globex's.
    assert_eq!(
        reserve(store, &globex, "r1", &[charge(DAY, 10, 4)]).await,
        Reserve::Granted
    );
    assert!(!store.ai_settle(&globex, "r2", &[]).await.unwrap());
    assert!(
        store
            .ai_settle(&globex, "r1", &[(DAY.into(), 3)])
            .await
            .unwrap()
    );
    assert_eq!(counts(store, &acme, DAY).await, Some((10, 0, 10)));
    assert_eq!(
        store.ai_usage(&globex).await.unwrap(),
        [Bucket {
            bucket: DAY.into(),
            cap: 10,
            spent: 3,
            reserved: 0,
            expires_at_ms: WINDOW_END_MS
        }]
    );

    store
        .ai_audit_append(&[audit(&acme, 1, 100), audit(&globex, 2, 100)])
        .await
        .unwrap();
    let ids = |rows: Vec<AuditRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.ai_audit_list(&acme, None, None, 10).await.unwrap()),
        [uuid(1)]
    );
    // globex's cursor past its own newest record does not reach acme's.
    assert_eq!(
        ids(store
            .ai_audit_list(&globex, None, Some(&uuid(9)), 10)
            .await
            .unwrap()),
        [uuid(2)]
    );
    assert_eq!(store.ai_audit_purge(&globex, 1_000).await.unwrap(), 1);
    assert_eq!(
        ids(store.ai_audit_list(&acme, None, None, 10).await.unwrap()),
        [uuid(1)]
    );
}

/// A settle counts once, whether repeated or for a reservation never made, and a bucket the
/// call did not use spends nothing.
pub async fn settling_counts_the_actual_use_once(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let acme = acme();
    let both = [charge(DAY, 100, 30), charge(MONTH, 100, 5)];
    assert_eq!(reserve(store, &acme, "r1", &both).await, Reserve::Granted);

    // Naming a bucket the call did not reserve is refused and changes nothing.
    let stray = store
        .ai_settle(&acme, "r1", &[("elsewhere".into(), 1)])
        .await;
    assert!(matches!(stray, Err(StoreError::Invalid(_))), "{stray:?}");
    assert_eq!(counts(store, &acme, DAY).await, Some((100, 0, 30)));

    assert!(
        store
            .ai_settle(&acme, "r1", &[(DAY.into(), 12)])
            .await
            .unwrap()
    );
    assert!(
        !store
            .ai_settle(&acme, "r1", &[(DAY.into(), 12)])
            .await
            .unwrap()
    );
    assert!(!store.ai_settle(&acme, "never", &[]).await.unwrap());
    assert_eq!(counts(store, &acme, DAY).await, Some((100, 12, 0)));
    assert_eq!(counts(store, &acme, MONTH).await, Some((100, 0, 0)));

    // A reservation id is one call's: reusing one while held is refused, charging nothing.
    assert_eq!(reserve(store, &acme, "r2", &both).await, Reserve::Granted);
    let reused = store.ai_reserve(&acme, "r2", &both, LEASE_UNTIL_MS).await;
    assert!(matches!(reused, Err(StoreError::Invalid(_))), "{reused:?}");
    assert_eq!(counts(store, &acme, DAY).await, Some((100, 12, 30)));
}

/// A reservation whose lease ran out (its replica died) is counted as fully spent, once; a
/// live one is left alone, and a bucket whose window ended is deleted.
pub async fn an_expired_reservation_is_settled_as_spent_and_ended_windows_go(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let acme = acme();
    let yesterday = Charge {
        expires_at_ms: 500,
        ..charge("key:k_abc|tokens|day|2026-12-06", 100, 1)
    };
    assert_eq!(
        store
            .ai_reserve(&acme, "old", &[yesterday], 400)
            .await
            .unwrap(),
        Reserve::Granted
    );
    let both = [charge(DAY, 100, 30), charge(MONTH, 100, 5)];
    assert_eq!(
        store.ai_reserve(&acme, "dead", &both, 1_000).await.unwrap(),
        Reserve::Granted
    );
    assert_eq!(
        store
            .ai_reserve(&acme, "live", &[charge(DAY, 100, 20)], 2_000)
            .await
            .unwrap(),
        Reserve::Granted
    );

    assert_eq!(store.ai_expire_reservations(999).await.unwrap(), 1);
    assert_eq!(store.ai_expire_reservations(1_000).await.unwrap(), 1);
    assert_eq!(store.ai_expire_reservations(1_500).await.unwrap(), 0);
    let buckets: Vec<_> = store
        .ai_usage(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.bucket, b.spent, b.reserved))
        .collect();
    assert_eq!(buckets, [(DAY.into(), 30, 20), (MONTH.into(), 5, 0)]);
    // The dead replica's late settle is a no-op: the sweep already counted the call.
    assert!(
        !store
            .ai_settle(&acme, "dead", &[(DAY.into(), 1)])
            .await
            .unwrap()
    );
    assert!(
        store
            .ai_settle(&acme, "live", &[(DAY.into(), 20)])
            .await
            .unwrap()
    );
    assert_eq!(counts(store, &acme, DAY).await, Some((100, 50, 0)));

    assert_eq!(
        store.ai_expire_reservations(WINDOW_END_MS).await.unwrap(),
        0
    );
    assert_eq!(store.ai_usage(&acme).await.unwrap(), []);
}

/// The cap is the newest config's: raising it admits more at once, lowering it below what is
/// counted refuses every new call, and a refusal does not keep the cap it was refused under.
pub async fn the_cap_follows_the_newest_config(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let acme = acme();
    assert_eq!(
        reserve(store, &acme, "r1", &[charge(DAY, 100, 80)]).await,
        Reserve::Granted
    );
    assert!(matches!(
        reserve(store, &acme, "r2", &[charge(DAY, 100, 30)]).await,
        Reserve::Refused { cap: 100, .. }
    ));
    assert_eq!(
        reserve(store, &acme, "r2", &[charge(DAY, 200, 30)]).await,
        Reserve::Granted
    );
    assert_eq!(counts(store, &acme, DAY).await, Some((200, 0, 110)));

    assert_eq!(
        reserve(store, &acme, "r3", &[charge(DAY, 50, 1)]).await,
        Reserve::Refused {
            bucket: DAY.into(),
            cap: 50,
            spent: 0,
            reserved: 110
        }
    );
    assert_eq!(counts(store, &acme, DAY).await, Some((200, 0, 110)));
}

/// Malformed charges are refused before anything is written.
pub async fn negative_or_repeated_charges_are_invalid(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let acme = acme();
    for charges in [
        vec![charge(DAY, 100, -1)],
        vec![charge(DAY, -1, 1)],
        vec![charge(DAY, 100, 1), charge(DAY, 100, 1)],
    ] {
        let refused = store
            .ai_reserve(&acme, "r1", &charges, LEASE_UNTIL_MS)
            .await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{refused:?}"
        );
    }
    assert_eq!(store.ai_usage(&acme).await.unwrap(), []);
    assert_eq!(
        reserve(store, &acme, "r1", &[charge(DAY, 100, 1)]).await,
        Reserve::Granted
    );
    let negative = store.ai_settle(&acme, "r1", &[(DAY.into(), -1)]).await;
    assert!(
        matches!(negative, Err(StoreError::Invalid(_))),
        "{negative:?}"
    );
    assert_eq!(counts(store, &acme, DAY).await, Some((100, 0, 1)));
}

/// A UUIDv7-shaped id whose order is `n`'s.
fn uuid(n: u32) -> String {
    format!("0190a000-0000-7000-8000-{n:012}")
}

fn audit(tenant: &TenantId, n: u32, at_ms: i64) -> AuditRow {
    AuditRow {
        tenant: tenant.clone(),
        id: uuid(n),
        at_ms,
        record: json!({"n": n, "model": "gpt-x", "usage": {"total_tokens": 12}}),
    }
}

/// Audit records read back newest first, page by cursor, filter by time, survive a retried
/// batch without doubling, and purge by age.
pub async fn audit_records_page_newest_first_and_purge_by_age(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let acme = acme();
    let batch: Vec<AuditRow> = (1..=600)
        .map(|n| audit(&acme, n, i64::from(n) * 10))
        .collect();
    store.ai_audit_append(&batch).await.unwrap();
    // The same batch again, as after a lost commit acknowledgement: nothing doubles.
    store.ai_audit_append(&batch[590..]).await.unwrap();

    let page = store.ai_audit_list(&acme, None, None, 3).await.unwrap();
    assert_eq!(
        page,
        [batch[599].clone(), batch[598].clone(), batch[597].clone()]
    );
    let next = store
        .ai_audit_list(&acme, None, Some(&page[2].id), 2)
        .await
        .unwrap();
    assert_eq!(next, [batch[596].clone(), batch[595].clone()]);
    let since = store
        .ai_audit_list(&acme, Some(5_980), None, 100)
        .await
        .unwrap();
    assert_eq!(since.len(), 3);

    assert_eq!(store.ai_audit_purge(&acme, 5_000).await.unwrap(), 499);
    let rest = store.ai_audit_list(&acme, None, None, 1_000).await.unwrap();
    assert_eq!(rest.len(), 101);
    assert_eq!(rest.last().unwrap().id, uuid(500));
}
