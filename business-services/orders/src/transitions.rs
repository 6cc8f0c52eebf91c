//! Moving an order through its state machine ([`crate::status`]) with the event of the state
//! it reaches, and the two moves that are nothing more: confirm, and cancel with its release.

use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Event, Problem};
use switchyard_service_kit::clock;

use crate::db::Head;
use crate::ids::{event_id, reference};
use crate::status::{Move, Status};
use crate::steps::StepState;
use crate::{Orders, SOURCE, TOPIC};

impl Orders<'_> {
    /// Moves the order along `action`'s transition, or answers the `conflict` it is. A
    /// transition with an event writes it in the same transaction, with `data` beside the
    /// order id and new status in its payload.
    pub async fn transition(
        &self,
        order_id: &str,
        action: Move,
        data: Value,
    ) -> Result<(), Problem> {
        let transition = action.transition();
        let to = transition.to;
        // `from` holds this crate's states only, so their names are spelled into the SQL.
        let states: Vec<String> = transition.from.iter().map(|s| format!("'{s}'")).collect();
        let mut statements = vec![self.db.statement(
            &format!(
                "UPDATE ord_order SET status = ?1, updated_at = ?2 WHERE order_id = ?3 AND status IN ({})",
                states.join(", ")
            ),
            vec![json!(to), json!(clock::now()), json!(order_id)],
        )];
        if let (Some(kind), Some(outbox)) = (transition.event, self.outbox) {
            let mut payload = json!({"order_id": order_id, "status": to});
            if let (Some(payload), Value::Object(data)) = (payload.as_object_mut(), data) {
                payload.extend(data);
            }
            let event = Event::new(kind, SOURCE, TOPIC, payload)
                .with_id(event_id(order_id, to))
                .with_key(order_id)
                .with_subject(order_id)
                .with_idempotency_key(format!("{}:{to}", reference(order_id)));
            statements.push(outbox.statement_if(
                self.client.tenant(),
                &event,
                "SELECT 1 FROM ord_order WHERE order_id = ? AND status = ?",
                vec![json!(order_id), json!(to)],
            ));
        }
        match self.db.transaction_affected(self.client, statements).await {
            Ok(affected) if affected.first() == Some(&1) => return Ok(()),
            // No row was in a `from` state, or the event's id was taken: the order reached
            // `to` before. Either way the answer is the order's state.
            Ok(_) => {}
            Err(problem) if problem.code == ErrorCode::Conflict => {}
            Err(problem) => return Err(problem),
        }
        let head = self.require(order_id).await?;
        let from: Vec<&str> = transition.from.iter().map(|s| s.as_str()).collect();
        Err(Problem::new(
            ErrorCode::Conflict,
            format!(
                "order {order_id} is {}; {} needs it {}",
                head.status,
                action.name(),
                from.join(" or ")
            ),
        ))
    }

    /// Moves the order along `action` into the state its saga runs in, or finds it there
    /// already (a saga stopped by a failed step, resumed by calling the action again);
    /// answers the order's head either way, and the `conflict` from any other state.
    pub async fn start_or_resume(&self, order_id: &str, action: Move) -> Result<Head, Problem> {
        if let Err(conflict) = self.transition(order_id, action, json!({})).await {
            let head = self.require(order_id).await?;
            if head.status != action.transition().to {
                return Err(conflict);
            }
        }
        self.require(order_id).await
    }

    pub async fn confirm(&self, order_id: &str) -> Result<Value, Problem> {
        self.transition(order_id, Move::Confirm, json!({})).await?;
        self.view(order_id, None).await
    }

    /// Cancels and releases the reservation line by line; a cancelled order with a line not
    /// released (its release failed, or the process died before it ran) releases the rest
    /// when cancelled again. Each release has a request id, so one that ran but was not
    /// recorded is not released twice.
    pub async fn cancel(&self, order_id: &str) -> Result<Value, Problem> {
        if let Err(conflict) = self.transition(order_id, Move::Cancel, json!({})).await {
            let head = self.require(order_id).await?;
            let steps = self.steps(order_id).await?;
            let lines = self.lines(order_id).await?;
            let unfinished = lines.iter().any(|line| {
                !steps
                    .get(&format!("release:{}", line.line))
                    .is_some_and(|s| s.is_ok())
            });
            if !(head.status == Status::Cancelled && unfinished) {
                return Err(conflict);
            }
        }
        let head = self.require(order_id).await?;
        let steps = self.steps(order_id).await?;
        let reference = reference(order_id);
        for line in self.lines(order_id).await? {
            let name = format!("release:{}", line.line);
            if steps.get(&name).is_some_and(|s| s.is_ok()) {
                continue;
            }
            let released = self
                .client
                .invoke(
                    crate::INVENTORY,
                    "release",
                    json!({"item": line.item, "warehouse": head.warehouse, "bin": head.bin,
                           "quantity": line.quantity, "reference": reference,
                           "request_id": format!("{reference}/cancel:{}", line.line)}),
                )
                .await;
            let (state, error) = match released {
                Ok(_) => (StepState::Ok, None),
                Err(problem) => (StepState::Failed, Some(problem.detail)),
            };
            self.record(order_id, &name, state, error, None).await?;
        }
        self.view(order_id, None).await
    }
}
