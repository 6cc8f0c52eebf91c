//! A remote provider for real: the example service of `examples/remote/` (Python, standard
//! library) reached through its manifest — tenants kept apart, the token sent as a bearer and
//! never shown, and a service that goes away noticed by the health poll.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, HealthStatus, TenantId};
use switchyard_runtime::remote::RemoteFactory;
use switchyard_spi::{CallContext, Invocation, ProviderFactory, StartContext};

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_service(port: u16, token: &str) -> Service {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/remote/cache_service.py");
    let child = Command::new("python3")
        .arg(script)
        .args(["--port", &port.to_string()])
        .env("REMOTE_PROVIDER_TOKEN", token)
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the service never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    Service(child)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ctx(tenant: &str) -> CallContext {
    CallContext {
        tenant: TenantId::parse(tenant).unwrap(),
        request_id: "remote-test".into(),
        subject: None,
        service: None,
    }
}

fn call(action: &str, params: Value) -> Invocation {
    Invocation {
        action: action.into(),
        params,
        payload: None,
    }
}

/// A factory for the service on `port`, its token behind a `secret://file/` reference.
fn factory(port: u16, token_file: &Path) -> RemoteFactory {
    let manifest = json!({
        "domain": "cache", "name": "remote", "version": "1.0.0",
        "endpoint": format!("http://127.0.0.1:{port}"), "health_path": "/health",
        "health_interval_ms": 100,
        "auth": {"type": "bearer", "token": format!("secret://file/{}", token_file.display())}
    });
    RemoteFactory::from_manifest(&manifest, Arc::default()).unwrap()
}

#[tokio::test]
async fn tenants_are_kept_apart_and_a_vanished_service_is_noticed_by_the_health_poll() {
    let port = free_port();
    let token = format!("remote-test-token-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), &token).unwrap();
    let service = start_service(port, &token);
    let factory = factory(port, &dir.path().join("token"));
    // Its code runs behind an endpoint: the runtime hands it no tenant client.
    assert!(!factory.in_process());
    let start = |tenant: &str| StartContext {
        tenant: TenantId::parse(tenant).unwrap(),
        config: json!({}),
        client: None,
    };
    let acme = factory.start(start("acme")).await.unwrap();
    let globex = factory.start(start("globex")).await.unwrap();
    acme.invoke(&ctx("acme"), call("set", json!({"key": "k", "value": "a"})))
        .await
        .unwrap();
    let theirs = globex
        .invoke(&ctx("globex"), call("get", json!({"key": "k"})))
        .await
        .unwrap();
    assert_eq!(theirs["found"], false);
    // A contract error of the service comes back with its code and pointer.
    let err = acme
        .invoke(&ctx("acme"), call("incr", json!({"key": "k"})))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict, "{err:?}");

    let health = acme.health().await;
    assert_eq!(health.status, HealthStatus::Up, "{health:?}");
    assert!(!format!("{health:?}").contains(&token));

    drop(service);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let started = Instant::now();
    let err = acme
        .invoke(&ctx("acme"), call("get", json!({"key": "k"})))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{err:?}");
    assert!(err.retryable);
    assert!(err.detail.contains("last health poll"), "{}", err.detail);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "not failed fast"
    );
    assert!(!err.detail.contains(&token));
    assert_eq!(acme.health().await.status, HealthStatus::Down);
}

#[tokio::test]
async fn a_refused_token_is_the_operators_problem_and_is_never_shown() {
    let port = free_port();
    let _service = start_service(port, "the-right-token");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "a-wrong-token").unwrap();
    let factory = factory(port, &dir.path().join("token"));
    let Err(err) = factory
        .start(StartContext {
            tenant: TenantId::parse("acme").unwrap(),
            config: json!({}),
            client: None,
        })
        .await
    else {
        panic!("started with a wrong token");
    };
    assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{err:?}");
    assert!(
        err.detail.contains("refused the runtime's credentials"),
        "{}",
        err.detail
    );
    assert!(!err.detail.contains("a-wrong-token"));
}
