//! integration/salesforce certified against the fake Salesforce org (no real org is reachable
//! here): a fake org per subject, its Accounts the stream under test and the upsert target
//! (by the custom external id field `External_Id__c`), its expiring access tokens behind
//! `source:tokens`. Salesforce answers no 429 (its limit is a daily allowance, 403
//! `REQUEST_LIMIT_EXCEEDED`), so `source:throttle` is not provided; a query page holds up to
//! 2,000 records, so the few dozen a check seeds fit in one.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_client::ProviderClient;
use switchyard_conformance::integration::acceptance::Source;
use switchyard_integration_fakes::salesforce::{FakeSalesforce, Options};
use switchyard_spi::TenantId;

use super::destination::{Destination, PROVIDER};

const STREAM: &str = "Account";
const EXTERNAL_ID: &str = "External_Id__c";

pub struct Org {
    pub fake: FakeSalesforce,
    options: Options,
    destination: Arc<Destination>,
}

impl Org {
    pub async fn start() -> Org {
        let options = Options::default();
        Org {
            fake: FakeSalesforce::start(options.clone())
                .await
                .expect("the fake Salesforce org starts"),
            options,
            destination: Destination::new(),
        }
    }

    fn connection(&self, client_secret: &str) -> Value {
        json!({
            "login_url": self.fake.url(),
            "client_id": self.options.client_id,
            "client_secret": client_secret,
            "refresh_token": self.options.refresh_token,
            "allowed_networks": ["127.0.0.0/8"],
        })
    }
}

#[async_trait]
impl Source for Org {
    fn stream(&self) -> &str {
        STREAM
    }

    fn config(&self, mapping: Value) -> Value {
        let mut config = self.connection(&self.options.client_secret);
        config["streams"] = json!({STREAM: {"mapping": mapping}});
        config
    }

    fn refused_config(&self) -> Value {
        self.connection("a-secret-the-fake-org-refuses")
    }

    fn mapping(&self) -> Value {
        json!({"key": ".Id", "name": ".Name", "industry": ".Industry", "updated": ".SystemModstamp"})
    }

    fn client(&self, tenant: &TenantId) -> Arc<dyn ProviderClient> {
        self.destination.client(tenant)
    }

    fn destination(&self, table: &str) -> Value {
        json!({"db": {"provider": PROVIDER, "table": table}})
    }

    async fn create(&self, n: usize) -> Vec<String> {
        self.fake.add(STREAM, n)
    }

    async fn update(&self, key: &str) {
        self.fake
            .update(STREAM, key, json!({"Industry": "Energy"}))
            .expect("the account exists");
    }

    async fn delete(&self, key: &str) {
        self.fake.delete(STREAM, key).expect("the account exists");
    }

    fn calls(&self) -> u64 {
        self.fake.calls()
    }

    async fn expire_tokens(&self) {
        self.fake.expire_tokens();
    }

    fn tokens_issued(&self) -> u64 {
        self.fake.tokens_issued()
    }

    fn upsert_target(&self) -> Option<(String, String)> {
        Some((STREAM.into(), EXTERNAL_ID.into()))
    }

    fn upsert_record(&self, external_id: &str, version: u32) -> Value {
        json!({EXTERNAL_ID: external_id, "Name": format!("v{version}")})
    }

    async fn versions_held(&self, external_id: &str) -> Vec<u32> {
        self.fake
            .records(STREAM)
            .iter()
            .filter(|r| r[EXTERNAL_ID] == external_id)
            .filter_map(|r| r["Name"].as_str()?.strip_prefix('v')?.parse().ok())
            .collect()
    }
}
