//! The states after creation: every state an order reaches writes its event once, returns
//! take stock and money back, and the annotator consumer outlasts an AI outage.

use serde_json::json;
use switchyard_contracts::ErrorCode;

use crate::receiver::Receiver;
use crate::support::{Platform, order, step};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_an_order_reaches_writes_its_event_once_in_order() {
    let receiver = Receiver::start().await;
    let platform = Platform::new(&receiver.url()).await;
    platform.stock_item("widget", "10", "4.00").await;
    platform
        .ok("create", order("SO-1", "widget", "3", "12.50"))
        .await;
    platform.ok("confirm", json!({"order_id": "SO-1"})).await;
    platform.ok("fulfil", json!({"order_id": "SO-1"})).await;
    platform
        .ok("create", order("SO-2", "widget", "1", "12.50"))
        .await;
    platform.ok("cancel", json!({"order_id": "SO-2"})).await;
    // A transition refused (confirming twice, confirming a cancelled order) writes nothing.
    for id in ["SO-1", "SO-2"] {
        let refused = platform
            .call("confirm", json!({"order_id": id}))
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::Conflict, "{refused:?}");
    }
    let expected = [
        "orders.order.created",
        "orders.order.confirmed",
        "orders.order.fulfilled",
        "orders.order.created",
        "orders.order.cancelled",
    ];
    assert_eq!(platform.outbox_types().await, expected);
    assert_eq!(platform.relay().await, 5);
    assert_eq!(platform.bus_types().await, expected);
    for event in &expected {
        assert!(
            switchyard_orders::EVENT_TYPES.contains(event),
            "{event} is emitted but not listed in EVENT_TYPES (and so not in AsyncAPI)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_restocks_at_the_issue_cost_and_posts_the_opposite_of_the_sale() {
    let receiver = Receiver::start().await;
    let platform = Platform::new(&receiver.url()).await;
    platform.stock_item("widget", "10", "4.00").await;
    platform
        .ok("create", order("SO-1", "widget", "3", "12.50"))
        .await;
    let early = platform
        .call("return", json!({"order_id": "SO-1"}))
        .await
        .unwrap_err();
    assert_eq!(
        early.code,
        ErrorCode::Conflict,
        "only a fulfilled order returns"
    );
    platform.ok("confirm", json!({"order_id": "SO-1"})).await;
    platform.ok("fulfil", json!({"order_id": "SO-1"})).await;
    let returned = platform.ok("return", json!({"order_id": "SO-1"})).await;
    assert_eq!(returned["status"], "returned", "{returned}");
    assert_eq!(step(&returned, "restock:1").unwrap()["detail"], "12.0000");
    assert_eq!(step(&returned, "post_return").unwrap()["status"], "ok");
    assert_eq!(
        platform.stock("widget").await,
        ("10".into(), "0".into(), "10".into())
    );
    let ledger = "services/ledger";
    for account in ["1100-USD", "4000-USD", "5000-USD", "1300-USD"] {
        let balance = platform
            .other(ledger, "balance", json!({"account": account}))
            .await;
        assert_eq!(balance["balance"], "0.0000", "{account}: {balance}");
    }
    let trial = platform.other(ledger, "trial_balance", json!({})).await;
    assert_eq!(trial["balanced"], true, "{trial}");
    let again = platform
        .call("return", json!({"order_id": "SO-1"}))
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::Conflict);
    assert_eq!(
        platform.outbox_types().await.last().map(String::as_str),
        Some("orders.order.returned")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_annotator_holds_an_order_while_the_ai_is_down_and_annotates_it_when_it_is_back() {
    let receiver = Receiver::start().await;
    let platform = Platform::new(&receiver.url()).await;
    platform.stock_item("pin", "10", "1").await;
    platform.set_ai_running(false).await;
    let created = platform.ok("create", order("SO-1", "pin", "1", "5")).await;
    assert_eq!(created["status"], "created", "the order waits for no AI");
    assert_eq!(platform.relay().await, 1);

    for _ in 0..2 {
        let round = platform.annotate_round().await;
        assert!(round.held && round.annotated == 0, "{round:?}");
    }
    let waiting = platform.ok("get", json!({"order_id": "SO-1"})).await;
    assert!(waiting.get("category").is_none(), "{waiting}");
    let annotate = step(&waiting, "annotate").unwrap();
    assert_eq!(annotate["status"], "failed", "{waiting}");
    assert!(
        annotate["error"]
            .as_str()
            .unwrap()
            .contains("stopped by an admin"),
        "{waiting}"
    );

    platform.set_ai_running(true).await;
    let round = platform.annotate_round().await;
    assert_eq!((round.read, round.annotated, round.held), (1, 1, false));
    let annotated = platform.ok("get", json!({"order_id": "SO-1"})).await;
    assert!(annotated["category"].is_string(), "{annotated}");
    assert!(annotated["risk"].is_string(), "{annotated}");
    assert_eq!(step(&annotated, "annotate").unwrap()["status"], "ok");
    // Committed: the next round finds nothing new.
    assert_eq!(platform.annotate_round().await.read, 0);
}

/// One sheet at 1.0000 and two at 1.0001 average 1.000066…: the three leave worth 3.0002, and
/// a return must bring back exactly that, not three at a unit cost rounded to 1.0001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_return_restores_exactly_the_value_that_left_and_nets_inventory_and_cogs_to_zero() {
    let receiver = Receiver::start().await;
    let platform = Platform::new(&receiver.url()).await;
    let inv = "services/inventory";
    platform.stock_item("sheet", "1", "1.0000").await;
    platform
        .other(
            inv,
            "receive",
            json!({"item": "sheet", "warehouse": "w1", "bin": "main",
                   "quantity": "2", "unit_cost": "1.0001"}),
        )
        .await;
    platform
        .ok("create", order("SO-1", "sheet", "3", "2.00"))
        .await;
    platform.ok("confirm", json!({"order_id": "SO-1"})).await;
    let fulfilled = platform.ok("fulfil", json!({"order_id": "SO-1"})).await;
    assert_eq!(step(&fulfilled, "issue:1").unwrap()["detail"], "3.0002");

    let returned = platform.ok("return", json!({"order_id": "SO-1"})).await;
    assert_eq!(returned["status"], "returned", "{returned}");
    assert_eq!(step(&returned, "restock:1").unwrap()["detail"], "1.0000");
    assert_eq!(step(&returned, "restock:1/2").unwrap()["detail"], "2.0002");
    let valuation = platform
        .other(inv, "valuation", json!({"item": "sheet"}))
        .await;
    assert_eq!(valuation["rows"][0]["on_hand"], "3", "{valuation}");
    assert_eq!(valuation["rows"][0]["value"], "3.0002", "{valuation}");

    let ledger = "services/ledger";
    for account in ["1300-USD", "5000-USD"] {
        let balance = platform
            .other(ledger, "balance", json!({"account": account}))
            .await;
        assert_eq!(balance["balance"], "0.0000", "{account}: {balance}");
    }
    let trial = platform.other(ledger, "trial_balance", json!({})).await;
    assert_eq!(trial["balanced"], true, "{trial}");
}
