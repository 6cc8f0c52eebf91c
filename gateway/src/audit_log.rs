//! The entity-change audit log for the tenant's auditors (scope `audit`), answered by the
//! gateway, which holds the platform store. Every route reads the caller's own tenant's chain
//! and nothing else (docs/adr/0041):
//! - `GET /audit/log`: records newest first (`order=seq`: oldest first), filtered by `entity`
//!   (a prefix such as `api_key/`), `actor`, `operation`, `from`/`to` (RFC 3339), paged with
//!   `cursor`/`limit`;
//! - `GET /audit/log/export?format=jsonl|csv`: every record with its hashes, in `seq` order,
//!   streamed page by page, so an auditor can keep the log and re-verify it offline;
//! - `GET /audit/log/verify`: the chain check, `{records, ok, first_bad_seq, why}`.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem, TenantId};
use switchyard_platform_store::{AuditFilter, AuditOrder, ExportFormat, PlatformStore};

use crate::problem;

const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 100;

/// Answers one `/audit/log...` request of `tenant`'s auditor.
pub async fn respond(
    session: &mut Session,
    request_id: &str,
    tenant: &TenantId,
    store: &PlatformStore,
) -> pingora::Result<()> {
    let header = session.req_header();
    let path = header.uri.path().to_owned();
    let query = header.uri.query().unwrap_or_default().to_owned();
    let answer = match path.as_str() {
        "/audit/log" => list(&query, tenant, store).await,
        "/audit/log/verify" => verify(&query, tenant, store).await,
        "/audit/log/export" => match export_format(&query) {
            Ok(format) => return export(session, request_id, tenant, store, format).await,
            Err(problem) => Err(problem),
        },
        _ => Err(Problem::new(
            ErrorCode::RouteNotFound,
            format!("no route for {path}"),
        )),
    };
    match answer {
        Ok(body) => {
            let body = Bytes::from(body.to_string());
            let mut response = ResponseHeader::build(200, Some(4))?;
            response.insert_header("content-type", "application/json")?;
            response.insert_header("content-length", body.len().to_string())?;
            response.insert_header("x-request-id", request_id)?;
            response.insert_header("cache-control", "no-store")?;
            session
                .write_response_header(Box::new(response), false)
                .await?;
            session.write_response_body(Some(body), true).await
        }
        Err(problem) => problem::respond(session, problem, request_id, &[]).await,
    }
}

fn unreadable(e: switchyard_platform_store::StoreError) -> Problem {
    tracing::error!(error = %e, "audit log read failed");
    Problem::new(ErrorCode::Internal, "the audit log could not be read").with_retryable(true)
}

async fn list(query: &str, tenant: &TenantId, store: &PlatformStore) -> Result<Value, Problem> {
    let filter = parse_filter(query)?;
    let records = store
        .list_audit(tenant, &filter)
        .await
        .map_err(unreadable)?;
    let next_cursor = (records.len() == filter.limit as usize)
        .then(|| records.last().map(|r| encode_cursor(r.seq)))
        .flatten();
    Ok(json!({"records": records, "next_cursor": next_cursor}))
}

async fn verify(query: &str, tenant: &TenantId, store: &PlatformStore) -> Result<Value, Problem> {
    refuse_parameters(query)?;
    let check = store
        .verify_audit_chain(tenant.as_str())
        .await
        .map_err(unreadable)?;
    serde_json::to_value(check)
        .map_err(|e| Problem::new(ErrorCode::Internal, format!("the chain check as JSON: {e}")))
}

/// Streams the export: the first page is read before the status is sent, so a store that
/// cannot be read is a 500 problem; a failure after that cuts the response short (no final
/// chunk), which a client sees as an incomplete body rather than as a whole log.
async fn export(
    session: &mut Session,
    request_id: &str,
    tenant: &TenantId,
    store: &PlatformStore,
    format: ExportFormat,
) -> pingora::Result<()> {
    let mut export = store.export_audit(tenant, format);
    let first = match export.next_chunk().await {
        Ok(first) => first,
        Err(e) => return problem::respond(session, unreadable(e), request_id, &[]).await,
    };
    crate::export::begin(session, format, &format!("audit-log-{tenant}"), request_id).await?;
    let mut chunk = first;
    while let Some(text) = chunk {
        session
            .write_response_body(Some(Bytes::from(text)), false)
            .await?;
        chunk = export.next_chunk().await.map_err(|e| {
            let problem = unreadable(e);
            pingora::Error::explain(pingora::ErrorType::InternalError, problem.detail)
        })?;
    }
    session.write_response_body(None, true).await
}

fn export_format(query: &str) -> Result<ExportFormat, Problem> {
    let mut format = ExportFormat::JsonLines;
    let mut errors = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("format", "jsonl") => format = ExportFormat::JsonLines,
            ("format", "csv") => format = ExportFormat::Csv,
            _ => errors.push(FieldError {
                pointer: format!("/{key}"),
                detail: if key == "format" {
                    "use jsonl or csv".into()
                } else {
                    "unknown parameter; use format".into()
                },
            }),
        }
    }
    if errors.is_empty() {
        Ok(format)
    } else {
        Err(invalid(errors))
    }
}

/// 400 for every parameter of a route that takes none, each named by a pointer.
fn refuse_parameters(query: &str) -> Result<(), Problem> {
    let errors: Vec<FieldError> = form_urlencoded::parse(query.as_bytes())
        .map(|(key, _)| FieldError {
            pointer: format!("/{key}"),
            detail: "this route takes no parameters".into(),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(errors))
    }
}

fn invalid(errors: Vec<FieldError>) -> Problem {
    Problem::new(ErrorCode::RequestInvalid, "invalid audit log query").with_errors(errors)
}

fn parse_filter(query: &str) -> Result<AuditFilter, Problem> {
    let mut filter = AuditFilter {
        limit: DEFAULT_PAGE,
        ..AuditFilter::default()
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
            // A NUL is in no record (PostgreSQL's text cannot hold one) and no valid filter.
            "entity" | "actor" | "operation" if value.contains('\0') => bad("contains NUL"),
            "entity" => filter.entity_prefix = Some(value.into_owned()),
            "actor" => filter.actor = Some(value.into_owned()),
            "operation" => filter.operation = Some(value.into_owned()),
            "from" | "to" => match rfc3339(&value) {
                Some(at) if key == "from" => filter.from = Some(at),
                Some(at) => filter.to = Some(at),
                None => bad("not an RFC 3339 time"),
            },
            "order" => match value.as_ref() {
                "newest" => filter.order = AuditOrder::NewestFirst,
                "seq" => filter.order = AuditOrder::BySeq,
                _ => bad("use newest or seq"),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => filter.limit = n,
                _ => bad("an integer from 1 to 500"),
            },
            "cursor" => match decode_cursor(&value) {
                Some(seq) => filter.after_seq = Some(seq),
                None => bad("not a cursor this endpoint returned"),
            },
            _ => bad(
                "unknown parameter; use entity, actor, operation, from, to, order, limit, cursor",
            ),
        }
    }
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(invalid(errors))
    }
}

fn rfc3339(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// The `seq` of the page's last record, in decimal: the document publishes its pattern, so a
/// client (or a fuzzer) knows which cursors exist.
fn encode_cursor(seq: i64) -> String {
    seq.to_string()
}

fn decode_cursor(text: &str) -> Option<i64> {
    let digits = (1..=18).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_into_filters_and_bad_parameters_point_at_themselves() {
        let f = parse_filter(&format!(
            "entity=api_key/&actor=key:1&operation=revoke&from=2026-01-01T00:00:00Z&order=seq&limit=5&cursor={}",
            encode_cursor(41)
        ))
        .unwrap();
        assert_eq!(
            (
                f.entity_prefix.as_deref(),
                f.actor.as_deref(),
                f.operation.as_deref()
            ),
            (Some("api_key/"), Some("key:1"), Some("revoke"))
        );
        assert_eq!(
            (f.order, f.limit, f.after_seq),
            (AuditOrder::BySeq, 5, Some(41))
        );
        assert_eq!(f.from.unwrap().unix_timestamp(), 1_767_225_600);
        let err = parse_filter("order=up&limit=0&color=red&from=yesterday&cursor=x&actor=a%00")
            .unwrap_err();
        let pointers: Vec<&str> = err.errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/order", "/limit", "/color", "/from", "/cursor", "/actor"]
        );
        for cursor in ["-1", "", "1234567890123456789", "+4"] {
            assert_eq!(decode_cursor(cursor), None, "{cursor}");
        }
        assert_eq!(err.code, ErrorCode::RequestInvalid);
    }

    #[test]
    fn export_takes_a_format_only_and_verify_nothing() {
        assert_eq!(export_format("").unwrap(), ExportFormat::JsonLines);
        assert_eq!(export_format("format=csv").unwrap(), ExportFormat::Csv);
        let err = export_format("format=xml&tenant=globex").unwrap_err();
        let pointers: Vec<&str> = err.errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/format", "/tenant"]);
        assert!(refuse_parameters("").is_ok());
        let err = refuse_parameters("tenant=globex").unwrap_err();
        assert_eq!(err.errors[0].pointer, "/tenant");
    }
}
