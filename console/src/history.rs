//! A tenant admin's config history and secrets: each saved version of a provider's config with
//! who saved it and what changed, a rollback to any earlier one; the tenant's secrets in Vault,
//! written or rotated from a form. The API never answers a secret's value, and the console
//! never renders one: a diff names a secret field as changed, a secret's value goes from the
//! form's body to `PUT /secrets/{name}` and nowhere else.

use maud::{Markup, html};
use serde_json::{Value, json};

use crate::api::Refusal;
use crate::pages::{Ctx, Notice, notice_box, page, pretty, refusal_box, text, when};
use crate::{Page, Response};

const SECRETS: &str = "/console/secrets";

impl Page<'_> {
    pub(crate) async fn history(&self, d: &str, n: &str) -> Response {
        let notice = self.flash(&format!("/console/providers/{d}/{n}/history"));
        match self.api.get(&format!("/providers/{d}/{n}/configs")).await {
            Ok(history) => Response::html(200, history_page(&self.ctx(), d, n, &history, notice)),
            Err(refusal) => self.refused(&format!("{d}/{n} history"), &refusal),
        }
    }

    pub(crate) async fn rollback(&self, d: &str, n: &str, form: &[(String, String)]) -> Response {
        let notice = match field(form, "version").parse::<u64>() {
            Err(_) => Notice::Invalid("version: not a version number".into()),
            Ok(version) => match self
                .api
                .post(
                    &format!("/providers/{d}/{n}/configs/rollback"),
                    &json!({"version": version}),
                )
                .await
            {
                Ok(saved) => Notice::Done(format!(
                    "Rolled back to version {version}: saved as version {}, now running.",
                    saved["version"]
                )),
                Err(refusal) => Notice::Refused(refusal),
            },
        };
        self.after(&format!("/console/providers/{d}/{n}/history"), notice)
    }

    pub(crate) async fn secrets(&self, query: &[(String, String)]) -> Response {
        let notice = self.flash(SECRETS);
        let listed = self.api.get("/secrets").await;
        Response::html(
            200,
            secrets_page(&self.ctx(), &listed, field(query, "name"), notice),
        )
    }

    /// Sends the value to the API in the body and drops it: it is in no redirect, page or
    /// notice.
    pub(crate) async fn write_secret(&self, form: &[(String, String)]) -> Response {
        let name = field(form, "name").trim();
        let notice = match self
            .api
            .put(
                &format!("/secrets/{}", segment(name)),
                &json!({"value": field(form, "value")}),
            )
            .await
        {
            Ok(written) => Notice::Done(format!(
                "Secret {} written: version {}. Configs use it as {}.",
                text(&written, "name"),
                written["version"],
                text(&written, "reference")
            )),
            Err(refusal) => Notice::Refused(refusal),
        };
        self.after(SECRETS, notice)
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// `text` as one URL path segment: every byte but the unreserved ones percent-encoded, so a
/// name typed with `/` or `?` reaches the API as the name it is (which then refuses it).
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// One change of a diff, in words: added, removed, changed; a secret as changed only.
fn change(op: &Value) -> Markup {
    let path = text(op, "path");
    let compact = |v: &Value| v.to_string();
    html! {
        @if op["secret"] == true {
            li class="changed secret" { code { (path) } " changed (secret, value not shown)" }
        } @else {
            @match text(op, "op") {
                "add" => li class="added" { "added " code { (path) } " = " code { (compact(&op["new"])) } },
                "remove" => li class="removed" { "removed " code { (path) } " (was " code { (compact(&op["old"])) } ")" },
                _ => li class="changed" {
                    "changed " code { (path) } ": " code { (compact(&op["old"])) } " → " code { (compact(&op["new"])) }
                },
            }
        }
    }
}

fn diff(version: &Value) -> Markup {
    html! {
        @match version["diff"].as_array() {
            None => span class="muted" { "not recorded" },
            Some(ops) if ops.is_empty() => span class="muted" { "no change" },
            Some(ops) => ul class="diff" { @for op in ops { (change(op)) } },
        }
    }
}

fn history_page(
    ctx: &Ctx<'_>,
    d: &str,
    n: &str,
    history: &Value,
    notice: Option<Notice>,
) -> Markup {
    let versions: Vec<&Value> = history["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    page(
        ctx,
        &format!("{d}/{n} config history"),
        html! {
            @if let Some(notice) = &notice { (notice_box(notice)) }
            p {
                a href=(format!("/console/providers/{d}/{n}")) { "Back to " (d) "/" (n) }
                " · The newest " (history["kept"]) " versions are kept. A rollback saves the earlier values as a new version and swaps the provider to it."
            }
            table id="history" {
                caption { (versions.len()) " versions, newest first" }
                thead { tr {
                    th scope="col" { "Version" } th scope="col" { "Saved" } th scope="col" { "By" }
                    th scope="col" { "Note" } th scope="col" { "Changes" } th scope="col" { "Values" } th scope="col" { "" }
                } }
                tbody { @for v in &versions {
                    @let version = v["version"].as_u64().unwrap_or_default();
                    tr data-version=(version) {
                        th scope="row" { (version) }
                        td class="nowrap" { (when(text(v, "at"))) }
                        td { (v["actor"].as_str().unwrap_or("unknown")) }
                        td class="note" { (v["note"].as_str().unwrap_or("")) }
                        td { (diff(v)) }
                        td { details { summary { "values" } pre { code { (pretty(&v["values"])) } } } }
                        td {
                            @if v["current"] == true { span class="badge active" { "current" } }
                            @else {
                                form method="post" action=(format!("/console/providers/{d}/{n}/history/rollback")) class="inline" {
                                    input type="hidden" name="csrf" value=(ctx.csrf);
                                    input type="hidden" name="version" value=(version);
                                    button type="submit" aria-label=(format!("Roll back to version {version}")) { "Rollback" }
                                }
                            }
                        }
                    }
                } }
            }
        },
    )
}

fn secrets_page(
    ctx: &Ctx<'_>,
    listed: &Result<Value, Refusal>,
    name: &str,
    notice: Option<Notice>,
) -> Markup {
    page(
        ctx,
        "Secrets",
        html! {
            @if let Some(notice) = &notice { (notice_box(notice)) }
            p {
                "The tenant's secrets live in Vault under the tenant's prefix, never in the platform store. "
                "A config uses one by its reference; writing a new value rotates it, and every provider that references it is swapped to the new value."
            }
            @match listed {
                Ok(listed) => {
                    table id="secrets" {
                        caption { "Secrets written through the console or the API" }
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Version" } th scope="col" { "Reference" }
                            th scope="col" { "Updated" } th scope="col" { "" }
                        } }
                        tbody { @for s in listed["secrets"].as_array().into_iter().flatten() {
                            tr {
                                th scope="row" { (text(s, "name")) }
                                td { (s["version"]) }
                                td { code { (text(s, "reference")) } }
                                td { (when(text(s, "updated_at"))) }
                                td { a href=(format!("{SECRETS}?name={}#write-h", segment(text(s, "name"))))
                                    aria-label=(format!("Rotate {}", text(s, "name"))) { "Rotate" } }
                            }
                        } }
                    }
                }
                Err(refusal) => (refusal_box(refusal)),
            }
            section aria-labelledby="write-h" {
                h2 id="write-h" { "Write or rotate a secret" }
                form method="post" action=(SECRETS) id="write-secret" autocomplete="off" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for="secret-name" { "Name" }
                        input type="text" id="secret-name" name="name" value=(name) required
                            pattern="[A-Za-z0-9_\\-][A-Za-z0-9._\\-]{0,127}";
                        small { "1 to 128 of A-Z a-z 0-9 . _ -, not starting with a dot." }
                    }
                    div class="field" {
                        label for="secret-value" { "Value" }
                        input type="password" id="secret-value" name="value" required autocomplete="new-password";
                        small { "Sent to Vault; never shown again, here or anywhere." }
                    }
                    button type="submit" { "Write secret" }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_reads_as_words_and_a_secret_as_changed_without_values() {
        let version = json!({"diff": [
            {"op": "add", "path": "/ttl_ms", "new": 5},
            {"op": "remove", "path": "/prefix", "old": "a"},
            {"op": "replace", "path": "/max", "old": 1, "new": 2},
            {"op": "replace", "path": "/dsn", "secret": true}
        ]});
        let shown = diff(&version).into_string();
        assert!(
            shown.contains(r#"<li class="added">added <code>/ttl_ms</code> = <code>5</code>"#),
            "{shown}"
        );
        assert!(shown.contains(r#"<li class="removed">removed <code>/prefix</code> (was <code>&quot;a&quot;</code>)"#), "{shown}");
        assert!(
            shown.contains("changed <code>/max</code>: <code>1</code> → <code>2</code>"),
            "{shown}"
        );
        assert!(
            shown.contains("<code>/dsn</code> changed (secret, value not shown)"),
            "{shown}"
        );
        assert!(
            diff(&json!({"diff": null}))
                .into_string()
                .contains("not recorded")
        );
        assert!(
            diff(&json!({"diff": []}))
                .into_string()
                .contains("no change")
        );
    }

    #[test]
    fn a_name_is_one_path_segment_whatever_is_typed() {
        assert_eq!(segment("pg-dsn.v2_x"), "pg-dsn.v2_x");
        assert_eq!(segment("../a b?c"), "..%2Fa%20b%3Fc");
    }

    #[test]
    fn the_secrets_page_never_fills_the_value_in() {
        let ctx = Ctx {
            who: "key k".into(),
            csrf: "t",
            base: "http://gw",
            role: crate::Role::Tenant {
                admin: true,
                audit: true,
            },
        };
        let listed = Ok(json!({"secrets": [{"name": "pg", "version": 2,
            "reference": "secret://vault/pg", "updated_at": "2026-01-01T00:00:00Z"}]}));
        let shown = secrets_page(&ctx, &listed, "pg", None).into_string();
        assert!(shown.contains(r#"<input type="password" id="secret-value" name="value" required autocomplete="new-password">"#), "{shown}");
        assert!(shown.contains("secret://vault/pg"), "{shown}");
        assert!(shown.contains(r#"value="pg""#), "{shown}");
    }
}
