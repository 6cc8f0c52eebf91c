//! Provider plugins loaded for real: the example crates under `examples/plugins/` are built
//! as shared libraries (with the workspace's own cargo and target directory), then loaded
//! through the plugin ABI — the cache example must pass the unchanged cache suite, a library
//! of another ABI is refused, and a panicking plugin answers `provider_failed` while the
//! runtime goes on serving everything else.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::json;
use switchyard_contracts::{ErrorCode, TenantId};
use switchyard_provider_cache::MemoryCacheFactory;
use switchyard_runtime::plugin::PluginFactory;
use switchyard_runtime::{PlatformStore, Registry, ResilienceConfig, Runtime};
use switchyard_spi::{CallContext, Invocation, ProviderFactory, StartContext};

/// Builds the example plugins once per test binary and answers the directory holding them.
fn plugins_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(workspace)
            .args(["build", "--quiet"])
            .args(["-p", "switchyard-example-cache-plugin"])
            .args(["-p", "switchyard-example-faulty-plugin"])
            .args(["-p", "switchyard-example-wrong-abi-plugin"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the example plugins do not build");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        target.join("debug")
    })
}

fn library(crate_name: &str) -> PathBuf {
    plugins_dir().join(format!("lib{}.so", crate_name.replace('-', "_")))
}

fn example() -> PathBuf {
    library("switchyard-example-cache-plugin")
}

fn ctx(tenant: &str) -> CallContext {
    CallContext {
        tenant: TenantId::parse(tenant).unwrap(),
        request_id: "plugin-test".into(),
        subject: None,
        service: None,
    }
}

#[tokio::test]
async fn the_example_plugin_passes_the_unchanged_cache_suite_at_every_level() {
    let factory = Arc::new(PluginFactory::load(&example()).unwrap());
    assert_eq!(factory.descriptor().domain, "cache");
    assert_eq!(factory.descriptor().name, "example");
    let checks = switchyard_conformance::suite("cache").unwrap();
    let report = switchyard_conformance::run(
        || switchyard_conformance::Subject::new(factory.clone()),
        checks,
    )
    .await;
    assert_eq!(report.failed, 0, "{}", report.to_text());
    assert_eq!(
        report.levels,
        vec!["core", "+transactions", "+isolation", "+resilience"]
    );
}

#[test]
fn a_library_of_another_abi_version_is_refused_with_a_clear_error() {
    let path = library("switchyard-example-wrong-abi-plugin");
    let Err(e) = PluginFactory::load(&path) else {
        panic!("a plugin of ABI 999 was loaded");
    };
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("built for plugin ABI version 999")
            && message.contains("this runtime speaks version 1"),
        "{message}"
    );
    let Err(e) = PluginFactory::load(Path::new("/nonexistent/libnothing.so")) else {
        panic!("a missing file was loaded");
    };
    assert!(e.to_string().contains("cannot read it"), "{e}");
}

#[tokio::test]
async fn a_panicking_plugin_answers_provider_failed_and_the_runtime_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = PlatformStore::open(dir.path()).await.unwrap();
    let mut registry = Registry::default();
    registry
        .register(Arc::new(MemoryCacheFactory::new()))
        .unwrap();
    for crate_name in [
        "switchyard-example-faulty-plugin",
        "switchyard-example-cache-plugin",
    ] {
        let plugin = PluginFactory::load(&library(crate_name)).unwrap();
        registry.register(Arc::new(plugin)).unwrap();
    }
    let runtime = Arc::new(Runtime::new(
        registry,
        store,
        ResilienceConfig {
            call_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        Default::default(),
    ));
    let acme = ctx("acme");
    for _ in 0..3 {
        let problem = runtime
            .invoke(&acme, "cache", "faulty", "get", json!({"key": "k"}), None)
            .await
            .unwrap_err();
        assert_eq!(problem.code, ErrorCode::ProviderFailed, "{problem:?}");
        assert_eq!(problem.status(), 502);
        assert!(!problem.retryable);
        assert!(
            problem.detail.contains("the plugin panicked"),
            "{}",
            problem.detail
        );
    }
    for name in ["memory", "example"] {
        runtime
            .invoke(
                &acme,
                "cache",
                name,
                "set",
                json!({"key": "k", "value": 7}),
                None,
            )
            .await
            .unwrap();
        let got = runtime
            .invoke(&acme, "cache", name, "get", json!({"key": "k"}), None)
            .await
            .unwrap();
        assert_eq!(got["value"], 7, "cache/{name}");
    }
    // Its health still answers: only calls into the panicking code fail.
    let health = runtime
        .health(&acme.tenant, "cache", "faulty")
        .await
        .unwrap();
    assert_eq!(health["status"], "up", "{health}");
}

#[tokio::test]
async fn a_plugin_instance_is_per_tenant_and_sees_only_its_tenant() {
    let factory = PluginFactory::load(&example()).unwrap();
    // Its code runs behind the C ABI: the runtime hands it no tenant client.
    assert!(!factory.in_process());
    let start = |tenant: &str| StartContext {
        tenant: TenantId::parse(tenant).unwrap(),
        config: json!({}),
        client: None,
    };
    let acme = factory.start(start("acme")).await.unwrap();
    let globex = factory.start(start("globex")).await.unwrap();
    let call = |action: &str, params| Invocation {
        action: action.into(),
        params,
        payload: None,
    };
    acme.invoke(
        &ctx("acme"),
        call("set", json!({"key": "s", "value": "acme-only"})),
    )
    .await
    .unwrap();
    let seen = globex
        .invoke(&ctx("globex"), call("get", json!({"key": "s"})))
        .await
        .unwrap();
    assert_eq!(seen["found"], false, "{seen}");
}

#[tokio::test]
async fn a_new_build_of_the_library_is_swapped_in_for_new_instances_only() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("libexample.so");
    std::fs::copy(example(), &source).unwrap();
    let factory = PluginFactory::load(&source).unwrap();
    let start = || StartContext {
        tenant: TenantId::parse("acme").unwrap(),
        config: json!({}),
        client: None,
    };
    let set = |value| Invocation {
        action: "set".into(),
        params: json!({"key": "k", "value": value}),
        payload: None,
    };
    let get = || Invocation {
        action: "get".into(),
        params: json!({"key": "k"}),
        payload: None,
    };
    let old = factory.start(start()).await.unwrap();
    old.invoke(&ctx("acme"), set(1)).await.unwrap();

    // A new build lands on the same path (a later modification time).
    std::thread::sleep(Duration::from_millis(20));
    std::fs::remove_file(&source).unwrap();
    std::fs::copy(example(), &source).unwrap();
    let new = factory.start(start()).await.unwrap();

    // The new instance runs on the newly loaded library (its own in-memory map: state that must
    // survive a swap belongs outside the library), the old one keeps its library until dropped.
    assert_eq!(
        new.invoke(&ctx("acme"), get()).await.unwrap()["found"],
        false
    );
    assert_eq!(old.invoke(&ctx("acme"), get()).await.unwrap()["value"], 1);
    drop(old);
    new.invoke(&ctx("acme"), set(2)).await.unwrap();
    assert_eq!(new.invoke(&ctx("acme"), get()).await.unwrap()["value"], 2);
}
