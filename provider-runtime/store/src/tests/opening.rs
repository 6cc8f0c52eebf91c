//! Choosing and opening a backend: what only one backend has, or none.

use switchyard_contracts::TenantId;

use super::throwaway;
use crate::{PlatformStore, StoreError, redacted_url};

const PASSWORD: &str = "hunter2-must-not-show";

#[tokio::test]
async fn an_unsupported_url_is_refused_without_echoing_it() {
    for (url, names) in [
        (format!("mysql://app:{PASSWORD}@db/platform"), "mysql://"),
        (format!("host=db password={PASSWORD}"), "postgres://"),
    ] {
        let Err(StoreError::Invalid(message)) = PlatformStore::connect(&url).await else {
            panic!("{url} was not refused as invalid");
        };
        assert!(message.contains(names), "{message}");
        assert!(!message.contains(PASSWORD), "{message}");
    }
}

#[test]
fn redacted_urls_show_where_but_never_a_password() {
    assert_eq!(
        redacted_url(&format!(
            "postgres://app:{PASSWORD}@db.internal:6432/platform?password={PASSWORD}"
        )),
        "postgres://app@db.internal:6432/platform"
    );
    assert!(!redacted_url(&format!("postgresql://app:{PASSWORD}@db:x/p")).contains(PASSWORD));
    assert!(!redacted_url(&format!("mysql://app:{PASSWORD}@db/p")).contains(PASSWORD));
    assert!(!redacted_url(&format!("password={PASSWORD}")).contains(PASSWORD));
}

#[tokio::test]
async fn a_postgres_error_never_shows_the_password() {
    let server = throwaway::server_url();
    let (scheme, rest) = server.split_once("://").unwrap();
    let (user, host) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let user = user.split(':').next().unwrap();
    let url = throwaway::with_database(
        &format!("{scheme}://{user}:{PASSWORD}@{host}"),
        "sy_store_no_such_database",
    );
    let Err(error) = PlatformStore::connect(&url).await else {
        panic!("a database that does not exist opened");
    };
    let message = error.to_string();
    assert!(message.contains("does not exist"), "{message}");
    assert!(!message.contains(PASSWORD), "{message}");
}

/// The Any driver cannot carry SQLite's options, so they are set on every connection; these
/// are the settings the store had before it ran on the Any driver.
#[tokio::test]
async fn the_data_dirs_store_keeps_its_durability_settings() {
    let dir = tempfile::tempdir().unwrap();
    let store = PlatformStore::open(dir.path()).await.unwrap();
    let mut conn = store.pool.acquire().await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    // FULL is 2; the busy timeout is in milliseconds.
    for (pragma, expected) in [
        ("synchronous", 2),
        ("foreign_keys", 1),
        ("busy_timeout", 5000),
    ] {
        let value: i64 = sqlx::query_scalar(&format!("PRAGMA {pragma}"))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(value, expected, "PRAGMA {pragma}");
    }
}

/// `sqlite://` opens the very file the data dir default does.
#[tokio::test]
async fn a_sqlite_url_opens_the_data_dirs_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/platform.db", dir.path().display());
    let acme = TenantId::parse("acme").unwrap();
    PlatformStore::connect(&url)
        .await
        .unwrap()
        .create_tenant(&acme)
        .await
        .unwrap();
    let store = PlatformStore::open(dir.path()).await.unwrap();
    assert!(store.tenant_exists(&acme).await.unwrap());
}

/// sqlx refuses to open a store whose applied migrations' checksums differ from its own, so
/// these files must stay byte for byte what every existing data dir recorded (they moved from
/// `migrations/` to `migrations/sqlite/` unchanged); a new migration is appended here once. The PostgreSQL schema follows the same
/// version numbers.
#[test]
fn the_sqlite_migrations_are_the_ones_existing_data_dirs_recorded() {
    let sqlite = sqlx::migrate!("./migrations/sqlite");
    let recorded = [
        "63cbf81d4d176217dc4ee364baff09ada0b9bb2725e1d184b36624a9d74c7fe3df601aa09a44be8975331fcd3141511a",
        "1ea2b6d2f9ce8823dd6c9d8419a0fd2f73179c56861c79c88a370ad1455c5df96a35bb8ff51ad5ad4a6a302039c1ed84",
        "c630c4885c2e1b47f10ece767e7464ff7b7aceb376dfefe39f6cca2be18886f9346165886b728ff9bc3262e21c8dfbeb",
        "ee1d838dc413cbfbec2ba3efb799c9843675cd274dd5c9011b275e7b89f7f807045ef73125dce88b7418b2e2b46ffc50",
        "8c13943e0197dd21b05c2dda29f3081d2f0b3d0557f8c0a7ac292ed98e980fe36e943b171007be89d86d0c10bc069cfa",
        "ba5b7d163ef124cd2aa1c72a2be800ff0a7b1e93e7f1de2fb3b9b2b354acda464d47fd0668cd55976496394ffbac9f6f",
        "8701e670202428d7c991bba2e82d7d04e83910152635e6f52f395f1dac77d7d2eaafcb8bf14bd0b51062df57387d5baa",
        "c07da692cdddee12cc2348ccd6fe28f01b31575532abe7023a58be40e7b3844c4528081d5c90d6761488ca651d514fa6",
        "4b0b620f0362f2633a63a14df3d87102c112d9b531ea5d9fc0d27a1be8923b58c734b3731d12a05d11b3836f7f3b3a99",
        "af02e89418b76c7570b3d5a822bd561c1f860272d5f886f59b4a0a2482798d09a38cbb3e6f2a1c784bef44c392476d4e",
        "1b8a1cad02016eabe597831cfa14b5bc481b7315a76d04fe9a5a60b91370a737ca167a57d1f0bedb2f3d6dfe30d49a5f",
        "4ba0057ec7844935938d95b4caf16d4e7a51b4e7584f7bb342deea6c22bee35d422575781cd98209e07eafcc85b5145b",
        "e8ba2513ceee0194ac7d4d5b61d7c1818cc6a6ba80fde3c58a7e0e563f87c9ce66a97e46c0823cac5e209d2d254e944f",
        "d322921d9a65f5d0169157449f541140ad64672ce48c7053764c3ba8da6333dcc53bfbe930271253e296fe7726d8b4c1",
    ];
    let checksums: Vec<String> = sqlite
        .iter()
        .map(|m| hex::encode(&m.checksum[..]))
        .collect();
    assert_eq!(checksums, recorded);
    let versions = |migrator: &sqlx::migrate::Migrator| -> Vec<(i64, String)> {
        migrator
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    };
    assert_eq!(
        versions(&sqlite),
        versions(&sqlx::migrate!("./migrations/postgres"))
    );
}

/// Two replicas on one PostgreSQL store: a save through one is heard by the other's feed with
/// its version; the data dir's SQLite store, one process's own, has no feed.
#[tokio::test]
async fn a_config_saved_by_one_replica_reaches_the_others_feed() {
    let database = throwaway::TestDatabase::create("feed").await;
    let saver = PlatformStore::connect(&database.url).await.unwrap();
    let listener = PlatformStore::connect(&database.url).await.unwrap();
    let mut feed = listener
        .feed(crate::FeedKind::Configs)
        .await
        .unwrap()
        .expect("a feed on PostgreSQL");
    let acme = TenantId::parse("acme").unwrap();
    saver.create_tenant(&acme).await.unwrap();
    for expected in 1..=2 {
        saver
            .save_config(&acme, "cache", "redis", &serde_json::json!({"n": expected}))
            .await
            .unwrap();
        let heard = tokio::time::timeout(std::time::Duration::from_secs(5), feed.next())
            .await
            .expect("the change within 5 s")
            .unwrap();
        assert_eq!(
            heard,
            crate::Change::Config(crate::ConfigChange {
                tenant: "acme".into(),
                domain: "cache".into(),
                name: "redis".into(),
                version: expected,
            })
        );
    }
    let latest = listener.latest_config_versions().await.unwrap();
    assert_eq!(
        latest,
        vec![((acme, "cache".to_owned(), "redis".to_owned()), 2)]
    );
    let dir = tempfile::tempdir().unwrap();
    let local = PlatformStore::open(dir.path()).await.unwrap();
    assert!(
        local
            .feed(crate::FeedKind::Configs)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!local.is_shared() && saver.is_shared());
}

/// A tenant secret written through one replica is heard, by name only, on the others' config
/// feed (they restart the instances using it), and not on the workers' feed.
#[tokio::test]
async fn a_secret_write_reaches_the_other_replicas_config_feed() {
    let database = throwaway::TestDatabase::create("secret_feed").await;
    let writer = PlatformStore::connect(&database.url).await.unwrap();
    let listener = PlatformStore::connect(&database.url).await.unwrap();
    let mut configs = listener
        .feed(crate::FeedKind::Configs)
        .await
        .unwrap()
        .unwrap();
    let mut work = listener.feed(crate::FeedKind::Work).await.unwrap().unwrap();
    let change = crate::SecretChange {
        tenant: "acme".into(),
        name: "pg-dsn".into(),
    };
    writer.notify_secret_change(&change).await.unwrap();
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), configs.next())
        .await
        .expect("the change within 5 s")
        .unwrap();
    assert_eq!(heard, crate::Change::Secret(change));
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), work.next()).await;
    assert!(quiet.is_err(), "the work feed heard {quiet:?}");
}
