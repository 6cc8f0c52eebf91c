use serde_json::json;
use switchyard_contracts::{Scopes, TenantId};

use super::decisions::record;
use super::{Backend, Fresh};
use crate::{Begin, DecisionFilter, StoredResponse};

/// Everything acme stores stays acme's: globex can neither see nor touch it.
pub async fn one_tenants_keys_configs_idempotency_records_and_decisions_are_invisible_to_another(
    backend: Backend,
) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["acme", "globex"]).await;
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();

    // A key names its own tenant, never another.
    let key = store
        .create_key(&acme, &Scopes::parse("*").unwrap())
        .await
        .unwrap();
    let verified = store.verify_key(&key.plaintext).await.unwrap().unwrap();
    assert_eq!(verified.tenant, acme);

    store
        .save_config(&acme, "cache", "memory", &json!({"secret": "acme's"}))
        .await
        .unwrap();
    assert_eq!(
        store
            .current_config(&globex, "cache", "memory")
            .await
            .unwrap(),
        None
    );
    // globex's own version count starts at 1, not after acme's.
    let saved = store
        .save_config(&globex, "cache", "memory", &json!({}))
        .await
        .unwrap();
    assert_eq!(saved.version, 1);

    // The same key and the very same request: globex runs it rather than replaying acme's.
    let fingerprint = [7u8; 32];
    let begin = |tenant: TenantId| async move {
        store
            .idempotency_begin(&tenant, "order-1", &fingerprint, 0, 60_000, 86_400_000)
            .await
            .unwrap()
    };
    assert_eq!(begin(acme.clone()).await, Begin::Proceed);
    let acmes = StoredResponse {
        status: 201,
        headers: vec![],
        body: b"acme's order".to_vec(),
    };
    store
        .idempotency_complete(&acme, "order-1", &fingerprint, &acmes)
        .await
        .unwrap();
    assert_eq!(begin(globex.clone()).await, Begin::Proceed);
    // globex's release does not free acme's record.
    store
        .idempotency_release(&globex, "order-1", &fingerprint)
        .await
        .unwrap();
    assert_eq!(begin(acme.clone()).await, Begin::Replay(acmes));

    store
        .record_decisions(&[record("a1", 1, "acme", true)])
        .await
        .unwrap();
    let all = DecisionFilter {
        limit: 10,
        ..Default::default()
    };
    assert!(
        store
            .list_decisions(&globex, &all)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_decisions(&acme, &all).await.unwrap().len(), 1);
}
