//! Connector developers' three ways in, end to end through the real binary: a plugin library
//! and a remote service registered by configuration are listed, served through the gateway
//! per tenant, and certified by `switchyard conformance` with the unchanged cache suite; a
//! library of another ABI stops the start-up with a clear error; a panicking plugin answers
//! `provider_failed` (never a 500) while everything else is served; and both skeletons of
//! `switchyard provider new` build and pass the suite.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{self, Api, BIN, Server, free_port, tenant_with_key};

const WORKSPACE: &str = env!("CARGO_MANIFEST_DIR");

/// The target directory the test binary itself was built in (`…/target/debug/switchyard`).
fn target_dir() -> PathBuf {
    Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .expect("the binary lives in <target>/<profile>/")
        .to_owned()
}

fn cargo() -> Command {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.env("CARGO_TARGET_DIR", target_dir());
    cargo
}

/// Builds the example plugins once per test run (the workspace's cargo and target dir, so
/// nothing is compiled twice) and answers the path of one of them.
fn plugin(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = cargo()
            .current_dir(WORKSPACE)
            .args(["build", "--quiet"])
            .args(["-p", "switchyard-example-cache-plugin"])
            .args(["-p", "switchyard-example-faulty-plugin"])
            .args(["-p", "switchyard-example-wrong-abi-plugin"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the example plugins do not build");
    });
    target_dir()
        .join("debug")
        .join(format!("lib{}.so", crate_name.replace('-', "_")))
}

/// A remote provider service (Python, standard library) on a free port, killed on drop.
pub(crate) struct RemoteService {
    child: Child,
    port: u16,
}

impl RemoteService {
    pub(crate) fn start(script: &Path, token: &str) -> RemoteService {
        let port = free_port();
        let child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string()])
            .env("REMOTE_PROVIDER_TOKEN", token)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs the remote service");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the remote service never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        RemoteService { child, port }
    }

    /// `manifest` with its endpoint pointed at this service, written into `dir`.
    pub(crate) fn manifest(&self, manifest: &Path, dir: &Path) -> PathBuf {
        let mut json: Value =
            serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
        json["endpoint"] = json!(format!("http://127.0.0.1:{}", self.port));
        let path = dir.join(format!("manifest-{}.json", self.port));
        std::fs::write(&path, json.to_string()).unwrap();
        path
    }
}

impl Drop for RemoteService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn example_service() -> PathBuf {
    Path::new(WORKSPACE).join("examples/remote/cache_service.py")
}

pub(crate) fn example_manifest() -> PathBuf {
    Path::new(WORKSPACE).join("examples/remote/manifest.json")
}

/// A token no other run uses, so finding it anywhere is a leak of this run's secret.
pub(crate) fn token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tok-{}-{nanos}", std::process::id())
}

/// `switchyard <args>` with `env`, its output whatever the exit status.
fn run(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SWITCHYARD_DATA_DIR", data_dir)
        .env("SWITCHYARD_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied())
        .output()
        .expect("switchyard runs")
}

/// `switchyard conformance <provider> --json <extra>`, which must certify every level.
fn certify(data_dir: &Path, provider: &str, extra: &[&str], env: &[(&str, &str)]) {
    let mut args = vec!["conformance", provider, "--json"];
    args.extend_from_slice(extra);
    let out = run(data_dir, &args, env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{provider} not certified:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("the report is JSON");
    assert_eq!(report["provider"], provider);
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(
        report["certification"], "core+transactions+isolation+resilience",
        "{report}"
    );
}

#[tokio::test]
async fn plugin_and_remote_providers_are_listed_served_per_tenant_and_never_show_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = token();
    let service = RemoteService::start(&example_service(), &token);
    let manifest = service.manifest(&example_manifest(), dir.path());
    let plugins = std::env::join_paths([
        plugin("switchyard-example-cache-plugin"),
        plugin("switchyard-example-faulty-plugin"),
    ])
    .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::spawn_with_env(
        dir.path(),
        &["serve", "--listen", &listen],
        port,
        &mut vec![
            ("SWITCHYARD_PLUGINS", plugins.to_string_lossy().into_owned()),
            (
                "SWITCHYARD_REMOTE_PROVIDERS",
                manifest.display().to_string(),
            ),
            ("REMOTE_PROVIDER_TOKEN", token.clone()),
        ],
    );
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));

    let (status, catalog) = acme.get("/providers").await;
    assert_eq!(status, StatusCode::OK, "{catalog}");
    for name in ["example", "example-remote", "faulty"] {
        let entry = catalog["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["domain"] == "cache" && p["name"] == name)
            .unwrap_or_else(|| panic!("cache/{name} is not in the catalog: {catalog}"));
        assert_eq!(entry["status"], "running", "{entry}");
        assert!(
            entry["actions"]
                .as_array()
                .unwrap()
                .contains(&json!("incr"))
        );
    }

    for provider in ["cache/example", "cache/example-remote"] {
        acme.ok(
            provider,
            "set",
            json!({"key": "secret", "value": "acme-only"}),
        )
        .await;
        let mine = acme.ok(provider, "get", json!({"key": "secret"})).await;
        assert_eq!(mine["value"], "acme-only", "{provider}");
        let theirs = globex.ok(provider, "get", json!({"key": "secret"})).await;
        assert_eq!(theirs["found"], false, "{provider} leaked across tenants");
        // The contract's schemas apply to foreign providers exactly as to built-in ones.
        let (status, problem) = acme
            .post(
                &format!("/providers/{provider}/set"),
                json!({"params": {"key": ""}}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["code"], "params_invalid");
    }

    // A plugin that panics: 502 provider_failed, the process and every other provider serve on.
    let (status, problem) = acme
        .post(
            "/providers/cache/faulty/get",
            json!({"params": {"key": "k"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{problem}");
    assert_eq!(problem["code"], "provider_failed");
    assert_eq!(problem["retryable"], false);
    acme.ok("cache/memory", "set", json!({"key": "k", "value": 1}))
        .await;
    acme.ok("cache/example", "get", json!({"key": "k"})).await;

    // The remote's token is a secret: not in any answer about it, nor in the server's log.
    let mut seen = catalog.to_string();
    for path in [
        "/providers/cache/example-remote",
        "/providers/cache/example-remote/health",
    ] {
        let (status, body) = acme.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        seen.push_str(&body.to_string());
    }
    let (_, health) = acme.get("/providers/cache/example-remote/health").await;
    assert_eq!(health["status"], "up", "{health}");
    seen.push_str(&std::fs::read_to_string(dir.path().join("server.log")).unwrap());
    assert!(!seen.contains(&token), "the remote provider's token leaked");
}

#[test]
fn switchyard_conformance_certifies_a_plugin_a_remote_and_a_built_in_provider() {
    let dir = tempfile::tempdir().unwrap();
    let token = token();
    let service = RemoteService::start(&example_service(), &token);
    let manifest = service.manifest(&example_manifest(), dir.path());
    let library = plugin("switchyard-example-cache-plugin");
    // By configuration, as a runtime would register them…
    let env = [
        ("SWITCHYARD_PLUGINS", library.to_str().unwrap()),
        ("SWITCHYARD_REMOTE_PROVIDERS", manifest.to_str().unwrap()),
        ("REMOTE_PROVIDER_TOKEN", token.as_str()),
    ];
    certify(dir.path(), "cache/example", &[], &env);
    certify(dir.path(), "cache/example-remote", &[], &env);
    certify(dir.path(), "cache/memory", &[], &[]);
    // …and on the command line, as a connector developer tries a build.
    certify(
        dir.path(),
        "cache/example",
        &["--plugin", library.to_str().unwrap()],
        &[],
    );

    // The text report names each check and the level.
    let out = run(dir.path(), &["conformance", "cache/memory"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pass  +isolation"), "{text}");
    assert!(
        text.contains("certification: core+transactions+isolation+resilience"),
        "{text}"
    );

    // A failing provider is reported, not certified, and the exit status says so.
    let out = run(
        dir.path(),
        &["conformance", "cache/faulty", "--json"],
        &[(
            "SWITCHYARD_PLUGINS",
            plugin("switchyard-example-faulty-plugin").to_str().unwrap(),
        )],
    );
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["certification"], "none", "{report}");
    let detail = report["checks"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("the plugin panicked"), "{report}");
}

#[test]
fn a_plugin_built_for_another_abi_stops_the_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let library = plugin("switchyard-example-wrong-abi-plugin");
    let out = run(
        dir.path(),
        &["providers"],
        &[("SWITCHYARD_PLUGINS", library.to_str().unwrap())],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("built for plugin ABI version 999")
            && stderr.contains("this runtime speaks version 1")
            && stderr.contains(library.to_str().unwrap()),
        "{stderr}"
    );
}

#[test]
fn a_scaffolded_plugin_builds_and_is_certified() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("acme-cache");
    common::cli(
        dir.path(),
        &[
            "provider",
            "new",
            "cache/acme-cache",
            "--plugin",
            "--dir",
            crate_dir.to_str().unwrap(),
        ],
    );
    // The workspace's lock file pins the skeleton's few dependencies to the versions already
    // compiled in the shared target dir, so the build compiles only the skeleton itself.
    std::fs::copy(
        Path::new(WORKSPACE).join("Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .unwrap();
    let status = cargo()
        .args(["build", "--quiet", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the scaffolded plugin does not build");
    let library = target_dir().join("debug/libacme_cache_plugin.so");
    certify(
        dir.path(),
        "cache/acme-cache",
        &["--plugin", library.to_str().unwrap()],
        &[],
    );
}

#[test]
fn a_scaffolded_remote_service_is_certified() {
    let dir = tempfile::tempdir().unwrap();
    let service_dir = dir.path().join("acme-remote");
    common::cli(
        dir.path(),
        &[
            "provider",
            "new",
            "cache/acme-remote",
            "--remote",
            "--dir",
            service_dir.to_str().unwrap(),
        ],
    );
    let token = token();
    let service = RemoteService::start(&service_dir.join("service.py"), &token);
    let manifest = service.manifest(&service_dir.join("manifest.json"), dir.path());
    certify(
        dir.path(),
        "cache/acme-remote",
        &["--manifest", manifest.to_str().unwrap()],
        &[("REMOTE_PROVIDER_TOKEN", token.as_str())],
    );
}
