//! What Salesforce's answers mean beyond their status: its error bodies
//! (`[{"message", "errorCode"}]`), its usage header, its field types and its dateTimes.

use reqwest::StatusCode;
use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::http::{Headers, RateHeaders, Usage, Verdict};

/// The daily API allowance of the smallest org (Developer Edition). The limiter's refill rate
/// is fixed when the connection is built, before any answer states the org's own allowance,
/// so it assumes the smallest: past 80 % of the org's allowance the connection slows to what
/// a 15,000-call day regains, leaving the rest of the day's calls to the org's other clients.
const SMALLEST_DAILY_ALLOWANCE: f64 = 15_000.0;

/// `Sforce-Limit-Info: api-usage=<used>/<max>`, the org's calls in the last 24 hours.
pub(super) const RATE_HEADERS: RateHeaders = RateHeaders {
    read: api_usage,
    refill_per_second: SMALLEST_DAILY_ALLOWANCE / 86_400.0,
};

fn api_usage(headers: &Headers) -> Option<Usage> {
    headers
        .get("sforce-limit-info")?
        .split(',')
        .find_map(|part| part.trim().strip_prefix("api-usage="))
        .and_then(Usage::fraction)
}

/// The first `errorCode` of an error body.
fn error_code(body: &Value) -> Option<&str> {
    body.get(0)?.get("errorCode")?.as_str()
}

/// Answers the status alone misjudges: the org's daily limit is a 403
/// `REQUEST_LIMIT_EXCEEDED` (a rate limit, not a refused credential), and a 400 carries
/// Salesforce's reason, which [`refusal`] turns into the error (an unknown field, a bad
/// replication date).
pub(super) fn classify(status: StatusCode, body: &Value) -> Option<Verdict> {
    match (status.as_u16(), error_code(body)) {
        (403, Some("REQUEST_LIMIT_EXCEEDED")) => Some(Verdict::RateLimited),
        (400, Some(_)) => Some(Verdict::Answer),
        _ => None,
    }
}

/// The error of an answer that is not a success (a 404, a 400 [`classify`] let through), or
/// `None` for a success.
pub(super) fn refusal(status: StatusCode, body: &Value, path: &str) -> Option<ProviderError> {
    if status.is_success() {
        return None;
    }
    if status == StatusCode::NOT_FOUND {
        return Some(ProviderError::new(
            ErrorCode::ProviderFailed,
            format!("salesforce has no resource {path}"),
        ));
    }
    let code = error_code(body).unwrap_or("unknown");
    let message = body[0]["message"].as_str().unwrap_or("");
    Some(match code {
        "INVALID_REPLICATION_DATE" => ProviderError::new(
            ErrorCode::ParamsUnprocessable,
            format!(
                "salesforce's deleted-record feed no longer reaches the stream's cursor \
                 ({message}): run a full refresh"
            ),
        ),
        _ => ProviderError::new(
            ErrorCode::ProviderFailed,
            format!("salesforce refused the call ({status}, {code}: {message})"),
        ),
    })
}

/// A JSON Schema type name for a Salesforce field type.
pub(super) fn json_type(kind: &str) -> &'static str {
    match kind {
        "boolean" => "boolean",
        "int" => "integer",
        "double" | "currency" | "percent" => "number",
        "address" | "location" => "object",
        _ => "string",
    }
}

/// A cursor (a `SystemModstamp` or `deletedDate` as Salesforce wrote it:
/// `2026-12-07T02:15:03.123+0000`) as a point in time. Anything else is refused: the value
/// goes into a SOQL query.
pub(super) fn cursor_time(cursor: &Value) -> Result<OffsetDateTime, ProviderError> {
    let salesforce = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]"
    );
    cursor
        .as_str()
        .and_then(|text| {
            OffsetDateTime::parse(text, &salesforce)
                .or_else(|_| OffsetDateTime::parse(text, &Rfc3339))
                .ok()
        })
        .ok_or_else(|| {
            ProviderError::new(
                ErrorCode::ParamsUnprocessable,
                "the stream's cursor is not a Salesforce dateTime; reset the stream",
            )
        })
}

/// A point in time as SOQL and the deleted feed take it (RFC 3339, UTC).
pub(super) fn soql_time(at: OffsetDateTime) -> Result<String, ProviderError> {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| ProviderError::internal(format!("formatting a dateTime: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_usage_header_and_the_daily_limit_are_read() {
        let headers: Headers = [(
            "sforce-limit-info".to_owned(),
            "api-usage=25/15000, per-app-api-usage=2/500(appName=x)".to_owned(),
        )]
        .into();
        assert_eq!(
            api_usage(&headers),
            Some(Usage {
                used: 25.0,
                max: 15000.0
            })
        );
        let limit = json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]);
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &limit),
            Some(Verdict::RateLimited)
        );
        let expired =
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
        assert_eq!(classify(StatusCode::UNAUTHORIZED, &expired), None);
    }
}
