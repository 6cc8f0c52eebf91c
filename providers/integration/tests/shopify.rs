//! integration/shopify as the runtime hosts it (`builtins`, params and results checked against
//! the contract's schemas), against the fake Shopify Admin API on loopback: no real shop is
//! reachable here. The connector's own paging, cursors, 429s and signatures are tested beside
//! it (`src/shopify/tests.rs`); syncs into destinations by the sync suite and the e2e tests.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_integration_fakes::shopify::{FakeShopify, Options};
use switchyard_provider_integration::builtins;
use switchyard_spi::tenancy::{EgressCeiling, Tenancy};
use switchyard_spi::testkit::{Harness, TenantInstance};
use switchyard_spi::{ErrorCode, Host, ProviderFactory};

/// The engine as `switchyard` lists it, under an operator ceiling that opens loopback (where
/// the fake listens) and keeps its stores under `data`.
fn engine(data: &Path) -> Arc<dyn ProviderFactory> {
    let tenancy = Tenancy {
        egress: EgressCeiling {
            allowed_networks: vec!["127.0.0.0/8".parse().expect("a network")],
            allowed_ports: Vec::new(),
        },
        ..Tenancy::default()
    };
    let host = Host {
        data,
        books: data,
        tenancy: &tenancy,
    };
    builtins(&host)
        .expect("the integration engines")
        .into_iter()
        .find(|f| f.descriptor().name == "shopify")
        .expect("integration/shopify is a builtin")
}

/// The tenant's config as the factory gets it: secrets already resolved.
fn config(fake: &FakeShopify) -> Value {
    let options = fake.options();
    json!({
        "shop_url": fake.base_url(),
        "access_token": options.access_token,
        "webhook_secret": options.webhook_secret,
        "page_size": 100,
    })
}

async fn tenant(harness: &Harness, fake: &FakeShopify) -> TenantInstance {
    harness.tenant_with_config("acme", config(fake)).await
}

#[tokio::test]
async fn discover_and_check_through_the_engine_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let data = tempfile::tempdir().expect("a temp dir");
    let harness = Harness::new(engine(data.path()));
    let acme = tenant(&harness, &fake).await;

    let discovered = acme.ok("discover", json!({})).await;
    let streams: Vec<(&str, &str, &str)> = discovered["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["primary_key"].as_str().unwrap(),
                s["deletes"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        streams,
        [
            ("orders", "id", "full_refresh"),
            ("products", "id", "feed"),
            ("customers", "id", "full_refresh"),
            ("inventory_levels", "admin_graphql_api_id", "full_refresh"),
        ]
    );
    assert_eq!(acme.ok("check", json!({})).await["ok"], true);
    assert_eq!(
        fake.calls(),
        1,
        "discover calls nothing, check GETs shop.json"
    );

    fake.set_access_token("shpat_rotated");
    let err = acme.call("check", json!({})).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamCredentialsInvalid);
    assert!(!err.detail.contains(&fake.options().access_token));
}

#[tokio::test]
async fn upsert_through_the_engine_is_idempotent_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let data = tempfile::tempdir().expect("a temp dir");
    let harness = Harness::new(engine(data.path()));
    let acme = tenant(&harness, &fake).await;
    let params = json!({
        "stream": "customers",
        "external_id_field": "email",
        "records": [
            {"email": "ada@example.com", "first_name": "Ada"},
            {"email": "grace@example.com", "first_name": "Grace"},
        ],
    });
    let first = acme.ok("upsert", params.clone()).await;
    let second = acme.ok("upsert", params).await;
    let created = |answer: &Value| -> Vec<(String, bool)> {
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_owned(), r["created"] == true))
            .collect()
    };
    let (first, second) = (created(&first), created(&second));
    assert!(first.iter().all(|(_, created)| *created));
    assert_eq!(
        second,
        first
            .iter()
            .map(|(id, _)| (id.clone(), false))
            .collect::<Vec<_>>()
    );
    assert_eq!(fake.len("customers"), 2);
}

#[tokio::test]
async fn a_forged_webhook_is_signature_invalid_through_the_engine_fake_shopify() {
    let fake = FakeShopify::start(Options::default()).await;
    let data = tempfile::tempdir().expect("a temp dir");
    let harness = Harness::new(engine(data.path()));
    let acme = tenant(&harness, &fake).await;
    let id = fake.add("orders", 1)[0];
    let hook = fake.webhook("orders/create", &fake.record("orders", id).unwrap());
    let mut tampered = hook.body.clone();
    tampered.extend_from_slice(b" ");
    let err = acme
        .call_with_payload(
            "receive",
            json!({"headers": hook.headers}),
            Some(tampered.into()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SignatureInvalid);
}
