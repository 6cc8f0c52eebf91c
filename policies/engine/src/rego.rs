//! Compiling bundle files into a regorus engine and running their `test_*` rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use regorus::unstable::{Rule, RuleHead};
use regorus::utils::get_path_string;

use crate::PolicyError;
use crate::archive::Files;

/// Outcome of a policy test run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestReport {
    /// `(rule path, passed)` for every test rule, sorted by path, e.g.
    /// `("data.switchyard.authz_test.test_clerk_may_query", true)`.
    pub results: Vec<(String, bool)>,
    /// Evaluation errors of failed tests by rule path; a test that merely evaluates to `false`
    /// or undefined has no entry. Regorus raises errors where OPA would be undefined (e.g. a
    /// builtin given the wrong type), so these explain most surprising failures.
    pub errors: BTreeMap<String, String>,
}

impl TestReport {
    /// Paths of the tests that passed.
    pub fn passed(&self) -> Vec<&str> {
        self.select(true)
    }

    /// Paths of the tests that failed (evaluated to anything but `true`, or raised an error).
    pub fn failed(&self) -> Vec<&str> {
        self.select(false)
    }

    /// True when no test failed.
    pub fn is_success(&self) -> bool {
        self.results.iter().all(|(_, passed)| *passed)
    }

    fn select(&self, outcome: bool) -> Vec<&str> {
        self.results
            .iter()
            .filter(|(_, passed)| *passed == outcome)
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// One `PASS`/`FAIL` line per test and a summary line, like `opa test`.
impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, passed) in &self.results {
            writeln!(f, "{} {name}", if *passed { "PASS" } else { "FAIL" })?;
            if let Some(error) = self.errors.get(name) {
                writeln!(f, "  {}", error.replace('\n', "\n  "))?;
            }
        }
        write!(
            f,
            "{} passed, {} failed",
            self.passed().len(),
            self.failed().len()
        )
    }
}

/// Path components (`["switchyard", "authz"]`) of what a bundle may define.
pub(crate) type Roots = Vec<Vec<String>>;

/// Loads every `.rego` and `data.json` into a fresh engine. With `roots`, every package and every
/// data path must lie under one of them (OPA's rule: a bundle owns only its roots).
///
/// `.wasm` modules (from `opa build -t wasm`) are skipped: decisions are always evaluated from
/// the Rego sources, which such bundles carry as well. Their signature is still verified.
pub(crate) fn compile(
    files: &Files,
    roots: Option<&Roots>,
) -> Result<regorus::Engine, PolicyError> {
    let mut engine = regorus::Engine::new();
    for (name, contents) in files {
        if name.ends_with(".rego") {
            let text = String::from_utf8(contents.clone()).map_err(|_| PolicyError::Compile {
                file: name.clone(),
                message: "not UTF-8".into(),
            })?;
            engine
                .add_policy(name.clone(), text)
                .map_err(|e| PolicyError::Compile {
                    file: name.clone(),
                    message: format!("{e:#}"),
                })?;
        } else if name == "data.json" || name.ends_with("/data.json") {
            let document = data_document(name, contents, roots)?;
            engine
                .add_data(regorus::Value::from(document))
                .map_err(|e| PolicyError::Data {
                    file: name.clone(),
                    message: format!("{e:#}"),
                })?;
        } else if !name.ends_with(".wasm") {
            // Refused rather than skipped: an ignored data.yaml would silently drop data.
            return Err(PolicyError::File {
                file: name.clone(),
                message: "unsupported file (bundles hold .rego, data.json and .wasm)".into(),
            });
        }
    }
    if let Some(roots) = roots {
        let packages = engine
            .get_policy_package_components()
            .map_err(|e| PolicyError::Evaluation(format!("{e:#}")))?;
        for package in packages {
            if !under_roots(&package.components, roots) {
                return Err(PolicyError::Compile {
                    file: package.source_file,
                    message: format!(
                        "package {} is outside the manifest roots",
                        package.components.join(".")
                    ),
                });
            }
        }
    }
    Ok(engine)
}

/// Package paths (without `data.`) of every loaded module, for deriving manifest roots.
pub(crate) fn package_paths(engine: &regorus::Engine) -> Result<Vec<Vec<String>>, PolicyError> {
    Ok(engine
        .get_policy_package_components()
        .map_err(|e| PolicyError::Evaluation(format!("{e:#}")))?
        .into_iter()
        .map(|package| package.components)
        .collect())
}

/// Parses a `data.json`, nesting it under its directory path as OPA does (`a/b/data.json`
/// becomes `data.a.b`).
pub(crate) fn data_document(
    name: &str,
    contents: &[u8],
    roots: Option<&Roots>,
) -> Result<serde_json::Value, PolicyError> {
    let data_error = |message: String| PolicyError::Data {
        file: name.to_string(),
        message,
    };
    let mut document: serde_json::Value =
        serde_json::from_slice(contents).map_err(|e| data_error(e.to_string()))?;
    let top_level: Vec<String> = document
        .as_object()
        .ok_or_else(|| data_error("must be a JSON object".into()))?
        .keys()
        .cloned()
        .collect();
    let directories: Vec<&str> = name.split('/').rev().skip(1).collect();
    if let Some(roots) = roots {
        let prefix: Vec<String> = directories.iter().rev().map(|d| d.to_string()).collect();
        for key in top_level {
            let path: Vec<String> = prefix.iter().cloned().chain([key]).collect();
            if !under_roots(&path, roots) {
                return Err(data_error(format!(
                    "data.{} is outside the manifest roots",
                    path.join(".")
                )));
            }
        }
    }
    for directory in directories {
        document = serde_json::json!({ directory: document });
    }
    Ok(document)
}

fn under_roots(path: &[String], roots: &Roots) -> bool {
    roots.iter().any(|root| {
        root.len() <= path.len() && root.iter().zip(path).all(|(root, part)| root == part)
    })
}

/// Full paths (`data.<package>.test_<name>`) of every test rule, as OPA finds them: rules whose
/// name starts with `test_`, functions excluded.
///
/// regorus has no public rule listing, so this walks its (doc-hidden) AST.
pub(crate) fn test_rules(engine: &mut regorus::Engine) -> Result<Vec<String>, PolicyError> {
    let mut tests = BTreeSet::new();
    for module in engine.get_modules() {
        let package = get_path_string(&module.package.refr, Some("data"))
            .map_err(|e| PolicyError::Evaluation(format!("{e:#}")))?;
        for rule in &module.policy {
            let Rule::Spec { head, .. } = rule.as_ref() else {
                continue;
            };
            let (RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. }) = head else {
                continue;
            };
            let name = get_path_string(refr, None)
                .map_err(|e| PolicyError::Evaluation(format!("{e:#}")))?;
            if name.starts_with("test_") {
                tests.insert(format!("{package}.{name}"));
            }
        }
    }
    Ok(tests.into_iter().collect())
}

/// Evaluates every test rule with no input; a test passes only if it evaluates to `true`.
pub(crate) fn run_test_rules(engine: &mut regorus::Engine) -> Result<TestReport, PolicyError> {
    let mut report = TestReport::default();
    for test in test_rules(engine)? {
        let passed = match engine.eval_rule(test.clone()) {
            Ok(value) => value == regorus::Value::Bool(true),
            Err(error) => {
                report.errors.insert(test.clone(), format!("{error:#}"));
                false
            }
        };
        report.results.push((test, passed));
    }
    Ok(report)
}
