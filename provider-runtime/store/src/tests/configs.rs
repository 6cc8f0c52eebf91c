use std::num::NonZeroU32;

use serde_json::json;
use switchyard_contracts::TenantId;
use switchyard_spi::tenancy::Quotas;

use super::{Backend, Fresh};

pub async fn versions_grow_and_survive_reopening_the_store(backend: Backend) {
    let fresh = Fresh::with_tenants(backend, &["acme"]).await;
    let acme = TenantId::parse("acme").unwrap();
    for (domain, name, values, version) in [
        ("cache", "memory", json!({"a": 1}), 1),
        ("cache", "memory", json!({"a": 2}), 2),
        ("db", "sqlite", json!({}), 1),
    ] {
        let saved = fresh
            .store
            .save_config(&acme, domain, name, &values)
            .await
            .unwrap();
        assert_eq!(saved.version, version);
    }

    let store = fresh.reopen().await;
    let current = store
        .current_config(&acme, "cache", "memory")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((current.version, current.values), (2, json!({"a": 2})));
}

/// Replicas configuring the same provider at once must each get a version of their own, and
/// none an error. A save conflicts at most once per other writer's save, so 4 writers of 5
/// saves stay within the store's 16 attempts.
pub async fn concurrent_saves_of_one_config_get_distinct_versions(backend: Backend) {
    const WRITERS: i64 = 4;
    const SAVES: i64 = 5;
    let fresh = Fresh::with_tenants(backend, &["acme"]).await;
    let acme = TenantId::parse("acme").unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, acme) = (fresh.store.clone(), acme.clone());
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for save in 0..SAVES {
                    let values = json!({ "writer": writer, "save": save });
                    let saved = store.save_config(&acme, "cache", "memory", &values).await;
                    versions.push(saved.unwrap().version);
                }
                versions
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.extend(task.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=WRITERS * SAVES).collect::<Vec<_>>());
    let current = fresh
        .store
        .current_config(&acme, "cache", "memory")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.version, WRITERS * SAVES);
}

/// Only the newest `config_versions_kept` versions of a provider's config stay; numbering
/// goes on, and other providers' and tenants' versions are untouched.
pub async fn only_the_newest_config_versions_are_kept(backend: Backend) {
    let fresh = Fresh::with_tenants(backend, &["acme", "globex"]).await;
    let quotas = Quotas {
        config_versions_kept: NonZeroU32::new(3).unwrap(),
        ..Quotas::default()
    };
    let store = fresh.store.clone().with_quotas(&quotas);
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();
    store
        .save_config(&globex, "cache", "memory", &json!({}))
        .await
        .unwrap();
    store
        .save_config(&acme, "db", "sqlite", &json!({}))
        .await
        .unwrap();
    for n in 1..=5 {
        let saved = store
            .save_config(&acme, "cache", "memory", &json!({ "n": n }))
            .await
            .unwrap();
        assert_eq!(saved.version, n);
    }
    let versions = |tenant: &'static str, name: &'static str| {
        let store = store.clone();
        async move {
            let rows: Vec<i64> = sqlx::query_scalar(
                "SELECT version FROM provider_configs
                  WHERE tenant_id = $1 AND name = $2 ORDER BY version",
            )
            .bind(tenant)
            .bind(name)
            .fetch_all(&store.pool)
            .await
            .unwrap();
            rows
        }
    };
    assert_eq!(versions("acme", "memory").await, [3, 4, 5]);
    assert_eq!(versions("acme", "sqlite").await, [1]);
    assert_eq!(versions("globex", "memory").await, [1]);
    let current = store
        .current_config(&acme, "cache", "memory")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((current.version, current.values), (5, json!({"n": 5})));
}

pub async fn a_certification_is_kept_per_provider_version_and_replaced_by_a_rerun(
    backend: Backend,
) {
    let fresh = Fresh::new(backend).await;
    let store = &fresh.store;
    store
        .record_certification("cache", "memory", "0.1.0", "core", "{}")
        .await
        .unwrap();
    store
        .record_certification("cache", "memory", "0.1.0", "core+isolation", "{}")
        .await
        .unwrap();
    store
        .record_certification("cache", "memory", "0.2.0", "none", "{}")
        .await
        .unwrap();
    let mut all = fresh.reopen().await.certifications().await.unwrap();
    all.sort_by(|a, b| a.version.cmp(&b.version));
    let levels: Vec<(&str, &str)> = all
        .iter()
        .map(|c| (c.version.as_str(), c.certification.as_str()))
        .collect();
    assert_eq!(levels, [("0.1.0", "core+isolation"), ("0.2.0", "none")]);
}

/// Each version keeps who saved it, its diff and its note; the history lists the kept ones
/// newest first; a missing version is told apart as pruned or never saved.
pub async fn the_history_keeps_each_versions_note_and_tells_pruned_from_never(backend: Backend) {
    use crate::{ConfigNote, VersionLookup};
    let fresh = Fresh::with_tenants(backend, &["acme", "globex"]).await;
    let quotas = Quotas {
        config_versions_kept: NonZeroU32::new(2).unwrap(),
        ..Quotas::default()
    };
    let store = fresh.store.clone().with_quotas(&quotas);
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();
    for n in 1..=3 {
        let note = ConfigNote {
            actor: Some(format!("key:{n}")),
            diff: Some(json!([{"op": "replace", "path": "/n", "old": n - 1, "new": n}])),
            note: (n == 3).then(|| "rollback to 1".to_owned()),
        };
        store
            .save_config_noted(&acme, "cache", "memory", &json!({ "n": n }), &note)
            .await
            .unwrap();
    }
    // An unnoted save (the platform's own, or one from before the history) has no note.
    store
        .save_config(&globex, "cache", "memory", &json!({}))
        .await
        .unwrap();

    let history = store
        .config_history(&acme, "cache", "memory")
        .await
        .unwrap();
    let listed: Vec<(i64, Option<String>, Option<String>)> = history
        .iter()
        .map(|v| (v.version, v.note.actor.clone(), v.note.note.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (3, Some("key:3".into()), Some("rollback to 1".into())),
            (2, Some("key:2".into()), None),
        ]
    );
    assert_eq!(history[0].values, json!({"n": 3}));
    assert_eq!(history[1].note.diff.as_ref().unwrap()[0]["new"], json!(2));
    let other = store
        .config_history(&globex, "cache", "memory")
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].note, ConfigNote::default());
    assert_eq!(store.config_versions_kept(), 2);

    match store
        .config_version(&acme, "cache", "memory", 2)
        .await
        .unwrap()
    {
        VersionLookup::Found(found) => assert_eq!(found.values, json!({"n": 2})),
        other => panic!("version 2: {other:?}"),
    }
    assert_eq!(
        store
            .config_version(&acme, "cache", "memory", 1)
            .await
            .unwrap(),
        VersionLookup::Pruned { oldest_kept: 2 }
    );
    for never in [0, 4, 99] {
        assert_eq!(
            store
                .config_version(&acme, "cache", "memory", never)
                .await
                .unwrap(),
            VersionLookup::Never,
            "{never}"
        );
    }
    // Another tenant's versions are not this tenant's: globex has version 1, acme sees none
    // of it, and acme's pruned version 1 is not globex's.
    assert_eq!(
        store
            .config_version(&acme, "db", "sqlite", 1)
            .await
            .unwrap(),
        VersionLookup::Never
    );
    assert!(matches!(
        store.config_version(&globex, "cache", "memory", 1).await.unwrap(),
        VersionLookup::Found(found) if found.values == json!({})
    ));
}

/// The platform counts a tenant's secret writes per name and lists them for that tenant only;
/// it has nowhere to keep a value.
pub async fn secret_writes_are_counted_per_tenant_and_name(backend: Backend) {
    let fresh = Fresh::with_tenants(backend, &["acme", "globex"]).await;
    let store = &fresh.store;
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();
    assert_eq!(
        store
            .record_secret_write(&acme, "pg", "key:a")
            .await
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        store
            .record_secret_write(&acme, "pg", "key:a")
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        store
            .record_secret_write(&acme, "api", "key:b")
            .await
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        store
            .record_secret_write(&globex, "pg", "key:c")
            .await
            .unwrap()
            .version,
        1
    );
    let names = |list: Vec<crate::SecretMeta>| -> Vec<(String, i64)> {
        list.into_iter().map(|s| (s.name, s.version)).collect()
    };
    assert_eq!(
        names(store.tenant_secrets(&acme).await.unwrap()),
        [("api".to_owned(), 1), ("pg".to_owned(), 2)]
    );
    assert_eq!(
        names(store.tenant_secrets(&globex).await.unwrap()),
        [("pg".to_owned(), 1)]
    );
    let columns: Vec<String> = match backend {
        Backend::Sqlite => sqlx::query_scalar("SELECT name FROM pragma_table_info('tenant_secrets')")
            .fetch_all(&store.pool)
            .await
            .unwrap(),
        Backend::Postgres => sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'tenant_secrets' ORDER BY ordinal_position",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap(),
    };
    assert_eq!(columns.len(), 5, "{columns:?}");
    assert!(!columns.iter().any(|c| c.contains("value")), "{columns:?}");
}
