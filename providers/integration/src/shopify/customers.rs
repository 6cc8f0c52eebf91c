//! Upsert of customers by email. Shopify keeps a customer's email unique within a shop, so it
//! is the one external id the REST API can find a record by (`customers/search.json?query=
//! email:…`); a metafield would need the GraphQL API. Per record: search, then update the
//! one found (`PUT customers/<id>.json`) or create (`POST customers.json`).
//!
//! Shopify's search index trails writes by moments, so a customer created a moment ago may
//! not be found yet: the create is then refused with 422 "has already been taken", and the
//! record is searched again and updated. That same refusal makes a create sent twice (a
//! retry after a lost answer) harmless, so creates are retried like the idempotent calls.

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use switchyard_spi::{ErrorCode, ProviderError};

use super::{Shopify, refused};
use crate::connector::Upserted;

/// Fields Shopify owns: never sent.
const READ_ONLY: [&str; 4] = ["id", "admin_graphql_api_id", "created_at", "updated_at"];

pub(super) async fn upsert(
    shop: &Shopify,
    stream: &str,
    external_id_field: &str,
    records: &[Value],
) -> Result<Vec<Upserted>, ProviderError> {
    if stream != "customers" {
        return Err(ProviderError::field(
            ErrorCode::ParamsUnprocessable,
            "/stream",
            "integration/shopify upserts customers only",
        ));
    }
    if external_id_field != "email" {
        return Err(ProviderError::field(
            ErrorCode::ParamsUnprocessable,
            "/external_id_field",
            "Shopify finds customers by email only: external_id_field must be \"email\"",
        ));
    }
    // Every record checked before the first is written, so a bad one leaves nothing half done.
    let mut checked = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let fields = record.as_object();
        let email = fields.and_then(|f| f.get("email")).and_then(Value::as_str);
        match (fields, email) {
            (Some(fields), Some(email)) if email.contains('@') => {
                let mut fields = fields.clone();
                fields.retain(|name, _| !READ_ONLY.contains(&name.as_str()));
                checked.push((email.to_owned(), fields));
            }
            _ => {
                return Err(ProviderError::field(
                    ErrorCode::ParamsUnprocessable,
                    &format!("/records/{i}/email"),
                    "each customer needs an email address",
                ));
            }
        }
    }
    let mut results = Vec::with_capacity(checked.len());
    for (email, fields) in checked {
        results.push(upsert_one(shop, email, fields).await?);
    }
    Ok(results)
}

async fn upsert_one(
    shop: &Shopify,
    email: String,
    fields: Map<String, Value>,
) -> Result<Upserted, ProviderError> {
    let body = json!({ "customer": fields });
    if let Some(id) = find(shop, &email).await? {
        return update(shop, email, id, &body).await;
    }
    let response = shop
        .api
        .call(Method::POST, shop.url("customers.json"))
        .json(&body)
        .replay_safe()
        .send()
        .await?;
    match response.status {
        StatusCode::CREATED | StatusCode::OK => Ok(Upserted {
            id: customer_id(&response.body)?,
            external_id: email,
            created: true,
        }),
        StatusCode::UNPROCESSABLE_ENTITY if email_taken(&response.body) => {
            match find(shop, &email).await? {
                Some(id) => update(shop, email, id, &body).await,
                None => Err(refused(&response)),
            }
        }
        _ => Err(refused(&response)),
    }
}

async fn update(
    shop: &Shopify,
    email: String,
    id: String,
    body: &Value,
) -> Result<Upserted, ProviderError> {
    let response = shop
        .api
        .send(
            Method::PUT,
            shop.url(&format!("customers/{id}.json")),
            Some(body),
        )
        .await?;
    if !response.status.is_success() {
        return Err(refused(&response));
    }
    Ok(Upserted {
        external_id: email,
        id,
        created: false,
    })
}

/// The id of the customer whose email is `email` (case-insensitively: Shopify's search
/// matches more loosely, so the answer is filtered).
async fn find(shop: &Shopify, email: &str) -> Result<Option<String>, ProviderError> {
    let mut url = shop.url("customers/search.json");
    url.query_pairs_mut()
        .append_pair("query", &format!("email:\"{email}\""))
        .append_pair("fields", "id,email");
    let response = shop.get(url).await?;
    Ok(super::items(&response, "customers")?
        .iter()
        .find(|c| {
            c["email"]
                .as_str()
                .is_some_and(|found| found.eq_ignore_ascii_case(email))
        })
        .and_then(|c| c["id"].as_u64())
        .map(|id| id.to_string()))
}

fn customer_id(body: &Value) -> Result<String, ProviderError> {
    body["customer"]["id"]
        .as_u64()
        .map(|id| id.to_string())
        .ok_or_else(|| {
            ProviderError::new(
                ErrorCode::ProviderFailed,
                "shopify answered a created customer without an id",
            )
        })
}

fn email_taken(body: &Value) -> bool {
    body["errors"]["email"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e == "has already been taken"))
}
