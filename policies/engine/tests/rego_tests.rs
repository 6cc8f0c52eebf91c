//! The product policies' own `test_*` rules, and how failures surface.

use std::fs;
use std::path::{Path, PathBuf};

use switchyard_policy::{Bundle, PolicyError, build_bundle, run_tests};

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Copies the product policies (rego files and data.json) into a temporary source directory.
fn copy_of_policies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::create_dir(dir.path().join("switchyard")).expect("mkdir");
    for name in [
        "data.json",
        "switchyard/authz.rego",
        "switchyard/authz_test.rego",
    ] {
        fs::copy(policies_dir().join(name), dir.path().join(name)).expect("copy policy file");
    }
    dir
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).expect("read");
    assert!(
        text.contains(from),
        "{from:?} not found in {}",
        path.display()
    );
    fs::write(path, text.replace(from, to)).expect("write");
}

#[test]
fn product_policy_tests_all_pass() {
    let report = run_tests(&policies_dir()).expect("policies compile");
    assert!(report.is_success(), "failing tests:\n{report}");
    assert!(report.failed().is_empty());
    assert!(
        report.passed().len() >= 30,
        "expected the full suite, found:\n{report}"
    );
    for expected in [
        "data.switchyard.authz_test.test_clerk_may_query",
        "data.switchyard.authz_test.test_clerk_may_not_execute",
        "data.switchyard.authz_test.test_large_posting_by_developer_denied",
        "data.switchyard.authz_test.test_approver_posts_above_threshold",
        "data.switchyard.authz_test.test_cross_tenant_denied_even_for_admin",
        "data.switchyard.authz_test.test_scope_invoke_domain_limited_to_domain",
        "data.switchyard.authz_test.test_default_deny_without_roles",
        "data.switchyard.authz_test.test_tenant_override_replaces_role",
    ] {
        assert!(
            report.passed().contains(&expected),
            "{expected} missing:\n{report}"
        );
    }
}

#[test]
fn broken_rule_fails_its_tests_and_its_bundle_is_refused() {
    let dir = copy_of_policies();
    // Break the four-eyes rule: large postings no longer need an approver.
    replace_in(
        &dir.path().join("switchyard/authz.rego"),
        "posting_amount > approval_threshold",
        "posting_amount > approval_threshold * 1000",
    );

    let report = run_tests(dir.path()).expect("still compiles");
    assert!(!report.is_success());
    let failed = report.failed();
    assert!(
        failed.contains(&"data.switchyard.authz_test.test_large_posting_by_developer_denied"),
        "{report}"
    );
    assert!(
        report
            .passed()
            .contains(&"data.switchyard.authz_test.test_clerk_may_query")
    );
    assert!(
        report
            .to_string()
            .contains("FAIL data.switchyard.authz_test.test_large_posting")
    );

    let bytes = build_bundle(dir.path(), "broken", None).expect("build does not run tests");
    match Bundle::load(bytes, None) {
        Err(PolicyError::TestsFailed { failed: refused }) => {
            assert_eq!(
                refused, failed,
                "load reports the same failures as run_tests"
            );
        }
        other => panic!("expected TestsFailed, got {other:?}"),
    }
}

#[test]
fn erroring_test_is_failed_with_its_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(
        dir.path().join("t.rego"),
        "package t\n\ntest_ok if { 1 + 1 == 2 }\n\ntest_false if { 1 == 2 }\n\n\
         test_error if { to_number(\"ten\") == 10 }\n\nhelper_not_a_test := false\n",
    )
    .expect("write");
    let report = run_tests(dir.path()).expect("compiles");
    assert_eq!(
        report.results,
        vec![
            ("data.t.test_error".to_string(), false),
            ("data.t.test_false".to_string(), false),
            ("data.t.test_ok".to_string(), true),
        ]
    );
    assert!(report.errors.contains_key("data.t.test_error"), "{report}");
    assert!(!report.errors.contains_key("data.t.test_false"));
}

#[test]
fn source_without_policies_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("data.json"), "{}").expect("write");
    assert!(matches!(
        run_tests(dir.path()),
        Err(PolicyError::Source { .. })
    ));
    assert!(matches!(
        build_bundle(dir.path(), "r1", None),
        Err(PolicyError::Source { .. })
    ));
}

#[test]
fn rust_crates_and_hidden_directories_are_not_policy_source() {
    let dir = copy_of_policies();
    for skipped in ["engine/tests", ".git"] {
        fs::create_dir_all(dir.path().join(skipped)).expect("mkdir");
        fs::write(
            dir.path().join(skipped).join("broken.rego"),
            "package switchyard.broken\n\ntest_fails if { false }\n",
        )
        .expect("write");
    }
    fs::write(dir.path().join("engine/Cargo.toml"), "[package]\n").expect("write");

    let report = run_tests(dir.path()).expect("compiles");
    assert!(report.is_success(), "{report}");
    assert!(
        report
            .results
            .iter()
            .all(|(name, _)| !name.contains("broken"))
    );
}
