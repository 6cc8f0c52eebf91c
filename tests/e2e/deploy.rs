//! The deployment artifacts (issue 23), checked offline with the tools a reviewer would use and
//! held to what the binary really serves: every kustomize overlay of `deploy/kubernetes` builds
//! and passes kubernetes-validate's strict schemas; checkov finds no failed check in the
//! overlays, the Terraform module or `deploy/Containerfile`, and skips only the checks whose
//! inline reasons are known here; every `.tf` file parses (python-hcl2) into the module's
//! interface; the manifests' port, probes, environment, mounts and security context match the
//! binary, the image and the Terraform module; and `switchyard serve` starts on the very
//! gateway config and store reference the manifests give it and answers the probes they name.
//!
//! The tools come from the variables scripts/test exports (kubectl, and PyPI's
//! kubernetes-validate, python-hcl2 and checkov in venvs under target/tools/); a missing one
//! fails the test, as for the other third-party tools of this suite.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const OVERLAYS: [&str; 3] = ["dev", "prod", "canary"];
/// The oldest Kubernetes the manifests run on (the preStop sleep action is on by default from
/// 1.30) and the newest schema kubernetes-validate 1.37.0 ships.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];
const GATEWAY_CONFIG: &str = "deploy/kubernetes/base/gateway.toml";

fn tool(variable: &str, what: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: scripts/test installs {what} (its deploy block)")
    })
}

fn kubectl() -> String {
    tool(
        "SWITCHYARD_TEST_KUBECTL",
        "kubectl (Debian's kubernetes-client when missing)",
    )
}

fn kubernetes_validate() -> String {
    tool(
        "SWITCHYARD_TEST_KUBERNETES_VALIDATE",
        "kubernetes-validate==1.37.0 into a venv",
    )
}

fn checkov() -> String {
    tool("SWITCHYARD_TEST_CHECKOV", "checkov==3.3.30 into a venv")
}

fn hcl2_python() -> String {
    tool(
        "SWITCHYARD_TEST_HCL2_PYTHON",
        "python-hcl2==8.1.4 into a venv",
    )
}

/// The python of kubernetes-validate's venv: it has PyYAML (a dependency of the validator) and,
/// being 3.11 or later, tomllib.
fn yaml_python() -> PathBuf {
    Path::new(&kubernetes_validate()).with_file_name("python")
}

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str], stdin: Option<&str>) -> Output {
    let program = program.as_ref();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(ROOT)
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program:?} does not run: {e}"));
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stdout_of(program: impl AsRef<std::ffi::OsStr>, args: &[&str], stdin: Option<&str>) -> String {
    let name = program.as_ref().to_owned();
    let out = run(program, args, stdin);
    assert!(
        out.status.success(),
        "{name:?} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `kubectl kustomize` of an overlay, as YAML. Fails on a kubectl whose kustomize is older
/// than v5 with what it is.
fn kustomize(overlay: &str) -> String {
    let kubectl = kubectl();
    let version = stdout_of(&kubectl, &["version", "--client"], None);
    assert!(
        version.contains("Kustomize Version: v5"),
        "{kubectl} embeds no kustomize v5 (kubectl >= 1.27 does), and the overlays need it:\n{version}"
    );
    stdout_of(
        &kubectl,
        &[
            "kustomize",
            &format!("deploy/kubernetes/overlays/{overlay}"),
        ],
        None,
    )
}

/// An overlay's resources as JSON.
fn manifests(overlay: &str) -> Vec<Value> {
    let yaml = kustomize(overlay);
    let json = stdout_of(
        yaml_python(),
        &[
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))",
        ],
        Some(&yaml),
    );
    serde_json::from_str(&json).unwrap()
}

fn find<'a>(resources: &'a [Value], kind: &str, name: &str) -> &'a Value {
    resources
        .iter()
        .find(|r| r["kind"] == kind && r["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the build"))
}

fn kinds(resources: &[Value], kind: &str) -> Vec<Value> {
    resources
        .iter()
        .filter(|r| r["kind"] == kind)
        .cloned()
        .collect()
}

/// `[limits] drain_timeout_ms` of the gateway config the manifests mount, read by tomllib.
fn drain_timeout_ms() -> u64 {
    let json = stdout_of(
        yaml_python(),
        &[
            "-c",
            "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
            GATEWAY_CONFIG,
        ],
        None,
    );
    let config: Value = serde_json::from_str(&json).unwrap();
    config["limits"]["drain_timeout_ms"]
        .as_u64()
        .expect("gateway.toml sets [limits] drain_timeout_ms")
}

/// checkov's JSON report for one framework: (summary, skipped checks as (id, reason, resource)).
fn checkov_report(args: &[&str], framework: &str) -> (Value, Vec<(String, String, String)>) {
    let checkov = checkov();
    // checkov's kustomize runner calls `kubectl` from PATH: the one scripts/test chose first.
    let kubectl_dir = Path::new(&kubectl())
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = format!(
        "{}:{}",
        kubectl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let out = Command::new(&checkov)
        .args(["--skip-download", "-o", "json", "--framework", framework])
        .args(args)
        .current_dir(ROOT)
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| panic!("{checkov} does not run: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "checkov {args:?} gave no JSON report ({e}); exit {:?}:\n{text}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // One framework: an object; several, or none found: an array.
    let report = match report {
        Value::Array(reports) => reports
            .into_iter()
            .find(|r| r["check_type"] == framework)
            .unwrap_or_else(|| panic!("checkov {args:?} ran no {framework} checks")),
        report => report,
    };
    eprintln!(
        "checkov {framework} {args:?}: {} in {:.1} s",
        report["summary"],
        started.elapsed().as_secs_f64()
    );
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {} ({})", c["check_id"], c["check_name"], c["resource"]))
        .collect();
    assert!(
        failed.is_empty() && report["summary"]["failed"] == 0,
        "checkov {args:?} failed checks:\n{}",
        failed.join("\n")
    );
    assert_eq!(
        report["summary"]["parsing_errors"], 0,
        "checkov could not parse everything: {}",
        report["summary"]
    );
    let skipped = report["results"]["skipped_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["check_id"].as_str().unwrap_or_default().to_owned(),
                c["check_result"]["suppress_comment"]
                    .as_str()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                c["resource"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (report["summary"].clone(), skipped)
}

/// Every skip is one of `allowed` (the checks whose reasons were reviewed) with a reason that
/// names the thing it relies on.
fn assert_skips(skipped: &[(String, String, String)], allowed: &[(&str, &str)]) {
    for (id, reason, resource) in skipped {
        let Some((_, must_mention)) = allowed.iter().find(|(a, _)| a == id) else {
            panic!("{id} is skipped on {resource} ({reason:?}), and no reason for it was reviewed");
        };
        assert!(
            reason.len() > 40 && reason.contains(must_mention),
            "the reason for skipping {id} on {resource} does not say why ({must_mention}): {reason:?}"
        );
    }
}

#[test]
fn every_overlay_builds_and_passes_kubernetes_validate_strict_against_1_30_and_1_37() {
    let validator = kubernetes_validate();
    let dir = tempfile::tempdir().unwrap();
    for overlay in OVERLAYS {
        let file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, kustomize(overlay)).unwrap();
        for version in KUBERNETES_VERSIONS {
            let out = run(
                &validator,
                &[
                    "--strict",
                    "--quiet",
                    "--kubernetes-version",
                    version,
                    file.to_str().unwrap(),
                ],
                None,
            );
            assert!(
                out.status.success(),
                "overlays/{overlay} against Kubernetes {version}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The control for the test above: a field Kubernetes does not know, which the API server
/// would drop silently, fails the strict validation; so its pass means the fields are real.
#[test]
fn kubernetes_validate_strict_refuses_a_misspelled_security_context_field() {
    let yaml = kustomize("prod");
    assert!(yaml.contains("readOnlyRootFilesystem: true"));
    let broken = yaml.replace(
        "readOnlyRootFilesystem: true",
        "readOnlyRootFileSystem: true",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, broken).unwrap();
    let out = run(
        kubernetes_validate(),
        &[
            "--strict",
            "--quiet",
            "--kubernetes-version",
            KUBERNETES_VERSIONS[0],
            file.to_str().unwrap(),
        ],
        None,
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success() && said.contains("readOnlyRootFileSystem"),
        "a misspelled field passed strict validation: {said}"
    );
}

#[test]
fn checkov_passes_every_kustomize_overlay_skipping_only_digest_pinning_and_env_secrets_with_reasons()
 {
    let (summary, skipped) = checkov_report(&["-d", "deploy/kubernetes"], "kustomize");
    assert!(
        summary["passed"].as_u64().unwrap_or(0) > 100,
        "checkov ran too few kustomize checks to mean anything: {summary}"
    );
    assert_skips(
        &skipped,
        &[
            ("CKV_K8S_43", "scripts/image"),
            ("CKV_K8S_35", "from its environment only"),
        ],
    );
    // base and each overlay are scanned: every one of them was checked.
    let scanned: BTreeSet<String> = skipped
        .iter()
        .filter_map(|(_, _, r)| r.split(':').nth(1).map(str::to_owned))
        .collect();
    for overlay in ["overlays/dev", "overlays/prod", "canary"] {
        assert!(
            scanned.iter().any(|s| s.ends_with(overlay)),
            "checkov did not scan {overlay}: {scanned:?}"
        );
    }
}

#[test]
fn checkov_passes_the_terraform_module_skipping_only_the_image_checks_its_validation_enforces() {
    let (summary, skipped) = checkov_report(&["-d", "terraform"], "terraform");
    assert!(
        summary["passed"].as_u64().unwrap_or(0) >= 20,
        "checkov ran too few terraform checks to mean anything: {summary}"
    );
    assert_skips(
        &skipped,
        &[
            ("CKV_K8S_14", "validation accepts only"),
            ("CKV_K8S_43", "validation accepts only"),
        ],
    );
    // The reason holds only while var.image's validation really demands a digest.
    let variables =
        std::fs::read_to_string(Path::new(ROOT).join("terraform/variables.tf")).unwrap();
    assert!(
        variables.contains("@sha256:[0-9a-f]{64}$\", var.image)"),
        "var.image no longer requires a digest, so the CKV_K8S_14/43 skips in main.tf are unjustified"
    );
}

#[test]
fn checkov_passes_the_containerfile_with_no_skip() {
    // checkov recognises a Dockerfile by its name only.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("Dockerfile");
    std::fs::copy(Path::new(ROOT).join("deploy/Containerfile"), &copy).unwrap();
    let (summary, skipped) = checkov_report(&["-f", copy.to_str().unwrap()], "dockerfile");
    assert!(
        summary["passed"].as_u64().unwrap_or(0) >= 10,
        "checkov ran too few dockerfile checks: {summary}"
    );
    assert!(skipped.is_empty(), "skipped: {skipped:?}");
}

/// Every `.tf` file under terraform/, found here independently of the script.
fn tf_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.file_name().unwrap().to_string_lossy().starts_with('.') {
            tf_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "tf") {
            found.push(path);
        }
    }
}

/// deploy/check-terraform.py's summary of the module (it exits non-zero on any problem).
fn terraform_summary() -> Value {
    let out = run(
        hcl2_python(),
        &["deploy/check-terraform.py", "terraform"],
        None,
    );
    assert!(
        out.status.success(),
        "deploy/check-terraform.py found problems:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_terraform_file_parses_and_the_module_declares_its_variables_resources_and_outputs() {
    let summary = terraform_summary();
    let mut found = Vec::new();
    tf_files(&Path::new(ROOT).join("terraform"), &mut found);
    let parsed: BTreeSet<String> = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    assert!(found.len() >= 5, "terraform/ has {} .tf files", found.len());
    for file in &found {
        let relative = file
            .strip_prefix(ROOT)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(parsed.contains(&relative), "{relative} was not parsed");
    }
}

/// Every string literal `"NAME"` in the workspace's Rust sources outside tests: where the
/// binary reads its environment (std::env::var, clap's `env = "..."`).
fn names_in_sources() -> BTreeSet<String> {
    fn walk(dir: &Path, names: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "tests") {
                    walk(&path, names);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for literal in text.split('"').skip(1).step_by(2) {
                    if !literal.is_empty()
                        && literal
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    {
                        names.insert(literal.to_owned());
                    }
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    walk(Path::new(ROOT), &mut names);
    names
}

/// The stable Deployment's container and pod spec of an overlay.
fn stable(resources: &[Value]) -> (&Value, &Value) {
    let deployment = find(resources, "Deployment", "switchyard");
    let pod = &deployment["spec"]["template"]["spec"];
    (pod, &pod["containers"][0])
}

fn env_names(container: &Value) -> Vec<String> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

fn env_value<'a>(container: &'a Value, name: &str) -> &'a str {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("{name} has no literal value"))
}

fn mount_of<'a>(pod: &'a Value, container: &'a Value, path: &str) -> &'a Value {
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == path)
        .unwrap_or_else(|| panic!("nothing is mounted at {path}"));
    pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap_or_else(|| panic!("no volume {} for {path}", mount["name"]))
}

#[test]
fn the_manifests_port_probes_env_mounts_and_security_context_match_the_binary_and_the_image() {
    let help = stdout_of(common::BIN, &["serve", "--help"], None);
    for flag in ["--listen", "--config", "--data-dir"] {
        assert!(help.contains(flag), "serve has no {flag}:\n{help}");
    }
    let sources = names_in_sources();
    let containerfile =
        std::fs::read_to_string(Path::new(ROOT).join("deploy/Containerfile")).unwrap();
    let instruction = |name: &str| -> String {
        containerfile
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("the Containerfile has no {name}"))
            .to_owned()
    };
    assert_eq!(instruction("USER"), "USER 10001:10001");
    assert_eq!(instruction("EXPOSE"), "EXPOSE 8080");
    assert_eq!(
        instruction("ENTRYPOINT"),
        r#"ENTRYPOINT ["/usr/local/bin/switchyard"]"#
    );
    assert_eq!(
        instruction("CMD"),
        r#"CMD ["serve", "--listen", "0.0.0.0:8080"]"#
    );
    assert!(containerfile.contains("SWITCHYARD_DATA_DIR=/var/lib/switchyard"));
    let drain_seconds = drain_timeout_ms().div_ceil(1000);

    for overlay in OVERLAYS {
        let resources = manifests(overlay);
        let context = |what: &str| format!("overlays/{overlay}: {what}");
        for deployment in kinds(&resources, "Deployment") {
            let name = deployment["metadata"]["name"].as_str().unwrap().to_owned();
            let pod = &deployment["spec"]["template"]["spec"];
            let container = &pod["containers"][0];
            let at = |what: &str| context(&format!("{name}: {what}"));

            // What serve listens on, and the config it is given.
            let args: Vec<&str> = container["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(
                args[..3],
                ["serve", "--listen", "0.0.0.0:8080"],
                "{}",
                at("args")
            );
            let config = args
                .iter()
                .position(|a| *a == "--config")
                .map(|i| args[i + 1])
                .unwrap_or_else(|| panic!("{}", at("no --config")));
            let (config_dir, config_file) = config.rsplit_once('/').unwrap();
            let volume = mount_of(pod, container, config_dir);
            let configmap = volume["configMap"]["name"].as_str().unwrap();
            let data = &find(&resources, "ConfigMap", configmap)["data"][config_file];
            assert_eq!(
                data.as_str().unwrap(),
                std::fs::read_to_string(Path::new(ROOT).join(GATEWAY_CONFIG)).unwrap(),
                "{}",
                at("the mounted config is not deploy/kubernetes/base/gateway.toml")
            );
            let port = &container["ports"][0];
            assert_eq!(port["containerPort"], 8080, "{}", at("port"));
            assert_eq!(port["name"], "http", "{}", at("port name"));

            // The probes name what the gateway answers.
            for (probe, path) in [
                ("startupProbe", "/healthz"),
                ("livenessProbe", "/healthz"),
                ("readinessProbe", "/readyz"),
            ] {
                assert_eq!(container[probe]["httpGet"]["path"], path, "{}", at(probe));
                assert_eq!(container[probe]["httpGet"]["port"], "http", "{}", at(probe));
            }

            // Every variable set is one the binary reads.
            for env in env_names(container) {
                assert!(
                    help.contains(&format!("[env: {env}")) || sources.contains(&env),
                    "{}",
                    at(&format!("{env} is read nowhere in the binary's sources"))
                );
            }
            // The data dir and /tmp are writable volumes; the store URL is a file reference
            // to the mounted Secret key.
            let data_dir = env_value(container, "SWITCHYARD_DATA_DIR");
            assert_eq!(data_dir, "/var/lib/switchyard", "{}", at("data dir"));
            assert!(mount_of(pod, container, data_dir)["emptyDir"].is_object());
            assert!(mount_of(pod, container, "/tmp")["emptyDir"].is_object());
            let store = env_value(container, "SWITCHYARD_STORE_URL");
            let file = store
                .strip_prefix("secret://file")
                .unwrap_or_else(|| panic!("{}", at("the store URL is no file reference")));
            let (dir, key) = file.rsplit_once('/').unwrap();
            let secret = &mount_of(pod, container, dir)["secret"];
            assert!(
                secret["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["path"] == key && i["key"] == "store-url"),
                "{}",
                at("the store URL's file is not the Secret's store-url")
            );

            // The image's user, non-root, nothing writable but the volumes, no privilege.
            let security = &container["securityContext"];
            assert_eq!(
                pod["securityContext"]["runAsUser"],
                10001,
                "{}",
                at("pod user")
            );
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"],
                "RuntimeDefault"
            );
            assert_eq!(security["runAsUser"], 10001, "{}", at("container user"));
            assert_eq!(security["readOnlyRootFilesystem"], true);
            assert_eq!(security["allowPrivilegeEscalation"], false);
            assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
            assert_eq!(pod["automountServiceAccountToken"], false);

            // The grace period outlasts the preStop sleep plus the gateway's drain plus
            // Pingora's one second, so the kubelet never kills a draining gateway.
            let sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_u64()
                .unwrap_or_else(|| panic!("{}", at("no preStop sleep")));
            let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
            assert!(
                grace > sleep + drain_seconds + 1,
                "{}",
                at(&format!(
                    "grace {grace} s <= preStop {sleep} s + drain {drain_seconds} s + 1 s"
                ))
            );
            let strategy = &deployment["spec"]["strategy"]["rollingUpdate"];
            assert_eq!(strategy["maxUnavailable"], 0, "{}", at("maxUnavailable"));
            assert_eq!(strategy["maxSurge"], 1, "{}", at("maxSurge"));
        }

        // The Service, the NetworkPolicy and the HPA point at that port and Deployment.
        let service = find(&resources, "Service", "switchyard");
        assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
        let policy = find(&resources, "NetworkPolicy", "switchyard");
        assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], 8080);
        assert_eq!(
            policy["spec"]["ingress"].as_array().unwrap().len(),
            1,
            "{}",
            context("ingress beyond 8080")
        );
        let hpa = find(&resources, "HorizontalPodAutoscaler", "switchyard");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "switchyard");
        let selector = service["spec"]["selector"].as_object().unwrap();
        for deployment in kinds(&resources, "Deployment") {
            let labels = &deployment["spec"]["template"]["metadata"]["labels"];
            for (key, value) in selector {
                assert_eq!(
                    &labels[key],
                    value,
                    "{}",
                    context("the Service misses pods")
                );
            }
        }
    }
}

#[test]
fn the_canary_runs_the_stable_pod_spec_with_its_own_image_selector_and_replicas() {
    let resources = manifests("canary");
    let stable_deployment = find(&resources, "Deployment", "switchyard");
    let canary = find(&resources, "Deployment", "switchyard-canary");
    let mut stable_pod = stable_deployment["spec"]["template"]["spec"].clone();
    let mut canary_pod = canary["spec"]["template"]["spec"].clone();
    let stable_image = stable_pod["containers"][0]["image"].take();
    let canary_image = canary_pod["containers"][0]["image"].take();
    assert_ne!(
        stable_image, canary_image,
        "the canary runs the stable image"
    );
    assert!(canary_image.as_str().unwrap().contains(':'));
    assert_eq!(
        stable_pod, canary_pod,
        "the canary's pod spec drifted from the stable one"
    );
    // Disjoint selectors (no Deployment adopts the other's pods), one Service over both.
    let stable_selector = &stable_deployment["spec"]["selector"]["matchLabels"];
    let canary_selector = &canary["spec"]["selector"]["matchLabels"];
    assert_ne!(stable_selector, canary_selector);
    assert!(
        canary_selector
            .as_object()
            .unwrap()
            .iter()
            .any(|(k, v)| stable_selector[k].is_string() && &stable_selector[k] != v),
        "the selectors overlap: {stable_selector} / {canary_selector}"
    );
    let canary_replicas = canary["spec"]["replicas"].as_u64().unwrap();
    let stable_replicas = stable_deployment["spec"]["replicas"].as_u64().unwrap();
    assert!(canary_replicas >= 1 && canary_replicas < stable_replicas);
    let service = find(&resources, "Service", "switchyard");
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(
            &canary["spec"]["template"]["metadata"]["labels"][key],
            value
        );
    }
    assert_eq!(kinds(&resources, "Service").len(), 1);
}

#[test]
fn the_terraform_module_wires_the_same_args_port_env_probes_mounts_and_security_as_the_manifests() {
    let module = terraform_summary()["deployment"].clone();
    let resources = manifests("prod");
    let (pod, container) = stable(&resources);

    let args: Vec<Value> = container["args"].as_array().unwrap().clone();
    assert_eq!(module["args"], Value::Array(args));
    assert_eq!(
        module["ports"]["http"],
        container["ports"][0]["containerPort"]
    );
    let module_env: Vec<String> = module["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(module_env, env_names(container), "env names differ");
    for name in ["SWITCHYARD_DATA_DIR", "SWITCHYARD_STORE_URL"] {
        assert_eq!(
            module["env_values"][name],
            env_value(container, name),
            "{name} differs"
        );
    }
    for (module_probe, probe) in [
        ("startup_probe", "startupProbe"),
        ("liveness_probe", "livenessProbe"),
        ("readiness_probe", "readinessProbe"),
    ] {
        assert_eq!(
            module["probes"][module_probe]["path"],
            container[probe]["httpGet"]["path"]
        );
        assert_eq!(
            module["probes"][module_probe]["port"],
            container[probe]["httpGet"]["port"]
        );
    }
    let mounts: BTreeMap<String, Value> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["mountPath"].clone(),
            )
        })
        .collect();
    let module_mounts: BTreeMap<String, Value> = module["mounts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(module_mounts, mounts, "volume mounts differ");
    let pod_security = &module["pod_security_context"];
    let security = &module["container_security_context"];
    for (module_key, key) in [
        ("run_as_user", "runAsUser"),
        ("run_as_group", "runAsGroup"),
        ("run_as_non_root", "runAsNonRoot"),
        ("fs_group", "fsGroup"),
    ] {
        assert_eq!(
            pod_security[module_key], pod["securityContext"][key],
            "pod {key}"
        );
    }
    for (module_key, key) in [
        ("run_as_user", "runAsUser"),
        ("run_as_non_root", "runAsNonRoot"),
        ("allow_privilege_escalation", "allowPrivilegeEscalation"),
        ("read_only_root_filesystem", "readOnlyRootFilesystem"),
        ("privileged", "privileged"),
    ] {
        assert_eq!(
            security[module_key], container["securityContext"][key],
            "container {key}"
        );
    }
    assert_eq!(
        module["capabilities_drop"],
        container["securityContext"]["capabilities"]["drop"]
    );
    assert_eq!(module["image_pull_policy"], container["imagePullPolicy"]);
}

/// The value the pod would see for one `env` entry: a literal, or a key of the Secret
/// (`secret`, the test's own values) or of a built ConfigMap; `None` when an optional key is
/// absent, as the kubelet leaves the variable unset then.
fn resolve_env(
    entry: &Value,
    resources: &[Value],
    secret: &BTreeMap<&str, String>,
    configmap_overrides: &BTreeMap<&str, String>,
) -> Option<String> {
    if let Some(value) = entry["value"].as_str() {
        return Some(value.to_owned());
    }
    let from = &entry["valueFrom"];
    let optional = |r: &Value| r["optional"] == true;
    if from["secretKeyRef"].is_object() {
        let reference = &from["secretKeyRef"];
        assert_eq!(reference["name"], "switchyard", "{entry}");
        let key = reference["key"].as_str().unwrap();
        return match secret.get(key) {
            Some(value) => Some(value.clone()),
            None if optional(reference) => None,
            None => {
                panic!("the Deployment needs the Secret key {key}, which this test does not give")
            }
        };
    }
    let reference = &from["configMapKeyRef"];
    let key = reference["key"]
        .as_str()
        .expect("a literal, Secret or ConfigMap value");
    if let Some(value) = configmap_overrides.get(key) {
        return Some(value.clone());
    }
    let data = &find(resources, "ConfigMap", reference["name"].as_str().unwrap())["data"];
    match data[key].as_str() {
        Some(value) => Some(value.to_owned()),
        None if optional(reference) => None,
        None => panic!("the ConfigMap {} has no key {key}", reference["name"]),
    }
}

/// prod's pod, moved onto this machine: its whole environment, resolved as the kubelet would,
/// with the Secret's values and the ConfigMap's Kafka pointed at the suite's own servers; its
/// store URL read through the same secret://file/ reference from a file where the Secret would
/// be mounted; its gateway config the file the ConfigMap mounts. On a shared PostgreSQL store
/// the binary refuses node-local engines at start-up, so this is where a manifest that forgot
/// one (the books' db/sqlite, the lifecycle bus's bus/embedded) would fail.
#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_with_the_prod_pod_environment_on_a_shared_store_and_answers_its_probes() {
    let resources = manifests("prod");
    let (pod, container) = stable(&resources);
    let kafka = std::env::var("SWITCHYARD_TEST_KAFKA_BROKERS")
        .expect("SWITCHYARD_TEST_KAFKA_BROKERS is not set: run the suite with scripts/test");
    let redis = std::env::var("SWITCHYARD_TEST_REDIS_URL")
        .expect("SWITCHYARD_TEST_REDIS_URL is not set: run the suite with scripts/test");
    let store = common::Database::create("dps");
    let books = common::Database::create("dpb");

    let dir = tempfile::tempdir().unwrap();
    let store_url = env_value(container, "SWITCHYARD_STORE_URL");
    let secret_file = store_url.strip_prefix("secret://file").unwrap();
    let (secret_dir, key) = secret_file.rsplit_once('/').unwrap();
    assert!(mount_of(pod, container, secret_dir)["secret"].is_object());
    let local_secret_dir = dir.path().join("secrets");
    std::fs::create_dir(&local_secret_dir).unwrap();
    std::fs::write(local_secret_dir.join(key), format!("{}\n", store.url)).unwrap();

    let secret: BTreeMap<&str, String> = [
        ("postgres-url", books.url.clone()),
        ("postgres-app-password", "deploy-e2e".to_owned()),
        ("redis-url", redis),
        ("metrics-token", "deploy-e2e-metrics-token".to_owned()),
    ]
    .into();
    let overrides: BTreeMap<&str, String> = [("kafka-brokers", kafka)].into();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut env: Vec<(&str, String)> = Vec::new();
    for entry in container["env"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        if name == "SWITCHYARD_DATA_DIR" {
            continue; // the pod's emptyDir: the test's data directory, which Server sets
        }
        if let Some(value) = resolve_env(entry, &resources, &secret, &overrides) {
            let value = value.replace(secret_dir, local_secret_dir.to_str().unwrap());
            env.push((name, value));
        }
    }
    let names: Vec<&str> = env.iter().map(|(n, _)| *n).collect();
    for wired in [
        "SWITCHYARD_KAFKA_BROKERS",
        "SWITCHYARD_LIFECYCLE_BUS",
        "SWITCHYARD_REDIS_URL",
    ] {
        assert!(
            names.contains(&wired),
            "prod does not set {wired}: {names:?}"
        );
    }
    // Topics of this run only, on the suite's shared broker.
    env.push((
        "SWITCHYARD_KAFKA_NAMESPACE",
        format!("deploy{}x{}", std::process::id(), common::free_port()),
    ));

    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let config = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    assert_eq!(config, "/etc/switchyard/gateway.toml");
    let gateway_config = Path::new(ROOT).join(GATEWAY_CONFIG);
    let mut server = Server::start_with_env(
        &data,
        &["--config", gateway_config.to_str().unwrap()],
        &mut env,
    );

    let http = reqwest::Client::new();
    let mut ready = Value::Null;
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        let answer = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{probe} {path}");
        if probe == "readinessProbe" {
            ready = answer.json().await.unwrap();
        }
    }
    // Nothing a replica would keep to itself: every node-local engine refused.
    let kept: Vec<&Value> = ready["node_local"]
        .as_array()
        .unwrap_or_else(|| panic!("/readyz lists no node_local: {ready}"))
        .iter()
        .filter(|e| e["state"] != "refused")
        .collect();
    assert!(
        kept.is_empty(),
        "node-local state kept on a shared store: {kept:?}"
    );
    // The platform store was opened through the file reference: its tables are in `store`.
    let tables = common::psql(
        &store.url,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    );
    assert!(
        tables.trim().parse::<u32>().unwrap() > 0,
        "no platform table in the store database"
    );
    assert!(
        !data.join("platform.db").exists(),
        "the store URL was ignored"
    );
    // SIGTERM with nothing in flight: the drain ends at once, well inside the grace period.
    server.terminate();
    assert!(
        server.exited_within(Duration::from_secs(10)),
        "serve did not exit within 10 s of SIGTERM with no request in flight"
    );
}
