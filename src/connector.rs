//! The connector developer's commands: `switchyard conformance` (run a domain's suite against
//! a registered provider and certify it) and `switchyard provider new` (a skeleton that
//! passes that suite from the first build). docs/write-a-provider.md walks through both.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use switchyard::external::External;
use switchyard_provider_auth::PolicySource;
use switchyard_spi::tenancy::Tenancy;

/// Runs the suite of `provider`'s domain against it, prints the report (text, or JSON with
/// `json`) and answers it; the caller records it and fails (exit status 1) when the provider
/// is not certified at `core`.
pub fn conformance(
    data_dir: &Path,
    policy: PolicySource,
    provider: &str,
    external: &External,
    json: bool,
) -> Result<switchyard_conformance::Report> {
    let (domain, name) = provider
        .split_once('/')
        .with_context(|| format!("{provider:?} is not <domain>/<name>"))?;
    let Some(checks) = switchyard_conformance::suite(domain) else {
        bail!(
            "the {domain} domain has no conformance suite yet; suites exist for: {}",
            switchyard_conformance::DOMAINS.join(", ")
        );
    };
    let mut registry = crate::registry(data_dir, policy, &Tenancy::default())?;
    external.register(&mut registry)?;
    let factory = registry
        .index_of(domain, name)
        .and_then(|index| registry.get(index))
        .with_context(|| {
            format!("no provider {provider} is registered; `switchyard providers` lists them")
        })?
        .factory
        .clone();
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(switchyard_conformance::run(
            || switchyard_conformance::Subject::new(factory.clone()),
            checks,
        ));
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(report)
}

/// The source of the example cache plugin: the skeleton of a new cache plugin is this very
/// file, renamed, so the scaffold always passes the suite the example passes.
const CACHE_PLUGIN: &str = include_str!("../examples/plugins/cache-memory/src/lib.rs");

/// The example remote cache service (Python, standard library only) and its manifest.
const CACHE_SERVICE: &str = include_str!("../examples/remote/cache_service.py");

/// Where the plugin ABI crate lives in this source tree; a skeleton depends on it by path.
const ABI_CRATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/provider-runtime/plugin-abi");

/// Which skeleton `switchyard provider new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plugin,
    Remote,
}

/// Writes the skeleton of `provider` (`<domain>/<name>`) into `dir` and prints what to do next.
pub fn new_provider(provider: &str, kind: Kind, dir: &Path, abi: Option<PathBuf>) -> Result<()> {
    let (domain, name) = provider
        .split_once('/')
        .with_context(|| format!("{provider:?} is not <domain>/<name>"))?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !valid(name) {
        bail!("the name {name:?} must be lowercase letters, digits and '-'");
    }
    if domain != "cache" {
        bail!(
            "there is no skeleton for the {domain} domain yet (only cache); start from \
             docs/write-a-provider.md"
        );
    }
    if dir.exists() && dir.read_dir()?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    std::fs::create_dir_all(dir)?;
    match kind {
        Kind::Plugin => {
            let abi = abi.unwrap_or_else(|| PathBuf::from(ABI_CRATE));
            let crate_name = format!("{name}-plugin");
            let manifest = format!(
                "[package]\nname = \"{crate_name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
                 # A provider plugin is a C-compatible shared library the runtime loads.\n\
                 [lib]\ncrate-type = [\"cdylib\"]\n\n\
                 [dependencies]\nswitchyard-plugin-abi = {{ path = {abi:?} }}\nserde_json = \"1\"\n\n\
                 # Standalone: not a member of any enclosing workspace.\n[workspace]\n",
                abi = abi.display().to_string(),
            );
            std::fs::write(dir.join("Cargo.toml"), manifest)?;
            std::fs::create_dir_all(dir.join("src"))?;
            let source = CACHE_PLUGIN
                .replace("\"name\": \"example\"", &format!("\"name\": \"{name}\""))
                .replace("cache/example", &format!("cache/{name}"));
            std::fs::write(dir.join("src/lib.rs"), source)?;
            let library = format!("lib{}.so", crate_name.replace('-', "_"));
            println!(
                "created the plugin crate {} for cache/{name}",
                dir.display()
            );
            println!("next:");
            println!("  cargo build --manifest-path {}/Cargo.toml", dir.display());
            println!(
                "  switchyard conformance cache/{name} --plugin {}/target/debug/{library}",
                dir.display()
            );
        }
        Kind::Remote => {
            let service = CACHE_SERVICE.replace("cache/example-remote", &format!("cache/{name}"));
            std::fs::write(dir.join("service.py"), service)?;
            let manifest = serde_json::json!({
                "domain": "cache", "name": name, "version": "0.1.0",
                "summary": format!("cache/{name}: a remote cache service"),
                "capabilities": ["ttl", "atomic_incr"],
                "config_schema": {
                    "type": "object", "additionalProperties": false,
                    "properties": {
                        "default_ttl_ms": {"type": ["integer", "null"], "minimum": 1},
                        "max_value_bytes": {"type": "integer", "minimum": 1}
                    }
                },
                "endpoint": "http://127.0.0.1:9400",
                "health_path": "/health",
                "auth": {"type": "bearer", "token": "secret://env/REMOTE_PROVIDER_TOKEN"}
            });
            std::fs::write(
                dir.join("manifest.json"),
                serde_json::to_string_pretty(&manifest)?,
            )?;
            println!(
                "created the remote service {} for cache/{name}",
                dir.display()
            );
            println!("next:");
            println!(
                "  REMOTE_PROVIDER_TOKEN=… python3 {}/service.py --port 9400 &",
                dir.display()
            );
            println!(
                "  REMOTE_PROVIDER_TOKEN=… switchyard conformance cache/{name} --manifest {}/manifest.json",
                dir.display()
            );
        }
    }
    Ok(())
}
