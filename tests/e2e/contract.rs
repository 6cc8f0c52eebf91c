//! The published contract is what the code serves: the committed OpenAPI document equals the
//! generated one and the served one, and real answers validate against its schemas.

use crate::common;

use common::{Api, Server, tenant_with_key};
use serde_json::{Value, json};
use switchyard_contracts::openapi;
use switchyard_contracts::schema::Compiled;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contracts/openapi.json");

fn generated() -> Value {
    let dir = tempfile::tempdir().unwrap();
    let services: Vec<_> = switchyard::builtin_services()
        .unwrap()
        .iter()
        .map(|s| s.descriptor().clone())
        .collect();
    openapi::document(
        &switchyard::builtin_registry(
            dir.path(),
            switchyard::no_policy(),
            &Default::default(),
            None,
        )
        .unwrap()
        .descriptors(),
        &services,
    )
}

#[test]
fn the_committed_openapi_document_is_the_generated_one() {
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(SNAPSHOT).unwrap()).unwrap();
    assert!(
        committed == generated(),
        "contracts/openapi.json drifted from the code. If the change is intended and additive, \
         regenerate it with `cargo run -q -- openapi > contracts/openapi.json` and review the diff."
    );
}

#[test]
fn every_action_of_every_provider_is_a_documented_operation() {
    let doc = generated();
    let dir = tempfile::tempdir().unwrap();
    for d in switchyard::builtin_registry(
        dir.path(),
        switchyard::no_policy(),
        &Default::default(),
        None,
    )
    .unwrap()
    .descriptors()
    {
        for a in &d.actions {
            let path = format!("/providers/{}/{}/{}", d.domain, d.name, a.name);
            assert!(
                doc["paths"][&path]["post"].is_object(),
                "{path} is not documented"
            );
        }
    }
}

/// A component compiled with the others it refers to (`InvokeResponse` holds a `ResponseMeta`).
fn component(name: &str) -> Compiled {
    Compiled::new(&openapi::component_schema(name), name).unwrap()
}

fn assert_valid(name: &str, body: &Value) {
    let errors = component(name).check(body);
    assert!(
        errors.is_empty(),
        "{name} answer violates its schema: {errors:?}\n{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn served_answers_validate_against_the_published_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));

    let served: Value = reqwest::get(format!("{}/openapi.json", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        served == generated(),
        "the served OpenAPI document is not the generated one"
    );

    let (_, catalog) = api.get("/providers").await;
    assert_valid("Catalog", &catalog);
    for provider in catalog["providers"].as_array().unwrap() {
        let base = format!(
            "/providers/{}/{}",
            provider["domain"].as_str().unwrap(),
            provider["name"].as_str().unwrap()
        );
        assert_valid("ProviderDetail", &api.get(&base).await.1);
        assert_valid(
            "ProviderHealth",
            &api.get(&format!("{base}/health")).await.1,
        );
        assert_valid(
            "LifecycleResponse",
            &api.post(&format!("{base}/stop"), json!({})).await.1,
        );
        assert_valid(
            "LifecycleResponse",
            &api.post(&format!("{base}/start"), json!({})).await.1,
        );
        assert_valid(
            "ConfigureResponse",
            &api.post(&format!("{base}/configure"), json!({"config": {}}))
                .await
                .1,
        );
    }
    let (_, answer) = api
        .post(
            "/providers/cache/memory/get",
            json!({"params": {"key": "k"}}),
        )
        .await;
    assert_valid("InvokeResponse", &answer);
    let (_, problem) = api
        .post("/providers/cache/memory/get", json!({"params": {}}))
        .await;
    assert_valid("Problem", &problem);
}

/// Every business event type the services emit has a message in
/// `asyncapi/business-events.json`, and every message there is one the code emits.
#[test]
fn the_asyncapi_business_events_are_exactly_the_ones_the_services_emit() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/asyncapi/business-events.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut described: Vec<&str> = doc["components"]["messages"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["x-cloudevents-type"].as_str().unwrap())
        .collect();
    let mut emitted: Vec<&str> = [switchyard_ledger::JOURNAL_POSTED]
        .into_iter()
        .chain(switchyard_inventory::EVENT_TYPES)
        .chain(switchyard_orders::EVENT_TYPES)
        .chain(switchyard_workflows::EVENT_TYPES)
        .collect();
    described.sort_unstable();
    emitted.sort_unstable();
    assert_eq!(described, emitted);
}

/// Business services compose providers through the client; none of them may reach a database
/// or broker on its own. Their manifests' normal dependencies name no driver.
#[test]
fn no_business_service_depends_on_a_driver() {
    const DRIVERS: [&str; 8] = [
        "sqlx",
        "rdkafka",
        "redis",
        "tiberius",
        "bb8-tiberius",
        "opendal",
        "vaultrs",
        "reqwest",
    ];
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/business-services");
    let mut checked = 0;
    for entry in std::fs::read_dir(root).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        // The [dependencies] table only: dev-dependencies and optional test kits may use them.
        let normal = text
            .split("\n[")
            .find(|section| section.starts_with("dependencies]"))
            .unwrap_or_default();
        for line in normal.lines().filter(|l| !l.contains("optional = true")) {
            let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
            assert!(
                !DRIVERS.contains(&name),
                "{} depends on the driver {name}",
                manifest.display()
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "expected the business-service crates, found {checked}"
    );
}
