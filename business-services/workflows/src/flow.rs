//! One running instance's steps: each call to a provider or a service is a journaled Restate
//! `run`, so an instance replayed after a crash answers the recorded result instead of calling
//! again, and the state the flow publishes for `workflow/restate query`.
//!
//! A crash can still fall between a call's effect and its journal entry; the step then runs
//! again. Every step therefore passes a key that makes its effect idempotent at the callee
//! (an order id, a journal id, a payment idempotency key, a task id), derived from the
//! instance key and the step's name, so the second run finds the first one's effect.

use std::sync::Arc;
use std::time::Duration;

use restate_sdk::prelude::*;
use serde_json::{Map, Value, json};
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::{Money, Sign};

/// How a step whose callee answered a retryable problem (a provider down, a timeout) is
/// retried: soon at first, then every few seconds, for as long as it takes, since giving up
/// would mean compensating work that a restart of the callee would have let through.
fn retry_policy() -> RunRetryPolicy {
    RunRetryPolicy::new()
        .initial_delay(Duration::from_millis(50))
        .exponentiation_factor(2.0)
        .max_delay(Duration::from_secs(2))
}

/// What one instance acts through, and what it publishes.
pub(crate) struct Flow {
    client: Arc<dyn ProviderClient>,
    /// The instance key, `<tenant>~<id>`: the root of every idempotency key.
    key: String,
    state: Map<String, Value>,
}

impl Flow {
    pub(crate) fn new(client: Arc<dyn ProviderClient>, key: String) -> Self {
        Flow {
            client,
            key,
            state: Map::new(),
        }
    }

    /// The key that makes step `name`'s effect happen once: `<instance key>/<name>`.
    pub(crate) fn idempotency_key(&self, name: &str) -> String {
        format!("{}/{name}", self.key)
    }

    /// Runs `action` of `provider` as step `name`. A problem that is not retryable ends the
    /// step with a terminal error carrying the problem (see [`problem_of`]); the flow decides
    /// what to compensate.
    pub(crate) async fn step(
        &self,
        ctx: &WorkflowContext<'_>,
        name: &str,
        provider: &str,
        action: &str,
        params: Value,
    ) -> Result<Value, TerminalError> {
        let client = self.client.clone();
        let (provider, action) = (provider.to_owned(), action.to_owned());
        let done = ctx
            .run(|| async move {
                match client.invoke(&provider, &action, params).await {
                    Ok(value) => Ok(Json(value)),
                    Err(problem) if problem.retryable => Err(HandlerError::from(format!(
                        "{provider}/{action}: {} ({})",
                        problem.detail, problem.code
                    ))),
                    Err(problem) => Err(terminal(&problem).into()),
                }
            })
            .name(name)
            .retry_policy(retry_policy())
            .await?;
        Ok(done.into_inner())
    }

    /// What `provider` declares and the tenant's config of it (`describe`), as step `name`.
    pub(crate) async fn describe(
        &self,
        ctx: &WorkflowContext<'_>,
        name: &str,
        provider: &str,
    ) -> Result<Value, TerminalError> {
        let client = self.client.clone();
        let provider = provider.to_owned();
        let described = ctx
            .run(|| async move {
                match client.describe(&provider).await {
                    Ok(value) => Ok(Json(value)),
                    Err(problem) if problem.retryable => Err(HandlerError::from(problem.detail)),
                    Err(problem) => Err(terminal(&problem).into()),
                }
            })
            .name(name)
            .retry_policy(retry_policy())
            .await?;
        Ok(described.into_inner())
    }

    /// Creates ledger account `code` unless it exists (a conflict is the account there
    /// already), as step `account:<code>`.
    pub(crate) async fn ensure_account(
        &self,
        ctx: &WorkflowContext<'_>,
        (code, name, kind): (&str, &str, &str),
        currency: &str,
    ) -> Result<(), TerminalError> {
        let created = self
            .step(
                ctx,
                &format!("account:{code}"),
                "services/ledger",
                "create_account",
                json!({"code": code, "name": name, "type": kind, "currency": currency}),
            )
            .await;
        match created {
            Err(error) if error.code() == 409 && !is_cancellation(&error) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Records `field` in the published state and journals the state, so `query` shows where
    /// the instance is even while it waits.
    pub(crate) fn publish(&mut self, ctx: &WorkflowContext<'_>, field: &str, value: Value) {
        self.state.insert(field.to_owned(), value);
        ctx.set("state", Json(Value::Object(self.state.clone())));
    }
}

/// `raw` as money, or a terminal 400 naming `field`: an amount the flow cannot read ends it.
pub(crate) fn money(raw: &str, sign: Sign, field: &str) -> Result<Money, TerminalError> {
    Money::parse(raw, sign, field).map_err(|p| TerminalError::new_with_code(400, p.detail))
}

/// A problem as a terminal error: its HTTP status as the code, the problem as the message.
pub(crate) fn terminal(problem: &Problem) -> TerminalError {
    let body = json!({"code": problem.code, "detail": problem.detail});
    TerminalError::new_with_code(problem.status(), body.to_string())
}

/// The problem a terminal error of [`terminal`] carries; any other terminal error (the
/// engine's own, e.g. a cancellation) is `internal` with its message.
pub(crate) fn problem_of(error: &TerminalError) -> Problem {
    serde_json::from_str::<Value>(error.message())
        .ok()
        .and_then(|body| {
            let code = serde_json::from_value::<ErrorCode>(body["code"].clone()).ok()?;
            Some(Problem::new(
                code,
                body["detail"].as_str().unwrap_or_default(),
            ))
        })
        .unwrap_or_else(|| Problem::new(ErrorCode::Internal, error.message()))
}

/// Whether a terminal error is the engine telling the flow it was cancelled.
pub(crate) fn is_cancellation(error: &TerminalError) -> bool {
    error.code() == 409 && problem_of(error).code == ErrorCode::Internal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_survives_the_trip_through_a_terminal_error() {
        let problem = Problem::new(ErrorCode::Conflict, "insufficient stock");
        let error = terminal(&problem);
        assert_eq!(error.code(), 409);
        let back = problem_of(&error);
        assert_eq!(
            (back.code, back.detail.as_str()),
            (ErrorCode::Conflict, "insufficient stock")
        );
        assert!(!is_cancellation(&error));
        assert!(is_cancellation(&TerminalError::new_with_code(
            409,
            "cancelled"
        )));
    }
}
