//! `switchyard provider new <domain>/<name> [--plugin|--remote]`: the skeleton of a provider of
//! any domain, which builds and passes its domain's core conformance level as written.
//!
//! The skeletons are files of this source tree (`scaffolds/<domain>/`: `plugin.rs`, a
//! `service.py` on the shared `scaffolds/remote/switchyard_protocol.py`, and `manifest.json`),
//! compiled in here and written out with `__NAME__` replaced by the provider's name, so the
//! e2e test `scaffold` certifies exactly what a connector developer gets. The cache skeletons
//! are the examples `switchyard conformance` already certifies (`examples/`).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Where the plugin ABI crate lives in this source tree; a skeleton depends on it by path.
const ABI_CRATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/provider-runtime/plugin-abi");

/// The remote protocol, shared by every remote skeleton but the cache example.
const PROTOCOL: &str = include_str!("../../scaffolds/remote/switchyard_protocol.py");

/// Which skeleton `switchyard provider new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plugin,
    Remote,
}

/// One domain's skeletons.
struct Skeleton {
    domain: &'static str,
    plugin: &'static str,
    /// Dependencies of the plugin crate beyond the ABI and serde_json, as Cargo.toml lines.
    plugin_dependencies: &'static str,
    service: &'static str,
    /// Whether the service imports the shared protocol (the cache example is self-contained).
    uses_protocol: bool,
    manifest: &'static str,
}

/// The skeleton of a domain whose templates are `scaffolds/<domain>/{plugin.rs,service.py,
/// manifest.json}`, the plugin needing `dependencies` (Cargo.toml lines) beyond the ABI.
macro_rules! skeleton {
    ($domain:literal, $dependencies:expr) => {
        Skeleton {
            domain: $domain,
            plugin: include_str!(concat!("../../scaffolds/", $domain, "/plugin.rs")),
            plugin_dependencies: $dependencies,
            service: include_str!(concat!("../../scaffolds/", $domain, "/service.py")),
            uses_protocol: true,
            manifest: include_str!(concat!("../../scaffolds/", $domain, "/manifest.json")),
        }
    };
}

const SKELETONS: &[Skeleton] = &[
    skeleton!("ai", ""),
    skeleton!("auth", ""),
    skeleton!("bus", ""),
    Skeleton {
        domain: "cache",
        plugin: include_str!("../../examples/plugins/cache-memory/src/lib.rs"),
        plugin_dependencies: "",
        service: include_str!("../../examples/remote/cache_service.py"),
        uses_protocol: false,
        manifest: include_str!("../../examples/remote/manifest.json"),
    },
    // The SQLite the workspace builds for sqlx: same version, same features.
    skeleton!(
        "db",
        "base64 = \"0.22\"\nlibsqlite3-sys = { version = \"0.30\", default-features = false, \
         features = [\"bundled\", \"pkg-config\", \"vcpkg\", \"unlock_notify\"] }\n"
    ),
    skeleton!(
        "integration",
        "base64 = \"0.22\"\nhmac = \"0.12\"\nsha2 = \"0.10\"\n"
    ),
    skeleton!("storage", "base64 = \"0.22\"\n"),
];

/// The domains with a skeleton, for error messages.
fn domains() -> String {
    let names: Vec<&str> = SKELETONS.iter().map(|s| s.domain).collect();
    names.join(", ")
}

/// A template with its provider named `name`. The cache examples name themselves `example`
/// and `example-remote`; every other skeleton says `__NAME__`.
fn named(template: &str, domain: &str, name: &str) -> String {
    if domain == "cache" {
        return template
            .replace(
                "\"name\": \"example-remote\"",
                &format!("\"name\": \"{name}\""),
            )
            .replace("\"name\": \"example\"", &format!("\"name\": \"{name}\""))
            .replace("cache/example-remote", &format!("cache/{name}"))
            .replace("cache/example", &format!("cache/{name}"));
    }
    template.replace("__NAME__", name)
}

/// Writes the skeleton of `provider` (`<domain>/<name>`) into `dir` and prints what to do next.
pub fn new_provider(provider: &str, kind: Kind, dir: &Path, abi: Option<PathBuf>) -> Result<()> {
    let Some((domain, name)) = provider.split_once('/') else {
        bail!("{provider:?} is not <domain>/<name>");
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !valid(name) {
        bail!("the name {name:?} must be lowercase letters, digits and '-'");
    }
    let Some(skeleton) = SKELETONS.iter().find(|s| s.domain == domain) else {
        bail!(
            "there is no skeleton for the {domain} domain; skeletons exist for: {}",
            domains()
        );
    };
    if dir.exists() && dir.read_dir()?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    std::fs::create_dir_all(dir)?;
    match kind {
        Kind::Plugin => write_plugin(skeleton, name, dir, abi),
        Kind::Remote => write_remote(skeleton, name, dir),
    }
}

fn write_plugin(skeleton: &Skeleton, name: &str, dir: &Path, abi: Option<PathBuf>) -> Result<()> {
    let domain = skeleton.domain;
    let abi = abi.unwrap_or_else(|| PathBuf::from(ABI_CRATE));
    let crate_name = format!("{name}-plugin");
    let manifest = format!(
        "[package]\nname = \"{crate_name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         # A provider plugin is a C-compatible shared library the runtime loads.\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\nswitchyard-plugin-abi = {{ path = {abi:?} }}\nserde_json = \"1\"\n{extra}\n\
         # Standalone: not a member of any enclosing workspace.\n[workspace]\n",
        abi = abi.display().to_string(),
        extra = skeleton.plugin_dependencies,
    );
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("src/lib.rs"), named(skeleton.plugin, domain, name))?;
    let library = format!("lib{}.so", crate_name.replace('-', "_"));
    println!(
        "created the plugin crate {} for {domain}/{name}",
        dir.display()
    );
    println!("next:");
    println!("  cargo build --manifest-path {}/Cargo.toml", dir.display());
    println!(
        "  switchyard conformance {domain}/{name} --plugin {}/target/debug/{library}",
        dir.display()
    );
    Ok(())
}

fn write_remote(skeleton: &Skeleton, name: &str, dir: &Path) -> Result<()> {
    let domain = skeleton.domain;
    std::fs::write(
        dir.join("service.py"),
        named(skeleton.service, domain, name),
    )?;
    if skeleton.uses_protocol {
        std::fs::write(dir.join("switchyard_protocol.py"), PROTOCOL)?;
    }
    std::fs::write(
        dir.join("manifest.json"),
        named(skeleton.manifest, domain, name),
    )?;
    println!(
        "created the remote service {} for {domain}/{name}",
        dir.display()
    );
    println!("next:");
    println!(
        "  REMOTE_PROVIDER_TOKEN=… python3 {}/service.py --port 9400 &",
        dir.display()
    );
    println!(
        "  REMOTE_PROVIDER_TOKEN=… switchyard conformance {domain}/{name} --manifest {}/manifest.json",
        dir.display()
    );
    Ok(())
}
