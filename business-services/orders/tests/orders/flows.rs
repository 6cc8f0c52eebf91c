//! The order flows end to end.

use serde_json::json;
use switchyard_contracts::ErrorCode;

use crate::receiver::{Receiver, closed_port};
use crate::support::{Platform, order, step};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_notify_annotate_fulfil_posts_revenue_and_cogs() {
    let receiver = Receiver::start().await;
    let platform = Platform::new(&receiver.url()).await;
    platform.stock_item("widget", "10", "4.00").await;

    let created = platform
        .ok("create", order("SO-1", "widget", "3", "12.50"))
        .await;
    assert_eq!(created["status"], "created");
    assert_eq!(created["total"], "37.5000");
    assert_eq!(created["replayed"], false);
    assert_eq!(step(&created, "reserve").unwrap()["status"], "ok");
    assert_eq!(step(&created, "webhook").unwrap()["status"], "ok");
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["type"], "orders.order.created");
    assert_eq!(deliveries[0]["data"]["order_id"], "SO-1");
    assert_eq!(platform.outbox_types().await, ["orders.order.created"]);
    assert_eq!(
        platform.stock("widget").await,
        ("10".into(), "3".into(), "7".into())
    );

    let annotated = platform.ok("annotate", json!({"order_id": "SO-1"})).await;
    assert!(annotated["category"].is_string(), "{annotated}");
    assert!(annotated["risk"].is_string(), "{annotated}");
    assert_eq!(step(&annotated, "annotate").unwrap()["status"], "ok");

    // Fulfilment needs a confirmed order.
    let early = platform
        .call("fulfil", json!({"order_id": "SO-1"}))
        .await
        .unwrap_err();
    assert_eq!(early.code, ErrorCode::Conflict);
    platform.ok("confirm", json!({"order_id": "SO-1"})).await;
    let fulfilled = platform.ok("fulfil", json!({"order_id": "SO-1"})).await;
    assert_eq!(fulfilled["status"], "fulfilled");
    assert_eq!(step(&fulfilled, "issue:1").unwrap()["detail"], "12.0000");
    assert_eq!(step(&fulfilled, "post_ledger").unwrap()["status"], "ok");
    assert_eq!(
        platform.stock("widget").await,
        ("7".into(), "0".into(), "7".into())
    );

    let ledger = "services/ledger";
    for (account, expected) in [
        ("1100-USD", "37.5000"),
        ("4000-USD", "37.5000"),
        ("5000-USD", "12.0000"),
        ("1300-USD", "-12.0000"),
    ] {
        let balance = platform
            .other(ledger, "balance", json!({"account": account}))
            .await;
        assert_eq!(balance["balance"], expected, "{account}: {balance}");
    }
    let trial = platform.other(ledger, "trial_balance", json!({})).await;
    assert_eq!(trial["balanced"], true, "{trial}");

    // A fulfilled order goes nowhere else.
    for action in ["fulfil", "cancel", "confirm"] {
        let refused = platform
            .call(action, json!({"order_id": "SO-1"}))
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::Conflict, "{action}");
    }
    assert_eq!(receiver.deliveries().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_releases_the_reservation_and_posts_nothing() {
    let receiver = Receiver::start().await;
    let platform = Platform::new(&receiver.url()).await;
    platform.stock_item("gadget", "5", "2").await;
    platform
        .ok("create", order("SO-2", "gadget", "4", "9"))
        .await;
    assert_eq!(
        platform.stock("gadget").await,
        ("5".into(), "4".into(), "1".into())
    );
    platform.ok("confirm", json!({"order_id": "SO-2"})).await;
    let cancelled = platform.ok("cancel", json!({"order_id": "SO-2"})).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(step(&cancelled, "release:1").unwrap()["status"], "ok");
    assert_eq!(
        platform.stock("gadget").await,
        ("5".into(), "0".into(), "5".into())
    );
    let again = platform
        .call("cancel", json!({"order_id": "SO-2"}))
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::Conflict);
    let fulfil = platform
        .call("fulfil", json!({"order_id": "SO-2"}))
        .await
        .unwrap_err();
    assert_eq!(fulfil.code, ErrorCode::Conflict);
    let trial = platform
        .other("services/ledger", "trial_balance", json!({}))
        .await;
    assert_eq!(trial["accounts"], json!([]), "{trial}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_create_twice_reserves_and_notifies_once() {
    let receiver = Receiver::start().await;
    let platform = Platform::new(&receiver.url()).await;
    platform.stock_item("bolt", "100", "0.1").await;
    let params = order("SO-3", "bolt", "10", "0.5");
    let first = platform.ok("create", params.clone()).await;
    let second = platform.ok("create", params).await;
    assert_eq!(second["replayed"], true);
    assert_eq!(first["created_at"], second["created_at"]);
    assert_eq!(
        platform.stock("bolt").await,
        ("100".into(), "10".into(), "90".into())
    );
    assert_eq!(receiver.deliveries().len(), 1);
    assert_eq!(platform.outbox_types().await.len(), 1);

    let other = platform
        .call("create", order("SO-3", "bolt", "11", "0.5"))
        .await
        .unwrap_err();
    assert_eq!(other.code, ErrorCode::Conflict);
    assert_eq!(
        platform.stock("bolt").await,
        ("100".into(), "10".into(), "90".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_line_releases_the_lines_reserved_before_it() {
    let receiver = Receiver::start().await;
    let platform = Platform::new(&receiver.url()).await;
    platform.stock_item("nut", "5", "1").await;
    platform.stock_item("screw", "1", "1").await;
    let refused = platform
        .call(
            "create",
            json!({"order_id": "SO-4", "customer": "ada-retail", "warehouse": "w1", "lines": [
                {"item": "nut", "quantity": "5", "unit_price": "2", "currency": "USD"},
                {"item": "screw", "quantity": "2", "unit_price": "2", "currency": "USD"}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::InsufficientStock, "{refused:?}");
    assert_eq!(
        platform.stock("nut").await,
        ("5".into(), "0".into(), "5".into())
    );
    let missing = platform
        .call("get", json!({"order_id": "SO-4"}))
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::ResourceNotFound);
    let unknown = platform
        .call("create", order("SO-5", "no-such-item", "1", "1"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code, ErrorCode::ParamsUnprocessable, "{unknown:?}");
    assert_eq!(
        unknown.errors[0].pointer, "/params/lines/0/item",
        "{unknown:?}"
    );
    let mut stranger = order("SO-5", "nut", "1", "1");
    stranger["customer"] = json!("nobody");
    let stranger = platform.call("create", stranger).await.unwrap_err();
    assert_eq!(
        stranger.code,
        ErrorCode::ParamsUnprocessable,
        "{stranger:?}"
    );
    assert_eq!(stranger.errors[0].pointer, "/params/customer");
    assert_eq!(
        platform.stock("nut").await,
        ("5".into(), "0".into(), "5".into()),
        "an order for an unknown customer reserved stock"
    );
    assert!(receiver.deliveries().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_fails_the_webhook_step_but_not_the_order() {
    let platform = Platform::new(&closed_port().await).await;
    platform.stock_item("cog", "3", "1").await;
    let created = platform.ok("create", order("SO-6", "cog", "1", "5")).await;
    assert_eq!(created["status"], "created");
    let webhook = step(&created, "webhook").unwrap();
    assert_eq!(webhook["status"], "failed", "{created}");
    assert!(webhook["error"].is_string(), "{created}");
    let got = platform.ok("get", json!({"order_id": "SO-6"})).await;
    assert_eq!(got["steps"], created["steps"]);
    assert_eq!(platform.outbox_types().await, ["orders.order.created"]);
    assert_eq!(
        platform.stock("cog").await,
        ("3".into(), "1".into(), "2".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ai_failure_leaves_the_order_unannotated_with_the_step_failed() {
    let receiver = Receiver::start().await;
    // No `ai/openai` is registered on this platform: every classify fails.
    let platform = Platform::with_ai(&receiver.url(), "ai/openai").await;
    platform.stock_item("pin", "3", "1").await;
    platform.ok("create", order("SO-7", "pin", "1", "5")).await;
    let annotated = platform.ok("annotate", json!({"order_id": "SO-7"})).await;
    assert!(annotated.get("category").is_none(), "{annotated}");
    let annotate = step(&annotated, "annotate").unwrap();
    assert_eq!(annotate["status"], "failed");
    assert!(annotate["error"].as_str().unwrap().contains("ai/openai"));
    assert_eq!(annotated["status"], "created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_is_defined_once_and_never_renamed_by_a_second_definition() {
    let receiver = Receiver::start().await;
    let platform = Platform::new(&receiver.url()).await;
    let again = platform
        .ok(
            "define_customer",
            json!({"customer": "ada-retail", "name": "Ada Retail Ltd"}),
        )
        .await;
    assert_eq!(again["created"], false, "{again}");
    let renamed = platform
        .call(
            "define_customer",
            json!({"customer": "ada-retail", "name": "Someone Else"}),
        )
        .await
        .unwrap_err();
    assert_eq!(renamed.code, ErrorCode::Conflict, "{renamed:?}");
    let blank = platform
        .call("define_customer", json!({"customer": "x", "name": " "}))
        .await
        .unwrap_err();
    assert_eq!(blank.code, ErrorCode::ParamsInvalid, "{blank:?}");
}
