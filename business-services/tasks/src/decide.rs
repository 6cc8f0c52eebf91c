//! Approve and reject: the decision is recorded first, then delivered to the workflow that
//! waits on it (ADR 46).
//!
//! Recording is one guarded `UPDATE`, so a task is decided once whoever races. Delivery is a
//! `signal` of the workflow provider resolving the promise `task:<task_id>` of the task's
//! instance, with a payload made only of what was recorded, so every delivery of one decision
//! sends the same payload. A failed delivery leaves the task decided and undelivered (its
//! `delivery_error` says why); the same decision sent again is answered from the store and
//! delivers it. A crash between the signal and `delivered_at` sends the signal a second time,
//! which the workflow provider answers as the same resolution: nothing is lost, nothing is
//! decided twice.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::Problem;

use crate::Inbox;
use crate::inbox::{claimed_by_another, closed, now};
use crate::task::Task;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    task_id: String,
    comment: Option<String>,
}

/// The two decisions, as the task's status records them and the payload names them.
#[derive(Clone, Copy)]
pub enum Decision {
    Approved,
    Rejected,
}

impl Decision {
    fn status(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        }
    }
}

impl Inbox<'_> {
    pub async fn decide(&self, p: Decide, decision: Decision) -> Result<Value, Problem> {
        let caller = self.caller()?;
        let at = now();
        // A task no workflow waits on is delivered by being decided.
        let recorded = self
            .db
            .execute(
                self.client,
                "UPDATE task_inbox SET status = ?2, decided_by = ?3, decided_at = ?4,
                    comment = ?5, claimed_by = COALESCE(claimed_by, ?3),
                    claimed_at = COALESCE(claimed_at, ?4),
                    delivered_at = CASE WHEN workflow IS NULL THEN ?4 ELSE NULL END
                 WHERE task_id = ?1 AND (status IN ('open', 'escalated')
                    OR (status = 'claimed' AND claimed_by = ?3))",
                vec![
                    json!(p.task_id),
                    json!(decision.status()),
                    json!(caller),
                    json!(at),
                    json!(p.comment),
                ],
            )
            .await?;
        let task = self.find(&p.task_id).await?;
        if recorded == 0 {
            match task.status.as_str() {
                status if status == decision.status() => {}
                "claimed" => return Err(claimed_by_another(&task)),
                _ => return Err(closed(&task)),
            }
        }
        let task = if task.delivered {
            task
        } else {
            self.deliver(task, decision).await?
        };
        let mut answer = task.answer(&now())?;
        answer["replayed"] = json!(recorded == 0);
        Ok(answer)
    }

    /// Signals the recorded decision to the task's workflow and records the outcome; the
    /// task as it then stands. A refused signal is not this call's failure: the decision
    /// stands, and the answer shows it undelivered with the reason.
    async fn deliver(&self, task: Task, decision: Decision) -> Result<Task, Problem> {
        let (Some(workflow), Some(instance)) = (&task.workflow, &task.instance) else {
            return Err(crate::task::broken(&format!(
                "task {} decided without delivery and without a workflow",
                task.task_id
            )));
        };
        let signal = json!({
            "workflow": workflow,
            "id": instance,
            "name": format!("task:{}", task.task_id),
            "payload": {
                "task_id": task.task_id,
                "decision": decision.status(),
                "comment": task.comment,
                "decided_by": task.decided_by,
            },
        });
        let outcome = self.client.invoke(self.workflow, "signal", signal).await;
        let (sql, value) = match outcome {
            Ok(_) => (
                "UPDATE task_inbox SET delivered_at = ?2, delivery_error = NULL
                 WHERE task_id = ?1 AND delivered_at IS NULL",
                now(),
            ),
            Err(problem) => (
                "UPDATE task_inbox SET delivery_error = ?2
                 WHERE task_id = ?1 AND delivered_at IS NULL",
                delivery_error(&problem),
            ),
        };
        self.db
            .execute(self.client, sql, vec![json!(task.task_id), json!(value)])
            .await?;
        self.find(&task.task_id).await
    }
}

/// Why a delivery failed, within its column's width.
fn delivery_error(problem: &Problem) -> String {
    format!("{}: {}", problem.code, problem.detail)
        .chars()
        .take(600)
        .collect()
}
