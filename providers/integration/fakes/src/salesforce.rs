//! A fake Salesforce REST API (see the crate docs), following developer.salesforce.com's REST
//! API guide for what the `integration/salesforce` connector uses:
//!
//! - `POST /services/oauth2/token`, `grant_type=client_credentials` or `refresh_token` (form
//!   body or query string): `{access_token, instance_url, id, token_type, issued_at, scope}`
//!   (`issued_at` in milliseconds, no `expires_in`: Salesforce sends none); a wrong client or a
//!   revoked refresh token answers 400 `{"error": "invalid_grant", ...}`.
//! - every data call needs `Authorization: Bearer <token>`; an unknown or expired token answers
//!   401 `[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]`. Each
//!   answer carries `Sforce-Limit-Info: api-usage=<used>/<limit>`; past the limit, 403
//!   `REQUEST_LIMIT_EXCEEDED`.
//! - `GET /services/data/vXX.X/sobjects` (describe global), `.../sobjects/<Object>/describe`,
//!   `.../sobjects/<Object>/deleted/?start=&end=` (the API ignores seconds: both are cut to
//!   the minute; `INVALID_REPLICATION_DATE` when `start` is not before `end` or older than 30
//!   days).
//! - `GET .../query?q=<SOQL>` and `GET .../query/<locator>-<offset>` (`nextRecordsUrl`):
//!   pages of 2,000 records (or `Sforce-Query-Options: batchSize=n`, 200..2000), from a
//!   snapshot taken when the query ran, as a query locator is. The SOQL subset: `SELECT f, ...
//!   FROM Object [WHERE <datetime field> <op> <datetime literal>] [ORDER BY f [ASC|DESC], ...]
//!   [LIMIT n]`.
//! - upsert by external id: `PATCH .../sobjects/<Object>/<Field>/<value>` (201 `{id, success,
//!   errors, created: true}` or 204) and sObject Collections `PATCH
//!   .../composite/sobjects/<Object>/<Field>` (`{allOrNone, records}` -> 200 `[{id, success,
//!   errors, created}]`, all rolled back when `allOrNone` and one fails).
//!
//! Seeded Accounts, Contacts and Opportunities carry a custom external id field
//! `External_Id__c` (`ACC-<n>`, `CON-<n>`, `OPP-<n>`) and a custom `Tier__c` on Account. A
//! record's `SystemModstamp` comes from a clock that follows real time and never repeats a
//! millisecond, so an incremental read's order is total. Not modelled: the token answer's
//! `signature`, field-level types of written values, sharing.

mod objects;
mod server;
mod soql;
mod upsert;

use objects::{OBJECTS, object_def};
use server::serve;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper::StatusCode;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How many records one query page holds unless the caller asks for fewer.
pub const BATCH_SIZE: usize = 2000;
/// How far back the deleted-record feed reaches.
const DELETE_LOG_DAYS: i64 = 30;
/// Query locators kept for `nextRecordsUrl` (the oldest is forgotten first).
const LOCATORS_KEPT: usize = 16;

/// How the fake starts.
#[derive(Debug, Clone)]
pub struct Options {
    pub accounts: usize,
    pub contacts: usize,
    pub opportunities: usize,
    pub client_id: String,
    pub client_secret: String,
    /// The one refresh token the fake accepts (until [`FakeSalesforce::revoke_refresh_token`]).
    pub refresh_token: String,
    /// How long an access token is good for (Salesforce's default session timeout: 2 hours).
    pub token_lifetime: Duration,
    /// The org's daily API request limit (`api-usage=<used>/<limit>`).
    pub api_limit: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            accounts: 5,
            contacts: 5,
            opportunities: 5,
            client_id: "3MVG9fake.client".into(),
            client_secret: "fake-client-secret".into(),
            refresh_token: "5Aep861fake.refresh".into(),
            token_lifetime: Duration::from_secs(2 * 3600),
            api_limit: 15_000,
        }
    }
}

/// An error as the REST API answers it: `[{message, errorCode}]`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn api_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

struct State {
    options: Options,
    url: String,
    /// Object name -> record id -> the record's fields.
    tables: HashMap<&'static str, BTreeMap<String, Map<String, Value>>>,
    /// (object, id, deletedDate in ms).
    delete_log: Vec<(&'static str, String, i64)>,
    /// Access token -> when it was issued (ms).
    tokens: HashMap<String, i64>,
    refresh_revoked: bool,
    api_used: u64,
    locators: BTreeMap<u64, Vec<Value>>,
    next_number: u64,
    /// The last timestamp handed out (ms since the epoch).
    clock: i64,
    started: i64,
}

/// A running fake Salesforce org on 127.0.0.1; dropped, it stops.
pub struct FakeSalesforce {
    url: String,
    state: Arc<Mutex<State>>,
    calls: Arc<AtomicU64>,
    tokens_issued: Arc<AtomicU64>,
    server: JoinHandle<()>,
}

impl Drop for FakeSalesforce {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Salesforce's dateTime format in JSON answers: `2026-12-07T02:15:03.123+0000`.
pub fn format_datetime(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    at.format(&format).unwrap_or_default()
}

/// A SOQL or query-parameter dateTime (`2026-12-07T02:15:03Z`, `...03.123+00:00`), in ms.
fn parse_datetime(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

impl FakeSalesforce {
    /// Starts the fake on a free port of 127.0.0.1 with the seeded records of `options`.
    pub async fn start(options: Options) -> std::io::Result<FakeSalesforce> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr: SocketAddr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let seeded = options.accounts + options.contacts + options.opportunities;
        let started = now_ms();
        let mut state = State {
            url: url.clone(),
            tables: OBJECTS.iter().map(|o| (o.name, BTreeMap::new())).collect(),
            delete_log: Vec::new(),
            tokens: HashMap::new(),
            refresh_revoked: false,
            api_used: 0,
            locators: BTreeMap::new(),
            next_number: 0,
            // Seeded records are stamped in the past, one millisecond apart.
            clock: started - seeded as i64 - 1,
            started,
            options,
        };
        for (object, count) in [
            ("Account", state.options.accounts),
            ("Contact", state.options.contacts),
            ("Opportunity", state.options.opportunities),
        ] {
            state.add(object, count);
        }
        let state = Arc::new(Mutex::new(state));
        let calls = Arc::new(AtomicU64::new(0));
        let tokens_issued = Arc::new(AtomicU64::new(0));
        let shared = (state.clone(), calls.clone(), tokens_issued.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = shared.clone();
                        async move {
                            shared.1.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(serve(&shared.0, &shared.2, request).await)
                        }
                    });
                    // A connection the client drops mid-request is no concern of the fake.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(FakeSalesforce {
            url,
            state,
            calls,
            tokens_issued,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`: the login URL, and the `instance_url` tokens name.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests served, of every kind (token requests included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Access tokens granted.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens_issued.load(Ordering::SeqCst)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every access token granted so far stops working (a session timeout, a logout).
    pub fn expire_tokens(&self) {
        self.state().tokens.clear();
    }

    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().options.token_lifetime = lifetime;
    }

    /// The refresh token stops working (the user revoked the connected app).
    pub fn revoke_refresh_token(&self) {
        self.state().refresh_revoked = true;
    }

    /// Sets the org's API usage (`used` of `limit` daily requests).
    pub fn set_api_usage(&self, used: u64, limit: u64) {
        let mut state = self.state();
        state.api_used = used;
        state.options.api_limit = limit;
    }

    /// Adds `count` generated records to `object` and answers their ids.
    pub fn add(&self, object: &str, count: usize) -> Vec<String> {
        self.state().add(object, count)
    }

    /// Changes fields of a record, as a user in Salesforce would; answers its new
    /// `SystemModstamp`, or `None` when there is no such record.
    pub fn update(&self, object: &str, id: &str, fields: Value) -> Option<String> {
        let mut state = self.state();
        let stamp = state.stamp();
        let record = state.table(object)?.get_mut(id)?;
        if let Value::Object(fields) = fields {
            record.extend(fields);
        }
        touch(record, stamp);
        Some(format_datetime(stamp))
    }

    /// Deletes a record (into the delete log); answers its `deletedDate`.
    pub fn delete(&self, object: &str, id: &str) -> Option<String> {
        let mut state = self.state();
        let stamp = state.stamp();
        let def = object_def(object)?;
        state.table(object)?.remove(id)?;
        state.delete_log.push((def.name, id.to_owned(), stamp));
        Some(format_datetime(stamp))
    }

    /// A record as stored (no `attributes`).
    pub fn record(&self, object: &str, id: &str) -> Option<Value> {
        let mut state = self.state();
        Some(Value::Object(state.table(object)?.get(id)?.clone()))
    }

    /// The records of `object`, oldest `SystemModstamp` first.
    pub fn records(&self, object: &str) -> Vec<Value> {
        let mut state = self.state();
        let Some(table) = state.table(object) else {
            return Vec::new();
        };
        let mut records: Vec<Value> = table.values().cloned().map(Value::Object).collect();
        records.sort_by(|a, b| soql::compare(&a["SystemModstamp"], &b["SystemModstamp"]));
        records
    }
}

/// Marks a record changed at `stamp`.
fn touch(record: &mut Map<String, Value>, stamp: i64) {
    let at = Value::String(format_datetime(stamp));
    record.insert("LastModifiedDate".into(), at.clone());
    record.insert("SystemModstamp".into(), at);
}
