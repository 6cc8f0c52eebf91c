use std::num::NonZeroU64;

use switchyard_contracts::TenantId;
use switchyard_spi::tenancy::Quotas;

use super::{Backend, Fresh};
use crate::{Begin, PlatformStore, StoredResponse};

const LEASE_MS: i64 = 60_000;
const RETENTION_MS: i64 = 86_400_000;

async fn begin(store: &PlatformStore, tenant: &TenantId, fp: u8, now_ms: i64) -> Begin {
    store
        .idempotency_begin(tenant, "k1", &[fp; 32], now_ms, LEASE_MS, RETENTION_MS)
        .await
        .unwrap()
}

fn created(body: &str) -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

pub async fn a_first_request_proceeds_and_its_completed_response_replays(backend: Backend) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["acme"]).await;
    let acme = TenantId::parse("acme").unwrap();

    assert_eq!(begin(store, &acme, 1, 0).await, Begin::Proceed);
    assert_eq!(begin(store, &acme, 1, 10).await, Begin::InFlight);
    store
        .idempotency_complete(&acme, "k1", &[1; 32], &created(r#"{"id":7}"#))
        .await
        .unwrap();
    // Replays even after the lease ran out: a done record has no lease.
    for now in [20, LEASE_MS * 2] {
        assert_eq!(
            begin(store, &acme, 1, now).await,
            Begin::Replay(created(r#"{"id":7}"#))
        );
    }
}

pub async fn a_different_request_under_a_used_key_is_refused(backend: Backend) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["acme"]).await;
    let acme = TenantId::parse("acme").unwrap();

    assert_eq!(begin(store, &acme, 1, 0).await, Begin::Proceed);
    assert_eq!(begin(store, &acme, 2, 10).await, Begin::KeyReused);
    // Not even an expired lease frees the key for a different request.
    assert_eq!(begin(store, &acme, 2, LEASE_MS + 1).await, Begin::KeyReused);
    store
        .idempotency_complete(&acme, "k1", &[1; 32], &created("{}"))
        .await
        .unwrap();
    assert_eq!(begin(store, &acme, 2, 20).await, Begin::KeyReused);
}

pub async fn the_same_key_in_two_tenants_is_two_records(backend: Backend) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["acme", "globex"]).await;
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();

    assert_eq!(begin(store, &acme, 1, 0).await, Begin::Proceed);
    store
        .idempotency_complete(&acme, "k1", &[1; 32], &created("acme"))
        .await
        .unwrap();
    assert_eq!(begin(store, &globex, 2, 0).await, Begin::Proceed);
    assert_eq!(begin(store, &globex, 1, 0).await, Begin::KeyReused);
    store
        .idempotency_release(&globex, "k1", &[2; 32])
        .await
        .unwrap();
    assert_eq!(
        begin(store, &acme, 1, 0).await,
        Begin::Replay(created("acme"))
    );
}

pub async fn exactly_one_of_many_concurrent_first_requests_proceeds(backend: Backend) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["acme"]).await;
    let acme = TenantId::parse("acme").unwrap();

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, acme) = (store.clone(), acme.clone());
            tokio::spawn(async move { begin(&store, &acme, 1, 0).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let proceeded = outcomes.iter().filter(|b| **b == Begin::Proceed).count();
    let in_flight = outcomes.iter().filter(|b| **b == Begin::InFlight).count();
    assert_eq!((proceeded, in_flight), (1, 49));
}

pub async fn an_expired_lease_is_taken_over_by_exactly_one_request(backend: Backend) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["acme"]).await;
    let acme = TenantId::parse("acme").unwrap();
    assert_eq!(begin(store, &acme, 1, 0).await, Begin::Proceed);
    assert_eq!(begin(store, &acme, 1, LEASE_MS - 1).await, Begin::InFlight);

    let after_lease = LEASE_MS;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, acme) = (store.clone(), acme.clone());
            tokio::spawn(async move { begin(&store, &acme, 1, after_lease).await })
        })
        .collect();
    let mut proceeded = 0;
    for task in tasks {
        match task.await.unwrap() {
            Begin::Proceed => proceeded += 1,
            Begin::InFlight => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(proceeded, 1);
    // The winner holds a fresh lease.
    assert_eq!(
        begin(store, &acme, 1, after_lease + LEASE_MS - 1).await,
        Begin::InFlight
    );
}

pub async fn a_released_request_may_proceed_again(backend: Backend) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["acme"]).await;
    let acme = TenantId::parse("acme").unwrap();

    assert_eq!(begin(store, &acme, 1, 0).await, Begin::Proceed);
    // Releasing with another fingerprint does not free someone else's key.
    store
        .idempotency_release(&acme, "k1", &[2; 32])
        .await
        .unwrap();
    assert_eq!(begin(store, &acme, 1, 10).await, Begin::InFlight);
    store
        .idempotency_release(&acme, "k1", &[1; 32])
        .await
        .unwrap();
    // Completing a released record stores nothing.
    store
        .idempotency_complete(&acme, "k1", &[1; 32], &created("late"))
        .await
        .unwrap();
    assert_eq!(begin(store, &acme, 1, 20).await, Begin::Proceed);

    store
        .idempotency_complete(&acme, "k1", &[1; 32], &created("done"))
        .await
        .unwrap();
    // A completed record is not released.
    store
        .idempotency_release(&acme, "k1", &[1; 32])
        .await
        .unwrap();
    assert_eq!(
        begin(store, &acme, 1, 30).await,
        Begin::Replay(created("done"))
    );
}

pub async fn records_past_retention_neither_replay_nor_survive_purge(backend: Backend) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["acme"]).await;
    let acme = TenantId::parse("acme").unwrap();
    let begin_at = |key: &'static str, fp: u8, now_ms: i64| {
        let (store, acme) = (store.clone(), acme.clone());
        async move {
            store
                .idempotency_begin(&acme, key, &[fp; 32], now_ms, LEASE_MS, RETENTION_MS)
                .await
                .unwrap()
        }
    };
    for (key, created_at) in [("a", 0), ("b", 0), ("c", 0), ("fresh", RETENTION_MS)] {
        assert_eq!(begin_at(key, 1, created_at).await, Begin::Proceed);
        store
            .idempotency_complete(&acme, key, &[1; 32], &created(key))
            .await
            .unwrap();
    }
    let now = RETENTION_MS + 1;

    assert_eq!(begin_at("a", 1, now).await, Begin::Proceed);
    assert_eq!(begin_at("b", 2, now).await, Begin::Proceed);
    assert_eq!(
        begin_at("fresh", 1, now).await,
        Begin::Replay(created("fresh"))
    );
    // "a" and "b" were claimed anew just now; only "c" is still old.
    assert_eq!(
        store.idempotency_purge(now - RETENTION_MS).await.unwrap(),
        1
    );
    assert_eq!(
        store.idempotency_purge(now - RETENTION_MS).await.unwrap(),
        0
    );
    assert_eq!(
        begin_at("fresh", 1, now).await,
        Begin::Replay(created("fresh"))
    );
}

/// A tenant whose live records fill its quota is refused new keys before they run; its stored
/// responses still replay, another tenant is unaffected, and expired records stop counting.
pub async fn a_tenant_at_its_quota_is_refused_new_keys_until_its_records_expire(backend: Backend) {
    let fresh = Fresh::with_tenants(backend, &["acme", "globex"]).await;
    let quotas = Quotas {
        idempotency_bytes_per_tenant: NonZeroU64::new(1_000).unwrap(),
        ..Quotas::default()
    };
    let store = &fresh.store.clone().with_quotas(&quotas);
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();
    let begin_at = |tenant: &TenantId, key: &'static str, now_ms: i64| {
        let (store, tenant) = (store.clone(), tenant.clone());
        async move {
            store
                .idempotency_begin(&tenant, key, &[1; 32], now_ms, LEASE_MS, RETENTION_MS)
                .await
                .unwrap()
        }
    };

    assert_eq!(begin_at(&acme, "a", 0).await, Begin::Proceed);
    let large = created(&"x".repeat(800));
    // Admitted before the quota filled, so its response is kept whatever its size.
    store
        .idempotency_complete(&acme, "a", &[1; 32], &large)
        .await
        .unwrap();
    assert_eq!(begin_at(&acme, "b", 10).await, Begin::QuotaExceeded);
    assert_eq!(begin_at(&acme, "a", 20).await, Begin::Replay(large));
    assert_eq!(begin_at(&globex, "b", 30).await, Begin::Proceed);
    // A refused request left no record behind, and past retention "a" no longer counts.
    assert_eq!(begin_at(&acme, "b", RETENTION_MS + 1).await, Begin::Proceed);
}
