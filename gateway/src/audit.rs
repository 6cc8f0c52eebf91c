//! The auditors' endpoints (scope `audit`), answered by the gateway, which runs the policy:
//! - `GET /policies/bundle`: the running bundle, byte for byte as loaded, unless it holds other
//!   tenants' overrides: those are the business of their own tenant, so the caller gets the
//!   bundle without them (and without the signature, which covers them);
//! - `GET /policies/revision`: its revision;
//! - `GET /policies/decisions`: the caller's tenant's decisions, newest first, filtered by
//!   `subject`, `result` (`allow`|`deny`), `from`/`to` (RFC 3339), paged with `cursor`/`limit`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde_json::json;
use switchyard_contracts::{ErrorCode, FieldError, Problem, TenantId};
use switchyard_platform_store::DecisionFilter;
use switchyard_platform_store::PlatformStore;

use crate::filters::policy::Policy;

const MAX_PAGE: u32 = 500;

pub struct Answer {
    pub content_type: &'static str,
    pub body: Bytes,
    pub revision: String,
}

pub async fn answer(
    path: &str,
    query: Option<&str>,
    tenant: &TenantId,
    policy: Option<&Policy>,
    store: &PlatformStore,
) -> Result<Answer, Problem> {
    let policy = policy
        .ok_or_else(|| Problem::new(ErrorCode::RouteNotFound, "no policy bundle is configured"))?;
    let engine = policy.current();
    let bundle = engine.bundle();
    let revision = bundle.revision().to_owned();
    match path {
        "/policies/bundle" => {
            let view = bundle.tenant_view(tenant.as_str()).map_err(|e| {
                tracing::error!(error = %e, "the bundle could not be narrowed to one tenant");
                Problem::new(ErrorCode::Internal, "the bundle could not be prepared")
            })?;
            Ok(Answer {
                content_type: "application/gzip",
                body: Bytes::copy_from_slice(&view),
                revision,
            })
        }
        "/policies/revision" => Ok(Answer {
            content_type: "application/json",
            body: Bytes::from(json!({"revision": revision}).to_string()),
            revision,
        }),
        _ => {
            let filter = parse_filter(query.unwrap_or(""))?;
            let records = store.list_decisions(tenant, &filter).await.map_err(|e| {
                tracing::error!(error = %e, "decision log read failed");
                Problem::new(ErrorCode::Internal, "the decision log could not be read")
                    .with_retryable(true)
            })?;
            let next_cursor = (records.len() == filter.limit as usize)
                .then(|| {
                    records
                        .last()
                        .map(|r| URL_SAFE_NO_PAD.encode(format!("{}:{}", r.at_ms, r.decision_id)))
                })
                .flatten();
            let body = json!({"decisions": records, "next_cursor": next_cursor});
            Ok(Answer {
                content_type: "application/json",
                body: Bytes::from(body.to_string()),
                revision,
            })
        }
    }
}

fn parse_filter(query: &str) -> Result<DecisionFilter, Problem> {
    let mut filter = DecisionFilter {
        limit: 100,
        ..Default::default()
    };
    let mut errors = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let mut bad = |detail: &str| {
            errors.push(FieldError {
                pointer: format!("/{key}"),
                detail: detail.to_owned(),
            })
        };
        match key.as_ref() {
            "subject" => filter.subject = Some(value.into_owned()),
            "result" => match value.as_ref() {
                "allow" => filter.allowed = Some(true),
                "deny" => filter.allowed = Some(false),
                _ => bad("use allow or deny"),
            },
            "from" | "to" => match rfc3339_ms(&value) {
                Some(ms) if key == "from" => filter.from_ms = Some(ms),
                Some(ms) => filter.to_ms = Some(ms),
                None => bad("not an RFC 3339 time"),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => filter.limit = n,
                _ => bad("an integer from 1 to 500"),
            },
            "cursor" => match decode_cursor(&value) {
                Some(after) => filter.after = Some(after),
                None => bad("not a cursor this endpoint returned"),
            },
            _ => bad("unknown parameter; use subject, result, from, to, limit, cursor"),
        }
    }
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(
            Problem::new(ErrorCode::RequestInvalid, "invalid decision log query")
                .with_errors(errors),
        )
    }
}

fn rfc3339_ms(text: &str) -> Option<i64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

fn decode_cursor(text: &str) -> Option<(i64, String)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    let (at, id) = raw.split_once(':')?;
    Some((at.parse().ok()?, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_into_filters_and_bad_parameters_point_at_themselves() {
        let cursor = URL_SAFE_NO_PAD.encode("1700:abc");
        let f = parse_filter(&format!(
            "subject=key:1&result=deny&from=2026-01-01T00:00:00Z&limit=5&cursor={cursor}"
        ))
        .unwrap();
        assert_eq!(
            (f.subject.as_deref(), f.allowed, f.limit),
            (Some("key:1"), Some(false), 5)
        );
        assert_eq!(f.from_ms, Some(1_767_225_600_000));
        assert_eq!(f.after, Some((1700, "abc".to_owned())));
        let err = parse_filter("result=maybe&limit=0&color=red&from=yesterday").unwrap_err();
        let pointers: Vec<&str> = err.errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/result", "/limit", "/color", "/from"]);
    }
}
