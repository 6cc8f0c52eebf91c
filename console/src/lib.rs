//! The provider catalog console for admins, served by the gateway under `/console`.
//!
//! Pages are rendered on the server (maud) and work without JavaScript; the one script only
//! refreshes the provider chart and filters the catalog as you type. The console holds no
//! privilege of its own: a user signs in with an API key or an OIDC access token, the console
//! keeps it in memory behind a session cookie, and every page is built from the gateway's
//! public API called with that credential ([`api`]). What a role may do is decided there, by
//! the key's scopes and the policy engine — an operator who posts the admin-only form directly
//! gets the same `policy_denied` the page would have shown.

mod api;
mod chart;
mod form;
mod pages;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use moka::future::Cache;
use rand::RngCore;
use serde_json::{Value, json};

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

/// A signed-in user: the credential every API call carries, and the form token that proves
/// a POST came from a console page.
pub struct Session {
    credential: String,
    csrf: String,
    /// Chart samples per provider (`domain/name`).
    samples: Mutex<Vec<(String, VecDeque<chart::Sample>)>>,
}

impl Session {
    /// What the pages may show of who is signed in: an API key's id, never its secret.
    fn label(&self) -> String {
        match self
            .credential
            .strip_prefix("sy_")
            .and_then(|r| r.split_once('_'))
        {
            Some((id, _)) => format!("key {id}"),
            None => "OIDC token".into(),
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
                    Some(_) => Response::redirect("/console/catalog"),
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
                    &session.label(),
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
            _ => Response::html(
                404,
                pages::message(&session.label(), "Not found", "No console page is here."),
            ),
        }
    }

    async fn session(&self, request: &Request) -> Option<Arc<Session>> {
        self.sessions.get(&cookie_token(request)?).await
    }

    /// Checks the credential against the gateway (it must at least read the catalog) before
    /// opening a session for it.
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
        if let Err(refusal) = api.get("/providers").await {
            return Response::html(
                401,
                pages::sign_in(Some(&format!(
                    "Not signed in: {} ({})",
                    refusal.detail, refusal.code
                ))),
            );
        }
        let token = random_token();
        self.sessions
            .insert(
                token.clone(),
                Arc::new(Session {
                    credential,
                    csrf: random_token(),
                    samples: Mutex::default(),
                }),
            )
            .await;
        Response {
            status: 303,
            headers: vec![
                ("location", "/console/catalog".into()),
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
        pages::Ctx {
            who: self.session.label(),
            csrf: &self.session.csrf,
            base: self.api.base,
        }
    }

    fn refused(&self, title: &str, refusal: &Refusal) -> Response {
        Response::html(refusal.status, pages::refused(&self.ctx(), title, refusal))
    }

    async fn catalog(&self, query: &[(String, String)]) -> Response {
        let get = |k: &str| {
            query
                .iter()
                .find(|(key, _)| key == k)
                .map_or("", |(_, v)| v.as_str())
        };
        match self.api.get("/providers").await {
            Ok(catalog) => Response::html(
                200,
                pages::catalog(&self.ctx(), &catalog, get("q"), get("domain")),
            ),
            Err(refusal) => self.refused("Catalog", &refusal),
        }
    }

    async fn provider(&self, d: &str, n: &str, notice: Option<pages::Notice>) -> Response {
        let descriptor = match self.api.get(&format!("/providers/{d}/{n}")).await {
            Ok(descriptor) => descriptor,
            Err(refusal) => return self.refused(&format!("{d}/{n}"), &refusal),
        };
        let health = self.api.get(&format!("/providers/{d}/{n}/health")).await;
        let status = match &notice {
            Some(pages::Notice::Refused(r)) => r.status,
            _ => 200,
        };
        Response::html(
            status,
            pages::provider(&self.ctx(), &descriptor, health.as_ref(), notice.as_ref()),
        )
    }

    async fn configure(&self, d: &str, n: &str, form: &[(String, String)]) -> Response {
        let descriptor = match self.api.get(&format!("/providers/{d}/{n}")).await {
            Ok(descriptor) => descriptor,
            Err(refusal) => return self.refused(&format!("{d}/{n}"), &refusal),
        };
        let stored = &descriptor["config"]["values"];
        let raw = form
            .iter()
            .find(|(k, _)| k == "__json")
            .map(|(_, v)| v.trim())
            .unwrap_or_default();
        let config = if raw.is_empty() {
            form::to_json(&descriptor["config_schema"], form, stored)
        } else {
            serde_json::from_str(raw).map_err(|e| format!("the JSON config: {e}"))
        };
        let notice = match config {
            Err(problem) => pages::Notice::Invalid(problem),
            Ok(config) => match self
                .api
                .post(
                    &format!("/providers/{d}/{n}/configure"),
                    &json!({"config": config}),
                )
                .await
            {
                Ok(saved) => {
                    pages::Notice::Done(format!("Configured: version {}.", saved["version"]))
                }
                Err(refusal) => pages::Notice::Refused(refusal),
            },
        };
        self.provider(d, n, Some(notice)).await
    }

    /// `rotate` re-applies the stored config: its `secret://` references are resolved anew
    /// and the instance is swapped, which is what a rotated secret needs.
    async fn lifecycle(&self, d: &str, n: &str, op: &str) -> Response {
        let answer = if op == "rotate" {
            match self.api.get(&format!("/providers/{d}/{n}")).await {
                Ok(descriptor) => {
                    let config = descriptor["config"]["values"].clone();
                    let config = if config.is_null() { json!({}) } else { config };
                    self.api
                        .post(
                            &format!("/providers/{d}/{n}/configure"),
                            &json!({"config": config}),
                        )
                        .await
                }
                Err(refusal) => Err(refusal),
            }
        } else {
            self.api
                .post(&format!("/providers/{d}/{n}/{op}"), &json!({}))
                .await
        };
        let notice = match answer {
            Ok(_) => pages::Notice::Done(match op {
                "rotate" => "Secrets resolved again and the instance swapped.".into(),
                other => format!("{other}: done."),
            }),
            Err(refusal) => pages::Notice::Refused(refusal),
        };
        self.provider(d, n, Some(notice)).await
    }

    async fn chart(&self, d: &str, n: &str) -> Response {
        let metrics = match self.api.text(&format!("/providers/{d}/{n}/metrics")).await {
            Ok(metrics) => metrics,
            Err(refusal) => {
                return Response {
                    status: refusal.status,
                    headers: vec![("content-type", "text/plain; charset=utf-8".into())],
                    body: Bytes::from(refusal.detail),
                };
            }
        };
        let sample = chart::sample(&metrics, Instant::now());
        let drawn = {
            let mut all = self
                .session
                .samples
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let id = format!("{d}/{n}");
            let position = all.iter().position(|(p, _)| *p == id);
            let index = position.unwrap_or_else(|| {
                all.push((id, VecDeque::new()));
                all.len() - 1
            });
            let samples = &mut all[index].1;
            chart::push(samples, sample);
            chart::svg(samples)
        };
        Response {
            status: 200,
            headers: vec![
                ("content-type", "image/svg+xml".into()),
                ("cache-control", "no-store".into()),
            ],
            body: Bytes::from(drawn),
        }
    }

    async fn try_it(
        &self,
        d: &str,
        n: &str,
        action: &str,
        form: Option<&[(String, String)]>,
    ) -> Response {
        let descriptor = match self.api.get(&format!("/providers/{d}/{n}")).await {
            Ok(descriptor) => descriptor,
            Err(refusal) => return self.refused(&format!("{d}/{n}"), &refusal),
        };
        let Some(spec) = descriptor["actions"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == action))
            .cloned()
        else {
            return Response::html(
                404,
                pages::message(
                    &self.session.label(),
                    "Not found",
                    &format!("{d}/{n} has no action {action}."),
                ),
            );
        };
        let Some(form) = form else {
            return Response::html(
                200,
                pages::try_it(&self.ctx(), d, n, &spec, &json!({}), None),
            );
        };
        let raw = form
            .iter()
            .find(|(k, _)| k == "__json")
            .map(|(_, v)| v.trim())
            .unwrap_or_default();
        let params = if raw.is_empty() {
            form::to_json(&spec["params"], form, &Value::Null)
        } else {
            serde_json::from_str(raw).map_err(|e| format!("the JSON params: {e}"))
        };
        let (status, outcome) = match params {
            Err(problem) => (400, pages::Outcome::Invalid(problem)),
            Ok(params) => {
                let answer = self
                    .api
                    .post(
                        &format!("/providers/{d}/{n}/{action}"),
                        &json!({"params": params}),
                    )
                    .await;
                match answer {
                    Ok(answer) => (200, pages::Outcome::Answer(params, answer)),
                    Err(refusal) => (refusal.status, pages::Outcome::Refused(params, refusal)),
                }
            }
        };
        let shown = match &outcome {
            pages::Outcome::Answer(p, _) | pages::Outcome::Refused(p, _) => p.clone(),
            pages::Outcome::Invalid(_) => json!({}),
        };
        Response::html(
            status,
            pages::try_it(&self.ctx(), d, n, &spec, &shown, Some(&outcome)),
        )
    }

    async fn schemas(&self) -> Response {
        let catalog = match self.api.get("/providers").await {
            Ok(catalog) => catalog,
            Err(refusal) => return self.refused("Schemas", &refusal),
        };
        let mut described = Vec::new();
        for entry in catalog["providers"].as_array().into_iter().flatten() {
            let (d, n) = (
                entry["domain"].as_str().unwrap_or_default(),
                entry["name"].as_str().unwrap_or_default(),
            );
            if let Ok(descriptor) = self.api.get(&format!("/providers/{d}/{n}")).await {
                described.push(descriptor);
            }
        }
        Response::html(200, pages::schemas(&self.ctx(), &described))
    }

    async fn tenant(&self, notice: Option<pages::Notice>) -> Response {
        let keys = self.api.get("/keys").await;
        let revision = self.api.get("/policies/revision").await;
        let decisions = self.api.get("/policies/decisions?limit=20").await;
        let status = match &notice {
            Some(pages::Notice::Refused(r)) => r.status,
            _ => 200,
        };
        Response::html(
            status,
            pages::tenant(&self.ctx(), &keys, &revision, &decisions, notice.as_ref()),
        )
    }

    async fn create_key(&self, form: &[(String, String)]) -> Response {
        let scopes = form
            .iter()
            .find(|(k, _)| k == "scopes")
            .map_or("", |(_, v)| v.as_str());
        let notice = match self.api.post("/keys", &json!({"scopes": scopes})).await {
            Ok(created) => {
                pages::Notice::Created(created["key"].as_str().unwrap_or_default().to_owned())
            }
            Err(refusal) => pages::Notice::Refused(refusal),
        };
        self.tenant(Some(notice)).await
    }

    async fn revoke_key(&self, id: &str) -> Response {
        let notice = match self
            .api
            .post(&format!("/keys/{id}/revoke"), &json!({}))
            .await
        {
            Ok(_) => pages::Notice::Done(format!("Key {id} revoked.")),
            Err(refusal) => pages::Notice::Refused(refusal),
        };
        self.tenant(Some(notice)).await
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
