//! The fake's HTTP side: the token endpoint, authentication, the API limit, routing, and the
//! read resources (query, query more, the deleted feed).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::objects::{ObjectDef, describe, describe_global, known, object_def};
use super::{
    ApiError, BATCH_SIZE, DELETE_LOG_DAYS, LOCATORS_KEPT, State, api_error, format_datetime,
    now_ms, parse_datetime, soql,
};

fn reply(status: StatusCode, body: &Value, usage: Option<(u64, u64)>) -> Response<Full<Bytes>> {
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=UTF-8");
    if let Some((used, limit)) = usage {
        response = response.header("sforce-limit-info", format!("api-usage={used}/{limit}"));
    }
    let body = if status == StatusCode::NO_CONTENT {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    response
        .body(Full::new(body))
        .expect("a response from valid parts")
}

fn error_reply(error: &ApiError, usage: Option<(u64, u64)>) -> Response<Full<Bytes>> {
    reply(
        error.status,
        &json!([{"message": error.message, "errorCode": error.code}]),
        usage,
    )
}

pub(super) async fn serve(
    state: &Mutex<State>,
    tokens_issued: &AtomicU64,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut state = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let path = parts.uri.path();
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if path == "/services/oauth2/token" && parts.method == Method::POST {
        let mut form = query;
        form.extend(form_urlencoded::parse(&body).into_owned());
        let (status, answer) = state.grant(&form);
        if status == StatusCode::OK {
            tokens_issued.fetch_add(1, Ordering::SeqCst);
        }
        return reply(status, &answer, None);
    }
    let Some((version, rest)) = path
        .strip_prefix("/services/data/v")
        .and_then(|p| p.split_once('/'))
    else {
        let error = api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
        return error_reply(&error, None);
    };
    if let Err(error) = state.authenticate(&parts.headers) {
        return error_reply(&error, None);
    }
    if state.api_used >= state.options.api_limit {
        let error = api_error(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        );
        return error_reply(&error, Some((state.api_used, state.options.api_limit)));
    }
    state.api_used += 1;
    let usage = Some((state.api_used, state.options.api_limit));
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let call = Call {
        version,
        method: &parts.method,
        headers: &parts.headers,
        query: &query,
        body: &body,
    };
    match state.route(&segments, &call) {
        Ok((status, answer)) => reply(status, &answer, usage),
        Err(error) => error_reply(&error, usage),
    }
}

/// One data API request, parsed as far as routing needs.
struct Call<'a> {
    version: &'a str,
    method: &'a Method,
    headers: &'a HeaderMap,
    query: &'a BTreeMap<String, String>,
    body: &'a [u8],
}

pub(super) type Answer = Result<(StatusCode, Value), ApiError>;

impl State {
    fn grant(&mut self, form: &BTreeMap<String, String>) -> (StatusCode, Value) {
        let field = |name: &str| form.get(name).map(String::as_str);
        let client_ok = field("client_id") == Some(self.options.client_id.as_str());
        let secret_ok = field("client_secret") == Some(self.options.client_secret.as_str());
        let refused = |error: &str, description: &str| {
            (
                StatusCode::BAD_REQUEST,
                json!({"error": error, "error_description": description}),
            )
        };
        match field("grant_type") {
            Some("client_credentials") if !(client_ok && secret_ok) => {
                return refused("invalid_client", "invalid client credentials");
            }
            Some("client_credentials") => {}
            Some("refresh_token") if !client_ok => {
                return refused("invalid_client_id", "client identifier invalid");
            }
            // A connected app's default: "Require Secret for Refresh Token Flow".
            Some("refresh_token") if !secret_ok => {
                return refused("invalid_client", "invalid client credentials");
            }
            Some("refresh_token")
                if self.refresh_revoked
                    || field("refresh_token") != Some(self.options.refresh_token.as_str()) =>
            {
                return refused("invalid_grant", "expired access/refresh token");
            }
            Some("refresh_token") => {}
            _ => return refused("unsupported_grant_type", "grant type not supported"),
        }
        let issued = now_ms();
        self.next_number += 1;
        let token = format!("00DFK0000000001!AR{:08}.{issued}", self.next_number);
        self.tokens.insert(token.clone(), issued);
        (
            StatusCode::OK,
            json!({
                "access_token": token,
                "instance_url": self.url,
                "id": format!("{}/id/00DFK0000000001AAA/005FK0000000001AAA", self.url),
                "token_type": "Bearer",
                "issued_at": issued.to_string(),
                "scope": "api refresh_token",
            }),
        )
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("OAuth "))
            });
        let lifetime = self.options.token_lifetime.as_millis() as i64;
        match token.and_then(|t| self.tokens.get(t)) {
            Some(issued) if now_ms() - issued < lifetime => Ok(()),
            _ => Err(api_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            )),
        }
    }

    fn route(&mut self, segments: &[&str], call: &Call<'_>) -> Answer {
        let get = *call.method == Method::GET;
        let patch = *call.method == Method::PATCH;
        match segments {
            ["query"] if get => {
                let q = call.query.get("q").ok_or_else(|| {
                    api_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", "q is missing")
                })?;
                self.query(q, call)
            }
            ["query", locator] if get => self.query_more(locator, call),
            ["sobjects"] if get => Ok((StatusCode::OK, describe_global())),
            ["sobjects", object, "describe"] if get => {
                Ok((StatusCode::OK, describe(known(object)?)))
            }
            ["sobjects", object, "deleted"] if get => self.deleted(known(object)?, call.query),
            ["sobjects", object, field, value] if patch => {
                self.upsert_one(known(object)?, field, value, call.body)
            }
            ["composite", "sobjects", object, field] if patch => {
                self.upsert_many(known(object)?, field, call.body)
            }
            _ => Err(api_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The requested resource does not exist",
            )),
        }
    }

    fn query(&mut self, q: &str, call: &Call<'_>) -> Answer {
        let soql = soql::Soql::parse(q)?;
        let def = object_def(&soql.object).ok_or_else(|| {
            api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_TYPE",
                format!("sObject type '{}' is not supported.", soql.object),
            )
        })?;
        let records = soql.run(def, &self.tables[def.name], call.version)?;
        self.next_number += 1;
        let locator = self.next_number;
        self.locators.insert(locator, records);
        while self.locators.len() > LOCATORS_KEPT {
            self.locators.pop_first();
        }
        self.page(locator, 0, call)
    }

    fn query_more(&mut self, locator: &str, call: &Call<'_>) -> Answer {
        let invalid = || {
            api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY_LOCATOR",
                "invalid query locator",
            )
        };
        let (id, offset) = locator.rsplit_once('-').ok_or_else(invalid)?;
        let id: u64 = id
            .strip_prefix("01gFK")
            .and_then(|n| n.parse().ok())
            .ok_or_else(invalid)?;
        let offset: usize = offset.parse().map_err(|_| invalid())?;
        if !self.locators.contains_key(&id) {
            return Err(invalid());
        }
        self.page(id, offset, call)
    }

    fn page(&self, locator: u64, offset: usize, call: &Call<'_>) -> Answer {
        let batch = call
            .headers
            .get("sforce-query-options")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("batchSize="))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (200..=BATCH_SIZE).contains(n))
            .unwrap_or(BATCH_SIZE);
        let records = &self.locators[&locator];
        let end = (offset + batch).min(records.len());
        let page = records.get(offset..end).unwrap_or_default();
        let mut answer =
            json!({"totalSize": records.len(), "done": end >= records.len(), "records": page});
        if end < records.len() {
            answer["nextRecordsUrl"] = format!(
                "/services/data/v{}/query/01gFK{locator:013}-{end}",
                call.version
            )
            .into();
        }
        Ok((StatusCode::OK, answer))
    }

    fn deleted(&self, def: &ObjectDef, query: &BTreeMap<String, String>) -> Answer {
        let minute = 60_000;
        let at = |name: &str| {
            query
                .get(name)
                .and_then(|t| parse_datetime(t))
                .map(|ms| ms - ms.rem_euclid(minute))
                .ok_or_else(|| {
                    api_error(
                        StatusCode::BAD_REQUEST,
                        "MISSING_ARGUMENT",
                        format!("{name} is missing or not a dateTime"),
                    )
                })
        };
        let (start, end) = (at("start")?, at("end")?);
        // The fake's own now: its clock runs ahead of the wall clock when it stamped several
        // changes within one millisecond.
        let now = now_ms().max(self.clock);
        if start >= end || start < now - DELETE_LOG_DAYS * 24 * 3600 * 1000 {
            return Err(api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_REPLICATION_DATE",
                "startDate must precede endDate and lie within the last 30 days",
            ));
        }
        let covered = end.min(now + 1);
        let deleted: Vec<Value> = self
            .delete_log
            .iter()
            .filter(|(object, _, at)| *object == def.name && *at >= start && *at < covered)
            .map(|(_, id, at)| json!({"id": id, "deletedDate": format_datetime(*at)}))
            .collect();
        Ok((
            StatusCode::OK,
            json!({
                "deletedRecords": deleted,
                "earliestDateAvailable": format_datetime(self.started - self.started.rem_euclid(minute)),
                "latestDateCovered": format_datetime(covered),
            }),
        ))
    }
}
