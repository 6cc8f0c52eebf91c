//! Inbound webhooks: Shopify signs each delivery's raw body with the app's client secret
//! (`X-Shopify-Hmac-Sha256`: base64 of HMAC-SHA256), names what happened in
//! `X-Shopify-Topic` (`orders/create`, `products/delete`, …) and identifies the delivery in
//! `X-Shopify-Webhook-Id` (the same on a retry of it, so a repeat is dropped).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use switchyard_spi::{ErrorCode, ProviderError};

use crate::connector::{Inbound, Received};
use crate::http::Secret;

/// What a topic's body is: a record of a stream, or the key of one deleted.
enum Carries {
    Record,
    Deleted,
}

/// The topics received, by the stream their records belong to.
fn topic(topic: &str) -> Option<(&'static str, Carries)> {
    let (resource, event) = topic.split_once('/')?;
    let stream = match resource {
        "orders" => "orders",
        "products" => "products",
        "customers" => "customers",
        "inventory_levels" => "inventory_levels",
        _ => return None,
    };
    let carries = match (stream, event) {
        ("inventory_levels", "disconnect") | (_, "delete") => Carries::Deleted,
        ("inventory_levels", "connect" | "update")
        | ("orders", "create" | "updated" | "paid" | "cancelled" | "fulfilled")
        | ("orders", "partially_fulfilled")
        | ("products", "create" | "update")
        | ("customers", "create" | "update" | "enable" | "disable") => Carries::Record,
        _ => return None,
    };
    Some((stream, carries))
}

fn signature_invalid(detail: &str) -> ProviderError {
    ProviderError::new(ErrorCode::SignatureInvalid, detail)
}

fn unprocessable(pointer: &str, detail: String) -> ProviderError {
    ProviderError::field(ErrorCode::ParamsUnprocessable, pointer, detail)
}

/// Verifies `inbound` against `secret` (in constant time), then reads it.
pub(super) fn receive(
    secret: Option<&Secret>,
    inbound: Inbound<'_>,
) -> Result<Received, ProviderError> {
    let secret = secret.ok_or_else(|| {
        signature_invalid("integration/shopify has no webhook_secret to verify deliveries with")
    })?;
    let header = |name: &str| inbound.headers.get(name).map(String::as_str);
    let signature = header("x-shopify-hmac-sha256")
        .and_then(|s| STANDARD.decode(s.trim()).ok())
        .ok_or_else(|| signature_invalid("no X-Shopify-Hmac-Sha256 signature"))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.0.as_bytes()).expect("HMAC accepts any key length");
    mac.update(inbound.body);
    mac.verify_slice(&signature)
        .map_err(|_| signature_invalid("the X-Shopify-Hmac-Sha256 signature does not verify"))?;

    let name = header("x-shopify-topic").unwrap_or_default();
    let (stream, carries) = topic(name).ok_or_else(|| {
        unprocessable(
            "/headers/x-shopify-topic",
            format!("integration/shopify receives no topic {name:?}"),
        )
    })?;
    let delivery_id = header("x-shopify-webhook-id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            unprocessable(
                "/headers/x-shopify-webhook-id",
                "a Shopify delivery names its X-Shopify-Webhook-Id".into(),
            )
        })?
        .to_owned();
    let body: Value = serde_json::from_slice(inbound.body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| unprocessable("", "the body is not a JSON object".into()))?;
    let (records, deleted) = match carries {
        Carries::Record => (vec![body], Vec::new()),
        Carries::Deleted => (Vec::new(), vec![deleted_key(stream, &body)?]),
    };
    Ok(Received {
        delivery_id,
        stream: stream.to_owned(),
        records,
        deleted,
    })
}

/// The primary key of the record a delete topic names: its `id`, or for an inventory level
/// (`inventory_levels/disconnect` carries the item and the location) the level's GraphQL id.
fn deleted_key(stream: &str, body: &Value) -> Result<String, ProviderError> {
    let id = |field: &str| body[field].as_u64();
    let key = if stream == "inventory_levels" {
        id("location_id")
            .zip(id("inventory_item_id"))
            .map(|(location, item)| {
                format!("gid://shopify/InventoryLevel/{location}?inventory_item_id={item}")
            })
    } else {
        id("id").map(|id| id.to_string())
    };
    key.ok_or_else(|| unprocessable("", "the delete names no record".into()))
}
