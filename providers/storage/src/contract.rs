//! The `storage` contract's params and results as every engine reads and answers them.
//!
//! Kept in one place so that two engines cannot drift apart on the details the schemas leave
//! to code: which of the two ways of sending content wins, what the default page size is, how
//! a timestamp is written.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError, parse_params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::key::ObjectKey;

/// An object's metadata as every action answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Last write time, RFC 3339 in UTC.
    pub modified_at: String,
}

/// One page of `list`.
#[derive(Debug, Serialize)]
pub struct Page {
    pub objects: Vec<ObjectMeta>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
pub struct GetResult {
    #[serde(flatten)]
    pub meta: ObjectMeta,
    pub content_base64: String,
}

impl GetResult {
    pub fn new(meta: ObjectMeta, content: &[u8]) -> Self {
        GetResult {
            meta,
            content_base64: BASE64.encode(content),
        }
    }
}

#[derive(Serialize)]
pub struct DeleteResult {
    pub deleted: bool,
}

#[derive(Deserialize)]
struct KeyParams {
    key: String,
}

#[derive(Deserialize)]
pub struct PutParams {
    pub key: String,
    content_base64: Option<String>,
}

impl PutParams {
    /// The content to write: the raw request body or `content_base64`, exactly one of them,
    /// refused with payload_too_large above `max_bytes` before anything is written.
    pub fn content(
        &mut self,
        payload: Option<Bytes>,
        max_bytes: u64,
    ) -> Result<Bytes, ProviderError> {
        let content = match (payload, self.content_base64.take()) {
            (Some(body), None) => body,
            (None, Some(text)) => Bytes::from(BASE64.decode(text).map_err(|e| {
                ProviderError::invalid_param("/content_base64", format!("not valid base64: {e}"))
            })?),
            // Where the content comes from depends on the body's form, which the params
            // schema does not see: 422, not 400 (ADR 23).
            (Some(_), Some(_)) => {
                return Err(ProviderError::field(
                    ErrorCode::ParamsUnprocessable,
                    "/content_base64",
                    "send the content either as the raw body or as content_base64, not both",
                ));
            }
            (None, None) => {
                return Err(ProviderError::field(
                    ErrorCode::ParamsUnprocessable,
                    "/content_base64",
                    "no content: send content_base64 or a raw request body",
                ));
            }
        };
        let size = content.len() as u64;
        if size > max_bytes {
            return Err(ProviderError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the object is {size} bytes; this tenant's max_object_bytes is {max_bytes}"
                ),
            ));
        }
        Ok(content)
    }
}

/// The contract's default lifetime of a presigned URL.
const DEFAULT_PRESIGN_SECS: u64 = 900;

#[derive(Deserialize)]
pub struct PresignParams {
    pub key: String,
    pub method: PresignMethod,
    #[serde(default = "default_presign_secs")]
    pub expires_in_secs: u64,
}

fn default_presign_secs() -> u64 {
    DEFAULT_PRESIGN_SECS
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresignMethod {
    Get,
    Put,
}

#[derive(Serialize)]
pub struct PresignResult {
    pub url: String,
    /// `GET` or `PUT`: the HTTP method the URL must be used with.
    pub method: String,
    /// RFC 3339 in UTC.
    pub expires_at: String,
}

#[derive(Deserialize)]
pub struct ListParams {
    #[serde(default)]
    pub prefix: String,
    pub cursor: Option<String>,
    #[serde(default = "default_limit")]
    pub limit: usize,
}

/// The contract's default page size.
fn default_limit() -> usize {
    100
}

/// The contract's largest page size.
const MAX_LIMIT: usize = 1000;

impl ListParams {
    /// Reads list params, with the page size checked even when the runtime's schema check
    /// was skipped (a test, a tool): a zero limit would otherwise make every page empty.
    pub fn parse(params: Value) -> Result<Self, ProviderError> {
        let params: ListParams = parse_params(params)?;
        if !(1..=MAX_LIMIT).contains(&params.limit) {
            return Err(ProviderError::invalid_param(
                "/limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        Ok(params)
    }
}

/// Reads `{"key": ...}` params and checks the key against the key rules.
pub fn parse_key(params: Value) -> Result<ObjectKey, ProviderError> {
    let params: KeyParams = parse_params(params)?;
    ObjectKey::parse(&params.key, "/key")
}

/// RFC 3339 in UTC, as `modified_at` is written by every engine.
pub fn rfc3339(at: OffsetDateTime) -> Result<String, ProviderError> {
    at.format(&Rfc3339)
        .map_err(|e| ProviderError::internal(format!("cannot format a timestamp: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn put_params(params: Value) -> PutParams {
        parse_params(params).unwrap()
    }

    #[test]
    fn put_content_takes_exactly_one_source_within_the_limit() {
        let body = Some(Bytes::from_static(b"raw"));
        let mut raw = put_params(json!({"key": "k"}));
        assert_eq!(raw.content(body.clone(), 3).unwrap(), "raw");
        let mut encoded = put_params(json!({"key": "k", "content_base64": "YWI="}));
        assert_eq!(encoded.content(None, 3).unwrap(), "ab");

        let mut both = put_params(json!({"key": "k", "content_base64": "YWI="}));
        let err = both.content(body.clone(), 3).unwrap_err();
        assert_eq!(err.errors[0].pointer, "/content_base64");
        let err = put_params(json!({"key": "k"}))
            .content(None, 3)
            .unwrap_err();
        assert_eq!(err.errors[0].pointer, "/content_base64");
        let err = put_params(json!({"key": "k"}))
            .content(body, 2)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn list_params_default_and_bound_the_limit() {
        assert_eq!(ListParams::parse(json!({})).unwrap().limit, 100);
        for limit in [0, 1001] {
            let err = ListParams::parse(json!({"limit": limit}))
                .err()
                .expect("refused");
            assert_eq!(err.errors[0].pointer, "/limit");
        }
    }
}
