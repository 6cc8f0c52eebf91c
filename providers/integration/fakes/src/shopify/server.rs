//! The fake shop's HTTP side: authentication, the leaky bucket, routing, and the list
//! endpoints' filters and `page_info` cursors.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::Shop;
use super::store::{After, Filter, LOCATIONS, Order, parse_timestamp};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 250;

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, shop: Arc<Mutex<Shop>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let shop = shop.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let shop = shop.clone();
            async move { Ok::<_, Infallible>(answer(request, &shop).await) }
        });
        tokio::spawn(async move {
            // A client hanging up mid-request is none of the fake's business.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What a handler answers: status, body (JSON text), extra headers.
struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body: serde_json::to_vec(&body).expect("JSON"),
        headers: Vec::new(),
    }
}

fn not_found() -> Reply {
    reply(404, json!({"errors": "Not Found"}))
}

fn bad_param(param: &str, message: String) -> Reply {
    reply(400, json!({"errors": {param: message}}))
}

async fn answer(request: Request<Incoming>, shop: &Mutex<Shop>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let token = parts
        .headers
        .get("x-shopify-access-token")
        .and_then(|h| h.to_str().ok());
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();

    let mut shop = shop.lock().expect("the fake shop's lock");
    shop.calls += 1;
    if token != Some(shop.options.access_token.as_str()) {
        return respond(reply(
            401,
            json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
        ));
    }
    let (throttled, limit_header) = take_from_bucket(&mut shop);
    let mut out = if throttled {
        shop.throttled += 1;
        let mut r = reply(
            429,
            json!({"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}),
        );
        r.headers.push(("retry-after", "2.0".into()));
        r
    } else {
        let call = Call {
            host: &host,
            query: &query,
            body: &body,
        };
        route(&mut shop, &parts.method, parts.uri.path(), &call)
    };
    out.headers
        .push(("x-shopify-shop-api-call-limit", limit_header));
    respond(out)
}

/// Leaks the bucket, then takes one call from it (or answers 429). Answers whether the call
/// is throttled and the call-limit header.
fn take_from_bucket(shop: &mut Shop) -> (bool, String) {
    let size = f64::from(shop.options.bucket_size);
    let now = Instant::now();
    let leaked = now.duration_since(shop.bucket.at).as_secs_f64() * shop.options.leak_per_second;
    shop.bucket.level = (shop.bucket.level - leaked).max(0.0);
    shop.bucket.at = now;
    let throttled = if shop.throttle_next > 0 {
        shop.throttle_next -= 1;
        true
    } else if shop.bucket.level + 1.0 > size {
        true
    } else {
        shop.bucket.level += 1.0;
        false
    };
    let shown = if throttled {
        shop.options.bucket_size
    } else {
        shop.bucket.level.ceil() as u32
    };
    (throttled, format!("{shown}/{}", shop.options.bucket_size))
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json; charset=utf-8");
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    response
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a valid response")
}

struct Call<'a> {
    host: &'a str,
    query: &'a [(String, String)],
    body: &'a [u8],
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn route(shop: &mut Shop, method: &Method, path: &str, call: &Call<'_>) -> Reply {
    let Some(rest) = path.strip_prefix("/admin/api/") else {
        return not_found();
    };
    let Some((version, resource)) = rest.split_once('/') else {
        return not_found();
    };
    let Some(resource) = resource.strip_suffix(".json") else {
        return not_found();
    };
    let segments: Vec<&str> = resource.split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["shop"]) => reply(
            200,
            json!({"shop": {
                "id": 548_380_009,
                "name": "Fake Shop",
                "email": "owner@fake-shop.example",
                "domain": "fake-shop.myshopify.com",
                "myshopify_domain": "fake-shop.myshopify.com",
                "currency": "USD",
                "iana_timezone": "Etc/UTC",
                "plan_name": "basic"
            }}),
        ),
        (&Method::GET, ["locations"]) => reply(
            200,
            json!({"locations": LOCATIONS.iter().enumerate().map(|(i, id)| json!({
                "id": id, "name": format!("Warehouse {}", i + 1), "active": true
            })).collect::<Vec<_>>()}),
        ),
        (&Method::GET, ["customers", "search"]) => search_customers(shop, call),
        (&Method::POST, ["customers"]) => create_customer(shop, call),
        (&Method::PUT, ["customers", id]) => update_customer(shop, id, call),
        (&Method::GET, [stream, "count"]) if is_list(stream) => match filter(stream, call.query) {
            Ok(filter) => reply(200, json!({"count": shop.table(stream).count(&filter)})),
            Err(refusal) => refusal,
        },
        (&Method::GET, [stream]) if is_list(stream) => list(shop, version, stream, call),
        (&Method::GET, [stream, id]) if is_list(stream) => {
            match id.parse().ok().and_then(|id| shop.table(stream).get(id)) {
                Some(record) => reply(200, json!({singular(stream): record})),
                None => not_found(),
            }
        }
        (&Method::DELETE, [stream, id]) if is_list(stream) && *stream != "events" => {
            match id.parse().ok().and_then(|id| shop.delete(stream, id)) {
                Some(_) => reply(200, json!({})),
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn is_list(stream: &str) -> bool {
    matches!(
        stream,
        "orders" | "products" | "customers" | "inventory_levels" | "events"
    )
}

fn singular(stream: &str) -> &str {
    stream.strip_suffix('s').unwrap_or(stream)
}

/// What a `page_info` token carries: the first request's filters and order, and where the
/// page starts. Opaque to clients (base64url of this JSON, like Shopify's own).
#[derive(Serialize, Deserialize)]
struct PageInfo {
    filters: BTreeMap<String, String>,
    order: String,
    last_id: u64,
    last_value: i64,
    /// `next` or `prev`.
    direction: String,
}

/// The parameters that only choose a page's size and shape, allowed beside `page_info`.
const PAGE_PARAMS: [&str; 3] = ["limit", "fields", "page_info"];

fn list(shop: &mut Shop, version: &str, stream: &str, call: &Call<'_>) -> Reply {
    let limit = call
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let stamp = shop.table(stream).stamp;
    let (filters, order, position) = match call.param("page_info") {
        Some(token) => {
            if let Some((param, _)) = call
                .query
                .iter()
                .find(|(n, _)| !PAGE_PARAMS.contains(&n.as_str()))
            {
                return bad_param(
                    param,
                    format!(
                        "{param} cannot be passed when page_info is present. See \
                         https://shopify.dev/api/usage/pagination-rest for more information."
                    ),
                );
            }
            let Some(info) = URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<PageInfo>(&bytes).ok())
            else {
                return bad_param("page_info", "Invalid value.".into());
            };
            let at = After {
                stamp: info.last_value,
                id: info.last_id,
            };
            (
                info.filters,
                Some(info.order),
                Some((at, info.direction == "prev")),
            )
        }
        None => (
            call.query
                .iter()
                .filter(|(n, _)| !PAGE_PARAMS.contains(&n.as_str()) && n != "order")
                .cloned()
                .collect(),
            call.param("order").map(str::to_owned),
            None,
        ),
    };
    let Some(order) = Order::parse(order.as_deref(), stamp) else {
        return bad_param("order", "Invalid value.".into());
    };
    let filter_params: Vec<(String, String)> = filters.clone().into_iter().collect();
    let filter = match filter(stream, &filter_params) {
        Ok(filter) => filter,
        Err(refusal) => return refusal,
    };
    let table = shop.table(stream);
    let (slice, has_prev, has_next) = match position {
        None => {
            let slice = table.page(order, &filter, None, limit);
            let more = slice.more;
            (slice, false, more)
        }
        Some((after, false)) => {
            let slice = table.page(order, &filter, Some(after), limit);
            let prev = slice
                .rows
                .first()
                .is_some_and(|(first, _)| table.any_before(order, &filter, *first));
            let more = slice.more;
            (slice, prev, more)
        }
        Some((before, true)) => {
            let slice = table.page_before(order, &filter, before, limit);
            let (more, any) = (slice.more, !slice.rows.is_empty());
            (slice, more, any)
        }
    };
    let link = |at: After, direction: &str| {
        let info = PageInfo {
            filters: filters.clone(),
            order: order.name(stamp),
            last_id: at.id,
            last_value: at.stamp,
            direction: direction.into(),
        };
        let token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&info).expect("JSON"));
        let rel = if direction == "prev" {
            "previous"
        } else {
            "next"
        };
        format!(
            "<http://{}/admin/api/{version}/{stream}.json?limit={limit}&page_info={token}>; rel=\"{rel}\"",
            call.host
        )
    };
    let mut links = Vec::new();
    if let (true, Some((first, _))) = (has_prev, slice.rows.first()) {
        links.push(link(*first, "prev"));
    }
    if let (true, Some((last, _))) = (has_next, slice.rows.last()) {
        links.push(link(*last, "next"));
    }
    // `{"<stream>":[<record>,...]}` from the records' kept text.
    let mut body = format!("{{\"{stream}\":[").into_bytes();
    for (i, (_, text)) in slice.rows.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(text.as_bytes());
    }
    body.extend_from_slice(b"]}");
    let mut out = Reply {
        status: 200,
        body,
        headers: Vec::new(),
    };
    if !links.is_empty() {
        out.headers.push(("link", links.join(", ")));
    }
    out
}

/// A list's filters from its parameters.
fn filter(stream: &str, params: &[(String, String)]) -> Result<Filter, Reply> {
    let stamp = if stream == "events" {
        "created_at"
    } else {
        "updated_at"
    };
    let mut filter = Filter::default();
    if stream == "orders" {
        filter.status = Some("open".into());
    }
    let ids = |param: &str, value: &str| -> Result<Vec<Value>, Reply> {
        value
            .split(',')
            .map(|id| id.trim().parse::<u64>().map(Value::from))
            .collect::<Result<_, _>>()
            .map_err(|_| bad_param(param, "Invalid value.".into()))
    };
    for (param, value) in params {
        let time =
            || parse_timestamp(value).ok_or_else(|| bad_param(param, "Invalid value.".into()));
        match param.as_str() {
            p if p == format!("{stamp}_min") => filter.stamp_min = Some(time()?),
            p if p == format!("{stamp}_max") => filter.stamp_max = Some(time()?),
            "since_id" => {
                filter.since_id = Some(
                    value
                        .parse()
                        .map_err(|_| bad_param(param, "Invalid value.".into()))?,
                )
            }
            "ids" => filter.equals.push(("id".into(), ids(param, value)?)),
            "status" if stream == "orders" => {
                filter.status = match value.as_str() {
                    "any" => None,
                    "open" | "closed" | "cancelled" => Some(value.clone()),
                    _ => return Err(bad_param(param, "Invalid value.".into())),
                }
            }
            "location_ids" if stream == "inventory_levels" => filter
                .equals
                .push(("location_id".into(), ids(param, value)?)),
            "inventory_item_ids" if stream == "inventory_levels" => filter
                .equals
                .push(("inventory_item_id".into(), ids(param, value)?)),
            "filter" if stream == "events" => filter
                .equals
                .push(("subject_type".into(), vec![json!(value)])),
            "verb" if stream == "events" => filter.equals.push(("verb".into(), vec![json!(value)])),
            // Shopify ignores parameters it does not know.
            _ => {}
        }
    }
    if stream == "inventory_levels" && filter.equals.is_empty() {
        return Err(reply(
            422,
            json!({"errors": {"base": ["location_ids or inventory_item_ids is required"]}}),
        ));
    }
    Ok(filter)
}

/// `query=email:someone@example.com` (the value may be quoted); Shopify's search syntax
/// beyond one email term is not faked.
fn search_customers(shop: &mut Shop, call: &Call<'_>) -> Reply {
    let query = call.param("query").unwrap_or_default();
    let Some(email) = query.strip_prefix("email:") else {
        return reply(200, json!({"customers": []}));
    };
    let email = email.trim_matches('"').to_lowercase();
    let table = shop.table("customers");
    let found: Vec<&Value> = table
        .ids()
        .into_iter()
        .filter_map(|id| table.get(id))
        .filter(|c| c["email"].as_str().map(str::to_lowercase).as_deref() == Some(email.as_str()))
        .collect();
    reply(200, json!({"customers": found}))
}

fn customer_fields(call: &Call<'_>) -> Result<Value, Reply> {
    let body: Value = serde_json::from_slice(call.body).map_err(|_| {
        reply(
            400,
            json!({"errors": {"customer": "Required parameter missing or invalid"}}),
        )
    })?;
    match body.get("customer") {
        Some(fields @ Value::Object(_)) => Ok(fields.clone()),
        _ => Err(reply(
            400,
            json!({"errors": {"customer": "Required parameter missing or invalid"}}),
        )),
    }
}

fn email_taken(shop: &mut Shop, email: Option<&str>, except: Option<u64>) -> bool {
    let Some(email) = email.map(str::to_lowercase) else {
        return false;
    };
    let table = shop.table("customers");
    table.ids().into_iter().any(|id| {
        Some(id) != except
            && table
                .get(id)
                .and_then(|c| c["email"].as_str())
                .map(str::to_lowercase)
                == Some(email.clone())
    })
}

fn create_customer(shop: &mut Shop, call: &Call<'_>) -> Reply {
    let fields = match customer_fields(call) {
        Ok(fields) => fields,
        Err(refusal) => return refusal,
    };
    if email_taken(shop, fields["email"].as_str(), None) {
        return reply(
            422,
            json!({"errors": {"email": ["has already been taken"]}}),
        );
    }
    reply(201, json!({"customer": shop.create_customer(fields)}))
}

fn update_customer(shop: &mut Shop, id: &str, call: &Call<'_>) -> Reply {
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    let fields = match customer_fields(call) {
        Ok(fields) => fields,
        Err(refusal) => return refusal,
    };
    if email_taken(shop, fields["email"].as_str(), Some(id)) {
        return reply(
            422,
            json!({"errors": {"email": ["has already been taken"]}}),
        );
    }
    match shop.update_customer(id, &fields) {
        Some(customer) => reply(200, json!({"customer": customer})),
        None => not_found(),
    }
}
