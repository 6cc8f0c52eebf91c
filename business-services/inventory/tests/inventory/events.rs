//! With a bus, every stock and lot event is written to the outbox in its operation's
//! transaction and relayed to the `inventory` topic as a CloudEvent; a refused operation
//! leaves no event.

use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_outbox::Outbox;

use crate::support::{BUS, Engine, Platform};

on_both_engines!(every_operation_announces_itself_through_the_outbox);

async fn every_operation_announces_itself_through_the_outbox(engine: Engine) {
    let platform = Platform::with_bus(engine).await;
    let acme = platform.tenant("acme");
    acme.basics().await;
    let received = acme
        .ok(
            "receive",
            json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "100",
                   "unit_cost": "0.02", "lot": {"lot": "LOT-9", "supplier": "Acme Paper Co."}}),
        )
        .await;
    acme.ok(
        "split",
        json!({"lot": "LOT-9", "outputs": [{"lot": "LOT-9-A", "quantity": "60"}, {"lot": "LOT-9-B", "quantity": "40"}]}),
    )
    .await;
    acme.ok(
        "ship",
        json!({"lot": "LOT-9-A", "quantity": "60", "shipment": "SHIP-1", "customer": "ABC Corp"}),
    )
    .await;
    acme.refused(
        "issue",
        json!({"item": "paper", "warehouse": "main", "bin": "A1", "lot": "LOT-9-B", "quantity": "41"}),
    )
    .await;
    acme.ok(
        "transfer",
        json!({"item": "paper", "lot": "LOT-9-B", "quantity": "40",
               "from": {"warehouse": "main", "bin": "A1"}, "to": {"warehouse": "north", "bin": "N1"}}),
    )
    .await;

    let outbox = Outbox::new(engine.provider()).unwrap();
    assert_eq!(outbox.pending(&acme.client, 100).await.unwrap().len(), 4);
    let relay = platform.service.relay().unwrap();
    assert_eq!(relay.run_once(&acme.client).await.unwrap(), 4);
    let records = acme
        .client
        .invoke(
            BUS,
            "replay",
            json!({"topic": "inventory", "from_offset": 0, "max_records": 100}),
        )
        .await
        .unwrap();
    let records = records["records"].as_array().unwrap();
    let types: Vec<&str> = records
        .iter()
        .map(|r| r["headers"]["ce_type"].as_str().unwrap())
        .collect();
    for kind in &types {
        assert!(
            switchyard_inventory::EVENT_TYPES.contains(kind),
            "{kind} is emitted but not listed in EVENT_TYPES (and so not in AsyncAPI)"
        );
    }
    assert_eq!(
        types,
        [
            "inventory.lot.received",
            "inventory.lot.split",
            "inventory.lot.shipped",
            "inventory.stock.transferred"
        ]
    );
    let first = &records[0];
    assert_eq!(first["headers"]["ce_id"], received["event_id"]);
    assert_eq!(first["headers"]["ce_source"], "/services/inventory");
    assert_eq!(first["headers"]["ce_subject"], "LOT-9");
    assert_eq!(first["headers"]["ce_tenantid"], "acme");
    assert_eq!(first["key"], "paper/main");
    let payload: &Value = &first["payload"];
    assert_eq!(payload["type"], "inventory.lot.received");
    assert_eq!(payload["supplier"], "Acme Paper Co.");
    assert_eq!(payload["value"], "2.0000");
    assert_eq!(
        payload["legs"],
        json!([{"item": "paper", "warehouse": "main", "bin": "A1", "lot": "LOT-9",
                "on_hand": "100", "reserved": "0", "value": "2.0000"}])
    );
    let shipped = &records[2]["payload"];
    assert_eq!(
        shipped["cost"], "1.2000",
        "COGS of the shipment, for the ledger"
    );
    assert_eq!(shipped["customer"], "ABC Corp");
    acme.assert_replays().await;
}
