//! The task inbox: the tenant's human tasks (`/services/tasks/*`) with their status and SLA,
//! and a task's page with its data and the claim, approve and reject buttons. Every call is
//! the signed-in user's own: whether they may claim or decide is the gateway's policy (the
//! `approver` role), which the page shows as the API's refusal.

use maud::{Markup, html};
use serde_json::{Value, json};

use crate::api::Refusal;
use crate::pages::{Ctx, Notice, notice_box, page, pretty, refusal_box, text, when};
use crate::{Page, Response};

/// Tasks per page of the inbox.
const PAGE: u32 = 100;

/// The statuses the inbox filters on, as the service names them.
const STATUSES: [&str; 6] = [
    "open",
    "claimed",
    "escalated",
    "approved",
    "rejected",
    "cancelled",
];

impl Page<'_> {
    pub(crate) async fn tasks(&self, query: &[(String, String)]) -> Response {
        let status = field(query, "status");
        let mut params = json!({"limit": PAGE});
        if STATUSES.contains(&status) {
            params["status"] = json!(status);
        }
        if let Ok(after) = field(query, "after").parse::<u64>() {
            params["after"] = json!(after);
        }
        let listed = self.call("list", params).await;
        let code = listed.as_ref().err().map_or(200, |r| r.status);
        Response::html(code, inbox_page(&self.ctx(), status, &listed))
    }

    pub(crate) async fn task(&self, task_id: &str) -> Response {
        let path = format!("/console/tasks/{task_id}");
        let notice = self.flash(&path);
        let task = self.call("get", json!({"task_id": task_id})).await;
        let code = task.as_ref().err().map_or(200, |r| r.status);
        Response::html(code, task_page(&self.ctx(), &task, notice.as_ref()))
    }

    /// `claim`, `approve` or `reject` from the task's page, then back to it.
    pub(crate) async fn decide_task(
        &self,
        task_id: &str,
        action: &str,
        form: &[(String, String)],
    ) -> Response {
        let mut params = json!({"task_id": task_id});
        let comment = field(form, "comment").trim();
        if action != "claim" && !comment.is_empty() {
            params["comment"] = json!(comment);
        }
        let notice = match self.call(action, params).await {
            Ok(task) => Notice::Done(outcome(action, &task)),
            Err(refusal) => Notice::Refused(refusal),
        };
        self.after(&format!("/console/tasks/{task_id}"), notice)
    }

    async fn call(&self, action: &str, params: Value) -> Result<Value, Refusal> {
        let answer = self
            .api
            .post(
                &format!("/services/tasks/{action}"),
                &json!({"params": params}),
            )
            .await?;
        Ok(answer["data"].clone())
    }
}

/// What a form did, in a sentence.
fn outcome(action: &str, task: &Value) -> String {
    let id = text(task, "task_id");
    match action {
        "claim" => format!("Task {id} claimed."),
        _ if task["delivered"] == false => format!(
            "Task {id} {}; its workflow was not reached ({}), decide the same again to retry.",
            text(task, "status"),
            text(task, "delivery_error")
        ),
        _ => format!("Task {id} {}.", text(task, "status")),
    }
}

fn field<'a>(query: &'a [(String, String)], name: &str) -> &'a str {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn status_badge(task: &Value) -> Markup {
    let status = text(task, "status");
    let class = match status {
        "approved" => "badge active",
        "rejected" | "cancelled" => "badge deleting",
        "escalated" => "badge suspended",
        _ => "badge",
    };
    html! { span class=(class) { (status) } }
}

fn sla(task: &Value) -> Markup {
    html! {
        (when(text(task, "due_at")))
        @if task["overdue"] == true { " " span class="badge deleting" { "overdue" } }
    }
}

fn inbox_page(ctx: &Ctx<'_>, status: &str, listed: &Result<Value, Refusal>) -> Markup {
    page(
        ctx,
        "Tasks",
        html! {
            form method="get" action="/console/tasks" class="filters" role="search" {
                div class="field" {
                    label for="filter-status" { "Status" }
                    select id="filter-status" name="status" {
                        option value="" { "any" }
                        @for s in STATUSES { option value=(s) selected[status == s] { (s) } }
                    }
                }
                button type="submit" { "Filter" }
            }
            @match listed {
                Ok(listed) => {
                    @let tasks: Vec<&Value> = listed["tasks"].as_array().into_iter().flatten().collect();
                    div class="scroll" {
                        table id="tasks" {
                            caption { (tasks.len()) " tasks, oldest first" }
                            thead { tr {
                                th scope="col" { "Task" } th scope="col" { "Title" } th scope="col" { "Status" }
                                th scope="col" { "Inbox" } th scope="col" { "Due (SLA)" } th scope="col" { "Claimed by" }
                            } }
                            tbody { @for t in &tasks {
                                tr data-task=(text(t, "task_id")) {
                                    th scope="row" { a href=(format!("/console/tasks/{}", text(t, "task_id"))) { (text(t, "task_id")) } }
                                    td { (text(t, "title")) }
                                    td { (status_badge(t)) }
                                    td { (text(t, "role")) }
                                    td class="nowrap" { (sla(t)) }
                                    td { (t["claimed_by"].as_str().unwrap_or("—")) }
                                }
                            } }
                        }
                    }
                    @if let Some(after) = listed["next_after"].as_i64() {
                        p { a href=(format!("/console/tasks?status={status}&after={after}")) { "More tasks" } }
                    }
                }
                Err(refusal) => (refusal_box(refusal)),
            }
        },
    )
}

fn task_page(ctx: &Ctx<'_>, task: &Result<Value, Refusal>, notice: Option<&Notice>) -> Markup {
    let title = match task {
        Ok(task) => format!("Task {}", text(task, "task_id")),
        Err(_) => "Task".into(),
    };
    page(
        ctx,
        &title,
        html! {
            @if let Some(notice) = notice { (notice_box(notice)) }
            @match task {
                Ok(task) => (task_detail(ctx, task)),
                Err(refusal) => (refusal_box(refusal)),
            }
            p { a href="/console/tasks" { "All tasks" } }
        },
    )
}

fn task_detail(ctx: &Ctx<'_>, task: &Value) -> Markup {
    let id = text(task, "task_id");
    let undecided = matches!(text(task, "status"), "open" | "claimed" | "escalated");
    let optional = |key: &str| task[key].as_str().unwrap_or("—").to_owned();
    html! {
        h2 { (text(task, "title")) }
        dl id="task" {
            dt { "Status" } dd { (status_badge(task)) }
            dt { "Kind" } dd { (text(task, "kind")) }
            dt { "Inbox" } dd { (text(task, "role")) }
            dt { "Created" } dd { (when(text(task, "created_at"))) " by " (optional("created_by")) }
            dt { "Due (SLA)" } dd { (sla(task)) }
            dt { "Claimed by" } dd { (optional("claimed_by")) }
            dt { "Decided by" } dd { (optional("decided_by")) }
            dt { "Comment" } dd { (optional("comment")) }
            dt { "Workflow" } dd { (optional("workflow")) " " (optional("instance")) }
            @if !undecided && task["workflow"].is_string() {
                dt { "Delivered" } dd {
                    @if task["delivered"] == true { "yes" } @else { "not yet: " (optional("delivery_error")) }
                }
            }
        }
        h3 { "Data" }
        pre { code { (pretty(&task["data"])) } }
        @if undecided {
            form method="post" action=(format!("/console/tasks/{id}/claim")) class="inline" {
                input type="hidden" name="csrf" value=(ctx.csrf);
                button type="submit" { "Claim" }
            }
            @for (action, label) in [("approve", "Approve"), ("reject", "Reject")] {
                form method="post" action=(format!("/console/tasks/{id}/{action}")) {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    div class="field" {
                        label for=(format!("comment-{action}")) { "Comment to " (action) }
                        input type="text" id=(format!("comment-{action}")) name="comment" maxlength="2000";
                    }
                    button type="submit" { (label) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undelivered_decision_says_how_to_retry() {
        let task = json!({"task_id": "t-1", "status": "approved", "delivered": false,
            "delivery_error": "provider_not_found: no workflow/restate"});
        let said = outcome("approve", &task);
        assert!(said.contains("not reached (provider_not_found"), "{said}");
        let done = json!({"task_id": "t-1", "status": "rejected", "delivered": true});
        assert_eq!(outcome("reject", &done), "Task t-1 rejected.");
    }
}
