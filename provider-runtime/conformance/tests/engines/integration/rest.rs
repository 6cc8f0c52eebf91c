//! integration/rest certified against json-server 0.17 (npm), a real REST API nobody here
//! wrote, which scripts/test-servers starts at `SWITCHYARD_TEST_JSON_SERVER_URL`. The stream is
//! its `changes` collection, read by page number, incremental through `updated_at_gte`, with
//! deletes listed in `changes_deleted`; every record a subject writes carries a run id of its
//! own, which the connection's resource path filters on. The middleware scripts/test-servers
//! puts beside json-server checks the connection's `X-API-Key` (a key not starting `good-` is
//! refused), counts its calls and throttles it, per key. A declarative connector has no write
//! action and an API key does not expire, so upsert and token checks are not provided.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_conformance::integration::acceptance::Source;
use switchyard_spi::TenantId;

use super::destination::{Destination, PROVIDER};

pub struct JsonServer {
    url: String,
    /// Tags this subject's records (and names its API key).
    run: String,
    /// The next record change's second: every create, update and delete is later than the
    /// one before, so incremental reads see them in order.
    clock: AtomicU64,
    http: reqwest::Client,
    destination: Arc<Destination>,
}

impl JsonServer {
    pub fn start() -> JsonServer {
        let url = std::env::var("SWITCHYARD_TEST_JSON_SERVER_URL").expect(
            "SWITCHYARD_TEST_JSON_SERVER_URL is not set: run the tests with scripts/test (it \
             starts json-server)",
        );
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos();
        JsonServer {
            url,
            run: format!("{nanos:x}-{}", std::process::id()),
            clock: AtomicU64::new(0),
            http: reqwest::Client::new(),
            destination: Destination::new(),
        }
    }

    fn key(&self) -> String {
        format!("good-{}", self.run)
    }

    fn connection(&self, key: &str) -> Value {
        json!({
            "base_url": self.url,
            "auth": {"api_key": {"header": "X-API-Key", "key": key}},
            "resources": {"changes": {
                "path": format!("/changes?run={}", self.run),
                "primary_key": "id",
                "cursor_field": "updated_at",
                "cursor_param": "updated_at_gte",
                "sort_params": {"_sort": "updated_at", "_order": "asc"},
                "pagination": {"page": {"page_param": "_page", "size_param": "_limit", "size": 10}},
                "deleted": {
                    "path": format!("/changes_deleted?run={}", self.run),
                    "key_field": "key",
                    "at_field": "deleted_at",
                    "cursor_param": "deleted_at_gte",
                    "sort_params": {"_sort": "deleted_at", "_order": "asc"},
                },
            }},
            "allowed_networks": ["127.0.0.0/8"],
        })
    }

    /// A time later than every one before it (a second apart, from 2026-06-01T00:00:00Z).
    fn tick(&self) -> String {
        let n = self.clock.fetch_add(1, Ordering::SeqCst);
        let (day, rest) = (n / 86_400, n % 86_400);
        format!(
            "2026-06-{:02}T{:02}:{:02}:{:02}Z",
            day + 1,
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        )
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("json-server answers");
        assert!(
            response.status().is_success(),
            "json-server: {path}: {}",
            response.status()
        );
        response.json().await.expect("json-server answers JSON")
    }

    /// What the middleware counted for this subject's key: (calls, calls answered 429). The
    /// trait asks synchronously, so the call runs on a thread of its own.
    fn counted(&self) -> (u64, u64) {
        let url = format!("{}/__calls?key={}", self.url, self.key());
        let counts = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let answer = reqwest::get(url).await.expect("json-server answers");
                answer.json::<Value>().await.expect("counts")
            })
        })
        .join()
        .expect("the counting thread");
        (
            counts["calls"].as_u64().unwrap_or(0),
            counts["throttled"].as_u64().unwrap_or(0),
        )
    }
}

#[async_trait]
impl Source for JsonServer {
    fn stream(&self) -> &str {
        "changes"
    }

    fn config(&self, mapping: Value) -> Value {
        let mut config = self.connection(&self.key());
        config["streams"] = json!({"changes": {"mapping": mapping}});
        config
    }

    fn refused_config(&self) -> Value {
        self.connection(&format!("bad-{}", self.run))
    }

    fn mapping(&self) -> Value {
        json!({"key": ".id", "name": ".name", "updated": ".updated_at"})
    }

    fn client(&self, tenant: &TenantId) -> Arc<dyn ProviderClient> {
        self.destination.client(tenant)
    }

    fn destination(&self, table: &str) -> Value {
        json!({"db": {"provider": PROVIDER, "table": table}})
    }

    async fn create(&self, n: usize) -> Vec<String> {
        let mut keys = Vec::with_capacity(n);
        for i in 0..n {
            let record =
                json!({"run": self.run, "name": format!("change {i}"), "updated_at": self.tick()});
            let created = self
                .send(reqwest::Method::POST, "/changes", Some(record))
                .await;
            keys.push(created["id"].to_string());
        }
        keys
    }

    async fn update(&self, key: &str) {
        let change = json!({"updated_at": self.tick(), "name": "changed"});
        self.send(
            reqwest::Method::PATCH,
            &format!("/changes/{key}"),
            Some(change),
        )
        .await;
    }

    async fn delete(&self, key: &str) {
        self.send(reqwest::Method::DELETE, &format!("/changes/{key}"), None)
            .await;
        let id: u64 = key.parse().expect("a json-server id");
        let deleted = json!({"run": self.run, "key": id, "deleted_at": self.tick()});
        self.send(reqwest::Method::POST, "/changes_deleted", Some(deleted))
            .await;
    }

    fn calls(&self) -> u64 {
        self.counted().0
    }

    async fn throttle(&self, n: usize) {
        let path = format!("/__throttle?key={}&n={n}", self.key());
        self.send(reqwest::Method::POST, &path, None).await;
    }

    fn throttled(&self) -> u64 {
        self.counted().1
    }
}
