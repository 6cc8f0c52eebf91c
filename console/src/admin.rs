//! The platform operator's pages, over `/admin/*`: the tenants with their status, created,
//! suspended, resumed and deleted from the list; one tenant's limits, policy data, usage per
//! day, export and first key. Only an operator key gets answers there; anyone else's page is
//! the API's `operator_only`, said plainly.

use http::Method;
use maud::{Markup, PreEscaped, html};
use serde_json::{Map, Value, json};

use crate::api::Refusal;
use crate::pages::{self, Ctx, Notice, notice_box, page, pretty, refusal_box, text, when};
use crate::{Page, Response, chart};

const LIST: &str = "/console/admin/tenants";
/// The usage windows the tenant page offers, in days.
const WINDOWS: [u32; 3] = [7, 30, 90];

impl Page<'_> {
    /// `/console/admin/tenants/...`: `rest` is what follows `tenants`.
    pub(crate) async fn admin(
        &self,
        method: &Method,
        rest: &[&str],
        form: &[(String, String)],
        query: &[(String, String)],
    ) -> Response {
        match (method, rest) {
            (&Method::GET, []) => self.tenants().await,
            (&Method::POST, []) => {
                let id = field(form, "id").trim();
                let notice = match self.api.post("/admin/tenants", &json!({"id": id})).await {
                    Ok(_) => Notice::Done(format!("Tenant {id} created.")),
                    Err(refusal) => Notice::Refused(refusal),
                };
                self.after(LIST, notice)
            }
            (&Method::GET, [t]) => self.tenant_page(t, query).await,
            (&Method::GET, [t, "export"]) => {
                match self.api.text(&format!("/admin/tenants/{t}/export")).await {
                    Ok(body) => {
                        Response::download("application/json", &format!("tenant-{t}.json"), body)
                    }
                    Err(refusal) => self.operator_refused(t, &refusal),
                }
            }
            (&Method::POST, [t, op @ ("suspend" | "resume" | "delete")]) => {
                let answer = if *op == "delete" {
                    self.api.delete(&format!("/admin/tenants/{t}")).await
                } else {
                    self.api
                        .post(&format!("/admin/tenants/{t}/{op}"), &json!({}))
                        .await
                };
                let notice = match answer {
                    Ok(answer) => Notice::Done(match *op {
                        "delete" => format!(
                            "Tenant {t} is being deleted: refused from now on, purged after {}. Resume it to keep it.",
                            text(&answer["tenant"], "delete_after")
                        ),
                        "suspend" => format!("Tenant {t} suspended: its calls are refused."),
                        _ => format!("Tenant {t} resumed."),
                    }),
                    Err(refusal) => Notice::Refused(refusal),
                };
                // Back to the page the button was on: the list, or the tenant's own.
                if field(form, "from") == "list" {
                    self.after(LIST, notice)
                } else {
                    self.after(&format!("{LIST}/{t}"), notice)
                }
            }
            (&Method::POST, [t, "limits"]) => {
                let notice = match limits(form) {
                    Err(problem) => Notice::Invalid(problem),
                    Ok(limits) => match self
                        .api
                        .put(&format!("/admin/tenants/{t}/limits"), &limits)
                        .await
                    {
                        Ok(_) => Notice::Done("Limits saved.".into()),
                        Err(refusal) => Notice::Refused(refusal),
                    },
                };
                self.after(&format!("{LIST}/{t}"), notice)
            }
            (&Method::POST, [t, "policy"]) => {
                let notice = match serde_json::from_str::<Value>(field(form, "policy")) {
                    Err(e) => Notice::Invalid(format!("the policy JSON: {e}")),
                    Ok(policy) => match self
                        .api
                        .put(&format!("/admin/tenants/{t}/policy"), &policy)
                        .await
                    {
                        Ok(saved) => Notice::Done(match saved["revision"].as_str() {
                            Some(revision) => {
                                format!("Policy saved: bundle revision {revision} decides now.")
                            }
                            None => "Policy saved.".into(),
                        }),
                        Err(refusal) => Notice::Refused(refusal),
                    },
                };
                self.after(&format!("{LIST}/{t}"), notice)
            }
            (&Method::POST, [t, "keys"]) => {
                let scopes = field(form, "scopes");
                let notice = match self
                    .api
                    .post(
                        &format!("/admin/tenants/{t}/keys"),
                        &json!({"scopes": scopes}),
                    )
                    .await
                {
                    Ok(created) => Notice::Created(text(&created, "key").to_owned()),
                    Err(refusal) => Notice::Refused(refusal),
                };
                self.after(&format!("{LIST}/{t}"), notice)
            }
            _ => Response::html(
                404,
                pages::message(&self.ctx(), "Not found", "No console page is here."),
            ),
        }
    }

    async fn tenants(&self) -> Response {
        let notice = self.flash(LIST);
        match self.api.get("/admin/tenants").await {
            Ok(tenants) => Response::html(200, tenants_page(&self.ctx(), &tenants, notice)),
            Err(refusal) => self.operator_refused("Tenants", &refusal),
        }
    }

    async fn tenant_page(&self, t: &str, query: &[(String, String)]) -> Response {
        let notice = self.flash(&format!("{LIST}/{t}"));
        let shown = match self.api.get(&format!("/admin/tenants/{t}")).await {
            Ok(shown) => shown,
            Err(refusal) => return self.operator_refused(t, &refusal),
        };
        let days = field(query, "days")
            .parse()
            .ok()
            .filter(|d| WINDOWS.contains(d))
            .unwrap_or(30);
        let usage = self
            .api
            .get(&format!("/admin/tenants/{t}/usage?days={days}"))
            .await;
        Response::html(200, tenant_page(&self.ctx(), &shown, days, &usage, notice))
    }

    /// A refusal of the operator's plane; for anyone but an operator, with what to do.
    fn operator_refused(&self, title: &str, refusal: &Refusal) -> Response {
        let body = html! {
            @if refusal.code == "operator_only" {
                p class="error" role="alert" {
                    "The tenants' pages are for platform operators. Sign in with an operator key ("
                    code { "syop_…" } ", made by " code { "switchyard operator create-key" } ")."
                }
            }
            (refusal_box(refusal))
        };
        Response::html(refusal.status, page(&self.ctx(), title, body))
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The limits a submitted form stands for: empty fields are left out (the operator's
/// defaults), the request budget is all three of its numbers or none.
fn limits(form: &[(String, String)]) -> Result<Value, String> {
    let number = |name: &str| -> Result<Option<u64>, String> {
        match field(form, name).trim() {
            "" => Ok(None),
            raw => raw
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}: not a whole number")),
        }
    };
    let mut limits = Map::new();
    let budget = [
        ("requests", number("rate_requests")?),
        ("per_seconds", number("rate_per_seconds")?),
        ("burst", number("rate_burst")?),
    ];
    match budget.iter().filter(|(_, v)| v.is_some()).count() {
        0 => {}
        3 => {
            let budget: Map<String, Value> = budget
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            limits.insert("rate_limit".into(), Value::Object(budget));
        }
        _ => {
            return Err("the request budget takes requests, per seconds and burst, or none".into());
        }
    }
    for name in [
        "ai_tokens_per_day",
        "decision_retention_days",
        "max_api_keys",
    ] {
        if let Some(value) = number(name)? {
            limits.insert(name.into(), json!(value));
        }
    }
    Ok(Value::Object(limits))
}

fn optional_time(at: &Value) -> Markup {
    match at.as_str() {
        Some(at) => when(at),
        None => html! { "—" },
    }
}

fn badge(status: &str) -> Markup {
    html! { span class=(format!("badge {status}")) { (status) } }
}

/// A button posting to `/console/admin/tenants/{id}/{op}`, back to `from`.
fn tenant_button(ctx: &Ctx<'_>, id: &str, op: &str, from: &str) -> Markup {
    html! {
        form method="post" action=(format!("{LIST}/{id}/{op}")) class="inline" {
            input type="hidden" name="csrf" value=(ctx.csrf);
            input type="hidden" name="from" value=(from);
            button type="submit" class=(if op == "delete" { "danger" } else { "" })
                aria-label=(format!("{} {id}", capitalised(op))) { (capitalised(op)) }
        }
    }
}

fn capitalised(op: &str) -> String {
    let mut chars = op.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The buttons a tenant in `status` offers: a deleted one can still be resumed.
fn tenant_buttons(ctx: &Ctx<'_>, id: &str, status: &str, from: &str) -> Markup {
    html! {
        @match status {
            "active" => { (tenant_button(ctx, id, "suspend", from)) (tenant_button(ctx, id, "delete", from)) }
            "suspended" => { (tenant_button(ctx, id, "resume", from)) (tenant_button(ctx, id, "delete", from)) }
            _ => (tenant_button(ctx, id, "resume", from)),
        }
    }
}

fn tenants_page(ctx: &Ctx<'_>, tenants: &Value, notice: Option<Notice>) -> Markup {
    let tenants: Vec<&Value> = tenants["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    page(
        ctx,
        "Tenants",
        html! {
            @if let Some(notice) = &notice { (notice_box(notice)) }
            table id="tenants" {
                caption { (tenants.len()) " tenants" }
                thead { tr {
                    th scope="col" { "Tenant" } th scope="col" { "Status" } th scope="col" { "Created" }
                    th scope="col" { "Status since" } th scope="col" { "Purged after" } th scope="col" { "Actions" }
                } }
                tbody { @for t in &tenants {
                    @let id = text(t, "id");
                    tr data-tenant=(id) {
                        th scope="row" { a href=(format!("{LIST}/{id}")) { (id) } }
                        td { (badge(text(t, "status"))) }
                        td { (when(text(t, "created_at"))) }
                        td { (optional_time(&t["status_changed_at"])) }
                        td { (optional_time(&t["delete_after"])) }
                        td { (tenant_buttons(ctx, id, text(t, "status"), "list")) }
                    }
                } }
            }
            section aria-labelledby="create-h" {
                h2 id="create-h" { "Create a tenant" }
                form method="post" action=(LIST) id="create-tenant" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for="tenant-id" { "Tenant id" }
                        input type="text" id="tenant-id" name="id" required autocomplete="off";
                        small { "Lower-case letters, digits and dashes." }
                    }
                    button type="submit" { "Create tenant" }
                }
            }
        },
    )
}

fn tenant_page(
    ctx: &Ctx<'_>,
    shown: &Value,
    days: u32,
    usage: &Result<Value, Refusal>,
    notice: Option<Notice>,
) -> Markup {
    let tenant = &shown["tenant"];
    let id = text(tenant, "id");
    let status = text(tenant, "status");
    let limits = &shown["limits"];
    let number = |v: &Value| v.as_u64().map(|n| n.to_string()).unwrap_or_default();
    page(
        ctx,
        &format!("Tenant {id}"),
        html! {
            @if let Some(notice) = &notice { (notice_box(notice)) }
            dl class="facts" {
                dt { "Status" } dd id="tenant-status" { (badge(status)) }
                dt { "Created" } dd { (when(text(tenant, "created_at"))) }
                @if let Some(at) = tenant["status_changed_at"].as_str() { dt { "Status since" } dd { (when(at)) } }
                @if let Some(at) = tenant["delete_after"].as_str() { dt { "Purged after" } dd { (when(at)) } }
            }
            div class="actions" {
                (tenant_buttons(ctx, id, status, "tenant"))
                a href=(format!("{LIST}/{id}/export")) download { "Export (JSON)" }
            }
            section aria-labelledby="usage-h" {
                h2 id="usage-h" { "Usage" }
                nav aria-label="Usage window" class="windows" {
                    @for n in WINDOWS {
                        @if n == days { strong aria-current="page" { (n) " days" } }
                        @else { a href=(format!("{LIST}/{id}?days={n}")) { (n) " days" } }
                    }
                }
                @match usage {
                    Ok(usage) => {
                        div id="usage-chart" class="chart" { (PreEscaped(chart::daily(&window(usage, days)))) }
                        (stored(&usage["stored"]))
                    }
                    Err(refusal) => (refusal_box(refusal)),
                }
            }
            section aria-labelledby="limits-h" {
                h2 id="limits-h" { "Limits" }
                p { "Empty fields take the platform's defaults." }
                form method="post" action=(format!("{LIST}/{id}/limits")) id="limits" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    fieldset {
                        legend { "Request budget" }
                        div class="row" {
                            (number_field("rate_requests", "Requests", &number(&limits["rate_limit"]["requests"])))
                            (number_field("rate_per_seconds", "Per seconds", &number(&limits["rate_limit"]["per_seconds"])))
                            (number_field("rate_burst", "Burst", &number(&limits["rate_limit"]["burst"])))
                        }
                    }
                    (number_field("ai_tokens_per_day", "AI tokens per day", &number(&limits["ai_tokens_per_day"])))
                    (number_field("decision_retention_days", "Decision retention (days)", &number(&limits["decision_retention_days"])))
                    (number_field("max_api_keys", "Active API keys at most", &number(&limits["max_api_keys"])))
                    button type="submit" { "Save limits" }
                }
            }
            section aria-labelledby="policy-h" {
                h2 id="policy-h" { "Policy data" }
                p {
                    "The tenant's part of the policy data: role overrides ("
                    code { "{\"roles\": {\"name\": [{\"operation\", \"domain\", \"provider\", \"action\"}]}}" }
                    ") and " code { "deny_actions" } " patterns (" code { "domain/provider/action" }
                    ", " code { "*" } " per segment). Effective with the bundle revision it makes."
                }
                form method="post" action=(format!("{LIST}/{id}/policy")) id="policy" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field wide" {
                        label for="policy-json" { "Policy JSON" }
                        textarea id="policy-json" name="policy" rows="8" spellcheck="false" { (pretty(&shown["policy"])) }
                    }
                    button type="submit" { "Save policy" }
                }
            }
            section aria-labelledby="key-h" {
                h2 id="key-h" { "Issue a key" }
                p { "A key for the tenant, e.g. its first admin's. It is shown once, here." }
                form method="post" action=(format!("{LIST}/{id}/keys")) id="issue-key" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for="key-scopes" { "Scopes" }
                        input type="text" id="key-scopes" name="scopes" value="*" required;
                        small { "*, read, admin, audit, invoke, invoke:<domain> or invoke:<domain>/<name>, comma-separated." }
                    }
                    button type="submit" { "Issue key" }
                }
            }
        },
    )
}

fn number_field(name: &str, label: &str, value: &str) -> Markup {
    html! {
        div class="field" {
            label for=(name) { (label) }
            input type="number" id=(name) name=(name) min="1" step="1" value=(value);
        }
    }
}

fn stored(stored: &Value) -> Markup {
    html! {
        h3 { "Held in the platform store now" }
        table id="stored" class="compact" {
            tbody {
                @for (key, label) in [("api_keys", "API keys"), ("config_versions", "Config versions"),
                                      ("idempotency_bytes", "Idempotency bytes"), ("decisions", "Policy decisions"),
                                      ("audit_records", "Audit records")] {
                    tr { th scope="row" { (label) } td { (stored[key].as_i64().unwrap_or_default()) } }
                }
            }
        }
    }
}

/// Every day of the window, oldest first, the days without counts as zeros: the API lists
/// only days that have some.
fn window(usage: &Value, days: u32) -> Vec<chart::Day> {
    let counted: Vec<&Value> = usage["days"].as_array().into_iter().flatten().collect();
    let today = time::OffsetDateTime::now_utc().date();
    (0..days)
        .rev()
        .filter_map(|back| today.checked_sub(time::Duration::days(i64::from(back))))
        .map(|date| {
            let day = format!(
                "{:04}-{:02}-{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            );
            let found = counted.iter().find(|d| d["day"] == day.as_str());
            let count = |key: &str| found.and_then(|d| d[key].as_f64()).unwrap_or(0.0);
            chart::Day {
                calls: count("calls"),
                errors: count("errors"),
                tokens: count("tokens"),
                day,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_limits_form_leaves_defaults_out_and_takes_the_budget_whole() {
        let all = form(&[
            ("rate_requests", "100"),
            ("rate_per_seconds", "1"),
            ("rate_burst", "20"),
            ("ai_tokens_per_day", ""),
            ("decision_retention_days", "30"),
            ("max_api_keys", " 5 "),
        ]);
        assert_eq!(
            limits(&all).unwrap(),
            json!({"rate_limit": {"requests": 100, "per_seconds": 1, "burst": 20},
                   "decision_retention_days": 30, "max_api_keys": 5})
        );
        assert_eq!(limits(&form(&[])).unwrap(), json!({}));
        assert!(
            limits(&form(&[("rate_requests", "100")]))
                .unwrap_err()
                .contains("request budget")
        );
        assert!(
            limits(&form(&[("max_api_keys", "many")]))
                .unwrap_err()
                .contains("max_api_keys")
        );
    }

    #[test]
    fn the_usage_window_has_every_day_up_to_today() {
        let today = time::OffsetDateTime::now_utc().date();
        let key = format!(
            "{:04}-{:02}-{:02}",
            today.year(),
            u8::from(today.month()),
            today.day()
        );
        let usage = json!({"days": [{"day": key, "calls": 7, "errors": 1, "tokens": 0}]});
        let days = window(&usage, 7);
        assert_eq!(days.len(), 7);
        assert_eq!(days[6].day, key);
        assert_eq!((days[6].calls, days[6].errors), (7.0, 1.0));
        assert!(days[..6].iter().all(|d| d.calls == 0.0));
        assert!(days[0].day < days[6].day);
    }

    #[test]
    fn a_tenant_offers_the_moves_its_status_allows() {
        let ctx = Ctx {
            who: "operator key x".into(),
            csrf: "t",
            base: "http://gw",
            role: crate::Role::Operator,
        };
        let buttons = |status| tenant_buttons(&ctx, "acme", status, "list").into_string();
        assert!(buttons("active").contains("Suspend acme"));
        assert!(buttons("active").contains("Delete acme"));
        assert!(!buttons("active").contains("Resume"));
        assert!(buttons("suspended").contains("Resume acme"));
        assert!(buttons("deleting").contains("Resume acme"));
        assert!(!buttons("deleting").contains("Delete"));
    }
}
