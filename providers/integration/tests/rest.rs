//! integration/rest as the runtime hosts it (`builtins`, the descriptor's config schema, params
//! and results checked against the contract's schemas), against json-server 0.17 (npm), a REST
//! API nobody here wrote, which scripts/test-servers starts at
//! `SWITCHYARD_TEST_JSON_SERVER_URL` with 25 seeded `items`. The connector's own paging,
//! cursors, deleted feed and origin checks are tested beside it (`src/rest/tests.rs`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::Problem;
use switchyard_provider_integration::builtins;
use switchyard_spi::tenancy::{EgressCeiling, Tenancy};
use switchyard_spi::testkit::Harness;
use switchyard_spi::{
    CallContext, ErrorCode, Host, Invocation, Provider, ProviderFactory, StartContext, TenantId,
};

fn json_server() -> String {
    std::env::var("SWITCHYARD_TEST_JSON_SERVER_URL").expect(
        "SWITCHYARD_TEST_JSON_SERVER_URL is not set: run the tests with scripts/test (it starts \
         json-server), or `source scripts/test-servers && start_json_server`",
    )
}

/// The engine as `switchyard` lists it, under an operator ceiling that opens loopback (where
/// json-server listens) and keeps its stores under `data`.
fn engine(data: &Path) -> Arc<dyn ProviderFactory> {
    let tenancy = Tenancy {
        egress: EgressCeiling {
            allowed_networks: vec!["127.0.0.0/8".parse().expect("a network")],
            allowed_ports: Vec::new(),
        },
        ..Tenancy::default()
    };
    let host = Host {
        data,
        books: data,
        tenancy: &tenancy,
    };
    builtins(&host)
        .expect("the integration engines")
        .into_iter()
        .find(|f| f.descriptor().name == "rest")
        .expect("integration/rest is a builtin")
}

/// The seeded items, paged by offset, read ascending by `updated_at` from json-server's
/// `updated_at_gte` filter, each mapped to `{item_id, title}` and created in the tenant's
/// `catalog` service.
fn config() -> Value {
    json!({
        "base_url": json_server(),
        "resources": {"items": {
            "path": "/items",
            "primary_key": "id",
            "cursor_field": "updated_at",
            "cursor_param": "updated_at_gte",
            "sort_params": {"_sort": "updated_at", "_order": "asc"},
            "pagination": {"offset": {"offset_param": "_start", "limit_param": "_limit", "limit": 10}},
        }},
        "streams": {"items": {
            "mapping": {"item_id": ".id", "title": ".name"},
            "destination": {"service": {"name": "catalog", "action": "create"}},
        }},
    })
}

#[tokio::test]
async fn the_descriptor_serves_read_actions_and_its_schema_guards_the_config_json_server() {
    let data = tempfile::tempdir().expect("a temp dir");
    let factory = engine(data.path());
    let descriptor = factory.descriptor();
    let mut actions: Vec<&str> = descriptor.actions.iter().map(|a| a.name.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        ["check", "discover", "remap", "reset", "state", "sync"],
        "a read-only connector: no upsert, no receive"
    );
    let schema = jsonschema::validator_for(&descriptor.config_schema).expect("a schema");
    assert!(
        schema.is_valid(&config()),
        "{:?}",
        schema
            .iter_errors(&config())
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let mut elsewhere = config();
    elsewhere["resources"]["items"]["path"] = json!("//evil.example/items");
    assert!(!schema.is_valid(&elsewhere), "a path naming another host");
    let mut huge = config();
    huge["resources"]["items"]["pagination"]["offset"]["limit"] = json!(100_000);
    assert!(!schema.is_valid(&huge), "a page size past 1000");
}

#[tokio::test]
async fn discover_and_check_through_the_engine_json_server() {
    let data = tempfile::tempdir().expect("a temp dir");
    let harness = Harness::new(engine(data.path()));
    let acme = harness.tenant_with_config("acme", config()).await;

    assert_eq!(acme.ok("check", json!({})).await["ok"], true);
    let discovered = acme.ok("discover", json!({})).await;
    let stream = &discovered["streams"][0];
    assert_eq!(stream["name"], "items");
    assert_eq!(stream["primary_key"], "id");
    assert_eq!(stream["cursor_field"], "updated_at");
    assert_eq!(stream["deletes"], "full_refresh");
    assert_eq!(stream["modes"], json!(["full", "incremental"]));

    // The API down is upstream_unavailable, not the config's fault.
    let mut down = config();
    down["base_url"] = json!("http://127.0.0.1:9");
    let down = harness.tenant_with_config("globex", down).await;
    assert_eq!(
        down.err("check", json!({})).await.code,
        ErrorCode::UpstreamUnavailable
    );
}

/// The tenant's other providers as the sync reaches them: every call is kept, and
/// acknowledged.
struct Recorder {
    tenant: TenantId,
    calls: Mutex<Vec<(String, String, Value)>>,
}

impl Recorder {
    fn new(tenant: &TenantId) -> Arc<Self> {
        Arc::new(Recorder {
            tenant: tenant.clone(),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The params of every `action` call on `provider`, in order.
    fn params(&self, provider: &str, action: &str) -> Vec<Value> {
        let calls = self.calls.lock().expect("calls");
        calls
            .iter()
            .filter(|(p, a, _)| p == provider && a == action)
            .map(|(_, _, params)| params.clone())
            .collect()
    }

    /// The messages published to the bus, as (key, payload).
    fn published(&self) -> Vec<(String, Value)> {
        self.params("bus/events", "publish")
            .into_iter()
            .flat_map(|params| params["messages"].as_array().cloned().unwrap_or_default())
            .map(|m| {
                (
                    m["key"].as_str().expect("a key").to_owned(),
                    m["payload"].clone(),
                )
            })
            .collect()
    }
}

#[async_trait]
impl ProviderClient for Recorder {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    async fn invoke(&self, provider: &str, action: &str, params: Value) -> Result<Value, Problem> {
        self.calls
            .lock()
            .expect("calls")
            .push((provider.to_owned(), action.to_owned(), params));
        Ok(json!({}))
    }

    async fn describe(&self, provider: &str) -> Result<Value, Problem> {
        Err(Problem::new(
            ErrorCode::ProviderNotFound,
            format!("no {provider} here"),
        ))
    }
}

async fn sync(provider: &dyn Provider, tenant: &TenantId, stream: &str, mode: &str) -> Value {
    let ctx = CallContext {
        tenant: tenant.clone(),
        request_id: "rest-test".into(),
        subject: None,
        service: None,
    };
    let call = Invocation {
        action: "sync".to_owned(),
        params: json!({"stream": stream, "mode": mode, "wait_ms": 20_000}),
        payload: None,
    };
    let run = tokio::time::timeout(Duration::from_secs(30), provider.invoke(&ctx, call))
        .await
        .expect("the run answers")
        .expect("sync");
    assert_eq!(run["status"], "completed", "{run}");
    run
}

#[tokio::test]
async fn full_then_incremental_sync_from_json_server_into_a_service() {
    let data = tempfile::tempdir().expect("a temp dir");
    let factory = engine(data.path());
    let tenant = TenantId::parse("acme").expect("tenant");
    let catalog = Recorder::new(&tenant);
    let provider = factory
        .start(StartContext {
            tenant: tenant.clone(),
            config: config(),
            client: Some(catalog.clone()),
        })
        .await
        .expect("starts");

    let full = sync(provider.as_ref(), &tenant, "items", "full").await;
    assert_eq!(full["records"], 25);
    assert_eq!(full["pages"], 3, "10 + 10 + 5 by offset");
    assert_eq!(
        full["cursor"], "2026-01-01T00:00:24Z",
        "the largest updated_at written"
    );
    {
        let created = catalog.params("services/catalog", "create");
        assert_eq!(created.len(), 25);
        // Item 25 is the first by updated_at (second 25 * 7 % 25 = 0), item 7 the last (second
        // 7 * 7 % 25 = 24): the mapping ran on each raw record, in the API's order.
        assert_eq!(created[0], json!({"item_id": 25, "title": "item 25"}));
        assert_eq!(created[24], json!({"item_id": 7, "title": "item 7"}));
    }

    // Nothing changed since: the incremental read asks json-server for updated_at >= the
    // cursor and gets the one record at the cursor itself (inclusive), nothing more.
    let incremental = sync(provider.as_ref(), &tenant, "items", "incremental").await;
    assert_eq!(incremental["records"], 1, "{incremental}");
    assert_eq!(incremental["pages"], 1);
    let created = catalog.params("services/catalog", "create");
    assert_eq!(created.len(), 26);
    assert_eq!(created[25], json!({"item_id": 7, "title": "item 7"}));
}

/// json-server's `changes` and `changes_deleted` collections, written through its REST API,
/// each record tagged with this test's run id.
struct Changes {
    url: String,
    run: String,
    http: reqwest::Client,
}

impl Changes {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("json-server");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("json")
    }

    /// Creates a change at `updated_at` and answers its id, as the bus key will carry it.
    async fn create(&self, name: &str, updated_at: &str) -> String {
        let body = json!({"run": self.run, "name": name, "updated_at": updated_at});
        let created = self
            .send(reqwest::Method::POST, "/changes", Some(body))
            .await;
        created["id"].to_string()
    }

    /// Deletes change `id` from the API and lists it in the deleted feed at `at`.
    async fn delete(&self, id: &str, at: &str) {
        let path = format!("/changes/{id}");
        self.send(reqwest::Method::DELETE, &path, None).await;
        let body =
            json!({"run": self.run, "key": id.parse::<u64>().expect("an id"), "deleted_at": at});
        self.send(reqwest::Method::POST, "/changes_deleted", Some(body))
            .await;
    }
}

#[tokio::test]
async fn deletes_reach_the_bus_from_the_feed_and_from_a_full_refresh_json_server() {
    let changes = Changes {
        url: json_server(),
        run: uuid::Uuid::new_v4().to_string(),
        http: reqwest::Client::new(),
    };
    let a = changes.create("a", "2026-04-01T10:00:00Z").await;
    let b = changes.create("b", "2026-04-01T11:00:00Z").await;
    let c = changes.create("c", "2026-04-01T12:00:00Z").await;

    let data = tempfile::tempdir().expect("a temp dir");
    let factory = engine(data.path());
    let tenant = TenantId::parse("acme").expect("tenant");
    let bus = Recorder::new(&tenant);
    let config = json!({
        "base_url": changes.url,
        "resources": {"changes": {
            "path": format!("/changes?run={}", changes.run),
            "primary_key": "id",
            "cursor_field": "updated_at",
            "cursor_param": "updated_at_gte",
            "sort_params": {"_sort": "updated_at", "_order": "asc"},
            "pagination": {"link": {}},
            "deleted": {
                "path": format!("/changes_deleted?run={}", changes.run),
                "key_field": "key",
                "at_field": "deleted_at",
                "cursor_param": "deleted_at_gte",
            },
        }},
        "streams": {"changes": {"destination": {"bus": {"provider": "bus/events", "topic": "changes"}}}},
    });
    let provider = factory
        .start(StartContext {
            tenant: tenant.clone(),
            config,
            client: Some(bus.clone()),
        })
        .await
        .expect("starts");

    let full = sync(provider.as_ref(), &tenant, "changes", "full").await;
    assert_eq!(
        (full["records"].clone(), full["deleted"].clone()),
        (json!(3), json!(0))
    );
    let keys: Vec<String> = bus.published().into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, [a.clone(), b.clone(), c.clone()]);

    // b is deleted in the API (and listed in its feed), d created.
    changes.delete(&b, "2026-04-01T13:00:00Z").await;
    let d = changes.create("d", "2026-04-01T14:00:00Z").await;
    let incremental = sync(provider.as_ref(), &tenant, "changes", "incremental").await;
    assert_eq!(
        incremental["records"], 2,
        "c again (at the cursor) and d: {incremental}"
    );
    assert_eq!(incremental["deleted"], 1, "b from the feed: {incremental}");
    let published = bus.published();
    assert_eq!(
        published[3..]
            .iter()
            .map(|(key, _)| key.as_str())
            .collect::<Vec<_>>(),
        [c.as_str(), d.as_str(), b.as_str()]
    );
    assert_eq!(published[5].1, json!({"id": b, "deleted": true}));

    // a is deleted without a feed entry: only a full refresh's tombstone pass finds it.
    let path = format!("/changes/{a}");
    changes.send(reqwest::Method::DELETE, &path, None).await;
    let refresh = sync(provider.as_ref(), &tenant, "changes", "full").await;
    assert_eq!(refresh["records"], 2, "c and d: {refresh}");
    assert_eq!(refresh["deleted"], 1, "a, not b again: {refresh}");
    let (key, payload) = bus.published().pop().expect("the tombstone");
    assert_eq!(
        (key, payload),
        (a.clone(), json!({"id": a, "deleted": true}))
    );
}
