//! The console's pages. Plain HTML forms and tables: every page reads and every action works
//! without JavaScript, with a label on every input, landmarks and headings in order, and a
//! skip link for keyboard users.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use crate::Role;
use crate::api::Refusal;
use crate::form;

/// What every page of a signed-in user needs.
pub struct Ctx<'a> {
    pub who: String,
    pub csrf: &'a str,
    /// The gateway's address, for the curl snippets.
    pub base: &'a str,
    /// Which pages the navigation offers.
    pub role: Role,
}

/// The outcome of a form on the provider or tenant page.
pub enum Notice {
    Done(String),
    /// A new API key: shown this once.
    Created(String),
    Invalid(String),
    Refused(Refusal),
}

/// The outcome of a try-it call.
pub enum Outcome {
    Answer(Value, Value),
    Refused(Value, Refusal),
    Invalid(String),
}

/// The navigation of `role`: the pages it can use.
fn nav(role: Role) -> Vec<(&'static str, &'static str)> {
    match role {
        Role::Operator => vec![("/console/admin/tenants", "Tenants")],
        Role::Tenant { admin, audit } => {
            let mut links = vec![
                ("/console/catalog", "Catalog"),
                ("/console/schemas", "Schemas"),
                ("/console/tenant", "Tenant"),
                ("/console/tasks", "Tasks"),
            ];
            if admin {
                links.push(("/console/secrets", "Secrets"));
            }
            if audit {
                links.push(("/console/audit", "Audit log"));
                links.push(("/console/decisions", "Decisions"));
            }
            links
        }
    }
}

fn layout(ctx: Option<&Ctx<'_>>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Switchyard console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    span class="brand" { "Switchyard" }
                    @if let Some(ctx) = ctx {
                        nav aria-label="Console" {
                            @for (href, label) in nav(ctx.role) { a href=(href) { (label) } }
                        }
                        form method="post" action="/console/sign-out" class="inline" {
                            input type="hidden" name="csrf" value=(ctx.csrf);
                            span class="who" { "Signed in with " (ctx.who) " " }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub(crate) fn page(ctx: &Ctx<'_>, title: &str, body: Markup) -> Markup {
    layout(Some(ctx), title, body)
}

pub fn sign_in(error: Option<&str>) -> Markup {
    layout(
        None,
        "Sign in",
        html! {
            @if let Some(error) = error { p class="error" role="alert" { (error) } }
            form method="post" action="/console/sign-in" {
                div class="field" {
                    label for="credential" { "API key, OIDC access token or operator key" }
                    input type="password" id="credential" name="credential" autocomplete="off" required;
                    small { "Kept in this server's memory for your session only; never shown again." }
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub fn message(ctx: &Ctx<'_>, title: &str, text: &str) -> Markup {
    page(ctx, title, html! { p { (text) } })
}

pub(crate) fn refusal_box(refusal: &Refusal) -> Markup {
    html! {
        div class="error" role="alert" {
            p { strong { (refusal.status) " " (refusal.code) } ": " (refusal.detail) }
            @if !refusal.pointers.is_empty() {
                ul { @for (pointer, detail) in &refusal.pointers { li { code { (pointer) } " " (detail) } } }
            }
        }
    }
}

pub fn refused(ctx: &Ctx<'_>, title: &str, refusal: &Refusal) -> Markup {
    page(ctx, title, refusal_box(refusal))
}

pub(crate) fn notice_box(notice: &Notice) -> Markup {
    html! {
        @match notice {
            Notice::Done(text) => p class="done" role="status" { (text) },
            Notice::Created(key) => div class="done" role="status" {
                p { "New key — copy it now, it is not shown again:" }
                pre { code id="new-key" { (key) } }
            },
            Notice::Invalid(text) => p class="error" role="alert" { (text) },
            Notice::Refused(refusal) => (refusal_box(refusal)),
        }
    }
}

pub(crate) fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

pub fn catalog(ctx: &Ctx<'_>, catalog: &Value, q: &str, domain: &str) -> Markup {
    let providers: Vec<&Value> = catalog["providers"]
        .as_array()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    let mut domains: Vec<&str> = providers.iter().map(|p| text(p, "domain")).collect();
    domains.sort_unstable();
    domains.dedup();
    let needle = q.to_lowercase();
    let shown: Vec<&&Value> = providers
        .iter()
        .filter(|p| domain.is_empty() || text(p, "domain") == domain)
        .filter(|p| {
            needle.is_empty()
                || format!(
                    "{}/{} {} {}",
                    text(p, "domain"),
                    text(p, "name"),
                    text(p, "summary"),
                    p["capabilities"]
                )
                .to_lowercase()
                .contains(&needle)
        })
        .collect();
    page(
        ctx,
        "Catalog",
        html! {
            form method="get" action="/console/catalog" class="filters" role="search" {
                div class="field" {
                    label for="q" { "Search" }
                    input type="search" id="q" name="q" value=(q) data-filter="providers";
                }
                div class="field" {
                    label for="domain" { "Domain" }
                    select id="domain" name="domain" {
                        option value="" { "all" }
                        @for d in &domains { option value=(d) selected[*d == domain] { (d) } }
                    }
                }
                button type="submit" { "Filter" }
            }
            table id="providers" {
                caption { (shown.len()) " of " (providers.len()) " providers" }
                thead { tr {
                    th scope="col" { "Provider" } th scope="col" { "Status" } th scope="col" { "Version" }
                    th scope="col" { "Certification" } th scope="col" { "Capabilities" } th scope="col" { "Summary" }
                } }
                tbody {
                    @for p in &shown {
                        @let id = format!("{}/{}", text(p, "domain"), text(p, "name"));
                        @let status = p["status"]["lifecycle"].as_str().or(p["status"].as_str()).unwrap_or("unknown");
                        tr data-search=(format!("{id} {} {}", text(p, "summary"), p["capabilities"]).to_lowercase()) {
                            th scope="row" { a href=(format!("/console/providers/{id}")) { (id) } }
                            td { span class=(format!("status {status}")) { (status) } }
                            td { (text(p, "version")) }
                            td class="certification" { (p["certification"]["level"].as_str().unwrap_or("not run")) }
                            td { (capabilities(&p["capabilities"])) }
                            td { (text(p, "summary")) }
                        }
                    }
                }
            }
        },
    )
}

fn capabilities(value: &Value) -> String {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| v.as_bool() != Some(false))
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

pub fn provider(
    ctx: &Ctx<'_>,
    descriptor: &Value,
    health: Result<&Value, &Refusal>,
    notice: Option<&Notice>,
) -> Markup {
    let id = format!(
        "{}/{}",
        text(descriptor, "domain"),
        text(descriptor, "name")
    );
    let stored = &descriptor["config"]["values"];
    page(
        ctx,
        &id,
        html! {
            @if let Some(notice) = notice { (notice_box(notice)) }
            p { (text(descriptor, "summary")) }
            section aria-labelledby="health-h" {
                h2 id="health-h" { "Health" }
                @match health {
                    Ok(health) => {
                        dl class="facts" {
                            dt { "Status" } dd { span class=(format!("status {}", text(health, "status"))) { (text(health, "status")) } }
                            dt { "Lifecycle" } dd { (health["lifecycle"].as_str().map_or_else(|| health["lifecycle"].to_string(), str::to_owned)) }
                            dt { "Circuit" } dd { (health["circuit"].as_str().map_or_else(|| health["circuit"].to_string(), str::to_owned)) }
                            dt { "Latency" } dd { (format!("{:.2} ms", health["latency_ms"].as_f64().unwrap_or_default())) }
                        }
                        @if let Some(dependencies) = health["dependencies"].as_array().filter(|d| !d.is_empty()) {
                            table {
                                caption { "Dependencies" }
                                thead { tr { th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Detail" } } }
                                tbody { @for dep in dependencies { tr {
                                    th scope="row" { (text(dep, "name")) } td { (text(dep, "status")) } td { (text(dep, "detail")) }
                                } } }
                            }
                        }
                    }
                    Err(refusal) => (refusal_box(refusal)),
                }
                div class="actions" {
                    @for op in ["start", "stop", "rotate"] {
                        form method="post" action=(format!("/console/providers/{id}/{op}")) class="inline" {
                            input type="hidden" name="csrf" value=(ctx.csrf);
                            button type="submit" { (match op { "rotate" => "Re-resolve secrets", other => other }) }
                        }
                    }
                }
            }
            section aria-labelledby="live-h" {
                h2 id="live-h" { "Live" }
                img id="chart" src=(format!("/console/providers/{id}/chart.svg")) data-refresh="2000"
                    alt="Requests per second, errors per second and mean latency of this provider for your tenant";
            }
            section aria-labelledby="config-h" {
                h2 id="config-h" { "Configuration" }
                p {
                    @if descriptor["config"].is_null() { "Not configured yet." }
                    @else {
                        "Version " (descriptor["config"]["version"]) ", updated " (text(&descriptor["config"], "updated_at")) ". "
                        a href=(format!("/console/providers/{id}/history")) { "History and rollback" }
                    }
                }
                form method="post" action=(format!("/console/providers/{id}/configure")) {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    (form::inputs(&descriptor["config_schema"], stored))
                    details {
                        summary { "Or the whole config as JSON" }
                        div class="field" {
                            label for="config-json" { "Config JSON (replaces the fields above when filled in)" }
                            textarea id="config-json" name="__json" rows="6" spellcheck="false" {}
                        }
                    }
                    button type="submit" { "Save configuration" }
                }
            }
            section aria-labelledby="actions-h" {
                h2 id="actions-h" { "Actions" }
                ul class="actions-list" {
                    @for action in descriptor["actions"].as_array().into_iter().flatten() {
                        li {
                            a href=(format!("/console/try/{id}/{}", text(action, "name"))) { "Try " (text(action, "name")) }
                            " — " (text(action, "summary"))
                        }
                    }
                }
            }
        },
    )
}

pub fn try_it(
    ctx: &Ctx<'_>,
    d: &str,
    n: &str,
    spec: &Value,
    params: &Value,
    outcome: Option<&Outcome>,
) -> Markup {
    let action = text(spec, "name");
    let path = format!("/providers/{d}/{n}/{action}");
    let body = serde_json::json!({"params": params}).to_string();
    let curl = format!(
        "curl -s {}{path} \\\n  -H \"Authorization: Bearer $SWITCHYARD_API_KEY\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{}'",
        ctx.base,
        body.replace('\'', "'\\''")
    );
    let rust = format!(
        "use switchyard_client::{{HttpClient, ProviderClient}};\n\n\
         let client = HttpClient::new(\"{}\", tenant, &api_key);\n\
         let answer = client\n    .invoke(\"{d}/{n}\", \"{action}\", serde_json::json!({}))\n    .await?;",
        ctx.base, params
    );
    page(
        ctx,
        &format!("Try {d}/{n} {action}"),
        html! {
            p { (text(spec, "summary")) }
            form method="post" action=(format!("/console/try/{d}/{n}/{action}")) {
                input type="hidden" name="csrf" value=(ctx.csrf);
                (form::inputs(&spec["params"], params))
                details {
                    summary { "Or the params as JSON" }
                    div class="field" {
                        label for="params-json" { "Params JSON (replaces the fields above when filled in)" }
                        textarea id="params-json" name="__json" rows="6" spellcheck="false" {}
                    }
                }
                button type="submit" id="run" { "Run" }
            }
            @if let Some(outcome) = outcome {
                section aria-labelledby="response-h" {
                    h2 id="response-h" { "Response" }
                    @match outcome {
                        Outcome::Answer(_, answer) => pre id="response" { code { (serde_json::to_string_pretty(answer).unwrap_or_default()) } },
                        Outcome::Refused(_, refusal) => (refusal_box(refusal)),
                        Outcome::Invalid(text) => p class="error" role="alert" { (text) },
                    }
                }
            }
            section aria-labelledby="snippets-h" {
                h2 id="snippets-h" { "The same call" }
                h3 { "curl" }
                pre id="curl" { code { (curl) } }
                h3 { "Rust (switchyard-client)" }
                pre { code { (rust) } }
            }
            section aria-labelledby="schema-h" {
                h2 id="schema-h" { "Schemas" }
                details { summary { "Params" } pre { code { (pretty(&spec["params"])) } } }
                details { summary { "Result" } pre { code { (pretty(&spec["result"])) } } }
            }
        },
    )
}

/// Milliseconds since the epoch as RFC 3339 UTC.
pub(crate) fn at_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// An RFC 3339 time to the second, `2026-03-01 12:00:00`, the whole of it on hover and for
/// programs (`datetime`). Times from the API are UTC.
pub(crate) fn when(at: &str) -> Markup {
    let short = match at.get(..19) {
        Some(head) if at.as_bytes().get(10) == Some(&b'T') => head.replacen('T', " ", 1),
        _ => at.to_owned(),
    };
    html! { time datetime=(at) title=(at) { (short) } }
}

pub(crate) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub fn schemas(ctx: &Ctx<'_>, described: &[Value]) -> Markup {
    page(
        ctx,
        "Schemas",
        html! {
            p { "Every action's params and result schema. The whole API: " a href="/openapi.json" { "/openapi.json" } " (OpenAPI 3.1)." }
            @for descriptor in described {
                @let id = format!("{}/{}", text(descriptor, "domain"), text(descriptor, "name"));
                section aria-label=(id) {
                    h2 { a href=(format!("/console/providers/{id}")) { (id) } }
                    details { summary { "Config schema" } pre { code { (pretty(&descriptor["config_schema"])) } } }
                    @for action in descriptor["actions"].as_array().into_iter().flatten() {
                        details {
                            summary { (text(action, "name")) " — " (text(action, "summary")) }
                            h3 { "Params" } pre { code { (pretty(&action["params"])) } }
                            h3 { "Result" } pre { code { (pretty(&action["result"])) } }
                        }
                    }
                }
            }
        },
    )
}

pub fn tenant(
    ctx: &Ctx<'_>,
    keys: &Result<Value, Refusal>,
    revision: &Result<Value, Refusal>,
    decisions: &Result<Value, Refusal>,
    notice: Option<&Notice>,
) -> Markup {
    page(
        ctx,
        "Tenant",
        html! {
            @if let Some(notice) = notice { (notice_box(notice)) }
            section aria-labelledby="keys-h" {
                h2 id="keys-h" { "API keys" }
                @match keys {
                    Ok(keys) => {
                        table id="keys" {
                            caption { "Keys of this tenant, newest first" }
                            thead { tr {
                                th scope="col" { "Key id" } th scope="col" { "Scopes" } th scope="col" { "Created" }
                                th scope="col" { "Last used" } th scope="col" { "State" }
                            } }
                            tbody { @for key in keys["keys"].as_array().into_iter().flatten() {
                                tr {
                                    th scope="row" { code { (text(key, "id")) } }
                                    td { (text(key, "scopes")) }
                                    td { (text(key, "created_at")) }
                                    td { (key["last_used_at"].as_str().unwrap_or("never")) }
                                    td {
                                        @if let Some(at) = key["revoked_at"].as_str() { "revoked " (at) }
                                        @else {
                                            form method="post" action=(format!("/console/tenant/keys/{}/revoke", text(key, "id"))) class="inline" {
                                                input type="hidden" name="csrf" value=(ctx.csrf);
                                                button type="submit" aria-label=(format!("Revoke key {}", text(key, "id"))) { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            } }
                        }
                    }
                    Err(refusal) => (refusal_box(refusal)),
                }
                form method="post" action="/console/tenant/keys" id="create-key" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for="scopes" { "Scopes of the new key" }
                        input type="text" id="scopes" name="scopes" value="invoke" required;
                        small { "*, read, admin, audit, invoke, invoke:<domain> or invoke:<domain>/<name>, comma-separated." }
                    }
                    button type="submit" { "Create key" }
                }
            }
            section aria-labelledby="policy-h" {
                h2 id="policy-h" { "Policy" }
                @match revision {
                    Ok(revision) => p { "Running bundle revision " strong id="revision" { (text(revision, "revision")) } "." },
                    Err(refusal) => (refusal_box(refusal)),
                }
                @match decisions {
                    Ok(decisions) => {
                        p { a href="/console/decisions" { "Every decision, filters and export" } }
                        (crate::audit::decisions_table(decisions, "Recent decisions for this tenant"))
                    }
                    Err(refusal) => (refusal_box(refusal)),
                }
            }
        },
    )
}
