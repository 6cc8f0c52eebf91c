//! JournalApproval: the ledger's four-eyes rule as a task instead of a dead end. A posting
//! above the policy's threshold is refused to anyone without the approver role
//! (`policy_denied`); its author launches this workflow with the journal instead (the
//! instance id is the journal id), an approver decides the task, and the workflow posts the
//! journal once approved. The workflow always asks: it has no threshold a caller could set.

use std::time::Duration;

use restate_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::approval::{self, Request};
use crate::flow::Flow;
use crate::{Clients, Signal, published, tenant_of};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    /// `services/ledger post_journal`'s params but `journal_id` (the instance id).
    journal: Map<String, Value>,
    #[serde(default = "default_sla_ms")]
    approval_sla_ms: u64,
}

fn default_sla_ms() -> u64 {
    24 * 3_600_000
}

pub struct JournalApproval {
    clients: Clients,
}

impl JournalApproval {
    pub fn new(clients: Clients) -> Self {
        JournalApproval { clients }
    }
}

#[restate_sdk::workflow]
impl JournalApproval {
    /// Answers `posted` (with the ledger's answer) or `rejected`.
    #[handler]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        input: Json<Value>,
    ) -> Result<Json<Value>, HandlerError> {
        let key = ctx.key().to_owned();
        let (tenant, id) = tenant_of(&key)?;
        let id = id.to_owned();
        let mut flow = Flow::new(
            (self.clients)(tenant, "workflow:JournalApproval"),
            key.clone(),
        );
        let input: Input = serde_json::from_value(input.into_inner()).map_err(|e| {
            TerminalError::new_with_code(400, format!("JournalApproval input: {e}"))
        })?;
        if input.journal.contains_key("journal_id") {
            return Err(TerminalError::new_with_code(
                400,
                "JournalApproval: the journal id is the instance id, not part of the journal",
            )
            .into());
        }
        let mut journal = input.journal;
        journal.insert("journal_id".into(), json!(id));
        flow.publish(&ctx, "step", json!("approval"));
        let decision = approval::ask(
            &mut flow,
            &ctx,
            "JournalApproval",
            &id,
            Request {
                task_id: format!("{id}.approval"),
                title: format!("Approve journal {id}"),
                data: Value::Object(journal.clone()),
                sla: Duration::from_millis(input.approval_sla_ms),
            },
        )
        .await?;
        flow.publish(&ctx, "approval", decision.payload);
        if !decision.approved {
            flow.publish(&ctx, "outcome", json!("rejected"));
            return Ok(Json(json!({"journal_id": id, "outcome": "rejected"})));
        }
        flow.publish(&ctx, "step", json!("post"));
        let posted = flow
            .step(
                &ctx,
                "post",
                "services/ledger",
                "post_journal",
                Value::Object(journal),
            )
            .await;
        let outcome = match posted {
            Ok(_) => "posted",
            Err(error) if crate::flow::is_cancellation(&error) => return Err(error.into()),
            // The ledger refused the journal (unbalanced, a closed period): nothing to undo.
            Err(error) => {
                flow.publish(
                    &ctx,
                    "problem",
                    json!(crate::flow::problem_of(&error).detail),
                );
                "refused"
            }
        };
        flow.publish(&ctx, "outcome", json!(outcome));
        Ok(Json(json!({"journal_id": id, "outcome": outcome})))
    }

    #[handler]
    async fn signal(
        &self,
        ctx: SharedWorkflowContext<'_>,
        signal: Json<Value>,
    ) -> Result<(), HandlerError> {
        Signal::parse(signal)?.resolve(&ctx).await
    }

    #[handler]
    async fn state(&self, ctx: SharedWorkflowContext<'_>) -> Result<Json<Value>, HandlerError> {
        published(&ctx).await
    }
}
