//! integration/shopify certified against the fake Shopify Admin API (no real shop is
//! reachable here): a fake shop per subject, its orders the stream under test, its customers
//! the upsert target. Shopify's offline access tokens do not expire, so the token check is
//! not provided.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_conformance::integration::acceptance::Source;
use switchyard_integration_fakes::shopify::{FakeShopify, Options};
use switchyard_spi::TenantId;

use super::destination::{Destination, PROVIDER};

pub struct Shop {
    pub fake: FakeShopify,
    destination: Arc<Destination>,
}

impl Shop {
    pub async fn start() -> Shop {
        Shop {
            fake: FakeShopify::start(Options::default()).await,
            destination: Destination::new(),
        }
    }

    fn connection(&self, access_token: &str) -> Value {
        let options = self.fake.options();
        json!({
            "shop_url": self.fake.base_url(),
            "access_token": access_token,
            "webhook_secret": options.webhook_secret,
            "page_size": 10,
            "allowed_networks": ["127.0.0.0/8"],
        })
    }
}

fn id(key: &str) -> u64 {
    key.parse().expect("a Shopify id")
}

#[async_trait]
impl Source for Shop {
    fn stream(&self) -> &str {
        "orders"
    }

    fn config(&self, mapping: Value) -> Value {
        let mut config = self.connection(&self.fake.options().access_token);
        config["streams"] = json!({"orders": {"mapping": mapping}});
        config
    }

    fn refused_config(&self) -> Value {
        self.connection("shpat_refused_by_the_fake_shop_000")
    }

    fn mapping(&self) -> Value {
        json!({"key": ".id", "name": ".name", "total": ".total_price", "updated": ".updated_at"})
    }

    fn client(&self, tenant: &TenantId) -> Arc<dyn ProviderClient> {
        self.destination.client(tenant)
    }

    fn destination(&self, table: &str) -> Value {
        json!({"db": {"provider": PROVIDER, "table": table}})
    }

    async fn create(&self, n: usize) -> Vec<String> {
        self.fake
            .add("orders", n)
            .into_iter()
            .map(|id| id.to_string())
            .collect()
    }

    async fn update(&self, key: &str) {
        self.fake
            .update("orders", id(key))
            .expect("the order exists");
    }

    async fn delete(&self, key: &str) {
        self.fake
            .delete("orders", id(key))
            .expect("the order exists");
    }

    fn calls(&self) -> u64 {
        self.fake.calls()
    }

    async fn throttle(&self, n: usize) {
        self.fake.throttle_next(n as u32);
    }

    fn throttled(&self) -> u64 {
        self.fake.throttled()
    }

    fn upsert_target(&self) -> Option<(String, String)> {
        Some(("customers".into(), "email".into()))
    }

    fn upsert_record(&self, external_id: &str, version: u32) -> Value {
        json!({"email": format!("{external_id}@example.com"), "first_name": format!("v{version}"), "last_name": "Acceptance"})
    }

    async fn versions_held(&self, external_id: &str) -> Vec<u32> {
        self.fake
            .customers_with_email(&format!("{external_id}@example.com"))
            .iter()
            .filter_map(|c| c["first_name"].as_str()?.strip_prefix('v')?.parse().ok())
            .collect()
    }
}
