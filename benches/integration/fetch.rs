//! Bench B's baseline: the pages a sync reads, fetched bare — reqwest in a loop following
//! Shopify's `Link: <…>; rel="next"`, each body parsed as JSON — from the same fake shop, so
//! the sync's records/s is read as a share of what the source can give at all.

use std::time::Instant;

use serde_json::{Value, json};

/// Shopify's Admin API version the bench asks for (the fake serves any).
pub const API_VERSION: &str = "2025-01";

pub struct Fetched {
    pub records: u64,
    pub pages: u64,
    pub secs: f64,
}

impl Fetched {
    pub fn per_sec(&self) -> f64 {
        self.records as f64 / self.secs
    }

    pub fn to_json(&self) -> Value {
        json!({"records": self.records, "pages": self.pages, "secs": self.secs,
               "per_sec": self.per_sec()})
    }
}

/// The `rel="next"` target of a `Link` header, if any.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// Every order of the shop, 250 a page, oldest change first, as an incremental sync from the
/// start reads them.
pub async fn orders(base_url: &str, access_token: &str) -> Fetched {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut url = format!(
        "{base_url}/admin/api/{API_VERSION}/orders.json?limit=250&status=any&order=updated_at%20asc&updated_at_min=2000-01-01T00:00:00Z"
    );
    let (mut records, mut pages) = (0u64, 0u64);
    loop {
        let response = client
            .get(&url)
            .header("X-Shopify-Access-Token", access_token)
            .send()
            .await
            .expect("the fake shop answers");
        assert!(
            response.status().is_success(),
            "the fake shop answered {}",
            response.status()
        );
        let next = next_link(response.headers());
        let body: Value = response.json().await.expect("a JSON page");
        records += body["orders"].as_array().map_or(0, Vec::len) as u64;
        pages += 1;
        match next {
            Some(link) => url = link,
            None => break,
        }
    }
    Fetched {
        records,
        pages,
        secs: started.elapsed().as_secs_f64(),
    }
}
