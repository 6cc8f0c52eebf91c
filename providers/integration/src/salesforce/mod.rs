//! `integration/salesforce`: Accounts, Contacts and Opportunities of one Salesforce org through
//! its REST API (see `docs.md`).
//!
//! - discover: `sobjects/<Object>/describe`, so custom fields (`__c`) appear.
//! - read: SOQL `SELECT <every described field> FROM <Object> [WHERE SystemModstamp >= <cursor>]
//!   ORDER BY SystemModstamp ASC`, paged by the answer's `nextRecordsUrl` (the page token).
//!   `SystemModstamp` rather than `LastModifiedDate`: it also moves when a system process
//!   changes a record, and it is indexed.
//! - deletes: the deleted-record feed `sobjects/<Object>/deleted/?start=&end=`.
//! - upsert: sObject Collections by external id (`PATCH composite/sobjects/<Object>/<Field>`,
//!   up to 200 records a call, the contract's own bound: one call per upsert), `allOrNone`,
//!   so a record Salesforce refuses leaves the whole batch unwritten and is named in the error.
//! - no inbound webhooks: Salesforce's outbound messages are SOAP; `receive` is not served.

mod config;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::{Method, Url};
use serde_json::{Value, json};
use switchyard_contracts::SchemaError;
use switchyard_spi::{ErrorCode, Host, ProviderError, ProviderFactory};
use time::{Duration, OffsetDateTime};

pub(crate) use config::SalesforceConfig;
use wire::{RATE_HEADERS, classify, cursor_time, json_type, refusal, soql_time};

use crate::connector::{
    Connect, Connector, DeletedPage, Deletes, Field, Link, Page, ReadFrom, Stream, Upserted,
};
use crate::http::{Api, Auth, Grant, OAuth2, Secret};
use crate::sync;

/// What the engine serves: everything but `receive` (Salesforce's outbound messages are SOAP).
const ACTIONS: &[&str] = &[
    "discover", "check", "sync", "remap", "upsert", "state", "reset",
];

/// `integration/salesforce`, always hosted: it calls no org until a tenant configures one.
pub(crate) fn builtin(host: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    sync::builtin::<Salesforce>(
        host,
        sync::About {
            summary: "Salesforce Accounts, Contacts and Opportunities (REST API): incremental \
                      syncs by SystemModstamp with custom fields from describe, deletes from the \
                      deleted-record feed, upsert by external id; OAuth2 client credentials or \
                      refresh token.",
            capabilities: &[
                "incremental",
                "full_refresh",
                "deleted_feed",
                "upsert",
                "oauth2",
            ],
            actions: ACTIONS,
        },
    )
}

/// The objects served, each a stream of the same name.
const STREAMS: [&str; 3] = ["Account", "Contact", "Opportunity"];
const PRIMARY_KEY: &str = "Id";
const CURSOR_FIELD: &str = "SystemModstamp";
/// How far back the deleted-record feed answers.
const DELETE_LOG_DAYS: i64 = 30;
/// Compound fields (`BillingAddress`): their parts are fields of their own, and not every API
/// version lets SOQL select the compound.
const COMPOUND_TYPES: [&str; 2] = ["address", "location"];

/// One org, for one tenant.
pub(crate) struct Salesforce {
    /// Holds the OAuth2 tokens (refreshed once on a 401 `INVALID_SESSION_ID`), the limiter
    /// following `Sforce-Limit-Info`, and the retries.
    api: Api,
    /// Where data calls go when the token answer names no `instance_url`.
    login_url: Url,
    /// `/services/data/v60.0`.
    data_path: String,
    /// Object -> its fields, from describe (read builds its SELECT from them).
    described: Mutex<HashMap<String, Arc<Vec<Described>>>>,
}

/// A field as describe answers it.
#[derive(Debug, Clone)]
struct Described {
    name: String,
    /// Salesforce's type (`string`, `datetime`, `currency`, `address`, ...).
    kind: String,
}

impl Connect for Salesforce {
    type Config = SalesforceConfig;

    fn settings(config: &SalesforceConfig) -> &crate::sync::Settings {
        &config.sync
    }

    fn connect(config: SalesforceConfig, link: Link) -> Result<Self, ProviderError> {
        let login_url = Url::parse(&config.login_url).map_err(|_| {
            ProviderError::field(
                ErrorCode::ConfigUnprocessable,
                "/login_url",
                "not a URL the URL standard accepts",
            )
        })?;
        link.egress
            .check_url(&login_url)
            .map_err(|refusal| refusal.at("/login_url"))?;
        let grant = OAuth2 {
            token_url: login_url
                .join("/services/oauth2/token")
                .map_err(|e| ProviderError::internal(format!("token URL: {e}")))?,
            client_id: config.client_id,
            client_secret: Some(Secret(config.client_secret)),
            grant: match config.refresh_token {
                Some(token) => Grant::RefreshToken(Secret(token)),
                None => Grant::ClientCredentials,
            },
            scopes: Vec::new(),
            credentials_in_body: true,
        };
        let auth = Auth::OAuth2 {
            grant,
            tokens: link.tokens,
        };
        Ok(Salesforce {
            api: Api::new("salesforce", link.egress, auth)?
                .with_classify(classify)
                .with_rate_headers(RATE_HEADERS),
            login_url,
            data_path: format!("/services/data/v{}", config.api_version),
            described: Mutex::new(HashMap::new()),
        })
    }
}

fn unknown_stream(stream: &str) -> ProviderError {
    ProviderError::field(
        ErrorCode::ParamsUnprocessable,
        "/stream",
        format!(
            "integration/salesforce has no stream {stream:?}; it has {}",
            STREAMS.join(", ")
        ),
    )
}

fn known_stream(stream: &str) -> Result<&'static str, ProviderError> {
    STREAMS
        .into_iter()
        .find(|s| *s == stream)
        .ok_or_else(|| unknown_stream(stream))
}

fn unexpected(what: &str) -> ProviderError {
    ProviderError::new(
        ErrorCode::ProviderFailed,
        format!("salesforce answered {what} in an unexpected shape"),
    )
}

impl Salesforce {
    /// The URL of `path` (and `query`) on the org's instance: the `instance_url` of the
    /// connection's token (obtained first on a new connection).
    async fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, ProviderError> {
        let instance = match self.api.instance_url().await? {
            Some(url) => Url::parse(&url)
                .ok()
                .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
                .ok_or_else(|| unexpected("a token with an instance_url"))?,
            None => self.login_url.clone(),
        };
        let mut url = instance
            .join(path)
            .map_err(|e| ProviderError::internal(format!("salesforce URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// A GET on the org's instance, answered only when it succeeded.
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ProviderError> {
        let url = self.url(path, query).await?;
        let answer = self.api.send(Method::GET, url, None).await?;
        match refusal(answer.status, &answer.body, path) {
            Some(error) => Err(error),
            None => Ok(answer.body),
        }
    }

    /// The fields of `object`, from describe (once per connection).
    async fn described(&self, object: &str) -> Result<Arc<Vec<Described>>, ProviderError> {
        let cached = self
            .described
            .lock()
            .ok()
            .and_then(|m| m.get(object).cloned());
        if let Some(fields) = cached {
            return Ok(fields);
        }
        let path = format!("{}/sobjects/{object}/describe", self.data_path);
        let answer = self.get(&path, &[]).await?;
        let fields: Vec<Described> = answer["fields"]
            .as_array()
            .ok_or_else(|| unexpected("describe"))?
            .iter()
            .filter_map(|f| {
                Some(Described {
                    name: f["name"].as_str()?.to_owned(),
                    kind: f["type"].as_str()?.to_owned(),
                })
            })
            .collect();
        let fields = Arc::new(fields);
        if let Ok(mut cache) = self.described.lock() {
            cache.insert(object.to_owned(), fields.clone());
        }
        Ok(fields)
    }

    /// The first query of a read.
    async fn query(&self, object: &str, since: Option<&Value>) -> Result<Value, ProviderError> {
        let fields = self.described(object).await?;
        let select: Vec<&str> = fields
            .iter()
            .filter(|f| !COMPOUND_TYPES.contains(&f.kind.as_str()))
            .map(|f| f.name.as_str())
            .collect();
        let filter = match since {
            Some(cursor) => format!(
                " WHERE {CURSOR_FIELD} >= {}",
                soql_time(cursor_time(cursor)?)?
            ),
            None => String::new(),
        };
        let soql = format!(
            "SELECT {} FROM {object}{filter} ORDER BY {CURSOR_FIELD} ASC",
            select.join(", ")
        );
        let path = format!("{}/query", self.data_path);
        self.get(&path, &[("q", &soql)]).await
    }
}

#[async_trait]
impl Connector for Salesforce {
    const NAME: &'static str = "salesforce";

    async fn discover(&self) -> Result<Vec<Stream>, ProviderError> {
        let mut streams = Vec::with_capacity(STREAMS.len());
        for object in STREAMS {
            let fields = self.described(object).await?;
            streams.push(Stream {
                name: object.to_owned(),
                primary_key: PRIMARY_KEY.to_owned(),
                cursor_field: Some(CURSOR_FIELD.to_owned()),
                deletes: Deletes::Feed,
                fields: fields
                    .iter()
                    .map(|f| Field {
                        name: f.name.clone(),
                        kind: json_type(&f.kind).to_owned(),
                    })
                    .collect(),
            });
        }
        Ok(streams)
    }

    async fn check(&self) -> Result<(), ProviderError> {
        let path = format!("{}/sobjects", self.data_path);
        self.get(&path, &[]).await.map(drop)
    }

    async fn read(&self, stream: &str, from: ReadFrom<'_>) -> Result<Page, ProviderError> {
        let object = known_stream(stream)?;
        let answer = match from.page {
            // A `nextRecordsUrl` is a path on the instance; nothing else is followed.
            Some(next)
                if next.starts_with(&format!("{}/query/", self.data_path))
                    && !next.contains("//") =>
            {
                self.get(next, &[]).await?
            }
            Some(_) => {
                return Err(ProviderError::new(
                    ErrorCode::ParamsUnprocessable,
                    "the page token is not a Salesforce nextRecordsUrl of this connection",
                ));
            }
            None => self.query(object, from.since).await?,
        };
        let mut body = answer;
        let Value::Array(records) = body["records"].take() else {
            return Err(unexpected("a query"));
        };
        let next_page = match (body["done"].as_bool(), body["nextRecordsUrl"].as_str()) {
            (Some(false), Some(next)) => Some(next.to_owned()),
            (Some(true), _) => None,
            _ => return Err(unexpected("a query")),
        };
        Ok(Page { records, next_page })
    }

    async fn read_deleted(
        &self,
        stream: &str,
        from: ReadFrom<'_>,
    ) -> Result<DeletedPage, ProviderError> {
        let object = known_stream(stream)?;
        let now = OffsetDateTime::now_utc();
        let oldest = now - Duration::days(DELETE_LOG_DAYS) + Duration::minutes(1);
        let start = match from.since {
            Some(cursor) => cursor_time(cursor)?,
            None => oldest,
        };
        if start < oldest {
            return Err(ProviderError::new(
                ErrorCode::ParamsUnprocessable,
                format!(
                    "salesforce answers deletions of the last {DELETE_LOG_DAYS} days only and the \
                     stream's cursor is older: run a full refresh"
                ),
            ));
        }
        if start >= now {
            // A cursor in the future: nothing can have been deleted after it yet.
            return Ok(DeletedPage::default());
        }
        // The feed ignores seconds: an end one minute ahead covers deletions up to now.
        let (start, end) = (soql_time(start)?, soql_time(now + Duration::minutes(1))?);
        let path = format!("{}/sobjects/{object}/deleted/", self.data_path);
        let answer = self.get(&path, &[("start", &start), ("end", &end)]).await?;
        let deleted = answer["deletedRecords"]
            .as_array()
            .ok_or_else(|| unexpected("the deleted feed"))?
            .iter()
            .map(|d| match (d["id"].as_str(), &d["deletedDate"]) {
                (Some(id), Value::String(_)) => Ok(id.to_owned()),
                _ => Err(unexpected("the deleted feed")),
            })
            .collect::<Result<_, _>>()?;
        Ok(DeletedPage {
            deleted,
            next_page: None,
        })
    }

    async fn upsert(
        &self,
        stream: &str,
        external_id_field: &str,
        records: &[Value],
    ) -> Result<Vec<Upserted>, ProviderError> {
        let object = known_stream(stream)?;
        let field_ok = external_id_field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && external_id_field.starts_with(|c: char| c.is_ascii_alphabetic());
        if !field_ok {
            return Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                "/external_id_field",
                "not a Salesforce field name",
            ));
        }
        let mut external_ids = Vec::with_capacity(records.len());
        let mut body = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let external_id = match &record[external_id_field] {
                Value::String(s) if !s.is_empty() => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(ProviderError::field(
                        ErrorCode::ParamsUnprocessable,
                        &format!("/records/{i}/{external_id_field}"),
                        "the record has no external id (a non-empty string or a number)",
                    ));
                }
            };
            let mut record = record.clone();
            record["attributes"] = json!({"type": object});
            body.push(record);
            external_ids.push(external_id);
        }
        let path = format!(
            "{}/composite/sobjects/{object}/{external_id_field}",
            self.data_path
        );
        let url = self.url(&path, &[]).await?;
        let body = json!({"allOrNone": true, "records": body});
        // Sent again after an ambiguous failure: an upsert by external id is idempotent.
        let answer = self
            .api
            .call(Method::PATCH, url)
            .json(&body)
            .replay_safe()
            .send()
            .await?;
        if let Some(error) = refusal(answer.status, &answer.body, &path) {
            return Err(error);
        }
        let results = answer
            .body
            .as_array()
            .filter(|r| r.len() == records.len())
            .ok_or_else(|| unexpected("an upsert"))?;
        // With allOrNone, one refused record rolls every other back: name the first refusal
        // that is not a rollback.
        let refused = results.iter().enumerate().find(|(_, r)| {
            r["success"] != Value::Bool(true)
                && r["errors"][0]["statusCode"] != "ALL_OR_NONE_OPERATION_ROLLED_BACK"
        });
        if let Some((i, result)) = refused {
            let error = &result["errors"][0];
            return Err(ProviderError::field(
                ErrorCode::ParamsUnprocessable,
                &format!("/records/{i}"),
                format!(
                    "salesforce refused the record ({}: {}); no record was written",
                    error["statusCode"].as_str().unwrap_or("unknown"),
                    error["message"].as_str().unwrap_or("")
                ),
            ));
        }
        results
            .iter()
            .zip(external_ids)
            .map(|(result, external_id)| {
                match (result["id"].as_str(), result["created"].as_bool()) {
                    (Some(id), Some(created)) => Ok(Upserted {
                        external_id,
                        id: id.to_owned(),
                        created,
                    }),
                    _ => Err(unexpected("an upsert")),
                }
            })
            .collect()
    }
}
