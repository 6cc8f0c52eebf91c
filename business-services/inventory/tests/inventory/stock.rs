//! Stock on bins: every movement, the moving average, refusals that change nothing, master
//! data, and tenants kept apart.

use serde_json::json;
use switchyard_contracts::ErrorCode;

use crate::support::{Engine, Platform};

on_both_engines!(
    movements_keep_the_snapshot_and_the_moving_average,
    refused_movements_change_nothing,
    master_data_is_checked_and_units_never_change,
    tenants_see_nothing_of_each_other,
    a_request_id_moves_stock_once_however_often_sent,
);

/// A saga step retried after a crash sends its request again with the same `request_id`:
/// the stock moves once and the answer is the first one, a new lot included.
async fn a_request_id_moves_stock_once_however_often_sent(engine: Engine) {
    let platform = Platform::new(engine).await;
    let acme = platform.tenant("acme");
    acme.basics().await;
    let receive = json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "10",
                         "unit_cost": "2", "lot": {"lot": "L-1"}, "request_id": "po:1/receive:0"});
    let first = acme.ok("receive", receive.clone()).await;
    let again = acme.ok("receive", receive).await;
    assert_eq!(first, again);
    for (action, extra) in [
        ("reserve", json!({"request_id": "so:1/reserve:0"})),
        ("release", json!({"request_id": "so:1/release:0"})),
        ("reserve", json!({"request_id": "so:2/reserve:0"})),
        (
            "issue",
            json!({"request_id": "so:2/issue:0", "from_reserved": true}),
        ),
    ] {
        let mut params = json!({"item": "paper", "warehouse": "main", "bin": "A1", "lot": "L-1",
                                "quantity": "3"});
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let first = acme.ok(action, params.clone()).await;
        assert_eq!(acme.ok(action, params).await, first, "{action}");
    }
    // Received 10 once, reserved 3 and released them, reserved 3 and issued them: 7 left.
    assert_eq!(
        acme.bin("paper", "main", "A1", Some("L-1")).await,
        ["7", "0", "7"]
    );
    acme.assert_replays().await;
    // Another tenant's same request id is its own request.
    let globex = platform.tenant("globex");
    globex.basics().await;
    globex
        .ok(
            "receive",
            json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "4",
                   "unit_cost": "2", "request_id": "po:1/receive:0"}),
        )
        .await;
    assert_eq!(
        globex.bin("paper", "main", "A1", None).await,
        ["4", "0", "4"]
    );
}

async fn movements_keep_the_snapshot_and_the_moving_average(engine: Engine) {
    let platform = Platform::new(engine).await;
    let acme = platform.tenant("acme");
    acme.basics().await;
    let at = |warehouse: &str, bin: &str| json!({"warehouse": warehouse, "bin": bin});
    let received = acme
        .ok(
            "receive",
            json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "10",
                   "unit_cost": "2", "reference": "PO-1"}),
        )
        .await;
    assert_eq!(received["type"], "inventory.stock.received");
    assert_eq!(received["value"], "20.0000");
    acme.ok(
        "receive",
        json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "10", "unit_cost": "4"}),
    )
    .await;
    assert_eq!(
        acme.valued("paper", "main").await,
        ["20", "60.0000", "3.0000"]
    );

    // An issue is costed at the moving average and says so, for the ledger's COGS.
    let issued = acme
        .ok(
            "issue",
            json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "5"}),
        )
        .await;
    assert_eq!(issued["type"], "inventory.stock.issued");
    assert_eq!(issued["cost"], "15.0000");

    // Between warehouses the value moves at the source's average; within one it stays.
    let moved = acme
        .ok(
            "transfer",
            json!({"item": "paper", "quantity": "5", "from": at("main", "A1"), "to": at("north", "N1")}),
        )
        .await;
    assert_eq!(moved["value"], "15.0000");
    acme.ok(
        "transfer",
        json!({"item": "paper", "quantity": "2", "from": at("main", "A1"), "to": at("main", "A2")}),
    )
    .await;
    assert_eq!(
        acme.valued("paper", "main").await,
        ["10", "30.0000", "3.0000"]
    );
    assert_eq!(
        acme.valued("paper", "north").await,
        ["5", "15.0000", "3.0000"]
    );
    assert_eq!(acme.bin("paper", "main", "A1", None).await, ["8", "0", "8"]);
    assert_eq!(acme.bin("paper", "main", "A2", None).await, ["2", "0", "2"]);

    // Reserved stock is not available, but can be issued as reserved or released.
    acme.ok(
        "reserve",
        json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "3", "reference": "SO-9"}),
    )
    .await;
    assert_eq!(acme.bin("paper", "main", "A1", None).await, ["8", "3", "5"]);
    let picked = acme
        .ok(
            "issue",
            json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "2", "from_reserved": true}),
        )
        .await;
    assert_eq!(picked["cost"], "6.0000");
    acme.ok(
        "release",
        json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "1"}),
    )
    .await;
    assert_eq!(acme.bin("paper", "main", "A1", None).await, ["6", "0", "6"]);

    // Counts: less is valued at the average, more at the given cost.
    let less = acme
        .ok(
            "adjust",
            json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "-1", "reason": "cycle count"}),
        )
        .await;
    assert_eq!(less["value"], "-3.0000");
    let more = acme
        .ok(
            "adjust",
            json!({"item": "paper", "warehouse": "main", "bin": "A2", "quantity": "4.5",
                   "unit_cost": "1.5", "reason": "found on the floor"}),
        )
        .await;
    assert_eq!(more["value"], "6.7500");
    // 7 at 3.0000 plus 4.5 at 1.5000: 27.7500 for 11.5, 2.4130 a unit.
    assert_eq!(
        acme.valued("paper", "main").await,
        ["11.5", "27.7500", "2.4130"]
    );

    // Taking everything takes the whole value: no rounding residue stays behind.
    acme.ok(
        "issue",
        json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "5"}),
    )
    .await;
    acme.ok(
        "issue",
        json!({"item": "paper", "warehouse": "main", "bin": "A2", "quantity": "6.5"}),
    )
    .await;
    assert_eq!(
        acme.valued("paper", "main").await,
        ["0", "0.0000", "0.0000"]
    );

    let verified = acme.assert_replays().await;
    // 12 operations, the cross-warehouse transfer stored once in each of its two streams.
    assert_eq!(verified["events"], 13);
    let events = acme
        .ok("events", json!({"stream": "paper/main", "limit": 1000}))
        .await;
    let seqs: Vec<i64> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>());
    assert_eq!(events["events"][0]["payload"]["reference"], "PO-1");
    assert_eq!(
        events["events"][0]["payload"]["legs"],
        json!([{"item": "paper", "warehouse": "main", "bin": "A1",
                "on_hand": "10", "reserved": "0", "value": "20.0000"}])
    );
}

async fn refused_movements_change_nothing(engine: Engine) {
    let platform = Platform::new(engine).await;
    let acme = platform.tenant("acme");
    acme.basics().await;
    acme.ok(
        "receive",
        json!({"item": "ink", "warehouse": "main", "bin": "A1", "quantity": "4", "unit_cost": "10"}),
    )
    .await;
    acme.ok(
        "reserve",
        json!({"item": "ink", "warehouse": "main", "bin": "A1", "quantity": "3"}),
    )
    .await;
    let before = acme.ok("events", json!({})).await;
    let bin = |quantity: &str| json!({"item": "ink", "warehouse": "main", "bin": "A1", "quantity": quantity});
    for (action, params, code) in [
        ("issue", bin("2"), ErrorCode::InsufficientStock),
        ("reserve", bin("1.5"), ErrorCode::InsufficientStock),
        ("release", bin("3.25"), ErrorCode::Conflict),
        (
            "adjust",
            json!({"item": "ink", "warehouse": "main", "bin": "A1", "quantity": "-5", "reason": "count"}),
            ErrorCode::InsufficientStock,
        ),
        (
            "issue",
            json!({"item": "ink", "warehouse": "main", "bin": "A2", "quantity": "1"}),
            ErrorCode::InsufficientStock,
        ),
        (
            "issue",
            json!({"item": "ink", "warehouse": "north", "bin": "N1", "quantity": "1"}),
            ErrorCode::InsufficientStock,
        ),
        (
            "issue",
            json!({"item": "ink", "warehouse": "main", "bin": "A1", "quantity": "4", "from_reserved": true}),
            ErrorCode::InsufficientStock,
        ),
        (
            "transfer",
            json!({"item": "ink", "quantity": "2", "from": {"warehouse": "main", "bin": "A1"}, "to": {"warehouse": "north", "bin": "N1"}}),
            ErrorCode::InsufficientStock,
        ),
    ] {
        let problem = acme.refused(action, params.clone()).await;
        assert_eq!(problem.code, code, "{action} {params}: {problem:?}");
    }
    let problem = acme.refused("issue", bin("2")).await;
    assert!(
        problem.detail.contains("ink in main"),
        "the refusal names the stock: {}",
        problem.detail
    );
    assert_eq!(acme.ok("events", json!({})).await, before);
    assert_eq!(acme.bin("ink", "main", "A1", None).await, ["4", "3", "1"]);
    assert_eq!(
        acme.valued("ink", "main").await,
        ["4", "40.0000", "10.0000"]
    );
    acme.assert_replays().await;
}

async fn master_data_is_checked_and_units_never_change(engine: Engine) {
    let platform = Platform::new(engine).await;
    let acme = platform.tenant("acme");
    acme.basics().await;
    let renamed = acme
        .ok(
            "define_item",
            json!({"item": "paper", "name": "Paper 80gsm", "uom": "ST", "gtin": "09520123456788"}),
        )
        .await;
    assert_eq!(renamed["gtin"], "09520123456788");
    let problem = acme
        .refused(
            "define_item",
            json!({"item": "paper", "name": "Paper", "uom": "KGM"}),
        )
        .await;
    assert_eq!(problem.code, ErrorCode::Conflict);
    let problem = acme
        .refused(
            "define_item",
            json!({"item": "other", "name": "Other", "uom": "ST", "gtin": "09520123456788"}),
        )
        .await;
    assert_eq!(problem.code, ErrorCode::Conflict, "one GTIN, one item");
    let problem = acme
        .refused(
            "define_item",
            json!({"item": "bad", "name": "Bad", "uom": "ST", "gtin": "09520123456789"}),
        )
        .await;
    assert_eq!(problem.code, ErrorCode::ParamsUnprocessable, "check digit");
    let problem = acme
        .refused("define_bin", json!({"warehouse": "nowhere", "bin": "X"}))
        .await;
    assert_eq!(problem.code, ErrorCode::ResourceNotFound);
    for params in [
        json!({"item": "nothing", "warehouse": "main", "bin": "A1", "quantity": "1", "unit_cost": "1"}),
        json!({"item": "paper", "warehouse": "main", "bin": "Z9", "quantity": "1", "unit_cost": "1"}),
    ] {
        let problem = acme.refused("receive", params).await;
        assert_eq!(problem.code, ErrorCode::ResourceNotFound, "{problem:?}");
    }
    let problem = acme
        .refused(
            "issue",
            json!({"item": "paper", "warehouse": "main", "bin": "A1", "lot": "L-404", "quantity": "1"}),
        )
        .await;
    assert_eq!(problem.code, ErrorCode::ResourceNotFound);
    let problem = acme
        .refused(
            "transfer",
            json!({"item": "paper", "quantity": "1", "from": {"warehouse": "main", "bin": "A1"},
                   "to": {"warehouse": "main", "bin": "A1"}}),
        )
        .await;
    assert_eq!(problem.code, ErrorCode::ParamsInvalid);
    assert_eq!(acme.ok("events", json!({})).await["events"], json!([]));
}

async fn tenants_see_nothing_of_each_other(engine: Engine) {
    let platform = Platform::new(engine).await;
    let acme = platform.tenant("acme");
    let globex = platform.tenant("globex");
    acme.basics().await;
    acme.ok(
        "receive",
        json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "100", "unit_cost": "0.5",
               "occurred_at": "2025-10-15T08:30:00Z",
               "lot": {"lot": "LOT-1", "supplier": "Acme Paper Co.", "expires_on": "2026-01-31"}}),
    )
    .await;
    acme.ok(
        "split",
        json!({"lot": "LOT-1", "outputs": [{"lot": "LOT-1-A", "quantity": "40"}],
               "occurred_at": "2025-10-16T08:30:00Z"}),
    )
    .await;

    // globex has its own (empty) tables: no stock, values, lots, events or lot events of acme.
    let empty = |key: &str| json!({key: [], "truncated": false});
    assert_eq!(globex.ok("stock", json!({})).await, empty("rows"));
    assert_eq!(globex.ok("valuation", json!({})).await, empty("rows"));
    assert_eq!(
        globex
            .ok("expiring_lots", json!({"until": "2030-01-01"}))
            .await,
        empty("lots")
    );
    assert_eq!(
        globex.ok("events", json!({})).await,
        json!({"events": [], "next_after": 0})
    );
    for action in ["lot", "backward_trace", "forward_trace"] {
        let problem = globex.refused(action, json!({"lot": "LOT-1"})).await;
        assert_eq!(problem.code, ErrorCode::ResourceNotFound, "{action}");
    }
    let export = globex
        .ok(
            "export_epcis",
            json!({"from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(export["events"], 0);
    assert_eq!(
        globex.ok("waste_analysis", json!({"by": "lot"})).await["rows"],
        json!([])
    );
    // Nor can it act on acme's stock or items: to globex they do not exist.
    let problem = globex
        .refused(
            "issue",
            json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "1"}),
        )
        .await;
    assert_eq!(problem.code, ErrorCode::ResourceNotFound);

    // The same codes name globex's own, unrelated inventory.
    globex.basics().await;
    globex
        .ok(
            "receive",
            json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "7", "unit_cost": "1",
                   "lot": {"lot": "LOT-1"}}),
        )
        .await;
    assert_eq!(
        globex.bin("paper", "main", "A1", Some("LOT-1")).await,
        ["7", "0", "7"]
    );
    assert_eq!(
        acme.bin("paper", "main", "A1", Some("LOT-1")).await,
        ["60", "0", "60"]
    );
    assert_eq!(
        globex.ok("forward_trace", json!({"lot": "LOT-1"})).await["lots"],
        1
    );
    assert_eq!(
        acme.ok("forward_trace", json!({"lot": "LOT-1"})).await["lots"],
        2
    );
    acme.assert_replays().await;
    globex.assert_replays().await;
}
