use std::time::Duration;

use switchyard_contracts::TenantId;

use super::{Backend, Fresh};

pub async fn a_lease_has_one_holder_until_it_runs_out_or_is_released(backend: Backend) {
    let fresh = Fresh::new(backend).await;
    let store = &fresh.store;
    let a = store
        .lease_acquire("workers/acme", "a", 60_000)
        .await
        .unwrap();
    assert_eq!(a.as_ref().map(|h| h.epoch), Some(1));
    assert_eq!(
        store
            .lease_acquire("workers/acme", "b", 60_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.lease_holders("workers/").await.unwrap(),
        vec![("workers/acme".to_owned(), "a".to_owned())]
    );
    // Released: taken at once, with the next number.
    store.lease_release("a", None).await.unwrap();
    let b = store.lease_acquire("workers/acme", "b", 200).await.unwrap();
    assert_eq!(b.map(|h| h.epoch), Some(2));
    // Run out: taken again once the store's clock passes it, and its holder cannot renew it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.lease_renew("b", 60_000).await.unwrap(), vec![]);
    let c = store
        .lease_acquire("workers/acme", "c", 60_000)
        .await
        .unwrap();
    assert_eq!(c.map(|h| h.epoch), Some(3));
    let log = store.lease_log("workers/").await.unwrap();
    let holders: Vec<&str> = log.iter().map(|row| row.holder.as_str()).collect();
    assert_eq!(holders, ["a", "b", "c"]);
    for pair in log.windows(2) {
        assert!(
            pair[1].acquired_ms > pair[0].valid_until_ms,
            "holdings overlap: {pair:?}"
        );
    }
}

pub async fn renewing_extends_every_lease_of_its_holder_and_only_those(backend: Backend) {
    let fresh = Fresh::new(backend).await;
    let store = &fresh.store;
    for name in ["workers/a", "workers/b"] {
        store
            .lease_acquire(name, "one", 1_000)
            .await
            .unwrap()
            .unwrap();
    }
    store
        .lease_acquire("workers/c", "two", 1_000)
        .await
        .unwrap()
        .unwrap();
    let before = store.lease_log("workers/").await.unwrap();
    let renewed = store.lease_renew("one", 120_000).await.unwrap();
    let mut names: Vec<&str> = renewed.iter().map(|h| h.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["workers/a", "workers/b"]);
    let after = store.lease_log("workers/").await.unwrap();
    for (old, new) in before.iter().zip(&after) {
        let renewed = new.holder == "one";
        assert_eq!(
            new.valid_until_ms > old.valid_until_ms + 100_000,
            renewed,
            "{new:?}"
        );
    }
    // Released by name: the other stays held.
    store
        .lease_release("one", Some(&["workers/a".to_owned()]))
        .await
        .unwrap();
    let held = store.lease_holders("workers/").await.unwrap();
    assert_eq!(
        held,
        vec![
            ("workers/b".to_owned(), "one".to_owned()),
            ("workers/c".to_owned(), "two".to_owned())
        ]
    );
}

pub async fn of_many_concurrent_takers_exactly_one_holds_the_lease(backend: Backend) {
    let fresh = Fresh::new(backend).await;
    let store = &fresh.store;
    let takers = (0..8).map(|n| {
        let store = fresh.store.clone();
        tokio::spawn(async move {
            store
                .lease_acquire("workers/acme", &format!("r{n}"), 60_000)
                .await
        })
    });
    let mut won = 0;
    for taker in takers {
        if taker.await.unwrap().unwrap().is_some() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.lease_log("workers/").await.unwrap().len(), 1);
}

pub async fn hosted_tenants_are_marked_once_and_listed_while_they_exist(backend: Backend) {
    let fresh = Fresh::with_tenants(backend, &["acme", "globex"]).await;
    let store = &fresh.store;
    assert!(store.hosted_tenants().await.unwrap().is_empty());
    for tenant in ["globex", "acme", "globex"] {
        store
            .mark_hosted_tenant(&TenantId::parse(tenant).unwrap())
            .await
            .unwrap();
    }
    let hosted: Vec<String> = store
        .hosted_tenants()
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(hosted, ["acme", "globex"]);
}
