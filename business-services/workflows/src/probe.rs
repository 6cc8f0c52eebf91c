//! StepProbe: what one durable step costs on this installation. It runs a cheap provider
//! read (`get` of a key nobody set, on the tenant's `cache/memory`) `steps` times as a
//! journaled step, and as many times called directly through the same client, and answers
//! both latencies. `switchyard bench` runs it (scenario `workflow`); an operator can launch it
//! like any workflow to see what durability adds here.
//!
//! The timings are taken around the awaits, never journaled: a replay of the probe (after a
//! crash) answers other numbers, which is what a probe should do.

use std::time::Instant;

use restate_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Clients, Signal, published, tenant_of};

const PROVIDER: &str = "cache/memory";
const MAX_STEPS: u32 = 2_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default = "default_steps")]
    steps: u32,
}

fn default_steps() -> u32 {
    100
}

pub struct StepProbe {
    clients: Clients,
}

impl StepProbe {
    pub fn new(clients: Clients) -> Self {
        StepProbe { clients }
    }
}

#[restate_sdk::workflow]
impl StepProbe {
    /// Answers `{durable_us: [..], direct_us: [..]}`, one entry per step, in microseconds.
    #[handler]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        input: Json<Value>,
    ) -> Result<Json<Value>, HandlerError> {
        let key = ctx.key().to_owned();
        let (tenant, _) = tenant_of(&key)?;
        let client = (self.clients)(tenant, "workflow:StepProbe");
        let input: Input = serde_json::from_value(input.into_inner())
            .map_err(|e| TerminalError::new_with_code(400, format!("StepProbe input: {e}")))?;
        if input.steps == 0 || input.steps > MAX_STEPS {
            return Err(TerminalError::new_with_code(
                400,
                format!("StepProbe steps must be 1 to {MAX_STEPS}"),
            )
            .into());
        }
        let params = json!({"key": "switchyard-step-probe"});
        let (mut durable, mut direct) = (Vec::new(), Vec::new());
        for n in 0..input.steps {
            let started = Instant::now();
            let (journaled, asked) = (client.clone(), params.clone());
            ctx.run(|| async move {
                journaled
                    .invoke(PROVIDER, "get", asked)
                    .await
                    .map(Json)
                    .map_err(|p| HandlerError::from(p.detail))
            })
            .name(format!("probe:{n}"))
            .await?;
            durable.push(micros(started));
            let started = Instant::now();
            client
                .invoke(PROVIDER, "get", params.clone())
                .await
                .map_err(|p| TerminalError::new(p.detail))?;
            direct.push(micros(started));
        }
        Ok(Json(json!({"durable_us": durable, "direct_us": direct})))
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

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}
