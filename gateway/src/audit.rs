//! The auditors' endpoints (scope `audit`), answered by the gateway, which runs the policy:
//! - `GET /policies/bundle`: the running bundle, byte for byte as loaded, unless it holds other
//!   tenants' overrides: those are the business of their own tenant, so the caller gets the
//!   bundle without them (and without the signature, which covers them);
//! - `GET /policies/revision`: its revision;
//! - `GET /policies/decisions`: the caller's tenant's decisions, newest first, filtered by
//!   `subject`, `result` (`allow`|`deny`), `from`/`to` (RFC 3339), paged with `cursor`/`limit`;
//! - `GET /policies/decisions/export?format=jsonl|csv&from=&to=`: every one of them in the
//!   window, newest first, with its input, streamed page by page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use pingora::proxy::Session;
use serde_json::json;
use switchyard_contracts::{ErrorCode, FieldError, Problem, TenantId};
use switchyard_platform_store::PlatformStore;
use switchyard_platform_store::{DecisionFilter, DecisionRecord, ExportFormat};

use crate::filters::policy::Policy;
use crate::problem;

const MAX_PAGE: u32 = 500;
/// Decisions per page of an export: one query each, and what the gateway holds at a time.
const EXPORT_PAGE: u32 = 1000;
/// The export's CSV columns, the fields of a decision as the list answers it.
const CSV_HEADER: &str = "decision_id,at_ms,tenant,subject,allowed,reasons,revision,input\r\n";

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

/// `GET /policies/decisions/export`: the caller's tenant's decisions in the window, written a
/// page at a time so that an export of any length leaves without being held whole. A failure
/// after the first page ends the connection without the last chunk, so the client sees a
/// broken transfer, never a short export that looks whole.
pub async fn export(
    session: &mut Session,
    request_id: &str,
    tenant: &TenantId,
    policy: Option<&Policy>,
    store: &PlatformStore,
) -> pingora::Result<()> {
    let query = session
        .req_header()
        .uri
        .query()
        .unwrap_or_default()
        .to_owned();
    let parsed = match policy {
        None => Err(Problem::new(
            ErrorCode::RouteNotFound,
            "no policy bundle is configured",
        )),
        Some(_) => parse_export(&query),
    };
    let (format, mut filter) = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => return problem::respond(session, problem, request_id, &[]).await,
    };
    let first = match store.list_decisions(tenant, &filter).await {
        Ok(page) => page,
        Err(e) => return problem::respond(session, unreadable(e), request_id, &[]).await,
    };
    crate::export::begin(session, format, &format!("decisions-{tenant}"), request_id).await?;
    if format == ExportFormat::Csv {
        session
            .write_response_body(Some(Bytes::from_static(CSV_HEADER.as_bytes())), false)
            .await?;
    }
    let mut page = first;
    loop {
        let full = page.len() == filter.limit as usize;
        if let Some(last) = page.last() {
            filter.after = Some((last.at_ms, last.decision_id.clone()));
            let text = render(&page, format);
            session
                .write_response_body(Some(Bytes::from(text)), false)
                .await?;
        }
        if !full {
            break;
        }
        page = store.list_decisions(tenant, &filter).await.map_err(|e| {
            pingora::Error::explain(pingora::ErrorType::InternalError, unreadable(e).detail)
        })?;
    }
    session.write_response_body(None, true).await
}

fn unreadable(e: switchyard_platform_store::StoreError) -> Problem {
    tracing::error!(error = %e, "decision log read failed");
    Problem::new(ErrorCode::Internal, "the decision log could not be read").with_retryable(true)
}

/// `format` (`jsonl`, the default, or `csv`) and the `from`/`to` window.
fn parse_export(query: &str) -> Result<(ExportFormat, DecisionFilter), Problem> {
    let mut format = ExportFormat::JsonLines;
    let mut filter = DecisionFilter {
        limit: EXPORT_PAGE,
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
            "format" => match value.as_ref() {
                "jsonl" => format = ExportFormat::JsonLines,
                "csv" => format = ExportFormat::Csv,
                _ => bad("use jsonl or csv"),
            },
            "from" | "to" => match rfc3339_ms(&value) {
                Some(ms) if key == "from" => filter.from_ms = Some(ms),
                Some(ms) => filter.to_ms = Some(ms),
                None => bad("not an RFC 3339 time"),
            },
            _ => bad("unknown parameter; use format, from, to"),
        }
    }
    if errors.is_empty() {
        Ok((format, filter))
    } else {
        Err(
            Problem::new(ErrorCode::RequestInvalid, "invalid decision log export")
                .with_errors(errors),
        )
    }
}

/// A page of decisions as JSON lines (each the object the list answers) or CSV rows
/// ([`CSV_HEADER`]'s columns; reasons and input as their JSON text).
fn render(page: &[DecisionRecord], format: ExportFormat) -> String {
    let mut text = String::new();
    for d in page {
        match format {
            ExportFormat::JsonLines => {
                text.push_str(&json!(d).to_string());
                text.push('\n');
            }
            ExportFormat::Csv => {
                let fields = [
                    d.decision_id.clone(),
                    d.at_ms.to_string(),
                    d.tenant.clone(),
                    d.subject.clone(),
                    d.allowed.to_string(),
                    json!(d.reasons).to_string(),
                    d.revision.clone(),
                    d.input.to_string(),
                ];
                text.push_str(&fields.map(|f| csv_field(&f)).join(","));
                text.push_str("\r\n");
            }
        }
    }
    text
}

/// RFC 4180: a field quoted when it holds a separator, a quote or a line break, quotes
/// doubled.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
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

    #[test]
    fn an_export_takes_a_format_and_a_window_and_nothing_else() {
        let (format, filter) =
            parse_export("format=csv&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z").unwrap();
        assert_eq!(format, ExportFormat::Csv);
        assert_eq!(
            (filter.from_ms, filter.to_ms, filter.limit),
            (
                Some(1_767_225_600_000),
                Some(1_767_312_000_000),
                EXPORT_PAGE
            )
        );
        assert_eq!(parse_export("").unwrap().0, ExportFormat::JsonLines);
        let err = parse_export("format=xml&subject=x&to=soon").unwrap_err();
        let pointers: Vec<&str> = err.errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/format", "/subject", "/to"]);
    }

    #[test]
    fn decisions_render_as_json_lines_or_quoted_csv_rows() {
        let decision = DecisionRecord {
            decision_id: "d1".into(),
            at_ms: 5,
            tenant: "acme".into(),
            subject: "key:1".into(),
            allowed: false,
            reasons: vec!["no, never".into()],
            revision: "r1".into(),
            input: json!({"a": 1}),
            input_digest: Some("abc".into()),
        };
        let line = render(std::slice::from_ref(&decision), ExportFormat::JsonLines);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(line.trim_end()).unwrap(),
            json!({"decision_id": "d1", "at_ms": 5, "tenant": "acme", "subject": "key:1",
                   "allowed": false, "reasons": ["no, never"], "revision": "r1",
                   "input": {"a": 1}})
        );
        assert_eq!(
            render(&[decision], ExportFormat::Csv),
            "d1,5,acme,key:1,false,\"[\"\"no, never\"\"]\",r1,\"{\"\"a\"\":1}\"\r\n"
        );
    }
}
