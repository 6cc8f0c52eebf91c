//! The auditor's pages: the tenant's entity-change audit log (filters, the hash chain's
//! verdict, old → new of every change) and its policy decisions, each with its export. The
//! exports are the API's, fetched with the user's credential and handed to the browser as a
//! file: a link alone would carry no credential.

use maud::{Markup, html};
use serde_json::Value;

use crate::api::Refusal;
use crate::pages::{Ctx, at_ms, page, refusal_box, text, when};
use crate::{Page, Response};

/// Records per page of the audit log.
const PAGE: &str = "50";

/// The filters each page passes on to its API, as the form names them.
const AUDIT_FILTERS: [&str; 5] = ["entity", "actor", "operation", "from", "to"];
const DECISION_FILTERS: [&str; 4] = ["subject", "result", "from", "to"];

impl Page<'_> {
    pub(crate) async fn audit_log(&self, query: &[(String, String)]) -> Response {
        let asked = api_query(query, &AUDIT_FILTERS, &[("limit", PAGE)]);
        let records = self.api.get(&format!("/audit/log?{asked}")).await;
        let chain = self.api.get("/audit/log/verify").await;
        let status = match (&records, &chain) {
            (Err(refusal), _) | (_, Err(refusal)) => refusal.status,
            _ => 200,
        };
        Response::html(status, audit_page(&self.ctx(), query, &records, &chain))
    }

    pub(crate) async fn decisions(&self, query: &[(String, String)]) -> Response {
        let asked = api_query(query, &DECISION_FILTERS, &[("limit", PAGE)]);
        let decisions = self.api.get(&format!("/policies/decisions?{asked}")).await;
        let status = decisions.as_ref().err().map_or(200, |r| r.status);
        Response::html(status, decisions_page(&self.ctx(), query, &decisions))
    }

    /// `/console/{audit|decisions}/export?format=jsonl|csv`, the decisions' window with it.
    pub(crate) async fn export(&self, log: &str, query: &[(String, String)]) -> Response {
        let format = field(query, "format");
        let (path, filters, name): (&str, &[&str], &str) = match log {
            "audit" => ("/audit/log/export", &[], "audit-log"),
            _ => ("/policies/decisions/export", &["from", "to"], "decisions"),
        };
        let asked = api_query(query, filters, &[("format", format)]);
        match self.api.text(&format!("{path}?{asked}")).await {
            Ok(body) => {
                let content_type = if format == "csv" {
                    "text/csv; charset=utf-8"
                } else {
                    "application/x-ndjson"
                };
                Response::download(content_type, &format!("{name}.{format}"), body)
            }
            Err(refusal) => self.refused("Export", &refusal),
        }
    }
}

fn field<'a>(query: &'a [(String, String)], name: &str) -> &'a str {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The API's query: the page's non-empty `filters` (a date alone stands for the start of that
/// day in `from` and its end in `to`), its cursor, and `fixed`.
fn api_query(query: &[(String, String)], filters: &[&str], fixed: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for name in filters.iter().chain(&["cursor"]) {
        let value = field(query, name).trim();
        match (*name, value.len()) {
            (_, 0) => {}
            ("from", 10) => {
                out.append_pair(name, &format!("{value}T00:00:00Z"));
            }
            ("to", 10) => {
                out.append_pair(name, &format!("{value}T23:59:59Z"));
            }
            _ => {
                out.append_pair(name, value);
            }
        }
    }
    for (name, value) in fixed {
        out.append_pair(name, value);
    }
    out.finish()
}

/// This page's URL with `cursor` for the next page, the filters kept.
fn next_page(path: &str, query: &[(String, String)], filters: &[&str], cursor: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for name in filters {
        let value = field(query, name);
        if !value.is_empty() {
            out.append_pair(name, value);
        }
    }
    out.append_pair("cursor", cursor);
    format!("{path}?{}", out.finish())
}

fn filter_input(query: &[(String, String)], name: &str, label: &str, kind: &str) -> Markup {
    html! {
        div class="field" {
            label for=(format!("filter-{name}")) { (label) }
            input type=(kind) id=(format!("filter-{name}")) name=(name) value=(field(query, name));
        }
    }
}

/// A value of a record as one line of JSON, or a dash when there is none.
fn compact(value: &Value) -> String {
    if value.is_null() {
        "—".into()
    } else {
        value.to_string()
    }
}

fn chain_badge(chain: &Result<Value, Refusal>) -> Markup {
    html! {
        @match chain {
            Ok(chain) if chain["ok"] == true => p id="chain" class="badge-line" {
                span class="badge active" { "verified" }
                " The hash chain holds: " (chain["records"]) " records, none altered, removed or out of order."
            },
            Ok(chain) => p id="chain" class="badge-line" role="alert" {
                span class="badge deleting" { "broken at seq " (chain["first_bad_seq"]) }
                " " (chain["why"].as_str().unwrap_or("the chain does not hold"))
            },
            Err(refusal) => (refusal_box(refusal)),
        }
    }
}

fn audit_page(
    ctx: &Ctx<'_>,
    query: &[(String, String)],
    records: &Result<Value, Refusal>,
    chain: &Result<Value, Refusal>,
) -> Markup {
    page(
        ctx,
        "Audit log",
        html! {
            (chain_badge(chain))
            p class="exports" {
                "Export every record with its hashes: "
                a href="/console/audit/export?format=jsonl" download { "JSON lines" } " · "
                a href="/console/audit/export?format=csv" download { "CSV" }
            }
            form method="get" action="/console/audit" class="filters" role="search" {
                (filter_input(query, "entity", "Entity starts with", "text"))
                (filter_input(query, "actor", "Actor", "text"))
                (filter_input(query, "operation", "Operation", "text"))
                (filter_input(query, "from", "From", "date"))
                (filter_input(query, "to", "To", "date"))
                button type="submit" { "Filter" }
            }
            @match records {
                Ok(records) => {
                    @let rows: Vec<&Value> = records["records"].as_array().into_iter().flatten().collect();
                    div class="scroll" {
                        table id="audit" {
                            caption { (rows.len()) " records, newest first" }
                            thead { tr {
                                th scope="col" { "Seq" } th scope="col" { "When" } th scope="col" { "Actor" }
                                th scope="col" { "Entity" } th scope="col" { "Operation" } th scope="col" { "Old → new" }
                                th scope="col" { "Request · source" } th scope="col" { "Hash" }
                            } }
                            tbody { @for r in &rows {
                                tr {
                                    th scope="row" { (r["seq"]) }
                                    td class="nowrap" { (when(text(r, "at"))) }
                                    td { (text(r, "actor")) }
                                    td { code class="nowrap" { (text(r, "entity")) } }
                                    td { (text(r, "operation")) }
                                    td class="change" {
                                        code class="old" { (compact(&r["old"])) }
                                        code class="new" { "→ " (compact(&r["new"])) }
                                    }
                                    td class="small" {
                                        (r["request_id"].as_str().unwrap_or("—")) br;
                                        (r["source"].as_str().unwrap_or("—"))
                                    }
                                    td { code class="nowrap" title=(text(r, "hash")) { (text(r, "hash").chars().take(10).collect::<String>()) "…" } }
                                }
                            } }
                        }
                    }
                    @if let Some(cursor) = records["next_cursor"].as_str() {
                        p { a href=(next_page("/console/audit", query, &AUDIT_FILTERS, cursor)) { "Older records" } }
                    }
                }
                Err(refusal) => (refusal_box(refusal)),
            }
        },
    )
}

fn decisions_page(
    ctx: &Ctx<'_>,
    query: &[(String, String)],
    decisions: &Result<Value, Refusal>,
) -> Markup {
    let window = api_query(query, &["from", "to"], &[]);
    let export = |format: &str| {
        let joiner = if window.is_empty() { "" } else { "&" };
        format!("/console/decisions/export?{window}{joiner}format={format}")
    };
    let result = field(query, "result");
    page(
        ctx,
        "Decisions",
        html! {
            p class="exports" {
                "Export the decisions of the window below, with their inputs: "
                a href=(export("jsonl")) download { "JSON lines" } " · "
                a href=(export("csv")) download { "CSV" }
            }
            form method="get" action="/console/decisions" class="filters" role="search" {
                (filter_input(query, "subject", "Subject", "text"))
                div class="field" {
                    label for="filter-result" { "Result" }
                    select id="filter-result" name="result" {
                        option value="" { "any" }
                        option value="allow" selected[result == "allow"] { "allow" }
                        option value="deny" selected[result == "deny"] { "deny" }
                    }
                }
                (filter_input(query, "from", "From", "date"))
                (filter_input(query, "to", "To", "date"))
                button type="submit" { "Filter" }
            }
            @match decisions {
                Ok(decisions) => {
                    (decisions_table(decisions, "Decisions for this tenant, newest first"))
                    @if let Some(cursor) = decisions["next_cursor"].as_str() {
                        p { a href=(next_page("/console/decisions", query, &DECISION_FILTERS, cursor)) { "Older decisions" } }
                    }
                    @if let Some(oldest) = decisions["decisions"].as_array().and_then(|d| d.last()) {
                        p class="muted" { "Oldest shown: " (when(&oldest["at_ms"].as_i64().map(at_ms).unwrap_or_default())) }
                    }
                }
                Err(refusal) => (refusal_box(refusal)),
            }
        },
    )
}

/// The decisions of one page of `GET /policies/decisions`, newest first.
pub(crate) fn decisions_table(decisions: &Value, caption: &str) -> Markup {
    html! {
        table id="decisions" {
            caption { (caption) }
            thead { tr {
                th scope="col" { "When" } th scope="col" { "Subject" } th scope="col" { "Call" }
                th scope="col" { "Result" } th scope="col" { "Reasons" }
            } }
            tbody { @for d in decisions["decisions"].as_array().into_iter().flatten() {
                tr {
                    td class="nowrap" { (when(&d["at_ms"].as_i64().map(at_ms).unwrap_or_default())) }
                    td { (text(d, "subject")) }
                    td { (call(&d["input"])) }
                    td { (if d["allowed"].as_bool() == Some(true) { "allow" } else { "deny" }) }
                    td { (d["reasons"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")).unwrap_or_default()) }
                }
            } }
        }
    }
}

/// What a decision was about, from its input: the request's path when the log kept it, else
/// the operation and target the policy read (the log keeps only the part of an input the
/// policy can read, see policies/engine/src/reads.rs).
fn call(input: &Value) -> String {
    if let Some(path) = input["request"]["path"].as_str() {
        return path.to_owned();
    }
    let target: Vec<&str> = ["domain", "provider", "action"]
        .iter()
        .filter_map(|k| input[*k].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    format!("{} {}", text(input, "operation"), target.join("/"))
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn filters_reach_the_api_with_dates_as_whole_days() {
        let q = query(&[
            ("entity", "provider/"),
            ("actor", ""),
            ("from", "2026-03-01"),
            ("to", "2026-03-02T10:00:00Z"),
            ("cursor", "41"),
            ("evil", "x"),
        ]);
        assert_eq!(
            api_query(&q, &AUDIT_FILTERS, &[("limit", "50")]),
            "entity=provider%2F&from=2026-03-01T00%3A00%3A00Z&to=2026-03-02T10%3A00%3A00Z&cursor=41&limit=50"
        );
        assert_eq!(
            next_page("/console/audit", &q, &AUDIT_FILTERS, "9"),
            "/console/audit?entity=provider%2F&from=2026-03-01&to=2026-03-02T10%3A00%3A00Z&cursor=9"
        );
    }

    #[test]
    fn the_chain_badge_says_verified_or_where_it_broke() {
        let ok = chain_badge(&Ok(json!({"records": 12, "ok": true}))).into_string();
        assert!(
            ok.contains(">verified<") && ok.contains("12 records"),
            "{ok}"
        );
        let broken = chain_badge(&Ok(json!({"records": 12, "ok": false, "first_bad_seq": 7,
            "why": "hash mismatch"})))
        .into_string();
        assert!(broken.contains("broken at seq 7"), "{broken}");
        assert!(broken.contains("hash mismatch"), "{broken}");
    }
}
