//! The admin console, served by the gateway under `/console`: the provider catalog and tenant
//! ops for a tenant's users, and the tenants' plane for platform operators.
//!
//! Pages are rendered on the server (maud) and work without JavaScript; the one script only
//! refreshes the provider chart and filters the catalog as you type. The console holds no
//! privilege of its own: a user signs in with an API key, an OIDC access token or an
//! operator key (`syop_…`), the console keeps it in memory behind a session cookie, and every
//! page is built from the gateway's public API called with that credential ([`api`]). What a
//! role may do is decided there, by the key's scopes and the policy engine — an operator who
//! posts the admin-only form directly gets the same `policy_denied` the page would have shown,
//! and a tenant's key gets `operator_only` from every `/admin` route.

mod admin;
mod api;
mod audit;
mod chart;
mod form;
mod history;
mod pages;
mod providers;
mod tasks;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use moka::future::Cache;
use rand::RngCore;

use api::{Api, Refusal};

/// The session cookie: `HttpOnly` (no script reads it) and `SameSite=Strict` (no other site
/// can make a browser send it), scoped to the console's path.
const COOKIE: &str = "sy_console";
/// A session ends after this long without a request.
const IDLE: Duration = Duration::from_secs(8 * 3600);
const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

/// One request for a console page, as the gateway read it.
pub struct Request {
    pub method: Method,
    /// The path, starting with `/console`.
    pub path: String,
    pub query: Option<String>,
    pub cookie: Option<String>,
    /// A url-encoded form, for POSTs.
    pub body: Bytes,
    /// Where the gateway's API answers: the listener this request came in on.
    pub api_base: String,
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Response {
    fn html(status: u16, page: maud::Markup) -> Self {
        Response {
            status,
            headers: vec![
                ("content-type", "text/html; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
                (
                    "content-security-policy",
                    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'".into(),
                ),
            ],
            body: Bytes::from(page.into_string()),
        }
    }

    fn redirect(to: &str) -> Self {
        Response {
            status: 303,
            headers: vec![("location", to.into())],
            body: Bytes::new(),
        }
    }

    /// A file the browser saves (an export), named `filename`.
    fn download(content_type: &str, filename: &str, body: String) -> Self {
        Response {
            status: 200,
            headers: vec![
                ("content-type", content_type.into()),
                ("cache-control", "no-store".into()),
                (
                    "content-disposition",
                    format!("attachment; filename=\"{filename}\""),
                ),
            ],
            body: Bytes::from(body),
        }
    }

    fn asset(content_type: &str, body: &'static str) -> Self {
        Response {
            status: 200,
            headers: vec![
                ("content-type", content_type.into()),
                ("cache-control", "max-age=300".into()),
            ],
            body: Bytes::from_static(body.as_bytes()),
        }
    }
}

/// The prefix of a platform operator's key (`syop_<id>_<secret>`): such a key opens the
/// operator's pages, and only those.
const OPERATOR_PREFIX: &str = "syop_";

/// What the signed-in user can use, as the gateway answered at sign-in: the navigation offers
/// those pages only. It hides links, nothing more: each page is still the API's answer to the
/// user's own credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A platform operator: the tenants' plane (`/admin/*`).
    Operator,
    /// A tenant's user; `admin` when `GET /secrets` was allowed (config history, secrets),
    /// `audit` when `GET /audit/log` was (audit log, decisions).
    Tenant { admin: bool, audit: bool },
}

/// A signed-in user: the credential every API call carries, and the form token that proves
/// a POST came from a console page.
pub struct Session {
    credential: String,
    csrf: String,
    role: Role,
    /// Chart samples per provider (`domain/name`).
    samples: Mutex<Vec<(String, VecDeque<chart::Sample>)>>,
    /// The outcome of the last form, for the page it redirected to ([`Page::after`]).
    flash: Mutex<Option<(String, pages::Notice)>>,
}

impl Session {
    /// What the pages may show of who is signed in: a key's id, never its secret.
    fn label(&self) -> String {
        let id = |prefix: &str| {
            self.credential
                .strip_prefix(prefix)
                .and_then(|r| r.split_once('_'))
                .map(|(id, _)| id.to_owned())
        };
        match (id(OPERATOR_PREFIX), id("sy_")) {
            (Some(id), _) => format!("operator key {id}"),
            (None, Some(id)) => format!("key {id}"),
            (None, None) => "OIDC token".into(),
        }
    }

    fn ctx<'a>(&'a self, base: &'a str) -> pages::Ctx<'a> {
        pages::Ctx {
            who: self.label(),
            csrf: &self.csrf,
            base,
            role: self.role,
        }
    }

    /// Where the user starts: the first page their role can use.
    fn home(&self) -> &'static str {
        match self.role {
            Role::Operator => "/console/admin/tenants",
            Role::Tenant { .. } => "/console/catalog",
        }
    }
}

pub struct Console {
    /// Built on the first page asked for: its TLS setup (the system's CA bundle) is about
    /// 0.8 MB a gateway nobody signs in to would hold for nothing (ADR 39).
    http: OnceLock<reqwest::Client>,
    sessions: Cache<String, Arc<Session>>,
}

impl Default for Console {
    fn default() -> Self {
        Console {
            http: OnceLock::new(),
            sessions: Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(IDLE)
                .build(),
        }
    }
}

impl Console {
    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default()
        })
    }

    pub async fn handle(&self, request: Request) -> Response {
        let path = request.path.trim_end_matches('/').to_owned();
        let segments: Vec<&str> = path.split('/').skip(2).collect();
        match (&request.method, segments.as_slice()) {
            (&Method::GET, ["assets", "console.css"]) => {
                return Response::asset("text/css; charset=utf-8", CSS);
            }
            (&Method::GET, ["assets", "console.js"]) => {
                return Response::asset("text/javascript; charset=utf-8", JS);
            }
            (&Method::GET, [] | [""]) => {
                return match self.session(&request).await {
                    Some(session) => Response::redirect(session.home()),
                    None => Response::html(200, pages::sign_in(None)),
                };
            }
            (&Method::POST, ["sign-in"]) => return self.sign_in(&request).await,
            _ => {}
        }
        let Some(session) = self.session(&request).await else {
            return Response::redirect("/console");
        };
        let form = parse_form(&request.body);
        if request.method == Method::POST
            && form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v) != Some(&session.csrf)
        {
            return Response::html(
                403,
                pages::message(
                    &session.ctx(&request.api_base),
                    "Refused",
                    "This form was not sent from a page of this console session.",
                ),
            );
        }
        let api = Api {
            http: self.http(),
            base: &request.api_base,
            credential: &session.credential,
        };
        let page = Page {
            api,
            session: &session,
        };
        let query = parse_form(request.query.as_deref().unwrap_or("").as_bytes());
        match (&request.method, segments.as_slice()) {
            (&Method::POST, ["sign-out"]) => {
                if let Some(token) = cookie_token(&request) {
                    self.sessions.invalidate(&token).await;
                }
                Response {
                    status: 303,
                    headers: vec![
                        ("location", "/console".into()),
                        (
                            "set-cookie",
                            format!(
                                "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
                            ),
                        ),
                    ],
                    body: Bytes::new(),
                }
            }
            (&Method::GET, ["catalog"]) => page.catalog(&query).await,
            (&Method::GET, ["providers", d, n]) => page.provider(d, n, None).await,
            (&Method::POST, ["providers", d, n, "configure"]) => page.configure(d, n, &form).await,
            (&Method::POST, ["providers", d, n, op @ ("start" | "stop" | "rotate")]) => {
                page.lifecycle(d, n, op).await
            }
            (&Method::GET, ["providers", d, n, "chart.svg"]) => page.chart(d, n).await,
            (&Method::GET, ["try", d, n, action]) => page.try_it(d, n, action, None).await,
            (&Method::POST, ["try", d, n, action]) => page.try_it(d, n, action, Some(&form)).await,
            (&Method::GET, ["schemas"]) => page.schemas().await,
            (&Method::GET, ["tenant"]) => page.tenant(None).await,
            (&Method::POST, ["tenant", "keys"]) => page.create_key(&form).await,
            (&Method::POST, ["tenant", "keys", id, "revoke"]) => page.revoke_key(id).await,
            (&Method::GET, ["providers", d, n, "history"]) => page.history(d, n).await,
            (&Method::POST, ["providers", d, n, "history", "rollback"]) => {
                page.rollback(d, n, &form).await
            }
            (&Method::GET, ["secrets"]) => page.secrets(&query).await,
            (&Method::POST, ["secrets"]) => page.write_secret(&form).await,
            (&Method::GET, ["audit"]) => page.audit_log(&query).await,
            (&Method::GET, ["decisions"]) => page.decisions(&query).await,
            (&Method::GET, [log @ ("audit" | "decisions"), "export"]) => {
                page.export(log, &query).await
            }
            (&Method::GET, ["tasks"]) => page.tasks(&query).await,
            (&Method::GET, ["tasks", id]) => page.task(id).await,
            (&Method::POST, ["tasks", id, action @ ("claim" | "approve" | "reject")]) => {
                page.decide_task(id, action, &form).await
            }
            (method, ["admin", "tenants", rest @ ..]) => {
                page.admin(method, rest, &form, &query).await
            }
            _ => Response::html(
                404,
                pages::message(
                    &session.ctx(&request.api_base),
                    "Not found",
                    "No console page is here.",
                ),
            ),
        }
    }

    async fn session(&self, request: &Request) -> Option<Arc<Session>> {
        self.sessions.get(&cookie_token(request)?).await
    }

    /// Checks the credential against the gateway before opening a session for it: an
    /// operator key must list the tenants, any other credential must at least read the
    /// catalog. A tenant's user is then asked for two more pages, to know which the
    /// navigation offers.
    async fn sign_in(&self, request: &Request) -> Response {
        let form = parse_form(&request.body);
        let credential = form
            .iter()
            .find(|(k, _)| k == "credential")
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        if credential.is_empty() {
            return Response::html(
                400,
                pages::sign_in(Some("Enter an API key or an OIDC access token.")),
            );
        }
        let api = Api {
            http: self.http(),
            base: &request.api_base,
            credential: &credential,
        };
        let operator = credential.starts_with(OPERATOR_PREFIX);
        let first = if operator {
            "/admin/tenants"
        } else {
            "/providers"
        };
        if let Err(refusal) = api.get(first).await {
            return Response::html(
                401,
                pages::sign_in(Some(&format!(
                    "Not signed in: {} ({})",
                    refusal.detail, refusal.code
                ))),
            );
        }
        let role = if operator {
            Role::Operator
        } else {
            Role::Tenant {
                admin: api.get("/secrets").await.is_ok(),
                audit: api.get("/audit/log?limit=1").await.is_ok(),
            }
        };
        let session = Session {
            credential,
            csrf: random_token(),
            role,
            samples: Mutex::default(),
            flash: Mutex::default(),
        };
        let home = session.home();
        let token = random_token();
        self.sessions.insert(token.clone(), Arc::new(session)).await;
        Response {
            status: 303,
            headers: vec![
                ("location", home.into()),
                (
                    "set-cookie",
                    format!("{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict"),
                ),
            ],
            body: Bytes::new(),
        }
    }
}

/// The pages of one signed-in user.
struct Page<'a> {
    api: Api<'a>,
    session: &'a Session,
}

impl Page<'_> {
    fn ctx(&self) -> pages::Ctx<'_> {
        self.session.ctx(self.api.base)
    }

    fn refused(&self, title: &str, refusal: &Refusal) -> Response {
        Response::html(refusal.status, pages::refused(&self.ctx(), title, refusal))
    }

    /// Post/redirect/get: the outcome of a form is kept for the page at `to`, which the
    /// browser is sent to, so reloading that page never sends the form again.
    fn after(&self, to: &str, notice: pages::Notice) -> Response {
        *self
            .session
            .flash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((to.to_owned(), notice));
        Response::redirect(to)
    }

    /// The outcome kept for the page at `path`, once.
    fn flash(&self, path: &str) -> Option<pages::Notice> {
        let mut flash = self
            .session
            .flash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match flash.take() {
            Some((to, notice)) if to == path => Some(notice),
            other => {
                *flash = other;
                None
            }
        }
    }
}

fn cookie_token(request: &Request) -> Option<String> {
    request.cookie.as_deref()?.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty()).then(|| value.to_owned())
    })
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// 256 random bits, hex: a session or form token nobody can guess.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
