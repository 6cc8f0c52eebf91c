//! `workflow/restate`: workflow instances run by a Restate server (docs/adr/0044). The
//! workflow definitions are Restate workflow services that `serve` hosts and registers
//! (`business-services/workflows`); this engine reaches them through Restate's ingress
//! (start, signal, state, output) and its admin API (SQL introspection, cancel).
//!
//! Every definition follows one shape, so this engine knows nothing of any one of them:
//! a `run` handler (the workflow), a shared `signal` handler that resolves a durable promise
//! by name, and a shared `state` handler that answers what the workflow published.

mod config;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard_contracts::SchemaError;
use switchyard_spi::{
    CallContext, ErrorCode, Host, Invocation, Provider, ProviderDescriptor, ProviderError,
    ProviderFactory, StartContext, parse_config,
};

pub use config::RestateWorkflowConfig;

use crate::contract::{
    Cancelled, Delivered, Instance, InstanceRef, ListParams, Listed, Queried, SignalParams,
    StartParams, Started, Step, Steps,
};
use crate::engine::{Engine, Instance as Served, describe};
use crate::instance_key;

/// Longest one call to Restate may take: a stalled server must not hold gateway requests.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Signals whose name starts with this resolve a human task's promise: only the tasks
/// service (`services/tasks`, after its approver check) may send them, never a tenant's key.
pub const TASK_SIGNAL_PREFIX: &str = "task:";

/// Where the operator's Restate server listens.
#[derive(Debug, Clone)]
pub struct RestateUrls {
    /// The ingress, e.g. `http://127.0.0.1:8080`.
    pub ingress: String,
    /// The admin API, e.g. `http://127.0.0.1:9070`.
    pub admin: String,
}

impl RestateUrls {
    /// `SWITCHYARD_RESTATE_INGRESS_URL` and `SWITCHYARD_RESTATE_ADMIN_URL`: both or neither.
    pub fn from_env() -> Result<Option<Self>, SchemaError> {
        let ingress = std::env::var("SWITCHYARD_RESTATE_INGRESS_URL").ok();
        let admin = std::env::var("SWITCHYARD_RESTATE_ADMIN_URL").ok();
        match (ingress, admin) {
            (None, None) => Ok(None),
            (Some(ingress), Some(admin)) => Ok(Some(RestateUrls {
                ingress: ingress.trim_end_matches('/').to_owned(),
                admin: admin.trim_end_matches('/').to_owned(),
            })),
            (Some(_), None) => Err(missing("SWITCHYARD_RESTATE_ADMIN_URL")),
            (None, Some(_)) => Err(missing("SWITCHYARD_RESTATE_INGRESS_URL")),
        }
    }
}

fn missing(variable: &str) -> SchemaError {
    SchemaError {
        location: variable.into(),
        message: "workflow/restate needs both SWITCHYARD_RESTATE_INGRESS_URL and \
                  SWITCHYARD_RESTATE_ADMIN_URL"
            .into(),
    }
}

pub struct RestateWorkflowFactory {
    descriptor: ProviderDescriptor,
    restate: Arc<Restate>,
}

impl RestateWorkflowFactory {
    pub fn new(urls: RestateUrls) -> Self {
        RestateWorkflowFactory {
            descriptor: describe("restate")
                .summary(
                    "Durable workflows on a Restate server: exactly-once steps, durable timers \
                     and signals, instances namespaced per tenant.",
                )
                .capabilities(&["durable_steps", "signals", "timers", "compensation"])
                .config::<RestateWorkflowConfig>()
                .build(),
            restate: Arc::new(Restate {
                urls,
                http: reqwest::Client::builder()
                    .timeout(TIMEOUT)
                    .build()
                    .unwrap_or_default(),
                workflows: RwLock::new(HashSet::new()),
            }),
        }
    }
}

#[async_trait]
impl ProviderFactory for RestateWorkflowFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn start(&self, ctx: StartContext) -> Result<Arc<dyn Provider>, ProviderError> {
        let config: RestateWorkflowConfig = parse_config(ctx.config)?;
        Ok(Arc::new(Guarded(Served(RestateWorkflow {
            tenant: ctx.tenant.as_str().to_owned(),
            max_listed: config.max_listed.unwrap_or(500),
            restate: self.restate.clone(),
        }))))
    }
}

/// Refuses task signals from anyone but the tasks service before the engine sees the call.
struct Guarded(Served<RestateWorkflow>);

#[async_trait]
impl Provider for Guarded {
    async fn invoke(&self, ctx: &CallContext, call: Invocation) -> Result<Value, ProviderError> {
        let task_signal = call.action == "signal"
            && call.params["name"]
                .as_str()
                .is_some_and(|name| name.starts_with(TASK_SIGNAL_PREFIX));
        if task_signal && ctx.service.as_deref() != Some("tasks") {
            return Err(ProviderError::new(
                ErrorCode::ScopeForbidden,
                "a task's signal is sent by deciding the task (services/tasks approve or \
                 reject), not directly",
            ));
        }
        self.0.invoke(ctx, call).await
    }

    async fn health(&self) -> switchyard_spi::Health {
        self.0.health().await
    }
}

/// What every tenant's instance shares: the server's addresses, one HTTP client, and the
/// workflow services the server is known to have.
struct Restate {
    urls: RestateUrls,
    http: reqwest::Client,
    workflows: RwLock<HashSet<String>>,
}

impl Restate {
    /// Sends one request and answers the status with the body read as JSON (null when empty
    /// or not JSON). A server that does not answer is `provider_unavailable`.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ProviderError> {
        let mut request = self
            .http
            .request(method, url)
            .header("accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ProviderError::unavailable(format!("restate: {}", e.without_url())))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ProviderError::unavailable(format!("restate: {}", e.without_url())))?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Refuses a name the server has no workflow service for: the ingress would otherwise
    /// reach any service registered there, not only workflows keyed by tenant.
    async fn ensure_workflow(&self, name: &str) -> Result<(), ProviderError> {
        if self.known(name) {
            return Ok(());
        }
        let url = format!("{}/services/{name}", self.urls.admin);
        let (status, body) = self.send(Method::GET, &url, None).await?;
        if status.is_success() && body["ty"].as_str() == Some("Workflow") {
            self.workflows
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_owned());
            return Ok(());
        }
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Err(ProviderError::not_found(format!("no workflow {name:?}")));
        }
        Err(upstream(status, &body))
    }

    fn known(&self, name: &str) -> bool {
        self.workflows
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    /// Rows of a SQL query over Restate's introspection tables.
    async fn query(&self, sql: &str) -> Result<Vec<Value>, ProviderError> {
        let url = format!("{}/query", self.urls.admin);
        let (status, body) = self
            .send(Method::POST, &url, Some(&json!({ "query": sql })))
            .await?;
        if !status.is_success() {
            return Err(upstream(status, &body));
        }
        Ok(body["rows"].as_array().cloned().unwrap_or_default())
    }
}

/// An answer of Restate's that is not one of the expected ones.
fn upstream(status: StatusCode, body: &Value) -> ProviderError {
    let detail = body["message"].as_str().unwrap_or("no detail");
    let error = ProviderError::unavailable(format!("restate answered {status}: {detail}"));
    error.with_retryable(status.is_server_error())
}

/// A text as a SQL string literal. The values quoted here passed the contract's patterns
/// (no quote can occur), so this is a second guard, not the only one.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// One tenant's view of the server.
struct RestateWorkflow {
    tenant: String,
    max_listed: u32,
    restate: Arc<Restate>,
}

/// The `run` invocation of one instance, as the introspection shows it.
struct Run {
    id: String,
    status: String,
}

impl RestateWorkflow {
    fn key(&self, id: &str) -> String {
        instance_key(&self.tenant, id)
    }

    fn ingress(&self, workflow: &str, id: &str, handler: &str) -> String {
        format!(
            "{}/{workflow}/{}/{handler}",
            self.restate.urls.ingress,
            self.key(id)
        )
    }

    /// The instance's `run` invocation, or `not_found` when it was never started.
    async fn run(&self, workflow: &str, id: &str) -> Result<Run, ProviderError> {
        self.restate.ensure_workflow(workflow).await?;
        let sql = format!(
            "SELECT id, status, completion_result, completion_failure FROM sys_invocation WHERE target_service_name = {} AND target_service_key = {} \
             AND target_handler_name = 'run' ORDER BY created_at DESC LIMIT 1",
            literal(workflow),
            literal(&self.key(id))
        );
        let row = self.restate.query(&sql).await?.into_iter().next();
        let row = row.ok_or_else(|| {
            ProviderError::not_found(format!("no instance {id:?} of workflow {workflow}"))
        })?;
        Ok(Run {
            id: row["id"].as_str().unwrap_or_default().to_owned(),
            status: status(&row),
        })
    }
}

/// The contract's status of an introspection row.
fn status(row: &Value) -> String {
    let raw = row["status"].as_str().unwrap_or("pending");
    match raw {
        "completed" => match row["completion_result"].as_str() {
            Some("success") => "completed",
            _ if row["completion_failure"]
                .as_str()
                .is_some_and(|f| f.contains("cancel")) =>
            {
                "cancelled"
            }
            _ => "failed",
        },
        "running" | "suspended" | "backing-off" | "paused" => raw,
        _ => "pending",
    }
    .to_owned()
}

#[async_trait]
impl Engine for RestateWorkflow {
    const NAME: &'static str = "restate";

    async fn launch(&self, p: StartParams) -> Result<Started, ProviderError> {
        self.restate.ensure_workflow(&p.workflow).await?;
        let url = format!("{}/send", self.ingress(&p.workflow, &p.id, "run"));
        let (status, body) = self
            .restate
            .send(Method::POST, &url, Some(&p.input))
            .await?;
        if !status.is_success() {
            return Err(upstream(status, &body));
        }
        Ok(Started {
            started: body["status"].as_str() != Some("PreviouslyAccepted"),
            workflow: p.workflow,
            id: p.id,
        })
    }

    async fn signal(&self, p: SignalParams) -> Result<Delivered, ProviderError> {
        self.run(&p.workflow, &p.id).await?;
        let url = self.ingress(&p.workflow, &p.id, "signal");
        let body = json!({"name": p.name, "payload": p.payload});
        let (status, answer) = self.restate.send(Method::POST, &url, Some(&body)).await?;
        if status.is_client_error() {
            // The workflow refused the payload (its `signal` handler checks what it waits for).
            let detail = answer["message"].as_str().unwrap_or("refused");
            return Err(ProviderError::new(
                ErrorCode::ParamsUnprocessable,
                format!(
                    "workflow {} refused signal {}: {detail}",
                    p.workflow, p.name
                ),
            ));
        }
        if !status.is_success() {
            return Err(upstream(status, &answer));
        }
        Ok(Delivered { delivered: true })
    }

    async fn query(&self, p: InstanceRef) -> Result<Queried, ProviderError> {
        let run = self.run(&p.workflow, &p.id).await?;
        let url = self.ingress(&p.workflow, &p.id, "state");
        let (status, state) = self.restate.send(Method::POST, &url, None).await?;
        if !status.is_success() {
            return Err(upstream(status, &state));
        }
        let output = if run.status == "completed" {
            let url = format!(
                "{}/restate/workflow/{}/{}/output",
                self.restate.urls.ingress,
                p.workflow,
                self.key(&p.id)
            );
            let (status, output) = self.restate.send(Method::GET, &url, None).await?;
            status.is_success().then_some(output)
        } else {
            None
        };
        Ok(Queried {
            workflow: p.workflow,
            id: p.id,
            status: run.status,
            state: if state.is_object() { state } else { json!({}) },
            output,
        })
    }

    async fn cancel(&self, p: InstanceRef) -> Result<Cancelled, ProviderError> {
        let run = self.run(&p.workflow, &p.id).await?;
        if matches!(run.status.as_str(), "completed" | "failed" | "cancelled") {
            return Ok(Cancelled { cancelled: false });
        }
        let url = format!("{}/invocations/{}/cancel", self.restate.urls.admin, run.id);
        let (status, body) = self.restate.send(Method::PATCH, &url, None).await?;
        if !status.is_success() {
            return Err(upstream(status, &body));
        }
        Ok(Cancelled { cancelled: true })
    }

    async fn list(&self, p: ListParams) -> Result<Listed, ProviderError> {
        let mut filter = format!(
            "target_handler_name = 'run' AND starts_with(target_service_key, {})",
            literal(&instance_key(&self.tenant, ""))
        );
        if let Some(workflow) = &p.workflow {
            self.restate.ensure_workflow(workflow).await?;
            filter.push_str(&format!(" AND target_service_name = {}", literal(workflow)));
        }
        let limit = p.limit.min(self.max_listed);
        let sql = format!(
            "SELECT target_service_name, target_service_key, status, completion_result, \
             completion_failure, created_at, modified_at FROM sys_invocation WHERE {filter} \
             ORDER BY created_at DESC LIMIT {limit}"
        );
        let instances = self
            .restate
            .query(&sql)
            .await?
            .iter()
            .filter_map(|row| {
                let key = row["target_service_key"].as_str()?;
                let (tenant, id) = crate::split_instance_key(key)?;
                (tenant == self.tenant).then(|| Instance {
                    workflow: row["target_service_name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    id: id.to_owned(),
                    status: status(row),
                    created_at: row["created_at"].as_str().map(str::to_owned),
                    modified_at: row["modified_at"].as_str().map(str::to_owned),
                })
            })
            .collect();
        Ok(Listed { instances })
    }

    async fn steps(&self, p: InstanceRef) -> Result<Steps, ProviderError> {
        let run = self.run(&p.workflow, &p.id).await?;
        let sql = format!(
            "SELECT index, entry_type, name, completed FROM sys_journal WHERE id = {} \
             ORDER BY index",
            literal(&run.id)
        );
        let steps = self
            .restate
            .query(&sql)
            .await?
            .iter()
            .map(|row| Step {
                index: row["index"].as_u64().unwrap_or_default(),
                kind: row["entry_type"].as_str().unwrap_or_default().to_owned(),
                name: row["name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
                completed: row["completed"].as_bool().unwrap_or(true),
            })
            .collect();
        Ok(Steps { steps })
    }

    async fn probe(&self) -> Result<Option<String>, ProviderError> {
        let url = format!("{}/health", self.restate.urls.admin);
        let (status, body) = self.restate.send(Method::GET, &url, None).await?;
        if status.is_success() {
            Ok(Some("restate admin API answers".into()))
        } else {
            Err(upstream(status, &body))
        }
    }
}

pub(crate) fn builtin(_: &Host) -> Result<Option<Arc<dyn ProviderFactory>>, SchemaError> {
    Ok(RestateUrls::from_env()?
        .map(|urls| Arc::new(RestateWorkflowFactory::new(urls)) as Arc<dyn ProviderFactory>))
}
