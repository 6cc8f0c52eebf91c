//! A fake Shopify Admin REST API on 127.0.0.1, following shopify.dev's documentation:
//!
//! - `GET /admin/api/{version}/{orders,products,customers,inventory_levels}.json` with `limit`
//!   (default 50, at most 250), `updated_at_min`/`updated_at_max`, `since_id`, `ids`, `order`
//!   (`updated_at asc`, `id desc`, …; default `id asc`), orders' `status` (`open` by default,
//!   `closed`, `cancelled`, `any`), inventory levels' `location_ids`/`inventory_item_ids`
//!   (one of them required); cursor pagination by `page_info` in `Link: <…>; rel="previous",
//!   <…>; rel="next"`, a keyset cursor that carries the first request's filters and order, so a
//!   request with `page_info` may carry nothing but `limit` and `fields` (else 400);
//!   `{stream}/count.json`; `events.json` (`filter=Product&verb=destroy`, `created_at_min`);
//!   `locations.json`; `shop.json`; customers' `search.json?query=email:…`, create (`POST`,
//!   422 on a taken email), update (`PUT`) and delete.
//! - `X-Shopify-Access-Token` on every call, else 401 `{"errors":"[API] Invalid API key or
//!   access token (unrecognized login or wrong password)"}`.
//! - A leaky bucket per shop (40 calls, leaking 2 a second, both knobs), shown on every
//!   authenticated answer as `X-Shopify-Shop-Api-Call-Limit: n/40`; a full bucket answers 429
//!   with `Retry-After: 2.0`. [`FakeShopify::throttle_next`] forces 429s.
//! - Webhooks as Shopify sends them: the topic, `X-Shopify-Hmac-Sha256` = base64 of
//!   HMAC-SHA256 of the raw body keyed with the app's secret, `X-Shopify-Webhook-Id`.
//!
//! The shop's clock is logical (it starts at 2026-01-01T00:00:00Z and moves only when records
//! are added or changed, or [`FakeShopify::advance`] moves it), so incremental reads are
//! deterministic. Records added together share a timestamp two by two, so a connector that
//! resumes *after* its cursor instead of *at* it loses records here.

mod server;
mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use store::{LOCATIONS, STREAMS, timestamp};
use store::{Table, generate, touch};

/// 2026-01-01T00:00:00Z, where the shop's clock starts.
const EPOCH: i64 = 1_767_225_600;

/// How the fake shop is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Admin API access token calls must carry (`shpat_…`).
    pub access_token: String,
    /// The app's client secret, which signs webhooks.
    pub webhook_secret: String,
    /// The leaky bucket's size (Shopify: 40; Plus shops 80).
    pub bucket_size: u32,
    /// Calls the bucket leaks a second (Shopify: 2; Plus shops 4).
    pub leak_per_second: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            access_token: "shpat_fake_0123456789abcdef".into(),
            webhook_secret: "fake-app-client-secret".into(),
            bucket_size: 40,
            leak_per_second: 2.0,
        }
    }
}

impl Options {
    /// A bucket no test fills: for benchmarks and large syncs that are not about limits.
    pub fn unlimited() -> Self {
        Options {
            bucket_size: u32::MAX,
            leak_per_second: 1e9,
            ..Options::default()
        }
    }
}

/// The shop's state, shared by the server's connections and the test's knobs.
pub(crate) struct Shop {
    pub(crate) options: Options,
    /// Unix seconds; see the module docs.
    clock: i64,
    /// Records added since the clock last moved (the clock moves every second record).
    added_at_clock: u32,
    next_id: u64,
    pub(crate) tables: BTreeMap<&'static str, Table>,
    /// Every request received, whatever it was answered.
    pub(crate) calls: u64,
    pub(crate) bucket: Bucket,
    /// Calls still to answer 429 whatever the bucket holds.
    pub(crate) throttle_next: u32,
    /// 429s answered.
    pub(crate) throttled: u64,
    webhooks_sent: u64,
}

/// The leaky bucket: its level leaks continuously, each call adds one.
pub(crate) struct Bucket {
    pub(crate) level: f64,
    pub(crate) at: Instant,
}

impl Shop {
    fn new(options: Options) -> Self {
        let mut tables = BTreeMap::new();
        for stream in STREAMS {
            tables.insert(stream, Table::new("updated_at"));
        }
        tables.insert("events", Table::new("created_at"));
        Shop {
            options,
            clock: EPOCH,
            added_at_clock: 0,
            next_id: 5_000_000_001,
            tables,
            calls: 0,
            bucket: Bucket {
                level: 0.0,
                at: Instant::now(),
            },
            throttle_next: 0,
            throttled: 0,
            webhooks_sent: 0,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The time of the next write: the clock moves one second every second record, and
    /// always before an edit (an edit is never at the time of the write before it).
    fn stamp(&mut self, edit: bool) -> i64 {
        if edit || self.added_at_clock == 2 {
            self.clock += 1;
            self.added_at_clock = 0;
        }
        if !edit {
            self.added_at_clock += 1;
        }
        self.clock
    }

    pub(crate) fn table(&mut self, stream: &str) -> &mut Table {
        self.tables
            .get_mut(stream)
            .unwrap_or_else(|| panic!("the fake Shopify has no stream {stream:?}"))
    }

    pub(crate) fn add(&mut self, stream: &str, count: usize) -> Vec<u64> {
        (0..count)
            .map(|_| {
                let id = self.id();
                let now = self.stamp(false);
                let body = generate(stream, id, now);
                self.table(stream).put(id, now, body);
                id
            })
            .collect()
    }

    /// Stores `body` as a new customer (the API's create).
    pub(crate) fn create_customer(&mut self, mut body: Value) -> Value {
        let id = self.id();
        let now = self.stamp(true);
        let mut record = generate("customers", id, now);
        if let (Some(record), Some(fields)) = (record.as_object_mut(), body.as_object_mut()) {
            for (field, value) in std::mem::take(fields) {
                if !matches!(field.as_str(), "id" | "created_at" | "updated_at") {
                    record.insert(field, value);
                }
            }
        }
        self.table("customers").put(id, now, record.clone());
        record
    }

    /// Applies `fields` to customer `id` (the API's update); `None` when it does not exist.
    pub(crate) fn update_customer(&mut self, id: u64, fields: &Value) -> Option<Value> {
        let mut record = self.table("customers").get(id)?.clone();
        let changed = fields.as_object().is_some_and(|fields| {
            fields.iter().any(|(field, value)| {
                !matches!(field.as_str(), "id" | "created_at" | "updated_at")
                    && record.get(field) != Some(value)
            })
        });
        if !changed {
            return Some(record);
        }
        let now = self.stamp(true);
        for (field, value) in fields.as_object().into_iter().flatten() {
            if !matches!(field.as_str(), "id" | "created_at" | "updated_at") {
                record[field] = value.clone();
            }
        }
        record["updated_at"] = json!(timestamp(now));
        self.table("customers").put(id, now, record.clone());
        Some(record)
    }

    pub(crate) fn delete(&mut self, stream: &str, id: u64) -> Option<Value> {
        let removed = self.table(stream).remove(id)?;
        if stream == "products" {
            // Shopify records a product's deletion as an event (`verb=destroy`).
            let event = self.id();
            let now = self.stamp(true);
            let body = json!({
                "id": event,
                "subject_id": id,
                "subject_type": "Product",
                "verb": "destroy",
                "arguments": [removed["title"]],
                "body": null,
                "message": format!("Product {} was deleted.", removed["title"]),
                "author": "Shopify",
                "description": format!("Product {} was deleted.", removed["title"]),
                "path": format!("/admin/products/{id}"),
                "created_at": timestamp(now)
            });
            self.table("events").put(event, now, body);
        }
        Some(removed)
    }
}

/// A fake shop, serving until dropped.
pub struct FakeShopify {
    addr: SocketAddr,
    shop: Arc<Mutex<Shop>>,
    server: JoinHandle<()>,
}

impl Drop for FakeShopify {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One signed webhook delivery, as Shopify would POST it.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Header names lower-cased (`x-shopify-topic`, `x-shopify-hmac-sha256`, …).
    pub headers: BTreeMap<String, String>,
    /// The raw body the signature covers.
    pub body: Vec<u8>,
}

impl Webhook {
    /// POSTs the delivery to `url`; answers the receiver's status.
    pub async fn deliver(&self, url: &str) -> Result<u16, reqwest::Error> {
        let client = reqwest::Client::new();
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(self.body.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        Ok(request.send().await?.status().as_u16())
    }
}

/// Shopify's webhook signature: base64 of HMAC-SHA256 of the raw body keyed with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

impl FakeShopify {
    /// A shop with no records, serving on a fresh loopback port.
    pub async fn start(options: Options) -> FakeShopify {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Shopify");
        let addr = listener.local_addr().expect("local addr");
        let shop = Arc::new(Mutex::new(Shop::new(options)));
        let server = tokio::spawn(server::serve(listener, shop.clone()));
        FakeShopify { addr, shop, server }
    }

    fn shop(&self) -> MutexGuard<'_, Shop> {
        self.shop.lock().expect("the fake shop's lock")
    }

    /// `http://127.0.0.1:<port>`, the shop's base URL (Shopify's `https://{shop}.myshopify.com`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn options(&self) -> Options {
        self.shop().options.clone()
    }

    /// Adds `count` generated records to `stream` (one of [`STREAMS`]); answers their ids.
    /// Fast enough for 100,000 records in well under a second.
    pub fn add(&self, stream: &str, count: usize) -> Vec<u64> {
        self.shop().add(stream, count)
    }

    /// Edits record `id` of `stream` as the admin would: one field and `updated_at` change.
    /// Answers the new record; `None` when there is no such record.
    pub fn update(&self, stream: &str, id: u64) -> Option<Value> {
        let mut shop = self.shop();
        let now = shop.stamp(true);
        let table = shop.table(stream);
        let mut body = table.get(id)?.clone();
        touch(stream, &mut body, now);
        table.put(id, now, body.clone());
        Some(body)
    }

    /// Deletes record `id` of `stream` (a product's deletion is also an event); answers the
    /// record it was.
    pub fn delete(&self, stream: &str, id: u64) -> Option<Value> {
        self.shop().delete(stream, id)
    }

    pub fn record(&self, stream: &str, id: u64) -> Option<Value> {
        self.shop().table(stream).get(id).cloned()
    }

    /// The ids of `stream`'s records, ascending.
    pub fn ids(&self, stream: &str) -> Vec<u64> {
        self.shop().table(stream).ids()
    }

    pub fn len(&self, stream: &str) -> usize {
        self.shop().table(stream).len()
    }

    /// The customers with this email (case-insensitively): one at most, unless a connector
    /// managed to create a duplicate that Shopify itself would have refused.
    pub fn customers_with_email(&self, email: &str) -> Vec<Value> {
        let mut shop = self.shop();
        let table = shop.table("customers");
        table
            .ids()
            .into_iter()
            .filter_map(|id| table.get(id))
            .filter(|c| {
                c["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .cloned()
            .collect()
    }

    /// Every request the fake received, whatever it answered.
    pub fn calls(&self) -> u64 {
        self.shop().calls
    }

    /// The 429s the fake answered.
    pub fn throttled(&self) -> u64 {
        self.shop().throttled
    }

    /// The shop's clock now, as Shopify writes timestamps.
    pub fn now(&self) -> String {
        timestamp(self.shop().clock)
    }

    /// Moves the shop's clock forward.
    pub fn advance(&self, seconds: i64) {
        let mut shop = self.shop();
        shop.clock += seconds.max(0);
        shop.added_at_clock = 0;
    }

    /// The next `calls` authenticated calls answer 429 (`Retry-After: 2.0`).
    pub fn throttle_next(&self, calls: u32) {
        self.shop().throttle_next = calls;
    }

    /// Sets the bucket's size and leak rate from now on (and empties it).
    pub fn set_bucket(&self, size: u32, leak_per_second: f64) {
        let mut shop = self.shop();
        shop.options.bucket_size = size;
        shop.options.leak_per_second = leak_per_second;
        shop.bucket = Bucket {
            level: 0.0,
            at: Instant::now(),
        };
    }

    /// Replaces the access token calls must carry (the old one is revoked: 401).
    pub fn set_access_token(&self, token: &str) {
        self.shop().options.access_token = token.to_owned();
    }

    /// A webhook for `topic` (`orders/create`, `products/delete`, …) carrying `payload`,
    /// signed with the app's secret, with a fresh `X-Shopify-Webhook-Id`.
    pub fn webhook(&self, topic: &str, payload: &Value) -> Webhook {
        let mut shop = self.shop();
        shop.webhooks_sent += 1;
        let body = serde_json::to_vec(payload).expect("JSON");
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("x-shopify-topic", topic.to_owned()),
            (
                "x-shopify-hmac-sha256",
                sign(&shop.options.webhook_secret, &body),
            ),
            (
                "x-shopify-shop-domain",
                "fake-shop.myshopify.com".to_owned(),
            ),
            ("x-shopify-api-version", "2025-01".to_owned()),
            (
                "x-shopify-webhook-id",
                format!("b54557e4-bdd9-4b37-8a5f-{:012x}", shop.webhooks_sent),
            ),
            ("x-shopify-triggered-at", timestamp(shop.clock)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        Webhook { headers, body }
    }
}

#[cfg(test)]
mod tests;
