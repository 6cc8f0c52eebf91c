//! integration/shopify against the fake Admin API (`switchyard-integration-fakes`), through
//! real HTTP on loopback: no real shop is reachable here.

use std::collections::BTreeMap;

use serde_json::json;
use switchyard_egress::Egress;
use switchyard_integration_fakes::shopify::{FakeShopify, Options, sign};
use switchyard_spi::ErrorCode;
use switchyard_spi::tenancy::EgressCeiling;

use super::*;

fn link(ceiling: EgressCeiling) -> Link {
    Link {
        egress: Egress::new(&ceiling),
        tokens: crate::http::Tokens::in_memory("shopify"),
    }
}

/// The operator's ceiling in these tests: loopback, where the fake listens.
fn loopback() -> EgressCeiling {
    EgressCeiling {
        allowed_networks: vec!["127.0.0.0/8".parse().expect("a network")],
        allowed_ports: Vec::new(),
    }
}

fn config(fake: &FakeShopify, extra: Value) -> ShopifyConfig {
    let options = fake.options();
    let mut config = json!({
        "shop_url": fake.base_url(),
        "access_token": options.access_token,
        "webhook_secret": options.webhook_secret,
    });
    for (field, value) in extra.as_object().into_iter().flatten() {
        config[field] = value.clone();
    }
    serde_json::from_value(config).expect("a config")
}

fn connect(fake: &FakeShopify, extra: Value) -> Shopify {
    Shopify::connect(config(fake, extra), link(loopback())).expect("connects")
}

/// Every page of `stream` from `since`: the records and the number of pages.
async fn read_all(shop: &Shopify, stream: &str, since: Option<&Value>) -> (Vec<Value>, usize) {
    let mut records = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let from = ReadFrom {
            since,
            page: token.as_deref(),
        };
        let page = shop.read(stream, from).await.expect("a page");
        records.extend(page.records);
        pages += 1;
        match page.next_page {
            Some(next) => token = Some(next),
            None => return (records, pages),
        }
    }
}

fn ids(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r["id"].as_u64().expect("an id"))
        .collect()
}

#[tokio::test]
async fn reads_every_page_by_link_header_fake_shopify() {
    let fake = FakeShopify::start(Options::unlimited()).await;
    let added = fake.add("orders", 601);
    let shop = connect(&fake, json!({}));
    let (records, pages) = read_all(&shop, "orders", None).await;
    assert_eq!(pages, 3, "250 + 250 + 101");
    // Closed orders too: Shopify answers open ones only unless asked for status=any.
    assert_eq!(ids(&records), added);
    let stamps: Vec<&str> = records
        .iter()
        .map(|r| r["updated_at"].as_str().unwrap())
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "ascending updated_at"
    );
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn reads_incrementally_since_a_cursor_inclusive_fake_shopify() {
    let fake = FakeShopify::start(Options::unlimited()).await;
    let first = fake.add("customers", 10);
    let shop = connect(&fake, json!({"page_size": 3}));
    let (records, _) = read_all(&shop, "customers", None).await;
    let cursor = records.last().unwrap()["updated_at"].clone();
    // The last two were added in the same second: both sit at the cursor.
    assert_eq!(records[8]["updated_at"], cursor);
    let edited = fake.update("customers", first[2]).unwrap();
    let added = fake.add("customers", 3);
    let (since, pages) = read_all(&shop, "customers", Some(&cursor)).await;
    let mut expected = vec![first[8], first[9], first[2]];
    expected.extend(&added);
    assert_eq!(
        ids(&since),
        expected,
        "at the cursor, then each change in order"
    );
    assert_eq!(pages, 2);
    assert_eq!(since[2], edited);
    // A cursor past everything (Airbyte's "future state") reads nothing, and is no error.
    let future = json!("2099-01-01T00:00:00+00:00");
    assert!(
        read_all(&shop, "customers", Some(&future))
            .await
            .0
            .is_empty()
    );
    for abnormal in [json!(5), json!("yesterday"), json!({"not": "a cursor"})] {
        let from = ReadFrom {
            since: Some(&abnormal),
            page: None,
        };
        let err = shop.read("customers", from).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::ParamsUnprocessable, "{abnormal}");
    }
}

#[tokio::test]
async fn a_429_is_replayed_after_its_retry_after_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    fake.add("products", 5);
    let shop = connect(&fake, json!({}));
    fake.throttle_next(1);
    let (records, _) = read_all(&shop, "products", None).await;
    assert_eq!(records.len(), 5);
    assert_eq!(fake.calls(), 2, "the 429, then the same page again");
}

#[tokio::test]
async fn a_refused_token_is_upstream_credentials_invalid_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let shop = connect(&fake, json!({}));
    shop.check().await.expect("the token works");
    fake.set_access_token("shpat_rotated");
    let err = shop.check().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamCredentialsInvalid);
    assert!(
        !err.detail.contains("shpat_"),
        "no token in errors: {}",
        err.detail
    );
    let err = shop.read("orders", ReadFrom::default()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamCredentialsInvalid);
}

fn inbound_of(hook: &switchyard_integration_fakes::shopify::Webhook) -> BTreeMap<String, String> {
    hook.headers.clone()
}

#[tokio::test]
async fn webhook_signatures_good_bad_and_tampered_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let id = fake.add("orders", 1)[0];
    let order = fake.record("orders", id).unwrap();
    let shop = connect(&fake, json!({}));

    let hook = fake.webhook("orders/create", &order);
    let headers = inbound_of(&hook);
    let received = shop
        .receive(Inbound {
            headers: &headers,
            body: &hook.body,
        })
        .expect("a genuine delivery");
    assert_eq!(received.stream, "orders");
    assert_eq!(received.records, vec![order.clone()]);
    assert_eq!(received.delivery_id, headers["x-shopify-webhook-id"]);

    let mut tampered = hook.body.clone();
    let at = tampered.iter().position(|b| b.is_ascii_digit()).unwrap();
    tampered[at] = if tampered[at] == b'9' {
        b'1'
    } else {
        tampered[at] + 1
    };
    let err = shop
        .receive(Inbound {
            headers: &headers,
            body: &tampered,
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SignatureInvalid);

    let mut forged = headers.clone();
    forged.insert(
        "x-shopify-hmac-sha256".into(),
        sign("another-app", &hook.body),
    );
    let err = shop
        .receive(Inbound {
            headers: &forged,
            body: &hook.body,
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SignatureInvalid);

    let mut unsigned = headers.clone();
    unsigned.remove("x-shopify-hmac-sha256");
    let err = shop
        .receive(Inbound {
            headers: &unsigned,
            body: &hook.body,
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SignatureInvalid);

    // Without a webhook secret nothing verifies.
    let blind = connect(&fake, json!({"webhook_secret": null}));
    let err = blind
        .receive(Inbound {
            headers: &headers,
            body: &hook.body,
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SignatureInvalid);
}

#[tokio::test]
async fn delete_topics_carry_the_deleted_key_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let order = fake.add("orders", 1)[0];
    let level = fake.add("inventory_levels", 1)[0];
    let shop = connect(&fake, json!({}));
    let receive = |topic: &str, body: Value| {
        let hook = fake.webhook(topic, &body);
        shop.receive(Inbound {
            headers: &hook.headers,
            body: &hook.body,
        })
    };
    let received = receive("orders/delete", json!({"id": order})).unwrap();
    assert_eq!(
        (received.stream.as_str(), received.deleted),
        ("orders", vec![order.to_string()])
    );

    let record = fake.record("inventory_levels", level).unwrap();
    let body = json!({
        "inventory_item_id": record["inventory_item_id"],
        "location_id": record["location_id"],
    });
    let received = receive("inventory_levels/disconnect", body).unwrap();
    assert_eq!(
        received.deleted,
        vec![record["admin_graphql_api_id"].as_str().unwrap().to_owned()]
    );

    let err = receive("app/uninstalled", json!({"id": 1})).unwrap_err();
    assert_eq!(err.code, ErrorCode::ParamsUnprocessable);
}

#[tokio::test]
async fn upsert_customers_by_email_is_idempotent_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let existing = fake.add("customers", 1)[0];
    let email = fake.record("customers", existing).unwrap()["email"].clone();
    let shop = connect(&fake, json!({}));
    let records = [
        json!({"email": email, "first_name": "Ada", "tags": "vip"}),
        json!({"email": "new.buyer@example.com", "first_name": "Grace", "id": 1}),
    ];
    let first = shop
        .upsert("customers", "email", &records)
        .await
        .expect("upserted");
    assert_eq!(first[0].id, existing.to_string());
    assert!(!first[0].created);
    assert!(first[1].created);
    let after_first: Vec<Value> = fake
        .ids("customers")
        .into_iter()
        .map(|id| fake.record("customers", id).unwrap())
        .collect();
    assert_eq!(after_first.len(), 2);
    assert_eq!(after_first[0]["first_name"], "Ada");
    assert_ne!(
        after_first[1]["id"], 1,
        "the system's own id, not the record's"
    );

    let second = shop
        .upsert("customers", "email", &records)
        .await
        .expect("upserted");
    assert_eq!(
        second
            .iter()
            .map(|u| (&u.id, u.created))
            .collect::<Vec<_>>(),
        first.iter().map(|u| (&u.id, false)).collect::<Vec<_>>()
    );
    let after_second: Vec<Value> = fake
        .ids("customers")
        .into_iter()
        .map(|id| fake.record("customers", id).unwrap())
        .collect();
    assert_eq!(
        after_second, after_first,
        "the second upsert changed nothing"
    );

    let err = shop
        .upsert("customers", "phone", &records)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ParamsUnprocessable);
    let err = shop
        .upsert("customers", "email", &[json!({"first_name": "No Email"})])
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ParamsUnprocessable);
    let err = shop.upsert("orders", "email", &records).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ParamsUnprocessable);
}

#[tokio::test]
async fn deleted_products_come_from_the_events_feed_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let products = fake.add("products", 3);
    let cursor = json!(fake.now());
    fake.delete("products", products[1]);
    let shop = connect(&fake, json!({}));
    let page = shop
        .read_deleted(
            "products",
            ReadFrom {
                since: Some(&cursor),
                page: None,
            },
        )
        .await
        .expect("the feed");
    assert_eq!(page.deleted, vec![products[1].to_string()]);
    let err = shop
        .read_deleted("orders", ReadFrom::default())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ParamsUnprocessable);
}

#[tokio::test]
async fn inventory_levels_are_read_at_every_location_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    fake.add("inventory_levels", 4);
    let shop = connect(&fake, json!({}));
    let (records, _) = read_all(&shop, "inventory_levels", None).await;
    assert_eq!(records.len(), 4);
    let streams = shop.discover().await.unwrap();
    let names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["orders", "products", "customers", "inventory_levels"]
    );
    assert_eq!(streams[3].primary_key, "admin_graphql_api_id");
    assert!(
        records
            .iter()
            .all(|r| r["admin_graphql_api_id"].is_string())
    );
}

#[tokio::test]
async fn a_page_token_off_the_shop_is_refused_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let shop = connect(&fake, json!({}));
    for token in [
        "http://169.254.169.254/admin/api/2025-01/orders.json",
        "not a url",
    ] {
        let from = ReadFrom {
            since: None,
            page: Some(token),
        };
        let err = shop.read("orders", from).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::ParamsUnprocessable);
    }
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn shop_url_is_an_origin_within_the_egress_ceiling_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let with_path = config(
        &fake,
        json!({"shop_url": format!("{}/admin", fake.base_url())}),
    );
    let err = Shopify::connect(with_path, link(loopback())).err().unwrap();
    assert_eq!(err.code, ErrorCode::ConfigUnprocessable);
    // The default ceiling opens no loopback: the fake is out of reach.
    let err = Shopify::connect(config(&fake, json!({})), link(EgressCeiling::default()))
        .err()
        .unwrap();
    assert_eq!(err.code, ErrorCode::EgressForbidden);
}

#[tokio::test]
async fn the_call_limit_header_keeps_reads_under_the_bucket_fake_shopify() {
    // A bucket of 10 leaking 2 a second, read 15 pages in a row: the limiter reads
    // X-Shopify-Shop-Api-Call-Limit and spaces the calls near the top, so none is a 429.
    let fake = FakeShopify::start(Options {
        bucket_size: 10,
        ..Options::default()
    })
    .await;
    fake.add("products", 15);
    let shop = connect(&fake, json!({"page_size": 1}));
    let (records, pages) = read_all(&shop, "products", None).await;
    assert_eq!((records.len(), pages), (15, 15));
    assert_eq!(fake.throttled(), 0, "no call ran into the full bucket");
}
