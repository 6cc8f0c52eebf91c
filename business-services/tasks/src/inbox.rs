//! The inbox's life cycle apart from decisions: create, read, claim, escalate, cancel.
//!
//! Every change is one guarded `UPDATE` (its `WHERE` names the statuses it may leave), so two
//! callers racing on one task cannot both win; the loser reads the task back and is answered
//! by what it finds.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_contracts::{ErrorCode, Problem};

use crate::Inbox;
use crate::schema::COLUMNS;
use crate::task::{Task, now_and_after};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    task_id: String,
    workflow: Option<String>,
    instance: Option<String>,
    kind: String,
    title: String,
    #[serde(default)]
    data: Map<String, Value>,
    #[serde(default = "approver")]
    approver_role: String,
    sla_ms: i64,
    escalate_to_role: Option<String>,
}

fn approver() -> String {
    "approver".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    status: Option<String>,
    role: Option<String>,
    #[serde(default = "fifty")]
    limit: u32,
    #[serde(default)]
    after: i64,
}

fn fifty() -> u32 {
    50
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ById {
    pub task_id: String,
}

impl Inbox<'_> {
    /// The task, or `resource_not_found`.
    pub async fn find(&self, task_id: &str) -> Result<Task, Problem> {
        let sql = format!("SELECT {COLUMNS} FROM task_inbox WHERE task_id = ?1");
        let mut rows = self
            .db
            .query(self.client, &sql, vec![json!(task_id)])
            .await?;
        match rows.pop() {
            Some(row) => Task::from_row(row),
            None => Err(Problem::new(
                ErrorCode::ResourceNotFound,
                format!("no task {task_id:?}"),
            )),
        }
    }

    /// The task as answered now.
    pub async fn answer(&self, task_id: &str) -> Result<Value, Problem> {
        self.find(task_id).await?.answer(&now())
    }

    pub async fn create(&self, p: Create) -> Result<Value, Problem> {
        if p.workflow.is_some() != p.instance.is_some() {
            return Err(Problem::new(
                ErrorCode::ParamsUnprocessable,
                "workflow and instance name the promise a decision resolves: give both or neither",
            ));
        }
        let data = Value::Object(p.data.clone()).to_string();
        let (created_at, due_at) = now_and_after(p.sla_ms)?;
        let inserted = self
            .db
            .execute(
                self.client,
                "INSERT INTO task_inbox (task_id, workflow, instance, kind, title, data,
                    approver_role, escalate_to_role, role, status, sla_ms, created_at,
                    created_by, due_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, 'open', ?9, ?10, ?11, ?12)
                 ON CONFLICT (task_id) DO NOTHING",
                vec![
                    json!(p.task_id),
                    json!(p.workflow),
                    json!(p.instance),
                    json!(p.kind),
                    json!(p.title),
                    json!(data),
                    json!(p.approver_role),
                    json!(p.escalate_to_role),
                    json!(p.sla_ms),
                    json!(created_at),
                    json!(self.client.caller()),
                    json!(due_at),
                ],
            )
            .await?;
        let task = self.find(&p.task_id).await?;
        let mut answer = task.answer(&now())?;
        if inserted == 0 {
            // The same task again (a workflow step retried after a crash) is the stored one;
            // anything else under its id is another task, which the caller must name anew.
            let same = ["workflow", "instance", "kind", "title", "approver_role"]
                .iter()
                .zip([
                    json!(p.workflow),
                    json!(p.instance),
                    json!(p.kind),
                    json!(p.title),
                    json!(p.approver_role),
                ])
                .all(|(field, given)| answer[*field] == given)
                && answer["escalate_to_role"] == json!(p.escalate_to_role)
                && answer["sla_ms"] == json!(p.sla_ms)
                && answer["data"] == Value::Object(p.data);
            if !same {
                return Err(Problem::new(
                    ErrorCode::Conflict,
                    format!(
                        "task {:?} exists with other params; a task is created once under its id",
                        p.task_id
                    ),
                ));
            }
        }
        answer["replayed"] = json!(inserted == 0);
        Ok(answer)
    }

    pub async fn list(&self, p: List) -> Result<Value, Problem> {
        let mut sql = format!("SELECT {COLUMNS} FROM task_inbox WHERE id > ?1");
        let mut params = vec![json!(p.after)];
        for (column, value) in [("status", p.status), ("role", p.role)] {
            if let Some(value) = value {
                params.push(json!(value));
                sql.push_str(&format!(" AND {column} = ?{}", params.len()));
            }
        }
        // One more than asked: whether another page follows.
        params.push(json!(p.limit + 1));
        sql.push_str(&format!(" ORDER BY id LIMIT ?{}", params.len()));
        let rows = self.db.query(self.client, &sql, params).await?;
        let more = rows.len() > p.limit as usize;
        let now = now();
        let mut tasks = Vec::new();
        let mut last = None;
        for row in rows.into_iter().take(p.limit as usize) {
            let task = Task::from_row(row)?;
            last = Some(task.id);
            tasks.push(task.answer(&now)?);
        }
        Ok(json!({"tasks": tasks, "next_after": if more { last } else { None }}))
    }

    pub async fn claim(&self, p: ById) -> Result<Value, Problem> {
        let caller = self.caller()?;
        let claimed = self
            .db
            .execute(
                self.client,
                "UPDATE task_inbox SET status = 'claimed', claimed_by = ?2, claimed_at = ?3
                 WHERE task_id = ?1 AND status IN ('open', 'escalated')",
                vec![json!(p.task_id), json!(caller), json!(now())],
            )
            .await?;
        let task = self.find(&p.task_id).await?;
        if claimed == 0 {
            match task.status.as_str() {
                "claimed" if task.claimed_by.as_deref() == Some(caller) => {}
                "claimed" => return Err(claimed_by_another(&task)),
                _ => return Err(closed(&task)),
            }
        }
        task.answer(&now())
    }

    /// The SLA timer fired: an undecided task leaves its claimer and moves to the escalation
    /// role's inbox. Anything else is answered as it is, so a late or repeated timer is
    /// harmless.
    pub async fn escalate(&self, p: ById) -> Result<Value, Problem> {
        self.db
            .execute(
                self.client,
                "UPDATE task_inbox SET status = 'escalated', escalated_at = ?2,
                    role = COALESCE(escalate_to_role, role), claimed_by = NULL, claimed_at = NULL
                 WHERE task_id = ?1 AND status IN ('open', 'claimed')",
                vec![json!(p.task_id), json!(now())],
            )
            .await?;
        self.answer(&p.task_id).await
    }

    /// The workflow no longer waits: an undecided task is closed. A decided one keeps its
    /// decision (compensation must not fail on it); the caller reads it in the answer.
    pub async fn cancel(&self, p: ById) -> Result<Value, Problem> {
        self.db
            .execute(
                self.client,
                "UPDATE task_inbox SET status = 'cancelled', decided_by = ?2, decided_at = ?3
                 WHERE task_id = ?1 AND status IN ('open', 'claimed', 'escalated')",
                vec![json!(p.task_id), json!(self.client.caller()), json!(now())],
            )
            .await?;
        self.answer(&p.task_id).await
    }

    /// Who claims or decides: the subject the runtime says this call serves.
    pub fn caller(&self) -> Result<&str, Problem> {
        self.client.caller().ok_or_else(|| {
            Problem::new(
                ErrorCode::Unauthenticated,
                "claiming or deciding a task needs an authenticated caller",
            )
        })
    }
}

pub fn now() -> String {
    switchyard_service_kit::clock::now()
}

pub fn claimed_by_another(task: &Task) -> Problem {
    Problem::new(
        ErrorCode::Conflict,
        format!(
            "task {:?} is claimed by {}",
            task.task_id,
            task.claimed_by.as_deref().unwrap_or("another caller")
        ),
    )
}

/// `task_closed`: the task was decided or cancelled, by whom.
pub fn closed(task: &Task) -> Problem {
    Problem::new(
        ErrorCode::TaskClosed,
        format!(
            "task {:?} is already {} by {}",
            task.task_id,
            task.status,
            task.decided_by.as_deref().unwrap_or("its workflow")
        ),
    )
}
