//! EPCIS 2.0: the seed scenario's lot events exported as a document that GS1's own JSON
//! Schema accepts (formats checked), imported into another tenant, and exported again to the
//! very same document; the importing tenant then traces the same trees.

use serde_json::{Value, json};
use switchyard_contracts::ErrorCode;

use crate::genealogy::{ROLL, master_data, scenario};
use crate::support::{Engine, Platform};

on_both_engines!(
    the_scenario_exports_valid_epcis_that_imports_and_exports_identically,
    documents_outside_the_model_are_refused_whole,
);

const OCTOBER: (&str, &str) = ("2025-10-01T00:00:00Z", "2025-11-01T00:00:00Z");

/// Every violation of GS1's EPCIS 2.0 JSON Schema, with where it is.
fn epcis_violations(document: &Value) -> Vec<String> {
    let schema: Value =
        serde_json::from_str(include_str!("../fixtures/epcis/EPCIS-JSON-Schema.json")).unwrap();
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

async fn export(tenant: &crate::support::Tenant) -> Value {
    tenant
        .ok("export_epcis", json!({"from": OCTOBER.0, "to": OCTOBER.1}))
        .await
}

async fn the_scenario_exports_valid_epcis_that_imports_and_exports_identically(engine: Engine) {
    let platform = Platform::new(engine).await;
    let agog = platform.tenant("agog");
    scenario(&agog).await;
    let exported = export(&agog).await;
    // Receipt, split, disposal, and per job: transformation, waste, shipment.
    assert_eq!(exported["events"], 12);
    let document = &exported["document"];
    let violations = epcis_violations(document);
    assert!(violations.is_empty(), "{violations:#?}\n{document:#}");

    let events = document["epcisBody"]["eventList"].as_array().unwrap();
    let receipt = &events[0];
    assert_eq!(receipt["type"], "ObjectEvent");
    assert_eq!(receipt["action"], "ADD");
    assert_eq!(receipt["bizStep"], "receiving");
    assert_eq!(
        receipt["quantityList"],
        json!([{"epcClass": "https://id.gs1.org/01/09520123456788/10/LOT-2025-001",
                "quantity": 50000, "uom": "ST"}])
    );
    assert_eq!(receipt["ilmd"]["cbvmda:itemExpirationDate"], "2026-10-15");
    assert_eq!(receipt["ilmd"]["sy:supplierLot"], "Roll #12345");
    let split = &events[1];
    assert_eq!(split["type"], "TransformationEvent");
    assert_eq!(split["sy:transformationKind"], "split");
    assert_eq!(split["outputQuantityList"].as_array().unwrap().len(), 4);
    let job = events
        .iter()
        .find(|e| e["sy:transformationKind"] == "production")
        .unwrap();
    assert_eq!(
        job["outputQuantityList"][0]["epcClass"],
        "urn:switchyard:lgtin:PRINTED:FG-1234"
    );
    assert_eq!(
        job["bizTransactionList"],
        json!([{"type": "prodorder", "bizTransaction": "urn:switchyard:job:JOB-1234"},
               {"type": "po", "bizTransaction": "urn:switchyard:order:ORDER-5001"}])
    );
    let shipment = events.iter().find(|e| e["bizStep"] == "shipping").unwrap();
    assert_eq!(
        shipment["destinationList"],
        json!([{"type": "owning_party", "destination": "urn:switchyard:party:ABC%20Corp"}])
    );

    // Another tenant with the same master data imports the document...
    let partner = platform.tenant("partner");
    master_data(&partner).await;
    let imported = partner
        .ok("import_epcis", json!({"document": document}))
        .await;
    assert_eq!(imported, json!({"imported": 12, "skipped": 0}));
    // ...and exports exactly the same document, byte for byte.
    let again = export(&partner).await;
    assert_eq!(again, exported);
    assert_eq!(again.to_string(), exported.to_string());
    // Importing it twice changes nothing.
    let twice = partner
        .ok("import_epcis", json!({"document": document}))
        .await;
    assert_eq!(twice, json!({"imported": 0, "skipped": 12}));
    assert_eq!(export(&partner).await, exported);

    // The genealogy came along whole: the partner traces the very same trees.
    for (action, lot) in [
        ("forward_trace", ROLL),
        ("backward_trace", "LOT-2025-001-B"),
    ] {
        assert_eq!(
            partner.ok(action, json!({"lot": lot})).await,
            agog.ok(action, json!({"lot": lot})).await,
            "{action} {lot}"
        );
    }
    // Traceability, not stock: the partner holds nothing.
    assert_eq!(partner.ok("stock", json!({})).await["rows"], json!([]));

    // An empty period is an empty, still valid document.
    let nothing = agog
        .ok(
            "export_epcis",
            json!({"from": "2024-01-01T00:00:00Z", "to": "2024-02-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(nothing["events"], 0);
    assert!(epcis_violations(&nothing["document"]).is_empty());
}

async fn documents_outside_the_model_are_refused_whole(engine: Engine) {
    let platform = Platform::new(engine).await;
    let agog = platform.tenant("agog");
    scenario(&agog).await;
    let document = export(&agog).await["document"].clone();
    let stranger = platform.tenant("stranger");
    // Without the items the lots are of, nothing is imported.
    let problem = stranger
        .refused("import_epcis", json!({"document": document}))
        .await;
    assert_eq!(problem.code, ErrorCode::ParamsUnprocessable);
    assert!(
        problem.errors[0]
            .pointer
            .starts_with("/document/epcisBody/eventList/"),
        "{problem:?}"
    );
    master_data(&stranger).await;
    let mut broken = document.clone();
    broken["epcisBody"]["eventList"][3]["type"] = json!("AssociationEvent");
    broken["epcisBody"]["eventList"][4]["quantityList"][0]["quantity"] = json!(0.0000001);
    let problem = stranger
        .refused("import_epcis", json!({"document": broken}))
        .await;
    let pointers: Vec<&str> = problem.errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/document/epcisBody/eventList/3/type",
            "/document/epcisBody/eventList/4/quantityList/0"
        ],
        "{problem:?}"
    );
    // Another kind of document, or one without events, the published schema refuses.
    let refused = stranger.schema_refuses(
        "import_epcis",
        &json!({"document": {"type": "EPCISQueryDocument", "epcisBody": {}}}),
    );
    let pointers: Vec<&str> = refused.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        ["/document/epcisBody/eventList", "/document/type"],
        "{refused:?}"
    );
    assert_eq!(
        stranger
            .ok("export_epcis", json!({"from": OCTOBER.0, "to": OCTOBER.1}))
            .await["events"],
        0,
        "a refused import records nothing"
    );
}
