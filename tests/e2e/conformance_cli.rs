//! `switchyard conformance <domain>/<name>` certifies every built-in engine this machine can
//! host, as an operator would run it: the embedded defaults, and the production engines whose
//! test servers scripts/test starts (Redis, Kafka). The same checks run per engine in the
//! kit's own tests; this proves the command line finds and runs them for every domain, and
//! claims no level it could not test (the +stable checks need a server the command may
//! restart, and are skipped).

use std::process::Command;

use serde_json::Value;

use crate::common::BIN;

/// What each engine is certified at from the command line, with the domain's default fixture.
const EXPECTED: &[(&str, &str)] = &[
    ("db/sqlite", "core+transactions+isolation+resilience"),
    ("cache/memory", "core+transactions+isolation+resilience"),
    ("cache/redis", "core+transactions+isolation+resilience"),
    ("storage/fs", "core+isolation+resilience"),
    ("storage/memory", "core+isolation+resilience"),
    ("bus/embedded", "core+transactions+isolation+resilience"),
    ("bus/kafka", "core+transactions+isolation+resilience"),
    ("auth/jwt", "core"),
    ("auth/opa", "core"),
    ("integration/webhook", "core"),
    ("ai/local", "core+isolation"),
];

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test (it starts the test servers)")
    })
}

#[test]
fn every_built_in_engine_is_certified_from_the_command_line_and_claims_no_untested_level() {
    let dir = tempfile::tempdir().unwrap();
    let (redis, kafka) = (
        env("SWITCHYARD_TEST_REDIS_URL"),
        env("SWITCHYARD_TEST_KAFKA_BROKERS"),
    );
    let mut certified = Vec::new();
    for (provider, _) in EXPECTED {
        let out = Command::new(BIN)
            .args(["conformance", provider, "--json"])
            .env("SWITCHYARD_DATA_DIR", dir.path())
            .env("SWITCHYARD_LOG", "warn")
            .env("SWITCHYARD_REDIS_URL", &redis)
            .env("SWITCHYARD_KAFKA_BROKERS", &kafka)
            .env("SWITCHYARD_KAFKA_NAMESPACE", "conformance-cli")
            .env("SWITCHYARD_STORAGE_MEMORY_BYTES_PER_TENANT", "16777216")
            .output()
            .expect("switchyard runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{provider} is not certified:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        assert_eq!(report["failed"], 0, "{provider}: {report}");
        let stable = report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter(|c| c["level"] == "stable");
        for check in stable {
            assert_eq!(check["skipped"], true, "{provider}: {check}");
        }
        certified.push((
            *provider,
            report["certification"].as_str().unwrap().to_owned(),
        ));
    }
    let expected: Vec<(&str, String)> = EXPECTED
        .iter()
        .map(|(p, c)| (*p, (*c).to_owned()))
        .collect();
    assert_eq!(certified, expected);
}
