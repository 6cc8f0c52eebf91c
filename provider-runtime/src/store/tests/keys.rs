use switchyard_contracts::{Scopes, TenantId};

use super::{Backend, Fresh};
use crate::store::StoreError;

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
