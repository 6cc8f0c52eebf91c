//! The runtime's own behaviour, driven through its in-process API with the real cache/memory
//! engine: lifecycle, hot swap, config persistence, validation and timeouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_contracts::schema::Compiled;
use switchyard_contracts::{ErrorCode, Health, ProviderDescriptor, TenantId};
use switchyard_provider_bus::EmbeddedBusFactory;
use switchyard_provider_cache::MemoryCacheFactory;
use switchyard_runtime::events::LifecycleEvent;
use switchyard_runtime::{PlatformStore, Registry, ResilienceConfig, Runtime};
use switchyard_spi::{
    CallContext, Invocation, Provider, ProviderError, ProviderFactory, StartContext,
};

async fn runtime_at(dir: &std::path::Path, timeout: Duration) -> Arc<Runtime> {
    runtime_with_bus(dir, timeout, false).await
}

/// With `bus`, also bus/embedded (under `dir`), for the runtime's own lifecycle events.
async fn runtime_with_bus(dir: &std::path::Path, timeout: Duration, bus: bool) -> Arc<Runtime> {
    let store = PlatformStore::open(dir).await.unwrap();
    for tenant in ["acme", "globex"] {
        let _ = store.create_tenant(&TenantId::parse(tenant).unwrap()).await;
    }
    let mut registry = Registry::default();
    registry
        .register(Arc::new(MemoryCacheFactory::new()))
        .unwrap();
    registry.register(Arc::new(SlowFactory::new())).unwrap();
    if bus {
        registry
            .register(Arc::new(EmbeddedBusFactory::new(dir.join("bus"))))
            .unwrap();
    }
    Arc::new(Runtime::new(
        registry,
        store,
        ResilienceConfig {
            call_timeout: timeout,
            ..Default::default()
        },
        Default::default(),
    ))
}

fn ctx(tenant: &str) -> CallContext {
    CallContext {
        tenant: TenantId::parse(tenant).unwrap(),
        request_id: "test".into(),
        subject: None,
        service: None,
    }
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

#[tokio::test]
async fn reconfiguring_under_concurrent_invokes_fails_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_at(dir.path(), Duration::from_secs(5)).await;
    let failures = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (rt, failures, calls) = (rt.clone(), failures.clone(), calls.clone());
        workers.push(tokio::spawn(async move {
            for i in 0..150 {
                let key = format!("w{w}-{i}");
                let set = rt
                    .invoke(
                        &ctx("acme"),
                        "cache",
                        "memory",
                        "set",
                        json!({"key": key, "value": i}),
                        None,
                    )
                    .await;
                let get = rt
                    .invoke(
                        &ctx("acme"),
                        "cache",
                        "memory",
                        "get",
                        json!({"key": key}),
                        None,
                    )
                    .await;
                calls.fetch_add(2, Ordering::Relaxed);
                if set.is_err() || get.map(|v| v["value"] != json!(i)).unwrap_or(true) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for version in 1..=20 {
        let answer = rt
            .configure(
                &acme(),
                "cache",
                "memory",
                json!({"config": {"max_value_bytes": 1000 + version}}),
            )
            .await
            .unwrap();
        assert_eq!(answer["version"], version);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(calls.load(Ordering::Relaxed), 2400);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "calls failed during hot swap"
    );
}

#[tokio::test]
async fn config_survives_a_restart_and_is_tenant_scoped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let rt = runtime_at(dir.path(), Duration::from_secs(5)).await;
        rt.configure(
            &acme(),
            "cache",
            "memory",
            json!({"config": {"default_ttl_ms": 60000}}),
        )
        .await
        .unwrap();
    }
    let rt = runtime_at(dir.path(), Duration::from_secs(5)).await;
    let detail = rt.describe(&acme(), "cache", "memory").await.unwrap();
    assert_eq!(detail["config"]["version"], 1);
    assert_eq!(detail["config"]["values"], json!({"default_ttl_ms": 60000}));
    let other = rt
        .describe(&TenantId::parse("globex").unwrap(), "cache", "memory")
        .await
        .unwrap();
    assert_eq!(other["config"], Value::Null);
}

#[tokio::test]
async fn an_invalid_config_is_refused_with_pointers_and_not_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_at(dir.path(), Duration::from_secs(5)).await;
    let err = rt
        .configure(
            &acme(),
            "cache",
            "memory",
            json!({"config": {"max_value_bytes": 0, "colour": "red"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ConfigInvalid);
    let pointers: Vec<&str> = err.errors.iter().map(|e| e.pointer.as_str()).collect();
    assert!(pointers.contains(&"/max_value_bytes"), "{pointers:?}");
    assert_eq!(
        rt.describe(&acme(), "cache", "memory").await.unwrap()["config"],
        Value::Null
    );
    let err = rt
        .configure(&acme(), "cache", "memory", json!({"max_value_bytes": 5}))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::RequestInvalid);
}

#[tokio::test]
async fn stop_refuses_calls_for_that_tenant_only_until_start() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_at(dir.path(), Duration::from_secs(5)).await;
    let get = json!({"key": "k"});
    rt.invoke(&ctx("acme"), "cache", "memory", "get", get.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        rt.stop(&acme(), "cache", "memory").await.unwrap()["status"],
        "stopped"
    );
    let err = rt
        .invoke(&ctx("acme"), "cache", "memory", "get", get.clone(), None)
        .await
        .unwrap_err();
    // A state the tenant's own admin chose, not an outage: 409, until that admin starts it.
    assert_eq!((err.code, err.retryable), (ErrorCode::Conflict, false));
    rt.invoke(&ctx("globex"), "cache", "memory", "get", get.clone(), None)
        .await
        .unwrap();
    let health = rt.health(&acme(), "cache", "memory").await.unwrap();
    assert_eq!(
        (health["status"].clone(), health["lifecycle"].clone()),
        (json!("down"), json!("stopped"))
    );
    assert_eq!(
        rt.start(&acme(), "cache", "memory").await.unwrap()["status"],
        "running"
    );
    rt.invoke(&ctx("acme"), "cache", "memory", "get", get, None)
        .await
        .unwrap();
    assert_eq!(
        rt.health(&acme(), "cache", "memory").await.unwrap()["status"],
        "up"
    );
}

#[tokio::test]
async fn unknown_providers_actions_and_bad_params_get_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_at(dir.path(), Duration::from_secs(5)).await;
    let invoke = |d: &'static str, n: &'static str, a: &'static str, p: Value| {
        let rt = rt.clone();
        async move { rt.invoke(&ctx("acme"), d, n, a, p, None).await.unwrap_err() }
    };
    assert_eq!(
        invoke("db", "oracle", "query", json!({})).await.code,
        ErrorCode::ProviderNotFound
    );
    assert_eq!(
        invoke("cache", "memory", "explode", json!({})).await.code,
        ErrorCode::ActionNotFound
    );
    let err = invoke("cache", "memory", "set", json!({"key": 5})).await;
    assert_eq!(err.code, ErrorCode::ParamsInvalid);
    let pointers: Vec<&str> = err.errors.iter().map(|e| e.pointer.as_str()).collect();
    assert!(
        pointers.contains(&"/key") && pointers.contains(&"/value"),
        "{pointers:?}"
    );
}

#[tokio::test]
async fn a_call_past_the_timeout_is_answered_with_timeout_by_a_deliberately_slow_test_provider() {
    // No real engine can be made slow on demand, so this one test uses a provider written to sleep.
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_at(dir.path(), Duration::from_millis(100)).await;
    let err = rt
        .invoke(
            &ctx("acme"),
            "test",
            "slow",
            "sleep",
            json!({"ms": 2000}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!((err.code, err.retryable), (ErrorCode::Timeout, true));
    rt.invoke(
        &ctx("acme"),
        "test",
        "slow",
        "sleep",
        json!({"ms": 1}),
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_catalog_lists_every_provider_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_at(dir.path(), Duration::from_secs(5)).await;
    let catalog = rt.catalog(&acme()).await;
    let names: Vec<String> = catalog["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{} {}",
                p["domain"].as_str().unwrap(),
                p["name"].as_str().unwrap(),
                p["status"]
            )
        })
        .collect();
    assert_eq!(names, ["cache/memory \"running\"", "test/slow \"running\""]);
}

/// The records of one lifecycle topic, as the tenant's own bus holds them.
async fn lifecycle_records(rt: &Arc<Runtime>, tenant: &str, topic: &str) -> Vec<Value> {
    let answer = rt
        .invoke(
            &ctx(tenant),
            "bus",
            "embedded",
            "replay",
            json!({"topic": topic, "from_offset": 0}),
            None,
        )
        .await
        .unwrap();
    answer["records"].as_array().unwrap().clone()
}

/// The published AsyncAPI document of the lifecycle events.
fn asyncapi() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../asyncapi/provider-events.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Checks a record against the AsyncAPI message of its event: CloudEvents type, headers and
/// payload schemas.
fn assert_described(doc: &Value, event: LifecycleEvent, record: &Value) {
    let message = &doc["components"]["messages"][event.as_str()];
    assert_eq!(message["x-cloudevents-type"], event.cloud_event_type());
    assert_eq!(record["headers"]["ce_type"], event.cloud_event_type());
    for (part, schema) in [
        ("headers", &message["headers"]),
        ("payload", &message["payload"]),
    ] {
        // The document's own components resolve the message's `$ref`s.
        let schema = json!({"$ref": schema["$ref"], "components": doc["components"]});
        let errors = Compiled::new(&schema, part).unwrap().check(&record[part]);
        assert!(
            errors.is_empty(),
            "{} {part} off the AsyncAPI document: {errors:?}",
            event.as_str()
        );
    }
}

#[test]
fn every_lifecycle_event_the_runtime_emits_is_described_in_asyncapi_and_nothing_else() {
    let doc = asyncapi();
    let channels = doc["channels"].as_object().unwrap();
    for event in LifecycleEvent::ALL {
        let channel = &channels[event.as_str()];
        assert_eq!(
            channel["address"],
            event.topic("{domain}", "{name}"),
            "{} has no channel at its topic",
            event.as_str()
        );
    }
    assert_eq!(
        channels.len(),
        LifecycleEvent::ALL.len(),
        "a channel describes no event the runtime emits"
    );
}

/// Waits for the publisher task to put `count` records on `topic`.
async fn wait_for_records(
    rt: &Arc<Runtime>,
    tenant: &str,
    topic: &str,
    count: usize,
) -> Vec<Value> {
    for _ in 0..100 {
        let records = lifecycle_records(rt, tenant, topic).await;
        if records.len() >= count {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{topic} of {tenant} never had {count} records");
}

#[tokio::test]
async fn lifecycle_events_reach_the_tenants_own_bus_as_cloudevents() {
    let dir = tempfile::tempdir().unwrap();
    // The deliberately slow test provider times out on demand, which is how the circuit opens.
    let rt = runtime_with_bus(dir.path(), Duration::from_millis(50), true).await;
    rt.publish_lifecycle_events("bus/embedded").unwrap();
    assert_eq!(
        rt.publish_lifecycle_events("bus/embedded")
            .unwrap_err()
            .code,
        ErrorCode::ConfigInvalid
    );

    rt.configure(
        &acme(),
        "cache",
        "memory",
        json!({"config": {"default_ttl_ms": 1000}}),
    )
    .await
    .unwrap();
    let configured =
        wait_for_records(&rt, "acme", "provider.events.cache.memory.configured", 1).await;
    let headers = &configured[0]["headers"];
    assert_eq!(headers["ce_specversion"], "1.0");
    assert_eq!(headers["ce_type"], "switchyard.provider.configured");
    assert_eq!(headers["ce_source"], "/providers/cache/memory");
    assert_eq!(headers["ce_tenantid"], "acme");
    assert_eq!(configured[0]["payload"]["version"], 1);
    let doc = asyncapi();
    assert_described(&doc, LifecycleEvent::Configured, &configured[0]);

    rt.stop(&acme(), "cache", "memory").await.unwrap();
    let stopped = wait_for_records(&rt, "acme", "provider.events.cache.memory.stopped", 1).await;
    assert_described(&doc, LifecycleEvent::Stopped, &stopped[0]);

    for _ in 0..5 {
        let _ = rt
            .invoke(
                &ctx("acme"),
                "test",
                "slow",
                "sleep",
                json!({"ms": 500}),
                None,
            )
            .await;
    }
    let opened = wait_for_records(&rt, "acme", "provider.events.test.slow.circuit_opened", 1).await;
    assert_described(&doc, LifecycleEvent::CircuitOpened, &opened[0]);
    let started = wait_for_records(&rt, "acme", "provider.events.test.slow.started", 1).await;
    assert_described(&doc, LifecycleEvent::Started, &started[0]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    rt.invoke(
        &ctx("acme"),
        "test",
        "slow",
        "sleep",
        json!({"ms": 1}),
        None,
    )
    .await
    .unwrap();
    let closed = wait_for_records(&rt, "acme", "provider.events.test.slow.circuit_closed", 1).await;
    assert_described(&doc, LifecycleEvent::CircuitClosed, &closed[0]);

    // Another tenant's bus holds none of acme's events.
    for topic in [
        "provider.events.cache.memory.configured",
        "provider.events.cache.memory.stopped",
        "provider.events.test.slow.circuit_opened",
    ] {
        assert!(
            lifecycle_records(&rt, "globex", topic).await.is_empty(),
            "{topic}"
        );
    }
}

/// A provider whose only action sleeps for the requested time.
struct SlowFactory(ProviderDescriptor);

impl SlowFactory {
    fn new() -> Self {
        SlowFactory(ProviderDescriptor {
            domain: "test".into(),
            name: "slow".into(),
            version: "0.0.0".into(),
            summary: "sleeps".into(),
            capabilities: vec![],
            config_schema: json!({"type": "object"}),
            actions: vec![switchyard_contracts::ActionDescriptor {
                name: "sleep".into(),
                summary: "sleeps".into(),
                params: json!({"type": "object", "required": ["ms"], "properties": {"ms": {"type": "integer"}}}),
                result: json!({"type": "object"}),
            }],
        })
    }
}

#[async_trait]
impl ProviderFactory for SlowFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.0
    }
    async fn start(&self, _: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Slow))
    }
}

struct Slow;

#[async_trait]
impl Provider for Slow {
    async fn invoke(&self, _: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let ms = call.params["ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(json!({}))
    }
    async fn health(&self) -> Health {
        Health::from_dependencies(vec![])
    }
}

/// A business service written for this test: it keeps notes in cache/memory, through the
/// provider client the runtime hands it — the way real services compose providers.
struct NotesService(switchyard_contracts::ServiceDescriptor);

impl NotesService {
    fn new() -> Self {
        let action = |name: &str, params: Value| switchyard_contracts::ActionDescriptor {
            name: name.into(),
            summary: name.into(),
            params,
            result: json!({"type": "object"}),
        };
        NotesService(switchyard_contracts::ServiceDescriptor {
            name: "notes".into(),
            version: "0.0.0".into(),
            summary: "remembers notes".into(),
            actions: vec![
                action(
                    "remember",
                    json!({"type": "object", "required": ["key", "text"], "additionalProperties": false,
                           "properties": {"key": {"type": "string"}, "text": {"type": "string"}}}),
                ),
                action(
                    "recall",
                    json!({"type": "object", "required": ["key"], "additionalProperties": false,
                           "properties": {"key": {"type": "string"}}}),
                ),
            ],
        })
    }
}

#[async_trait]
impl switchyard_client::Service for NotesService {
    fn descriptor(&self) -> &switchyard_contracts::ServiceDescriptor {
        &self.0
    }

    async fn invoke(
        &self,
        client: &dyn switchyard_client::ProviderClient,
        action: &str,
        params: Value,
    ) -> Result<Value, switchyard_contracts::Problem> {
        let key = format!("note:{}", params["key"].as_str().unwrap_or_default());
        match action {
            "remember" => {
                client
                    .invoke(
                        "cache/memory",
                        "set",
                        json!({"key": key, "value": params["text"]}),
                    )
                    .await
            }
            _ => {
                client
                    .invoke("cache/memory", "get", json!({"key": key}))
                    .await
            }
        }
    }
}

#[tokio::test]
async fn a_business_service_composes_providers_for_its_callers_tenant_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = PlatformStore::open(dir.path()).await.unwrap();
    for tenant in ["acme", "globex"] {
        store
            .create_tenant(&TenantId::parse(tenant).unwrap())
            .await
            .unwrap();
    }
    let mut registry = Registry::default();
    registry
        .register(Arc::new(MemoryCacheFactory::new()))
        .unwrap();
    let rt = Arc::new(
        Runtime::new(registry, store, Default::default(), Default::default())
            .with_services(vec![Arc::new(NotesService::new())])
            .unwrap(),
    );
    rt.invoke_service(
        &ctx("acme"),
        "notes",
        "remember",
        json!({"key": "k", "text": "acme's"}),
    )
    .await
    .unwrap();
    let recalled = rt
        .invoke_service(&ctx("acme"), "notes", "recall", json!({"key": "k"}))
        .await
        .unwrap();
    assert_eq!(recalled["value"], "acme's");
    let other = rt
        .invoke_service(&ctx("globex"), "notes", "recall", json!({"key": "k"}))
        .await
        .unwrap();
    assert_eq!(
        other["found"], false,
        "another tenant read acme's note: {other}"
    );

    let bad = rt
        .invoke_service(&ctx("acme"), "notes", "remember", json!({"key": 1}))
        .await
        .unwrap_err();
    assert_eq!(bad.code, ErrorCode::ParamsInvalid);
    assert_eq!(
        rt.invoke_service(&ctx("acme"), "notes", "forget", json!({}))
            .await
            .unwrap_err()
            .code,
        ErrorCode::ActionNotFound
    );
    assert_eq!(
        rt.invoke_service(&ctx("acme"), "ledger", "x", json!({}))
            .await
            .unwrap_err()
            .code,
        ErrorCode::RouteNotFound
    );
    let doc: Value = serde_json::from_slice(&rt.openapi()).unwrap();
    assert!(doc["paths"]["/services/notes/remember"]["post"].is_object());
}

#[tokio::test]
async fn a_service_reaches_another_service_through_the_same_client() {
    let dir = tempfile::tempdir().unwrap();
    let store = PlatformStore::open(dir.path()).await.unwrap();
    store.create_tenant(&acme()).await.unwrap();
    let mut registry = Registry::default();
    registry
        .register(Arc::new(MemoryCacheFactory::new()))
        .unwrap();
    let rt = Arc::new(
        Runtime::new(registry, store, Default::default(), Default::default())
            .with_services(vec![Arc::new(NotesService::new())])
            .unwrap(),
    );
    let client = switchyard_runtime::RuntimeClient::new(rt.clone(), acme(), "service:test");
    use switchyard_client::ProviderClient;
    client
        .invoke(
            "services/notes",
            "remember",
            json!({"key": "k", "text": "via a service"}),
        )
        .await
        .unwrap();
    let recalled = client
        .invoke("services/notes", "recall", json!({"key": "k"}))
        .await
        .unwrap();
    assert_eq!(recalled["value"], "via a service");
}

/// Two runtimes on one store, as two replicas: a config saved through one is swapped in on the
/// other when it hears of the save, and an older version heard late changes nothing.
#[tokio::test]
async fn an_instance_catches_up_with_a_config_saved_elsewhere_and_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let a = runtime_at(dir.path(), Duration::from_secs(5)).await;
    let b = runtime_at(dir.path(), Duration::from_secs(5)).await;
    let limit = |max: u64| json!({"config": {"max_value_bytes": max}});
    let big = json!({"key": "k", "value": "x".repeat(300)});
    let set = |rt: Arc<Runtime>| {
        let big = big.clone();
        async move {
            rt.invoke(&ctx("acme"), "cache", "memory", "set", big, None)
                .await
                .is_ok()
        }
    };
    a.configure(&acme(), "cache", "memory", limit(100_000))
        .await
        .unwrap();
    assert!(set(b.clone()).await, "b runs version 1");
    a.configure(&acme(), "cache", "memory", limit(100))
        .await
        .unwrap();
    assert!(set(b.clone()).await, "b has not heard of version 2 yet");
    b.catch_up_config(&acme(), "cache", "memory", 2).await;
    assert!(!set(b.clone()).await, "b serves version 2");
    // Heard out of order: version 1 after 2 keeps version 2.
    b.catch_up_config(&acme(), "cache", "memory", 1).await;
    assert!(!set(b.clone()).await, "b went back to version 1");
    // A gap in the feed: b compares its instances with the store.
    a.configure(&acme(), "cache", "memory", limit(100_000))
        .await
        .unwrap();
    b.catch_up_all_configs().await;
    assert!(set(b.clone()).await, "b did not catch up with version 3");
    // A tenant whose provider b never started is left alone: its first call reads the store.
    a.configure(
        &TenantId::parse("globex").unwrap(),
        "cache",
        "memory",
        limit(100),
    )
    .await
    .unwrap();
    b.catch_up_all_configs().await;
    let globex = b
        .invoke(&ctx("globex"), "cache", "memory", "set", big.clone(), None)
        .await;
    assert!(
        globex.is_err(),
        "globex's first call on b ignored its config"
    );
}
