use super::{Backend, Fresh};

/// What `POST /providers/register` stored is there after a restart, once per provider, and
/// gone once deleted.
pub async fn registrations_survive_reopening_and_are_unique_until_deleted(backend: Backend) {
    let fresh = Fresh::new(backend).await;
    let manifest = r#"{"domain":"cache","name":"remote","endpoint":"http://127.0.0.1:1"}"#;
    fresh
        .store
        .save_registration("cache", "remote", manifest, "core")
        .await
        .unwrap();
    assert!(
        fresh
            .store
            .save_registration("cache", "remote", manifest, "core")
            .await
            .is_err(),
        "a second registration of one provider was stored"
    );

    let store = fresh.reopen().await;
    let kept = store.registrations().await.unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        (kept[0].domain.as_str(), kept[0].name.as_str()),
        ("cache", "remote")
    );
    assert_eq!(
        (kept[0].manifest.as_str(), kept[0].certification.as_str()),
        (manifest, "core")
    );

    assert!(store.delete_registration("cache", "remote").await.unwrap());
    assert!(!store.delete_registration("cache", "remote").await.unwrap());
    assert!(store.registrations().await.unwrap().is_empty());
}
