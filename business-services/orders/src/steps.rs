//! The saga's steps. Every step a call takes is stored per order with how it ended, so calling
//! the action again retries what failed and skips what is done (a line is never issued or
//! released twice), and `get` shows them.

use std::collections::HashMap;

use serde_json::{Value, json};
use switchyard_contracts::Problem;
use switchyard_service_kit::{Row, clock};

use crate::Orders;
use crate::db::{broken, optional_text, text};

/// How a step ended, stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Ok,
    Failed,
    /// Begun and not ended: a webhook not yet tried, a posting time fixed before its journal.
    Pending,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Ok => "ok",
            StepState::Failed => "failed",
            StepState::Pending => "pending",
        }
    }

    fn parse(name: &str) -> Option<StepState> {
        [StepState::Ok, StepState::Failed, StepState::Pending]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A stored step.
pub struct Step {
    pub state: StepState,
    /// What the step produced: an issue's cost, a receipt's value, a journal's posting time.
    pub detail: Option<String>,
}

impl Step {
    pub fn is_ok(&self) -> bool {
        self.state == StepState::Ok
    }
}

impl Orders<'_> {
    /// The order's steps by name.
    pub async fn steps(&self, order_id: &str) -> Result<HashMap<String, Step>, Problem> {
        let rows = self.step_rows(order_id).await?;
        rows.iter()
            .map(|row| {
                let state = text(row, "status")?;
                Ok((
                    text(row, "name")?,
                    Step {
                        state: StepState::parse(&state).ok_or_else(|| {
                            broken(&format!("a step in no known state ({state:?})"))
                        })?,
                        detail: optional_text(row, "detail"),
                    },
                ))
            })
            .collect()
    }

    /// The order's step rows in the saga's order.
    pub async fn step_rows(&self, order_id: &str) -> Result<Vec<Row>, Problem> {
        self.db
            .query(
                self.client,
                "SELECT name, status, error, detail FROM ord_step WHERE order_id = ?1 \
                 ORDER BY step_order, name",
                vec![json!(order_id)],
            )
            .await
    }

    /// The upsert of one step's outcome, to put in a transaction with what it records.
    pub fn step_statement(
        &self,
        order_id: &str,
        name: &str,
        state: StepState,
        error: Option<&str>,
        detail: Option<&str>,
        now: &str,
    ) -> Value {
        self.db.statement(
            "INSERT INTO ord_step (order_id, name, step_order, status, error, detail, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (order_id, name) DO UPDATE SET \
             status = excluded.status, error = excluded.error, detail = excluded.detail, \
             updated_at = excluded.updated_at",
            vec![
                json!(order_id),
                json!(name),
                json!(step_order(name)),
                json!(state.as_str()),
                json!(error),
                json!(detail),
                json!(now),
            ],
        )
    }

    /// Records one step's outcome on its own.
    pub async fn record(
        &self,
        order_id: &str,
        name: &str,
        state: StepState,
        error: Option<String>,
        detail: Option<String>,
    ) -> Result<(), Problem> {
        let statement = self.step_statement(
            order_id,
            name,
            state,
            error.as_deref(),
            detail.as_deref(),
            &clock::now(),
        );
        self.db.transaction(self.client, vec![statement]).await
    }

    /// Records how step `name` ended (`ok`, or `failed` with the problem's detail), with
    /// `detail`; answers the outcome, so a failed step fails the call.
    pub async fn settle<T>(
        &self,
        order_id: &str,
        name: &str,
        outcome: Result<T, Problem>,
        detail: Option<String>,
    ) -> Result<T, Problem> {
        let (state, error) = match &outcome {
            Ok(_) => (StepState::Ok, None),
            Err(problem) => (StepState::Failed, Some(problem.detail.clone())),
        };
        self.record(order_id, name, state, error, detail).await?;
        outcome
    }

    /// The posting time of the journal step `name`, fixed before its first attempt, so a
    /// retry posts the very same journal (a replay for the ledger) rather than a conflicting one.
    pub async fn posting_time(
        &self,
        order_id: &str,
        name: &str,
        steps: &HashMap<String, Step>,
    ) -> Result<String, Problem> {
        if let Some(time) = steps.get(name).and_then(|s| s.detail.clone()) {
            return Ok(time);
        }
        let time = clock::now();
        self.record(order_id, name, StepState::Pending, None, Some(time.clone()))
            .await?;
        Ok(time)
    }
}

/// Where steps sort in `get`: the saga's order (a line's second receipt, `restock:<line>/2`,
/// sorts with its line and after its first by name).
fn step_order(name: &str) -> i64 {
    let line = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|n| n.split('/').next()?.parse::<i64>().ok())
            .unwrap_or(0)
    };
    match name {
        "reserve" => 10,
        "webhook" => 20,
        "annotate" => 30,
        "post_ledger" => 5_000,
        _ if name.starts_with("restock:") => 6_000 + line("restock:"),
        "post_return" => 7_000,
        _ if name.starts_with("release:") => 1_000 + line("release:"),
        _ if name.starts_with("issue:") => 2_000 + line("issue:"),
        _ => 9_000,
    }
}
