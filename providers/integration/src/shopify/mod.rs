#![doc = include_str!("docs.md")]

mod config;
mod customers;
mod webhooks;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use switchyard_contracts::SchemaError;
use switchyard_spi::{ErrorCode, Host, ProviderError, ProviderFactory};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) use config::ShopifyConfig;

use crate::connector::{
    Connect, Connector, DeletedPage, Deletes, Field, Inbound, Link, Page, ReadFrom, Received,
    Stream, Upserted,
};
use crate::http::{Api, Auth, Headers, RateHeaders, Response, Secret, Usage, Verdict};
use crate::sync;

/// `integration/shopify`, always hosted: it calls no shop until a tenant configures one.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    sync::builtin::<Shopify>(
        host,
        sync::About {
            summary: "Shopify orders, products, customers and inventory levels (REST Admin API): \
                      incremental syncs by updated_at, product deletes from the Events API, \
                      customer upsert by email, webhooks verified by their HMAC.",
            capabilities: &[
                "incremental",
                "full_refresh",
                "deleted_feed",
                "upsert",
                "webhooks",
            ],
            actions: sync::ALL_ACTIONS,
        },
    )
}

/// Every stream is read ascending by this field, and resumed at it (`updated_at_min` is
/// inclusive).
const CURSOR_FIELD: &str = "updated_at";

/// What the connector knows of one stream.
struct Spec {
    name: &'static str,
    primary_key: &'static str,
    deletes: Deletes,
    fields: &'static [(&'static str, &'static str)],
}

/// The four streams. Inventory levels have no `id` of their own: the level is one item at one
/// location, which their `admin_graphql_api_id` names
/// (`gid://shopify/InventoryLevel/<location_id>?inventory_item_id=<item>`). Only products have
/// a deleted-record feed (the Events API's `verb=destroy`); the others' deletes are found by
/// a full refresh's tombstone pass (or arrive by webhook).
const SPECS: [Spec; 4] = [
    Spec {
        name: "orders",
        primary_key: "id",
        deletes: Deletes::FullRefresh,
        fields: &[
            ("id", "integer"),
            ("admin_graphql_api_id", "string"),
            ("name", "string"),
            ("order_number", "integer"),
            ("email", "string"),
            ("created_at", "string"),
            ("updated_at", "string"),
            ("processed_at", "string"),
            ("closed_at", "string"),
            ("cancelled_at", "string"),
            ("financial_status", "string"),
            ("fulfillment_status", "string"),
            ("currency", "string"),
            ("total_price", "string"),
            ("subtotal_price", "string"),
            ("total_tax", "string"),
            ("note", "string"),
            ("tags", "string"),
            ("customer", "object"),
            ("line_items", "array"),
        ],
    },
    Spec {
        name: "products",
        primary_key: "id",
        deletes: Deletes::Feed,
        fields: &[
            ("id", "integer"),
            ("admin_graphql_api_id", "string"),
            ("title", "string"),
            ("handle", "string"),
            ("vendor", "string"),
            ("product_type", "string"),
            ("status", "string"),
            ("tags", "string"),
            ("created_at", "string"),
            ("updated_at", "string"),
            ("published_at", "string"),
            ("variants", "array"),
        ],
    },
    Spec {
        name: "customers",
        primary_key: "id",
        deletes: Deletes::FullRefresh,
        fields: &[
            ("id", "integer"),
            ("admin_graphql_api_id", "string"),
            ("email", "string"),
            ("first_name", "string"),
            ("last_name", "string"),
            ("phone", "string"),
            ("state", "string"),
            ("verified_email", "boolean"),
            ("orders_count", "integer"),
            ("total_spent", "string"),
            ("currency", "string"),
            ("tags", "string"),
            ("note", "string"),
            ("created_at", "string"),
            ("updated_at", "string"),
        ],
    },
    Spec {
        name: "inventory_levels",
        primary_key: "admin_graphql_api_id",
        deletes: Deletes::FullRefresh,
        fields: &[
            ("admin_graphql_api_id", "string"),
            ("inventory_item_id", "integer"),
            ("location_id", "integer"),
            ("available", "integer"),
            ("updated_at", "string"),
        ],
    },
];

/// The most `location_ids` one inventory levels request may name (Shopify's bound).
const MAX_LOCATIONS: usize = 50;

/// Shopify's REST bucket leaks 2 calls a second (4 on Plus shops, which a 80-call bucket
/// shows; the limiter then merely spaces calls a little more than it needs to).
const LEAK_PER_SECOND: f64 = 2.0;

/// `X-Shopify-Shop-Api-Call-Limit: 32/40`.
fn call_limit(headers: &Headers) -> Option<Usage> {
    Usage::fraction(headers.get("x-shopify-shop-api-call-limit")?)
}

/// A 422 carries what Shopify refused (`{"errors":{"email":["has already been taken"]}}`):
/// the connector reads it rather than the taxonomy calling it a failure.
fn classify(status: StatusCode, _body: &Value) -> Option<Verdict> {
    (status == StatusCode::UNPROCESSABLE_ENTITY).then_some(Verdict::Answer)
}

/// One shop, for one tenant.
pub(crate) struct Shopify {
    api: Api,
    /// `<shop_url>/admin/api/<version>/`: every call's URL is under it.
    base: Url,
    page_size: u32,
    webhook_secret: Option<Secret>,
}

fn spec(stream: &str) -> Result<&'static Spec, ProviderError> {
    SPECS.iter().find(|s| s.name == stream).ok_or_else(|| {
        ProviderError::field(
            ErrorCode::ParamsUnprocessable,
            "/stream",
            format!(
                "integration/shopify has no stream {stream:?} (it has orders, products, \
                 customers, inventory_levels)"
            ),
        )
    })
}

impl Connect for Shopify {
    type Config = ShopifyConfig;

    fn settings(config: &ShopifyConfig) -> &crate::sync::Settings {
        &config.sync
    }

    fn connect(config: ShopifyConfig, link: Link) -> Result<Self, ProviderError> {
        let unprocessable = |detail: &str| {
            ProviderError::field(ErrorCode::ConfigUnprocessable, "/shop_url", detail)
        };
        let shop = Url::parse(&config.shop_url)
            .map_err(|_| unprocessable("not a URL the URL standard accepts"))?;
        if !matches!(shop.scheme(), "https" | "http")
            || shop.path() != "/"
            || shop.query().is_some()
            || !shop.username().is_empty()
            || shop.password().is_some()
        {
            return Err(unprocessable(
                "the shop's origin only: https://{shop}.myshopify.com",
            ));
        }
        link.egress
            .check_url(&shop)
            .map_err(|refusal| refusal.at("/shop_url"))?;
        let base = shop
            .join(&format!("admin/api/{}/", config.api_version))
            .map_err(|_| unprocessable("not a URL the URL standard accepts"))?;
        let auth = Auth::Header {
            name: "x-shopify-access-token".to_owned(),
            value: Secret(config.access_token),
        };
        let api = Api::new("shopify", link.egress, auth)?
            .with_rate_headers(RateHeaders {
                read: call_limit,
                refill_per_second: LEAK_PER_SECOND,
            })
            .with_classify(classify);
        Ok(Shopify {
            api,
            base,
            page_size: config.page_size.clamp(1, config::MAX_PAGE_SIZE),
            webhook_secret: config.webhook_secret.map(Secret),
        })
    }
}

impl Shopify {
    fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("a relative path under the base URL")
    }

    /// A GET whose answer must be a 2xx.
    async fn get(&self, url: Url) -> Result<Response, ProviderError> {
        let response = self.api.send(Method::GET, url, None).await?;
        if !response.status.is_success() {
            return Err(refused(&response));
        }
        Ok(response)
    }

    /// The first page's URL of a list: every record, or those updated at or after `since`,
    /// ascending by `order_by` (ties by id, as Shopify's keyset cursors break them).
    fn list_url(
        &self,
        path: &str,
        order_by: &str,
        since: Option<&Value>,
    ) -> Result<Url, ProviderError> {
        let mut url = self.url(path);
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("limit", &self.page_size.to_string())
                .append_pair("order", &format!("{order_by} asc"));
            if let Some(since) = since {
                // Shopify ignores a filter it cannot read: a cursor that is no timestamp would
                // silently read everything again.
                let since = since
                    .as_str()
                    .filter(|s| OffsetDateTime::parse(s, &Rfc3339).is_ok())
                    .ok_or_else(|| {
                        ProviderError::field(
                            ErrorCode::ParamsUnprocessable,
                            "/since",
                            "a Shopify cursor is an ISO 8601 timestamp with an offset \
                             (2026-01-01T00:00:00-05:00)",
                        )
                    })?;
                query.append_pair(&format!("{order_by}_min"), since);
            }
        }
        Ok(url)
    }

    /// A page token (the `rel="next"` URL of the page before), held to the shop's API: a
    /// link anywhere else would carry the access token there.
    fn follow(&self, token: &str) -> Result<Url, ProviderError> {
        let url = Url::parse(token).ok().filter(|url| {
            url.origin() == self.base.origin() && url.path().starts_with(self.base.path())
        });
        url.ok_or_else(|| {
            ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/page",
                "not a page of this shop's API",
            )
        })
    }

    /// The ids of the shop's locations, which an inventory levels request must name.
    async fn locations(&self) -> Result<Vec<String>, ProviderError> {
        let response = self.get(self.url("locations.json")).await?;
        Ok(items(&response, "locations")?
            .iter()
            .filter_map(|l| l["id"].as_u64())
            .map(|id| id.to_string())
            .collect())
    }

    /// One page: its records under `key`, and the next page's URL from the Link header.
    async fn page(
        &self,
        url: Url,
        key: &str,
    ) -> Result<(Vec<Value>, Option<String>), ProviderError> {
        let mut response = self.get(url.clone()).await?;
        let next = next_link(&response.headers, &url)?;
        match response.body[key].take() {
            Value::Array(records) => Ok((records, next)),
            _ => Err(not_a_list(key)),
        }
    }
}

/// The records of a list answer (`{"orders": [...]}`).
fn items<'a>(response: &'a Response, key: &str) -> Result<&'a Vec<Value>, ProviderError> {
    response.body[key].as_array().ok_or_else(|| not_a_list(key))
}

fn not_a_list(key: &str) -> ProviderError {
    ProviderError::new(
        ErrorCode::ProviderFailed,
        format!("shopify answered a list without {key:?}"),
    )
}

/// The `rel="next"` target of a Link header (RFC 8288), if any.
fn next_link(headers: &Headers, url: &Url) -> Result<Option<String>, ProviderError> {
    let Some(header) = headers.get("link") else {
        return Ok(None);
    };
    let links = http_link::parse_link_header(header, url).map_err(|_| {
        ProviderError::new(
            ErrorCode::ProviderFailed,
            "shopify answered a Link header that is not RFC 8288",
        )
    })?;
    Ok(links
        .into_iter()
        .find(|link| link.rel.split_ascii_whitespace().any(|rel| rel == "next"))
        .map(|link| link.target.to_string()))
}

/// A non-2xx answer the taxonomy let through (404, 422).
fn refused(response: &Response) -> ProviderError {
    let detail = match response.status {
        StatusCode::NOT_FOUND => {
            "shopify answered 404: no shop at shop_url, or the API version is not served".into()
        }
        status => format!(
            "shopify refused the call ({status}): {}",
            response.body["errors"]
        ),
    };
    ProviderError::new(ErrorCode::ProviderFailed, detail)
}

#[async_trait]
impl Connector for Shopify {
    const NAME: &'static str = "shopify";

    async fn discover(&self) -> Result<Vec<Stream>, ProviderError> {
        Ok(SPECS
            .iter()
            .map(|spec| Stream {
                name: spec.name.to_owned(),
                primary_key: spec.primary_key.to_owned(),
                cursor_field: Some(CURSOR_FIELD.to_owned()),
                deletes: spec.deletes,
                fields: spec
                    .fields
                    .iter()
                    .map(|(name, kind)| Field {
                        name: (*name).to_owned(),
                        kind: (*kind).to_owned(),
                    })
                    .collect(),
            })
            .collect())
    }

    async fn check(&self) -> Result<(), ProviderError> {
        self.get(self.url("shop.json")).await.map(drop)
    }

    async fn read(&self, stream: &str, from: ReadFrom<'_>) -> Result<Page, ProviderError> {
        let spec = spec(stream)?;
        let url = match from.page {
            Some(token) => self.follow(token)?,
            None => {
                let mut url = self.list_url(&format!("{stream}.json"), CURSOR_FIELD, from.since)?;
                match spec.name {
                    // Open orders only, unless asked: a sync wants closed and cancelled too.
                    "orders" => {
                        url.query_pairs_mut().append_pair("status", "any");
                    }
                    "inventory_levels" => {
                        let locations = self.locations().await?;
                        if locations.is_empty() {
                            return Ok(Page::default());
                        }
                        if locations.len() > MAX_LOCATIONS {
                            return Err(ProviderError::new(
                                ErrorCode::ProviderFailed,
                                format!(
                                    "the shop has {} locations; integration/shopify reads the \
                                     inventory levels of at most {MAX_LOCATIONS}",
                                    locations.len()
                                ),
                            ));
                        }
                        url.query_pairs_mut()
                            .append_pair("location_ids", &locations.join(","));
                    }
                    _ => {}
                }
                url
            }
        };
        let (records, next_page) = self.page(url, stream).await?;
        Ok(Page { records, next_page })
    }

    async fn read_deleted(
        &self,
        stream: &str,
        from: ReadFrom<'_>,
    ) -> Result<DeletedPage, ProviderError> {
        if spec(stream)?.deletes != Deletes::Feed {
            return Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/stream",
                format!("integration/shopify's stream {stream:?} has no deleted-record feed"),
            ));
        }
        let url = match from.page {
            Some(token) => self.follow(token)?,
            None => {
                let mut url = self.list_url("events.json", "created_at", from.since)?;
                url.query_pairs_mut()
                    .append_pair("filter", "Product")
                    .append_pair("verb", "destroy");
                url
            }
        };
        let (events, next_page) = self.page(url, "events").await?;
        let deleted = events
            .iter()
            .filter_map(|event| Some(event["subject_id"].as_u64()?.to_string()))
            .collect();
        Ok(DeletedPage { deleted, next_page })
    }

    async fn upsert(
        &self,
        stream: &str,
        external_id_field: &str,
        records: &[Value],
    ) -> Result<Vec<Upserted>, ProviderError> {
        customers::upsert(self, stream, external_id_field, records).await
    }

    fn receive(&self, inbound: Inbound<'_>) -> Result<Received, ProviderError> {
        webhooks::receive(self.webhook_secret.as_ref(), inbound)
    }
}
