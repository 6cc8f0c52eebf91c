//! The fake against its documented behaviour, through a real HTTP client.

use serde_json::Value;

use super::*;

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn of(shop: &FakeShopify) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: shop.base_url(),
            token: shop.options().access_token,
        }
    }

    async fn get(&self, url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}/admin/api/2025-01/{url}", self.base)
        };
        let response = self
            .http
            .get(url)
            .header("x-shopify-access-token", &self.token)
            .send()
            .await
            .expect("the fake answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.expect("JSON"))
    }
}

fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(", ").find_map(|part| {
        let (url, rel) = part.split_once("; ")?;
        (rel == "rel=\"next\"").then(|| url.trim_matches(['<', '>']).to_owned())
    })
}

#[tokio::test]
async fn link_pages_cover_every_record_once_in_updated_at_order() {
    let shop = FakeShopify::start(Options::unlimited()).await;
    let ids = shop.add("products", 601);
    let client = Client::of(&shop);
    let mut url = Some("products.json?limit=250&order=updated_at%20asc".to_owned());
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(next) = url {
        let (status, headers, body) = client.get(&next).await;
        assert_eq!(status, 200);
        seen.extend(
            body["products"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_u64().unwrap()),
        );
        url = next_link(&headers);
        pages += 1;
        if pages > 1 {
            assert!(
                headers["link"]
                    .to_str()
                    .unwrap()
                    .contains("rel=\"previous\"")
            );
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen, ids,
        "ascending updated_at, ties by id: the order added"
    );
}

#[tokio::test]
async fn page_info_refuses_filters_and_keeps_the_first_requests() {
    let shop = FakeShopify::start(Options::unlimited()).await;
    shop.add("customers", 10);
    let since = shop.now();
    shop.add("customers", 5);
    let client = Client::of(&shop);
    let first = format!("customers.json?limit=3&updated_at_min={since}");
    let (_, headers, body) = client.get(&first.replace('+', "%2B")).await;
    // The two records added at `since` and the five after it: inclusive.
    assert_eq!(body["customers"].as_array().unwrap().len(), 3);
    let next = next_link(&headers).unwrap();
    let (status, _, body) = client
        .get(&format!("{next}&updated_at_min=2020-01-01T00:00:00Z"))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"]["updated_at_min"]
            .as_str()
            .unwrap()
            .contains("cannot be passed when page_info is present")
    );
    let (_, headers, body) = client.get(&next).await;
    assert_eq!(body["customers"].as_array().unwrap().len(), 3);
    let (_, _, body) = client.get(&next_link(&headers).unwrap()).await;
    assert_eq!(body["customers"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_the_bucket_answers_429_with_retry_after() {
    let shop = FakeShopify::start(Options::default()).await;
    let mut client = Client::of(&shop);
    let (status, headers, _) = client.get("shop.json").await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-shopify-shop-api-call-limit"], "1/40");
    shop.throttle_next(1);
    let (status, headers, body) = client.get("shop.json").await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "2.0");
    assert!(body["errors"].as_str().unwrap().starts_with("Exceeded"));
    assert_eq!(shop.throttled(), 1);
    shop.set_bucket(3, 0.0);
    for _ in 0..3 {
        assert_eq!(client.get("shop.json").await.0, 200);
    }
    assert_eq!(client.get("shop.json").await.0, 429);
    client.token = "shpat_wrong".into();
    let (status, _, body) = client.get("shop.json").await;
    assert_eq!(status, 401);
    assert!(
        body["errors"]
            .as_str()
            .unwrap()
            .contains("Invalid API key or access token")
    );
    assert_eq!(shop.calls(), 7);
}

#[tokio::test]
async fn open_orders_by_default_deleted_products_as_events() {
    let shop = FakeShopify::start(Options::unlimited()).await;
    shop.add("orders", 10);
    let products = shop.add("products", 2);
    shop.delete("products", products[0]);
    let client = Client::of(&shop);
    let (_, _, body) = client.get("orders/count.json").await;
    assert_eq!(body["count"], 8, "every fifth generated order is closed");
    let (_, _, body) = client.get("orders/count.json?status=any").await;
    assert_eq!(body["count"], 10);
    let (_, _, body) = client.get("events.json?filter=Product&verb=destroy").await;
    assert_eq!(body["events"][0]["subject_id"], products[0]);
    let (status, _, _) = client.get("inventory_levels.json").await;
    assert_eq!(status, 422, "a location or an item is required");
}

#[tokio::test]
async fn webhooks_are_signed_over_the_raw_body() {
    let shop = FakeShopify::start(Options::default()).await;
    let id = shop.add("orders", 1)[0];
    let hook = shop.webhook("orders/create", &shop.record("orders", id).unwrap());
    assert_eq!(hook.headers["x-shopify-topic"], "orders/create");
    // The documented example's construction, independently: base64(HMAC-SHA256(secret, body)).
    let mut mac = Hmac::<Sha256>::new_from_slice(b"fake-app-client-secret").unwrap();
    mac.update(&hook.body);
    assert_eq!(
        hook.headers["x-shopify-hmac-sha256"],
        STANDARD.encode(mac.finalize().into_bytes())
    );
    let again = shop.webhook("orders/create", &shop.record("orders", id).unwrap());
    assert_ne!(
        hook.headers["x-shopify-webhook-id"],
        again.headers["x-shopify-webhook-id"]
    );
}
