//! The tenant-bound client the runtime hands to in-process engines (`StartContext::client`):
//! a provider composes its tenant's other providers with it as the tenant's own calls, under
//! the same schema checks, and it has no way to name another tenant.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ActionDescriptor, ErrorCode, Health, ProviderDescriptor, TenantId};
use switchyard_provider_cache::MemoryCacheFactory;
use switchyard_runtime::{PlatformStore, Registry, Runtime};
use switchyard_spi::{
    CallContext, Invocation, Provider, ProviderError, ProviderFactory, StartContext,
};

fn ctx(tenant: &str) -> CallContext {
    CallContext {
        tenant: TenantId::parse(tenant).unwrap(),
        request_id: "test".into(),
        subject: None,
        service: None,
    }
}

fn descriptor(name: &str, action: &str) -> ProviderDescriptor {
    ProviderDescriptor {
        domain: "test".into(),
        name: name.into(),
        version: "0.0.0".into(),
        summary: name.into(),
        capabilities: vec![],
        config_schema: json!({"type": "object"}),
        actions: vec![ActionDescriptor {
            name: action.into(),
            summary: action.into(),
            params: json!({"type": "object"}),
            result: json!({"type": "object"}),
        }],
    }
}

/// The clients its instances were started with, kept so a test can look at them.
type Handed = Arc<Mutex<Vec<Option<Arc<dyn ProviderClient>>>>>;

/// `test/relay` (or `test/outsider`, which says it runs out of process): its action `relay`
/// makes the call named in its params through the client its instance was started with.
struct RelayFactory {
    descriptor: ProviderDescriptor,
    in_process: bool,
    handed: Handed,
}

impl RelayFactory {
    fn new(name: &str, in_process: bool) -> Self {
        RelayFactory {
            descriptor: descriptor(name, "relay"),
            in_process,
            handed: Handed::default(),
        }
    }
}

#[async_trait]
impl ProviderFactory for RelayFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    fn in_process(&self) -> bool {
        self.in_process
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        self.handed.lock().unwrap().push(ctx.client.clone());
        Ok(Arc::new(Relay(ctx.client)))
    }
}

struct Relay(Option<Arc<dyn ProviderClient>>);

#[async_trait]
impl Provider for Relay {
    async fn invoke(&self, _: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let client = self
            .0
            .as_ref()
            .ok_or_else(|| ProviderError::unavailable("started without a client"))?;
        let p = &call.params;
        let answer = client
            .invoke(
                p["provider"].as_str().unwrap_or_default(),
                p["action"].as_str().unwrap_or_default(),
                p["params"].clone(),
            )
            .await;
        Ok(match answer {
            Ok(data) => json!({"data": data}),
            Err(problem) => json!({"problem": problem.code.as_str()}),
        })
    }

    async fn health(&self) -> Health {
        Health::from_dependencies(vec![])
    }
}

/// `test/echo`: answers the call context it was called with.
struct EchoFactory(ProviderDescriptor);

#[async_trait]
impl ProviderFactory for EchoFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.0
    }

    async fn start(&self, _: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(Echo))
    }
}

struct Echo;

#[async_trait]
impl Provider for Echo {
    async fn invoke(&self, ctx: &CallContext, _: Invocation) -> Result<Value, ProviderError> {
        Ok(json!({
            "tenant": ctx.tenant.as_str(), "subject": ctx.subject, "service": ctx.service,
        }))
    }

    async fn health(&self) -> Health {
        Health::from_dependencies(vec![])
    }
}

struct Setup {
    rt: Arc<Runtime>,
    relay: Handed,
    outsider: Handed,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = PlatformStore::open(dir.path()).await.unwrap();
    for tenant in ["acme", "globex"] {
        store
            .create_tenant(&TenantId::parse(tenant).unwrap())
            .await
            .unwrap();
    }
    let relay = RelayFactory::new("relay", true);
    let outsider = RelayFactory::new("outsider", false);
    let handed = (relay.handed.clone(), outsider.handed.clone());
    let mut registry = Registry::default();
    registry
        .register(Arc::new(MemoryCacheFactory::new()))
        .unwrap();
    registry
        .register(Arc::new(EchoFactory(descriptor("echo", "echo"))))
        .unwrap();
    registry.register(Arc::new(relay)).unwrap();
    registry.register(Arc::new(outsider)).unwrap();
    let rt = Arc::new(Runtime::new(
        registry,
        store,
        Default::default(),
        Default::default(),
    ));
    Setup {
        rt,
        relay: handed.0,
        outsider: handed.1,
        _dir: dir,
    }
}

/// Has `tenant`'s `test/<relay>` instance call `provider`/`action` through its client.
async fn relay(
    rt: &Arc<Runtime>,
    tenant: &str,
    provider: &str,
    action: &str,
    params: Value,
) -> Value {
    rt.invoke(
        &ctx(tenant),
        "test",
        "relay",
        "relay",
        json!({"provider": provider, "action": action, "params": params}),
        None,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_providers_client_calls_as_its_tenant_with_no_service_under_the_same_schema_checks() {
    let s = setup().await;
    let seen = relay(&s.rt, "acme", "test/echo", "echo", json!({})).await;
    assert_eq!(
        seen["data"],
        json!({"tenant": "acme", "subject": "provider:test/relay", "service": null})
    );

    // What it writes is where the tenant's own calls read, and nowhere else.
    let set = json!({"key": "k", "value": "written by acme's relay"});
    let written = relay(&s.rt, "acme", "cache/memory", "set", set).await;
    assert!(written["data"].is_object(), "{written}");
    let read = |tenant: &'static str| {
        let rt = s.rt.clone();
        async move {
            rt.invoke(
                &ctx(tenant),
                "cache",
                "memory",
                "get",
                json!({"key": "k"}),
                None,
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(read("acme").await["value"], "written by acme's relay");
    assert_eq!(read("globex").await["found"], false);

    // The params schema of the provider called, as for a gateway call.
    let refused = relay(&s.rt, "acme", "cache/memory", "set", json!({"key": 1})).await;
    assert_eq!(refused["problem"], ErrorCode::ParamsInvalid.as_str());
    let unknown = relay(&s.rt, "acme", "cache/memory", "frobnicate", json!({})).await;
    assert_eq!(unknown["problem"], ErrorCode::ActionNotFound.as_str());
}

#[tokio::test]
async fn each_tenants_instance_gets_a_client_bound_to_that_tenant_alone() {
    let s = setup().await;
    for tenant in ["acme", "globex"] {
        let seen = relay(&s.rt, tenant, "test/echo", "echo", json!({})).await;
        assert_eq!(seen["data"]["tenant"], tenant);
    }
    // Reconfiguring starts a new instance, which gets its own client for the same tenant.
    s.rt.configure(
        &TenantId::parse("globex").unwrap(),
        "test",
        "relay",
        json!({"config": {}}),
    )
    .await
    .unwrap();
    let seen = relay(&s.rt, "globex", "test/echo", "echo", json!({})).await;
    assert_eq!(seen["data"]["tenant"], "globex");

    let tenants: Vec<String> = s
        .relay
        .lock()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_ref()
                .expect("an in-process engine gets a client")
                .tenant()
                .to_string()
        })
        .collect();
    assert_eq!(tenants, ["acme", "globex", "globex"]);
}

#[tokio::test]
async fn an_engine_that_runs_out_of_process_gets_no_client() {
    let s = setup().await;
    let answer =
        s.rt.invoke(&ctx("acme"), "test", "outsider", "relay", json!({}), None)
            .await
            .unwrap_err();
    assert_eq!(answer.code, ErrorCode::ProviderUnavailable);
    let handed = s.outsider.lock().unwrap();
    assert_eq!(handed.len(), 1);
    assert!(handed[0].is_none());
}

#[tokio::test]
async fn a_providers_client_does_not_keep_the_runtime_alive() {
    let s = setup().await;
    relay(&s.rt, "acme", "test/echo", "echo", json!({})).await;
    let client = s.relay.lock().unwrap()[0].clone().unwrap();
    drop(s.rt);
    let gone = client
        .invoke("test/echo", "echo", json!({}))
        .await
        .unwrap_err();
    assert_eq!(gone.code, ErrorCode::ProviderUnavailable);
}
