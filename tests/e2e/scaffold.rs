//! `switchyard provider new` for every domain, as a connector developer uses it: each domain's
//! plugin and remote skeleton is generated, built (plugins) or started (services), and certified
//! by `switchyard conformance` at least at its domain's core level, unchanged.
//!
//! The plugins build in one cargo run, as members of one workspace, into the repository's own
//! target dir with its lock file: their few dependencies are those already compiled, and the
//! skeletons compile in parallel.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

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
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let remote_token = token();
    let name = |domain: &str| format!("acme-{domain}");
    for domain in DOMAINS {
        let provider = format!("{domain}/{}", name(domain));
        for kind in ["plugin", "remote"] {
            let at = dir.path().join(format!("{}-{kind}", name(domain)));
            common::cli(
                dir.path(),
                &[
                    "provider",
                    "new",
                    &provider,
                    &format!("--{kind}"),
                    "--dir",
                    at.to_str().unwrap(),
                ],
            );
        }
    }
    let generated = started.elapsed();

    // One cargo run builds every plugin: the generated crates, less the `[workspace]` table
    // that makes each standalone, as members of one workspace with the repository's lock file.
    let mut members = Vec::new();
    for domain in DOMAINS {
        let crate_dir = format!("{}-plugin", name(domain));
        let manifest = dir.path().join(&crate_dir).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, text.replace("\n[workspace]\n", "\n")).unwrap();
        members.push(format!("{crate_dir:?}"));
    }
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    )
    .unwrap();
    std::fs::copy(
        Path::new(WORKSPACE).join("Cargo.lock"),
        dir.path().join("Cargo.lock"),
    )
    .unwrap();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .env("CARGO_TARGET_DIR", target_dir())
        .args([
            "build",
            "--quiet",
            "--offline",
            "--workspace",
            "--manifest-path",
        ])
        .arg(dir.path().join("Cargo.toml"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the plugin skeletons do not build");
    let built = started.elapsed();

    for domain in DOMAINS {
        let provider = format!("{domain}/{}", name(domain));
        let library = target_dir().join(format!(
            "debug/lib{}_plugin.so",
            name(domain).replace('-', "_")
        ));
        certify(
            dir.path(),
            &provider,
            &["--plugin", library.to_str().unwrap()],
            &[],
        );
        let service_dir = dir.path().join(format!("{}-remote", name(domain)));
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
        "scaffolds: {} domains x (plugin, remote): generated in {:.1} s, plugins built in {:.1} s, \
         all certified by {:.1} s",
        DOMAINS.len(),
        generated.as_secs_f64(),
        (built - generated).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
