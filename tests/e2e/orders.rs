//! The orders service on the embedded defaults through the gateway: create reserves stock,
//! annotate tags the order with ai/local, fulfil issues the stock and posts revenue and COGS
//! to the ledger (trial balance zero); cancel releases the reservation and posts nothing.

use crate::common;

use common::{Api, Server, tenant_with_key};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn call(api: &Api, service: &str, action: &str, params: Value) -> Value {
    let (status, body) = api
        .post(
            &format!("/services/{service}/{action}"),
            json!({"params": params}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{service}/{action}: {body}");
    body["data"].clone()
}

async fn available(api: &Api) -> f64 {
    let stock = call(
        api,
        "inventory",
        "stock",
        json!({"item": "sheet", "warehouse": "main"}),
    )
    .await;
    stock["rows"][0]["available"]
        .as_str()
        .map_or(0.0, |a| a.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_is_reserved_annotated_fulfilled_into_the_ledger_or_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    call(
        &api,
        "inventory",
        "define_item",
        json!({"item": "sheet", "name": "Sheet", "uom": "EA"}),
    )
    .await;
    call(
        &api,
        "inventory",
        "define_warehouse",
        json!({"warehouse": "main", "name": "Main"}),
    )
    .await;
    call(
        &api,
        "inventory",
        "define_bin",
        json!({"warehouse": "main", "bin": "main"}),
    )
    .await;
    call(
        &api,
        "inventory",
        "receive",
        json!({"item": "sheet", "warehouse": "main", "bin": "main", "quantity": "10", "unit_cost": "4.00"}),
    )
    .await;
    call(
        &api,
        "orders",
        "define_customer",
        json!({"customer": "globex", "name": "Globex Retail"}),
    )
    .await;
    let order = |id: &str| {
        json!({"order_id": id, "customer": "globex", "warehouse": "main",
               "lines": [{"item": "sheet", "quantity": "3", "unit_price": "12.50", "currency": "EUR"}]})
    };

    call(&api, "orders", "create", order("SO-1")).await;
    assert_eq!(available(&api).await, 7.0);
    let annotated = call(&api, "orders", "annotate", json!({"order_id": "SO-1"})).await;
    assert!(
        annotated["category"].is_string() && annotated["risk"].is_string(),
        "ai/local tagged nothing: {annotated}"
    );
    call(&api, "orders", "confirm", json!({"order_id": "SO-1"})).await;
    call(&api, "orders", "fulfil", json!({"order_id": "SO-1"})).await;
    let trial = call(&api, "ledger", "trial_balance", json!({})).await;
    assert_eq!(trial["balanced"], true, "{trial}");
    let debits = trial["currencies"][0]["debit_total"].as_str().unwrap();
    // 37.50 receivable for the sale and 12.00 COGS at the received cost.
    assert_eq!(debits, "49.5000", "{trial}");

    call(&api, "orders", "create", order("SO-2")).await;
    assert_eq!(available(&api).await, 4.0);
    call(&api, "orders", "cancel", json!({"order_id": "SO-2"})).await;
    assert_eq!(
        available(&api).await,
        7.0,
        "the reservation was not released"
    );
    let after = call(&api, "ledger", "trial_balance", json!({})).await;
    assert_eq!(
        after["currencies"], trial["currencies"],
        "a cancelled order posted to the ledger"
    );
    let steps = call(&api, "orders", "get", json!({"order_id": "SO-2"})).await;
    assert_eq!(steps["status"], "cancelled", "{steps}");

    // Another tenant neither sees acme's orders nor can act on them.
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    for action in ["get", "cancel", "fulfil"] {
        let (status, problem) = globex
            .post(
                &format!("/services/orders/{action}"),
                json!({"params": {"order_id": "SO-1"}}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "orders/{action}: {problem}");
        assert_eq!(problem["code"], "resource_not_found", "{problem}");
    }
}
