//! Building and loading OPA bundles.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::PolicyError;
use crate::archive::{self, Files};
use crate::rego::{self, Roots, TestReport};
use crate::signature::{self, SIGNATURES_FILE, SigningKey, VerificationKey};

const MANIFEST_FILE: &str = ".manifest";
/// Where a bundle's data keeps per-tenant overrides (`policies/README.md`).
const TENANTS: &[&str] = &["switchyard", "tenants"];

#[derive(Serialize, Deserialize)]
struct Manifest {
    revision: String,
    /// OPA's default when absent: the bundle owns the whole data tree.
    #[serde(default = "whole_tree")]
    roots: Vec<String>,
}

fn whole_tree() -> Vec<String> {
    vec![String::new()]
}

/// A bundle that was parsed, verified, compiled and passed its own tests.
///
/// Holding a `Bundle` is proof of all four, so the gateway can swap it in without re-checking.
pub struct Bundle {
    revision: String,
    bytes: Vec<u8>,
    /// Compiled and already prepared (the tests evaluated it), so clones start evaluating at once.
    pub(crate) engine: regorus::Engine,
    tests: TestReport,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("revision", &self.revision)
            .field("bytes", &self.bytes.len())
            .field("tests", &self.tests.results.len())
            .finish_non_exhaustive()
    }
}

impl Bundle {
    /// Parses an OPA bundle (`.tar.gz`), checks `.manifest`, verifies `.signatures.json` when
    /// `verify` is `Some` (an unsigned bundle is then refused, as is any file not covered by the
    /// signature or whose hash differs), compiles every `.rego`, loads every `data.json` and runs
    /// the bundle's `test_*` rules: any failing test refuses the bundle.
    pub fn load(bytes: Vec<u8>, verify: Option<&VerificationKey>) -> Result<Bundle, PolicyError> {
        let mut files = archive::unpack(&bytes)?;
        let signatures = files.remove(SIGNATURES_FILE);
        if let Some(key) = verify {
            signature::verify(&files, signatures.as_deref(), key)?;
        }
        let manifest_bytes = files
            .remove(MANIFEST_FILE)
            .ok_or_else(|| PolicyError::Manifest(format!("{MANIFEST_FILE} is missing")))?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| PolicyError::Manifest(e.to_string()))?;
        if manifest.revision.is_empty() {
            return Err(PolicyError::Manifest("revision is empty".into()));
        }
        let roots: Roots = manifest
            .roots
            .iter()
            .map(|root| {
                root.split('/')
                    .filter(|part| !part.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .collect();

        let mut engine = rego::compile(&files, Some(&roots))?;
        let tests = rego::run_test_rules(&mut engine)?;
        if !tests.is_success() {
            return Err(PolicyError::TestsFailed {
                failed: tests.failed().into_iter().map(str::to_owned).collect(),
            });
        }
        Ok(Bundle {
            revision: manifest.revision,
            bytes,
            engine,
            tests,
        })
    }

    /// The revision from the bundle's manifest.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The bytes exactly as loaded (auditors download them).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bundle's own tests, all passed.
    pub fn tests(&self) -> &TestReport {
        &self.tests
    }

    /// The bundle as `tenant`'s auditor may download it. Per-tenant overrides
    /// (`data.switchyard.tenants.<tenant>`) are that tenant's business only: when the bundle
    /// holds another tenant's, they are left out of every `data.json` and the signature file
    /// goes too (it covers what was left out, so it could not verify); otherwise these are the
    /// bytes exactly as loaded, signature included.
    pub fn tenant_view(&self, tenant: &str) -> Result<Cow<'_, [u8]>, PolicyError> {
        let mut files = archive::unpack(&self.bytes)?;
        let mut narrowed = false;
        let data_files: Vec<String> = files
            .keys()
            .filter(|name| *name == "data.json" || name.ends_with("/data.json"))
            .cloned()
            .collect();
        for name in data_files {
            let segments: Vec<&str> = name.split('/').collect();
            match &segments[..segments.len() - 1] {
                // `switchyard/tenants/<t>/…/data.json`: another tenant's file.
                ["switchyard", "tenants", owner, ..] if *owner != tenant => {
                    files.remove(&name);
                    narrowed = true;
                }
                // `data.json`, `switchyard/data.json` or `switchyard/tenants/data.json`.
                prefix if TENANTS.starts_with(prefix) => {
                    let mut document: serde_json::Value = serde_json::from_slice(&files[&name])
                        .map_err(|e| PolicyError::Data {
                            file: name.clone(),
                            message: e.to_string(),
                        })?;
                    let mut tenants = Some(&mut document);
                    for part in &TENANTS[prefix.len()..] {
                        tenants = tenants.and_then(|t| t.get_mut(*part));
                    }
                    if let Some(tenants) = tenants.and_then(|t| t.as_object_mut()) {
                        let before = tenants.len();
                        tenants.retain(|owner, _| owner == tenant);
                        if tenants.len() != before {
                            narrowed = true;
                            let bytes =
                                serde_json::to_vec(&document).map_err(|e| PolicyError::Data {
                                    file: name.clone(),
                                    message: e.to_string(),
                                })?;
                            files.insert(name, bytes);
                        }
                    }
                }
                _ => {}
            }
        }
        if !narrowed {
            return Ok(Cow::Borrowed(&self.bytes));
        }
        files.remove(SIGNATURES_FILE);
        archive::pack(&files).map(Cow::Owned)
    }
}

impl Bundle {
    /// This bundle with the platform operator's per-tenant data written over
    /// `data.switchyard.tenants.<tenant>` (each entry replaces the bundle's own for that
    /// tenant), stamped `revision`, unsigned: the caller verified this bundle, and the
    /// operator's data comes from the platform store, not from the bundle's signer. The
    /// result still has to pass [`Bundle::load`] (its tests run against the new data).
    pub fn with_tenant_data(
        &self,
        tenants: &std::collections::BTreeMap<String, serde_json::Value>,
        revision: &str,
    ) -> Result<Vec<u8>, PolicyError> {
        let mut files = archive::unpack(&self.bytes)?;
        files.remove(SIGNATURES_FILE);
        // The data file that already holds `tenants` (or whose prefix leads there), else the
        // root `data.json`, created if the bundle has none.
        let holder = files
            .keys()
            .filter(|name| *name == "data.json" || name.ends_with("/data.json"))
            .find(|name| {
                let prefix: Vec<&str> = name.split('/').collect();
                TENANTS.starts_with(&prefix[..prefix.len() - 1])
            })
            .cloned()
            .unwrap_or_else(|| "data.json".to_owned());
        let depth = holder.split('/').count() - 1;
        let mut document: serde_json::Value = match files.get(&holder) {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| PolicyError::Data {
                file: holder.clone(),
                message: e.to_string(),
            })?,
            None => serde_json::json!({}),
        };
        let mut node = &mut document;
        for part in &TENANTS[depth..] {
            if !node.get(*part).is_some_and(serde_json::Value::is_object) {
                node[*part] = serde_json::json!({});
            }
            node = &mut node[*part];
        }
        for (tenant, data) in tenants {
            node[tenant.as_str()] = data.clone();
        }
        let data_bytes = serde_json::to_vec(&document).map_err(|e| PolicyError::Data {
            file: holder.clone(),
            message: e.to_string(),
        })?;
        files.insert(holder, data_bytes);
        let manifest_bytes = files
            .get(MANIFEST_FILE)
            .ok_or_else(|| PolicyError::Manifest(format!("{MANIFEST_FILE} is missing")))?;
        let mut manifest: Manifest = serde_json::from_slice(manifest_bytes)
            .map_err(|e| PolicyError::Manifest(e.to_string()))?;
        manifest.revision = revision.to_owned();
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| PolicyError::Manifest(e.to_string()))?;
        files.insert(MANIFEST_FILE.to_owned(), manifest_bytes);
        archive::pack(&files)
    }
}

/// Builds a bundle from a policy source directory (every `*.rego` including `*_test.rego`, every
/// `data.json`), stamped with `revision` and signed when `sign` is given.
///
/// The manifest roots are the first path segment of every package and data document, so the
/// bundle claims exactly the namespaces it defines. The output is deterministic: the same source
/// and revision give the same bytes. Policies are parsed (a syntax error fails the build) but
/// their tests are not run; [`Bundle::load`] and [`run_tests`] do that.
pub fn build_bundle(
    source: &Path,
    revision: &str,
    sign: Option<&SigningKey>,
) -> Result<Vec<u8>, PolicyError> {
    if revision.is_empty() {
        return Err(PolicyError::Manifest("revision is empty".into()));
    }
    let mut files = archive::read_source(source)?;
    let engine = rego::compile(&files, None)?;

    let mut roots = BTreeSet::new();
    for package in rego::package_paths(&engine)? {
        roots.extend(package.into_iter().next());
    }
    for (name, contents) in files.iter().filter(|(name, _)| !name.ends_with(".rego")) {
        let document = rego::data_document(name, contents, None)?;
        if let Some(object) = document.as_object() {
            roots.extend(object.keys().cloned());
        }
    }
    let manifest = Manifest {
        revision: revision.to_string(),
        roots: roots.into_iter().collect(),
    };
    let manifest_bytes =
        serde_json::to_vec(&manifest).map_err(|e| PolicyError::Manifest(e.to_string()))?;
    files.insert(MANIFEST_FILE.into(), manifest_bytes);

    if let Some(key) = sign {
        let signatures = signature::sign(&files, key)?;
        files.insert(SIGNATURES_FILE.into(), signatures);
    }
    archive::pack(&files)
}

/// Runs the `test_*` rules of a policy source directory.
///
/// Unlike [`Bundle::load`], failing tests are reported rather than refused, so that a developer
/// sees every failure at once.
pub fn run_tests(source: &Path) -> Result<TestReport, PolicyError> {
    let files: Files = archive::read_source(source)?;
    let mut engine = rego::compile(&files, None)?;
    rego::run_test_rules(&mut engine)
}
