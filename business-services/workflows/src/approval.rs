//! A human decision inside a flow: a task in the tenant's inbox (`services/tasks`), a durable
//! promise the task's decision resolves, and a durable timer that escalates the task when its
//! SLA passes with nobody deciding. Both survive a restart of `serve` or of Restate: the
//! timer and the promise are the engine's, not this process's.

use std::time::Duration;

use restate_sdk::prelude::*;
use serde_json::{Value, json};

use crate::flow::Flow;

/// The tasks service, which checks who may decide and then resolves the promise.
pub(crate) const TASKS: &str = "services/tasks";

/// What the approver is asked.
pub(crate) struct Request {
    /// The task's id: one per instance and question, so a replayed step creates no second task.
    pub task_id: String,
    pub title: String,
    pub data: Value,
    pub sla: Duration,
}

/// The approver's answer.
pub(crate) struct Decision {
    pub approved: bool,
    pub payload: Value,
}

/// Opens the task, waits for its decision (escalating it once when the SLA passes), and
/// answers the decision.
pub(crate) async fn ask(
    flow: &mut Flow,
    ctx: &WorkflowContext<'_>,
    workflow: &str,
    id: &str,
    request: Request,
) -> Result<Decision, TerminalError> {
    let sla_ms = u64::try_from(request.sla.as_millis()).unwrap_or(u64::MAX);
    flow.step(
        ctx,
        "approval",
        TASKS,
        "create",
        json!({"task_id": request.task_id, "workflow": workflow, "instance": id,
               "kind": "approval", "title": request.title, "data": request.data,
               "sla_ms": sla_ms}),
    )
    .await?;
    flow.publish(ctx, "waiting_for", json!(request.task_id));
    let promise = format!("task:{}", request.task_id);
    let decided: Json<Value> = restate_sdk::select! {
        decided = ctx.promise::<Json<Value>>(&promise) => decided?,
        _ = ctx.sleep(request.sla) => {
            flow.step(ctx, "escalate", TASKS, "escalate", json!({"task_id": request.task_id}))
                .await?;
            flow.publish(ctx, "escalated", json!(true));
            ctx.promise::<Json<Value>>(&promise).await?
        }
    };
    let payload = decided.into_inner();
    flow.publish(ctx, "waiting_for", Value::Null);
    Ok(Decision {
        approved: payload["decision"].as_str() == Some("approved"),
        payload,
    })
}
