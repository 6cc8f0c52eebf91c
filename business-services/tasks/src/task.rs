//! A stored task read back, and the answer every action gives for it.

use serde_json::{Map, Value, json};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::{Row, clock};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// A row the inbox cannot read back: its table was changed behind its back.
pub fn broken(what: &str) -> Problem {
    Problem::new(ErrorCode::Internal, format!("task storage holds {what}"))
}

/// One task as stored.
pub struct Task {
    pub id: i64,
    pub task_id: String,
    pub workflow: Option<String>,
    pub instance: Option<String>,
    pub status: String,
    pub claimed_by: Option<String>,
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    pub delivered: bool,
    /// The row, for the answer.
    row: Row,
}

impl Task {
    pub fn from_row(row: Row) -> Result<Task, Problem> {
        let text = |column: &str| row.get(column).and_then(Value::as_str).map(str::to_owned);
        let required = |column: &str| {
            text(column).ok_or_else(|| broken(&format!("a task without {column}: {row:?}")))
        };
        let id = row
            .get("id")
            .and_then(switchyard_service_kit::money::read_units)
            .and_then(|id| i64::try_from(id).ok())
            .ok_or_else(|| broken(&format!("a task without an id: {row:?}")))?;
        Ok(Task {
            id,
            task_id: required("task_id")?,
            workflow: text("workflow"),
            instance: text("instance"),
            status: required("status")?,
            claimed_by: text("claimed_by"),
            decided_by: text("decided_by"),
            comment: text("comment"),
            delivered: text("delivered_at").is_some(),
            row,
        })
    }

    /// Whether the task still waits for a decision.
    pub fn undecided(&self) -> bool {
        matches!(self.status.as_str(), "open" | "claimed" | "escalated")
    }

    /// The task as the contract's `task`, `overdue` judged at `now`.
    pub fn answer(&self, now: &str) -> Result<Value, Problem> {
        let mut out = Map::new();
        for column in [
            "task_id",
            "workflow",
            "instance",
            "kind",
            "title",
            "approver_role",
            "escalate_to_role",
            "role",
            "status",
            "created_at",
            "created_by",
            "due_at",
            "escalated_at",
            "claimed_by",
            "claimed_at",
            "decided_by",
            "decided_at",
            "comment",
            "delivered_at",
            "delivery_error",
        ] {
            out.insert(
                column.into(),
                self.row.get(column).cloned().unwrap_or(Value::Null),
            );
        }
        let data = self.row.get("data").and_then(Value::as_str).unwrap_or("");
        let data: Value = serde_json::from_str(data)
            .map_err(|_| broken(&format!("task {} with data that is not JSON", self.task_id)))?;
        out.insert("data".into(), data);
        let sla_ms = self
            .row
            .get("sla_ms")
            .and_then(switchyard_service_kit::money::read_units)
            .ok_or_else(|| broken(&format!("task {} without an sla_ms", self.task_id)))?;
        out.insert("sla_ms".into(), json!(sla_ms as i64));
        let due = out["due_at"].as_str().unwrap_or_default();
        out.insert(
            "overdue".into(),
            json!(self.undecided() && now > due && !due.is_empty()),
        );
        out.insert("delivered".into(), json!(self.delivered));
        Ok(Value::Object(out))
    }
}

/// Now and `ms` later, both in the kit's stored form (fixed-width UTC, microseconds), so the
/// database compares them as text.
pub fn now_and_after(ms: i64) -> Result<(String, String), Problem> {
    let now = OffsetDateTime::now_utc();
    // The stored form keeps microseconds: finer digits are dropped, never rounded up.
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .map_err(|e| broken(&format!("a clock it cannot read: {e}")))?;
    let stamp = |t: OffsetDateTime| {
        let text = t
            .format(&Rfc3339)
            .map_err(|e| broken(&format!("a time it cannot write: {e}")))?;
        clock::normalize(&text, "/sla_ms")
    };
    Ok((stamp(now)?, stamp(now + Duration::milliseconds(ms))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_sort_after_now_as_text() {
        let (now, due) = now_and_after(1).unwrap();
        assert!(due > now, "{due} > {now}");
        assert_eq!(now.len(), clock::now().len());
        let (_, year) = now_and_after(31_536_000_000).unwrap();
        assert!(year > due);
    }
}
