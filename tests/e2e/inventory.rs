//! The inventory service through the real gateway: 32 concurrent issues of 1 against a bin
//! holding 10 over HTTP let exactly 10 through, the rest are `insufficient_stock`, and another
//! tenant sees none of the stock.

use crate::common;

use common::{Api, Server, tenant_with_key};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn inventory(api: &Api, action: &str, params: Value) -> (StatusCode, Value) {
    api.post(
        &format!("/services/inventory/{action}"),
        json!({"params": params}),
    )
    .await
}

async fn ok(api: &Api, action: &str, params: Value) -> Value {
    let (status, body) = inventory(api, action, params).await;
    assert_eq!(status, StatusCode::OK, "inventory/{action}: {body}");
    body["data"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_issues_over_http_never_take_stock_below_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    ok(
        &acme,
        "define_item",
        json!({"item": "sheet", "name": "Sheet", "uom": "EA"}),
    )
    .await;
    ok(
        &acme,
        "define_warehouse",
        json!({"warehouse": "main", "name": "Main"}),
    )
    .await;
    ok(
        &acme,
        "define_bin",
        json!({"warehouse": "main", "bin": "A1"}),
    )
    .await;
    let place = json!({"item": "sheet", "warehouse": "main", "bin": "A1"});
    let mut receive = place.clone();
    receive["quantity"] = json!("10");
    receive["unit_cost"] = json!("2.50");
    ok(&acme, "receive", receive).await;

    let mut issues = Vec::new();
    for _ in 0..32 {
        let (api, mut params) = (acme.clone(), place.clone());
        params["quantity"] = json!("1");
        issues.push(tokio::spawn(async move {
            inventory(&api, "issue", params).await
        }));
    }
    let (mut issued, mut refused) = (0, 0);
    for issue in issues {
        let (status, body) = issue.await.unwrap();
        match status {
            StatusCode::OK => issued += 1,
            StatusCode::CONFLICT => {
                assert_eq!(body["code"], "insufficient_stock", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((issued, refused), (10, 22));
    let stock = ok(&acme, "stock", place.clone()).await;
    // A bin emptied of stock may be listed at zero or not at all.
    let available: f64 = stock["rows"][0]["available"]
        .as_str()
        .map_or(0.0, |a| a.parse().unwrap());
    assert_eq!(available, 0.0, "{stock}");
    assert!(stock["rows"].as_array().unwrap().len() <= 1, "{stock}");
    let verified = ok(&acme, "verify", json!({})).await;
    assert_eq!(verified["differences"], json!([]), "{verified}");

    let theirs = ok(&globex, "stock", json!({})).await;
    assert_eq!(
        theirs["rows"],
        json!([]),
        "another tenant sees acme's stock: {theirs}"
    );
}
