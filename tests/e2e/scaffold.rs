//! `switchyard provider new` for every domain, as a connector developer uses it: each domain's
//! plugin and remote skeleton is generated, built (plugins) or started (services), and certified
//! by `switchyard conformance` at least at its domain's core level, unchanged.
//!
//! The plugins build one after another into the workspace's own target dir with the
//! workspace's lock file, so their few dependencies are those already compiled: each build
//! compiles the skeleton alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{self, BIN};
use crate::plugins::{RemoteService, token};

const WORKSPACE: &str = env!("CARGO_MANIFEST_DIR");

/// Every domain with a skeleton; each must be certified at core, as a plugin and as a service.
const DOMAINS: &[&str] = &["ai", "auth", "bus", "cache", "db", "integration", "storage"];

fn target_dir() -> PathBuf {
    Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .expect("the binary lives in <target>/<profile>/")
        .to_owned()
}

/// `switchyard conformance <provider> --json <extra>`: the report, which must claim core (no
/// core check failed; a skeleton need not earn the further levels).
fn certify(data_dir: &Path, provider: &str, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new(BIN)
        .args(["conformance", provider, "--json"])
        .args(extra)
        .env("SWITCHYARD_DATA_DIR", data_dir)
        .env("SWITCHYARD_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("switchyard runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{provider} {extra:?} not certified:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("the report is JSON");
    let failed_core: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["level"] == "core" && c["passed"] == false && c["skipped"] != true)
        .collect();
    assert!(failed_core.is_empty(), "{provider}: {failed_core:?}");
    assert!(
        report["levels"]
            .as_array()
            .unwrap()
            .contains(&Value::from("core")),
        "{provider}: {report}"
    );
    report
}

#[test]
fn every_domains_skeletons_build_and_are_certified_at_core() {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let remote_token = token();
    for domain in DOMAINS {
        let name = format!("acme-{domain}");
        let provider = format!("{domain}/{name}");
        let plugin_dir = dir.path().join(format!("{name}-plugin"));
        let service_dir = dir.path().join(format!("{name}-remote"));
        for (kind, at) in [("--plugin", &plugin_dir), ("--remote", &service_dir)] {
            common::cli(
                dir.path(),
                &[
                    "provider",
                    "new",
                    &provider,
                    kind,
                    "--dir",
                    at.to_str().unwrap(),
                ],
            );
        }

        std::fs::copy(
            Path::new(WORKSPACE).join("Cargo.lock"),
            plugin_dir.join("Cargo.lock"),
        )
        .unwrap();
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .env("CARGO_TARGET_DIR", target_dir())
            .args(["build", "--quiet", "--offline", "--manifest-path"])
            .arg(plugin_dir.join("Cargo.toml"))
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "the {domain} plugin skeleton does not build"
        );
        let library = target_dir().join(format!("debug/lib{}_plugin.so", name.replace('-', "_")));
        certify(
            dir.path(),
            &provider,
            &["--plugin", library.to_str().unwrap()],
            &[],
        );

        let service = RemoteService::start(&service_dir.join("service.py"), &remote_token);
        let manifest = service.manifest(&service_dir.join("manifest.json"), dir.path());
        certify(
            dir.path(),
            &provider,
            &["--manifest", manifest.to_str().unwrap()],
            &[("REMOTE_PROVIDER_TOKEN", remote_token.as_str())],
        );
    }
    eprintln!(
        "scaffolds: {} domains x (plugin, remote) generated, built and certified in {:.1} s",
        DOMAINS.len(),
        started.elapsed().as_secs_f64()
    );
}
