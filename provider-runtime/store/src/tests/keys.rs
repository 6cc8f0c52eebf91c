use switchyard_contracts::{Scopes, TenantId};

use super::{Backend, Fresh};
use crate::StoreError;

pub async fn a_key_verifies_once_created_and_nothing_else_does(backend: Backend) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["acme"]).await;
    let acme = TenantId::parse("acme").unwrap();
    let key = store
        .create_key(&acme, &Scopes::parse("read").unwrap())
        .await
        .unwrap();

    let verified = store.verify_key(&key.plaintext).await.unwrap().unwrap();
    assert_eq!(verified.tenant, acme);
    assert_eq!(verified.scopes.as_list(), ["read"]);

    let mut tampered = key.plaintext.clone();
    tampered.pop();
    tampered.push('x');
    for bad in [tampered.as_str(), "sy_", "nonsense", "sy_0000_abc", ""] {
        assert!(
            store.verify_key(bad).await.unwrap().is_none(),
            "{bad:?} verified"
        );
    }
}

pub async fn keys_need_an_existing_tenant_and_tenants_are_unique(backend: Backend) {
    let Fresh { store, .. } = &Fresh::new(backend).await;
    let ghost = TenantId::parse("ghost").unwrap();
    assert!(matches!(
        store.create_key(&ghost, &Scopes::parse("*").unwrap()).await,
        Err(StoreError::TenantNotFound(_))
    ));
    store.create_tenant(&ghost).await.unwrap();
    assert!(matches!(
        store.create_tenant(&ghost).await,
        Err(StoreError::TenantExists(_))
    ));
}

pub async fn keys_are_listed_revoked_and_marked_used_only_within_their_tenant(backend: Backend) {
    let Fresh { store, .. } = &Fresh::with_tenants(backend, &["acme", "globex"]).await;
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();
    let used = store
        .create_key(&acme, &Scopes::parse("invoke").unwrap())
        .await
        .unwrap();
    let idle = store
        .create_key(&acme, &Scopes::parse("read").unwrap())
        .await
        .unwrap();
    let theirs = store
        .create_key(&globex, &Scopes::parse("*").unwrap())
        .await
        .unwrap();
    store.verify_key(&used.plaintext).await.unwrap().unwrap();

    let listed = store.list_keys(&acme).await.unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|k| k.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = [used.id.as_str(), idle.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "acme sees exactly its own keys");
    let find = |id: &str| listed.iter().find(|k| k.id == id).unwrap().clone();
    assert!(find(&used.id).last_used_at.is_some());
    assert!(find(&idle.id).last_used_at.is_none());
    assert_eq!(find(&idle.id).scopes.as_list(), ["read"]);

    // Another tenant's key id is no key of acme's: nothing is revoked.
    assert!(!store.revoke_key(&acme, &theirs.id).await.unwrap());
    assert!(store.verify_key(&theirs.plaintext).await.unwrap().is_some());

    assert!(store.revoke_key(&acme, &used.id).await.unwrap());
    assert!(
        !store.revoke_key(&acme, &used.id).await.unwrap(),
        "revoked twice"
    );
    assert!(store.verify_key(&used.plaintext).await.unwrap().is_none());
    let revoked = store.list_keys(&acme).await.unwrap();
    assert!(
        revoked
            .iter()
            .any(|k| k.id == used.id && k.revoked_at.is_some())
    );
}
