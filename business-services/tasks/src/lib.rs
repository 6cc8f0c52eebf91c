//! The human task inbox: tasks a workflow creates when it needs a person's decision, listed
//! with their SLA, claimed and approved or rejected by principals the policy allows,
//! escalated by the workflow's timer and cancelled by its compensation. A decision resolves
//! the workflow's durable promise through the workflow provider's `signal` (ADR 46).
//!
//! Who may claim and decide is the gateway's policy (`policies/switchyard/authz.rego`: the
//! `approver` or `admin` role); the service records who did, as the runtime names the caller
//! ([`ProviderClient::caller`]), never a value of the params.

mod decide;
mod inbox;
mod schema;
mod task;

use async_trait::async_trait;
use serde_json::Value;
use switchyard_client::{ProviderClient, Service, ServiceDescriptor};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::{Db, ServiceCore, expect_domain, params};

use decide::Decision;

/// What the summary of `contracts/schemas/services/tasks.json` says (a test keeps them equal).
const SUMMARY: &str = "A human task inbox: approval tasks created by workflows, listed with \
their SLA, claimed and approved or rejected by principals the policy allows, escalated and \
cancelled by their workflow; a decision resolves the workflow's durable promise.";

/// The workflow provider a decision is signalled to unless settings name another.
pub const WORKFLOW: &str = "workflow/restate";

/// Where the inbox keeps its tasks and whom it tells of a decision.
#[derive(Debug, Clone)]
pub struct TasksSettings {
    /// The db provider holding each tenant's tasks: `db/sqlite` or `db/postgres`.
    pub db: String,
    /// The workflow provider whose `signal` resolves a task's promise ([`WORKFLOW`]).
    pub workflow: String,
}

/// The `tasks` service. One value serves every tenant: each call's client is bound to its
/// tenant, and the tenant's table is created on its first call.
pub struct TasksService {
    core: ServiceCore,
    workflow: String,
}

/// One call's view of the inbox.
pub(crate) struct Inbox<'a> {
    db: &'a Db,
    client: &'a dyn ProviderClient,
    workflow: &'a str,
}

impl TasksService {
    /// Refuses a db id that names no db provider and a workflow id of another domain.
    pub fn new(settings: TasksSettings) -> Result<Self, Problem> {
        expect_domain(&settings.workflow, "workflow")?;
        Ok(TasksService {
            core: ServiceCore::new(
                "tasks",
                env!("CARGO_PKG_VERSION"),
                SUMMARY,
                &settings.db,
                None,
            )?,
            workflow: settings.workflow,
        })
    }
}

#[async_trait]
impl Service for TasksService {
    fn descriptor(&self) -> &ServiceDescriptor {
        &self.core.descriptor
    }

    async fn invoke(
        &self,
        client: &dyn ProviderClient,
        action: &str,
        p: Value,
    ) -> Result<Value, Problem> {
        self.core.install(client, schema::tables).await?;
        let inbox = Inbox {
            db: &self.core.db,
            client,
            workflow: &self.workflow,
        };
        match action {
            "create" => inbox.create(params(p)?).await,
            "list" => inbox.list(params(p)?).await,
            "get" => {
                let p: inbox::ById = params(p)?;
                inbox.answer(&p.task_id).await
            }
            "claim" => inbox.claim(params(p)?).await,
            "approve" => inbox.decide(params(p)?, Decision::Approved).await,
            "reject" => inbox.decide(params(p)?, Decision::Rejected).await,
            "escalate" => inbox.escalate(params(p)?).await,
            "cancel" => inbox.cancel(params(p)?).await,
            other => Err(Problem::new(
                ErrorCode::ActionNotFound,
                format!("tasks has no action {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_descriptor_is_the_contract_file() {
        let contract: Value = serde_json::from_str(include_str!(
            "../../../contracts/schemas/services/tasks.json"
        ))
        .unwrap();
        assert_eq!(contract["summary"], json!(SUMMARY));
        let service = TasksService::new(TasksSettings {
            db: "db/sqlite".into(),
            workflow: WORKFLOW.into(),
        })
        .unwrap();
        let names: Vec<&str> = service
            .descriptor()
            .actions
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "create", "list", "get", "claim", "approve", "reject", "escalate", "cancel"
            ]
        );
        for action in &service.descriptor().actions {
            assert_eq!(
                action.params["additionalProperties"],
                json!(false),
                "{}",
                action.name
            );
        }
    }

    #[test]
    fn settings_naming_the_wrong_kind_of_provider_are_refused() {
        for (db, workflow) in [("cache/memory", WORKFLOW), ("db/sqlite", "db/sqlite")] {
            let settings = TasksSettings {
                db: db.into(),
                workflow: workflow.into(),
            };
            assert!(TasksService::new(settings).is_err(), "{db} {workflow}");
        }
    }
}
