//! The task inbox on real engines (db/sqlite and db/postgres) through the runtime's
//! in-process client, every call checked against the contract's params and result schemas.
//!
//! The caller a call serves is set on the client as the runtime sets it for a request the
//! gateway verified (`RuntimeClient::serving`). The workflow provider is not part of this
//! crate: a recording stand-in answers its `signal` (named a fake in the tests that use it),
//! failing when told to, and passes every other call to the runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_client::{ProviderClient, Service};
use switchyard_contracts::{ActionValidators, ErrorCode, Problem, TenantId};
use switchyard_runtime::RuntimeClient;
use switchyard_service_kit::testkit::{self, Engine, Platform};
use switchyard_tasks::{TasksService, TasksSettings, WORKFLOW};

/// A test per engine for each scenario `async fn name(engine: Engine)`.
macro_rules! on_both_engines {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::Engine;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(Engine::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(Engine::Postgres).await
                }
            }
        )*
    };
}

on_both_engines!(
    a_task_is_created_once_claimed_by_one_and_decided_once,
    an_overdue_task_is_escalated_to_its_escalation_role,
    a_decision_reaches_the_fake_workflow_once_delivered_even_after_a_failed_signal,
    a_cancelled_task_takes_no_decision_and_a_decided_one_keeps_its_own,
    another_tenant_neither_sees_nor_decides_the_task,
);

/// Signals sent to the workflow provider, and how many of the next ones to refuse.
#[derive(Default)]
struct Signals {
    sent: Mutex<Vec<Value>>,
    refuse: Mutex<usize>,
}

/// The runtime's client, with the workflow provider's `signal` answered by [`Signals`].
struct Client {
    inner: RuntimeClient,
    signals: Arc<Signals>,
}

#[async_trait]
impl ProviderClient for Client {
    fn tenant(&self) -> &TenantId {
        self.inner.tenant()
    }

    async fn invoke(&self, provider: &str, action: &str, params: Value) -> Result<Value, Problem> {
        if provider != WORKFLOW {
            return self.inner.invoke(provider, action, params).await;
        }
        assert_eq!(action, "signal");
        self.signals.sent.lock().unwrap().push(params);
        let mut refuse = self.signals.refuse.lock().unwrap();
        if *refuse > 0 {
            *refuse -= 1;
            return Err(Problem::new(
                ErrorCode::ProviderNotFound,
                "no provider workflow/restate",
            ));
        }
        Ok(json!({"resolved": true}))
    }

    async fn describe(&self, provider: &str) -> Result<Value, Problem> {
        self.inner.describe(provider).await
    }

    fn caller(&self) -> Option<&str> {
        self.inner.caller()
    }
}

struct Inbox {
    platform: Platform<TasksService>,
    validators: Arc<HashMap<String, ActionValidators>>,
    signals: Arc<Signals>,
}

impl Inbox {
    async fn start(engine: Engine) -> Inbox {
        let platform = Platform::start(engine, |db| {
            TasksService::new(TasksSettings {
                db: db.into(),
                workflow: WORKFLOW.into(),
            })
            .unwrap()
        })
        .await;
        Inbox {
            validators: testkit::validators(&*platform.service),
            platform,
            signals: Arc::default(),
        }
    }

    /// `tenant`'s inbox as `caller` (a gateway subject such as `key:alice`) uses it.
    fn as_(&self, tenant: &str, caller: Option<&str>) -> As<'_> {
        let inner = RuntimeClient::new(
            self.platform.runtime.clone(),
            TenantId::parse(tenant).unwrap(),
            "service:tasks",
        )
        .serving(caller.map(str::to_owned));
        As {
            inbox: self,
            client: Client {
                inner,
                signals: self.signals.clone(),
            },
        }
    }

    fn signals(&self) -> Vec<Value> {
        self.signals.sent.lock().unwrap().clone()
    }
}

struct As<'a> {
    inbox: &'a Inbox,
    client: Client,
}

impl As<'_> {
    async fn call(&self, action: &str, params: Value) -> Result<Value, Problem> {
        let validators = &self.inbox.validators[action];
        let refused = validators.params.check(&params);
        assert!(refused.is_empty(), "{action} {params}: {refused:?}");
        let answer = self
            .inbox
            .platform
            .service
            .invoke(&self.client, action, params)
            .await;
        if let Ok(data) = &answer {
            let wrong = validators.result.check(data);
            assert!(wrong.is_empty(), "{action} answered {data}: {wrong:?}");
        }
        answer
    }

    async fn ok(&self, action: &str, params: Value) -> Value {
        self.call(action, params.clone())
            .await
            .unwrap_or_else(|p| panic!("{action} {params}: {p:?}"))
    }

    async fn refused(&self, action: &str, params: Value) -> Problem {
        match self.call(action, params.clone()).await {
            Ok(data) => panic!("{action} {params} was accepted: {data}"),
            Err(problem) => problem,
        }
    }
}

fn approval(task_id: &str) -> Value {
    json!({"task_id": task_id, "kind": "approval", "title": "Approve order o-1 (12,500.00 EUR)",
        "data": {"order": "o-1", "amount": "12500.00"}, "sla_ms": 3_600_000})
}

async fn a_task_is_created_once_claimed_by_one_and_decided_once(engine: Engine) {
    let inbox = Inbox::start(engine).await;
    let flow = inbox.as_("acme", Some("provider:workflow/restate"));
    let alice = inbox.as_("acme", Some("key:alice"));
    let bob = inbox.as_("acme", Some("oidc:bob"));

    let task = flow.ok("create", approval("t-1")).await;
    assert_eq!(task["status"], "open");
    assert_eq!(task["role"], "approver");
    assert_eq!(task["created_by"], "provider:workflow/restate");
    assert_eq!(task["replayed"], false);
    assert_eq!(task["overdue"], false);
    assert!(task["due_at"].as_str().unwrap() > task["created_at"].as_str().unwrap());
    // A workflow step retried after a crash creates no second task.
    let again = flow.ok("create", approval("t-1")).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["created_at"], task["created_at"]);
    let mut other = approval("t-1");
    other["data"]["amount"] = json!("99.00");
    assert_eq!(
        flow.refused("create", other).await.code,
        ErrorCode::Conflict
    );
    let page = alice.ok("list", json!({})).await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 1);

    let claimed = alice.ok("claim", json!({"task_id": "t-1"})).await;
    assert_eq!(claimed["status"], "claimed");
    assert_eq!(claimed["claimed_by"], "key:alice");
    alice.ok("claim", json!({"task_id": "t-1"})).await;
    assert_eq!(
        bob.refused("claim", json!({"task_id": "t-1"})).await.code,
        ErrorCode::Conflict
    );
    let problem = bob
        .refused("approve", json!({"task_id": "t-1", "comment": "mine now"}))
        .await;
    assert_eq!(problem.code, ErrorCode::Conflict, "{problem:?}");

    let approved = alice
        .ok(
            "approve",
            json!({"task_id": "t-1", "comment": "within budget"}),
        )
        .await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decided_by"], "key:alice");
    assert_eq!(approved["comment"], "within budget");
    // No workflow waits on this task: deciding it delivered it, and nothing was signalled.
    assert_eq!(approved["delivered"], true);
    assert_eq!(approved["replayed"], false);
    assert!(inbox.signals().is_empty());
    let again = alice.ok("approve", json!({"task_id": "t-1"})).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["comment"], "within budget");
    assert_eq!(again["decided_at"], approved["decided_at"]);
    let second = alice.refused("reject", json!({"task_id": "t-1"})).await;
    assert_eq!(second.code, ErrorCode::TaskClosed);
    assert_eq!(second.status(), 409);
    assert!(
        second.detail.contains("approved by key:alice"),
        "{second:?}"
    );
    assert_eq!(
        bob.refused("claim", json!({"task_id": "t-1"})).await.code,
        ErrorCode::TaskClosed
    );

    // Unclaimed tasks are decided directly; the inbox filters and pages.
    flow.ok("create", approval("t-2")).await;
    flow.ok("create", approval("t-3")).await;
    let rejected = bob.ok("reject", json!({"task_id": "t-2"})).await;
    assert_eq!(rejected["claimed_by"], "oidc:bob");
    let open = bob.ok("list", json!({"status": "open"})).await;
    let ids: Vec<&Value> = open["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["task_id"])
        .collect();
    assert_eq!(ids, [&json!("t-3")]);
    let first = bob.ok("list", json!({"limit": 2})).await;
    assert_eq!(first["tasks"].as_array().unwrap().len(), 2);
    let after = first["next_after"].as_i64().expect("a second page");
    let rest = bob.ok("list", json!({"limit": 2, "after": after})).await;
    assert_eq!(rest["tasks"][0]["task_id"], "t-3");
    assert_eq!(rest["next_after"], Value::Null);
    assert_eq!(
        bob.refused("get", json!({"task_id": "t-9"})).await.code,
        ErrorCode::ResourceNotFound
    );

    // A decision needs a caller the runtime names; none, none is recorded.
    let nobody = inbox.as_("acme", None);
    assert_eq!(
        nobody
            .refused("approve", json!({"task_id": "t-3"}))
            .await
            .code,
        ErrorCode::Unauthenticated
    );
    let mut half = approval("t-4");
    half["workflow"] = json!("q2c");
    assert_eq!(
        flow.refused("create", half).await.code,
        ErrorCode::ParamsUnprocessable
    );
}

async fn an_overdue_task_is_escalated_to_its_escalation_role(engine: Engine) {
    let inbox = Inbox::start(engine).await;
    let flow = inbox.as_("acme", Some("provider:workflow/restate"));
    let alice = inbox.as_("acme", Some("key:alice"));
    let mut short = approval("t-sla");
    short["sla_ms"] = json!(30);
    short["escalate_to_role"] = json!("finance_lead");
    flow.ok("create", short).await;
    alice.ok("claim", json!({"task_id": "t-sla"})).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let listed = alice.ok("list", json!({"role": "approver"})).await;
    assert_eq!(listed["tasks"][0]["overdue"], true, "{listed}");

    // The workflow's timer fired: the claim is dropped and the task moves inbox.
    let escalated = flow.ok("escalate", json!({"task_id": "t-sla"})).await;
    assert_eq!(escalated["status"], "escalated");
    assert_eq!(escalated["role"], "finance_lead");
    assert_eq!(escalated["claimed_by"], Value::Null);
    assert!(escalated["escalated_at"].is_string());
    let again = flow.ok("escalate", json!({"task_id": "t-sla"})).await;
    assert_eq!(again["escalated_at"], escalated["escalated_at"]);
    let inbox_of_lead = alice.ok("list", json!({"role": "finance_lead"})).await;
    assert_eq!(inbox_of_lead["tasks"][0]["task_id"], "t-sla");
    assert_eq!(
        alice.ok("list", json!({"role": "approver"})).await["tasks"],
        json!([])
    );

    let decided = alice.ok("approve", json!({"task_id": "t-sla"})).await;
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["overdue"], false);
    // A timer firing late changes nothing.
    let late = flow.ok("escalate", json!({"task_id": "t-sla"})).await;
    assert_eq!(late["status"], "approved");
}

async fn a_decision_reaches_the_fake_workflow_once_delivered_even_after_a_failed_signal(
    engine: Engine,
) {
    let inbox = Inbox::start(engine).await;
    let flow = inbox.as_("acme", Some("provider:workflow/restate"));
    let alice = inbox.as_("acme", Some("key:alice"));
    let mut task = approval("t-wf");
    task["workflow"] = json!("quote_to_cash");
    task["instance"] = json!("q-77");
    flow.ok("create", task).await;

    // The workflow provider is not there yet: the decision stands, undelivered, and says why.
    *inbox.signals.refuse.lock().unwrap() = 1;
    let first = alice
        .ok("approve", json!({"task_id": "t-wf", "comment": "ok"}))
        .await;
    assert_eq!(first["status"], "approved");
    assert_eq!(first["delivered"], false);
    assert!(
        first["delivery_error"]
            .as_str()
            .unwrap()
            .starts_with("provider_not_found:"),
        "{first}"
    );
    let stored = alice.ok("get", json!({"task_id": "t-wf"})).await;
    assert_eq!(stored["delivered"], false);

    // The same decision again delivers it, with the recorded payload.
    let again = alice
        .ok(
            "approve",
            json!({"task_id": "t-wf", "comment": "other words"}),
        )
        .await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["delivered"], true);
    assert_eq!(again["delivery_error"], Value::Null);
    let signals = inbox.signals();
    assert_eq!(signals.len(), 2);
    assert_eq!(
        signals[0], signals[1],
        "every delivery sends the same payload"
    );
    assert_eq!(
        signals[0],
        json!({"workflow": "quote_to_cash", "id": "q-77", "name": "task:t-wf",
            "payload": {"task_id": "t-wf", "decision": "approved", "comment": "ok",
                "decided_by": "key:alice"}})
    );
    // Delivered: no third signal, and another decision is refused.
    alice.ok("approve", json!({"task_id": "t-wf"})).await;
    assert_eq!(inbox.signals().len(), 2);
    assert_eq!(
        alice
            .refused("reject", json!({"task_id": "t-wf"}))
            .await
            .code,
        ErrorCode::TaskClosed
    );
}

async fn a_cancelled_task_takes_no_decision_and_a_decided_one_keeps_its_own(engine: Engine) {
    let inbox = Inbox::start(engine).await;
    let flow = inbox.as_("acme", Some("provider:workflow/restate"));
    let alice = inbox.as_("acme", Some("key:alice"));
    flow.ok("create", approval("t-c")).await;
    let cancelled = flow.ok("cancel", json!({"task_id": "t-c"})).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["decided_by"], "provider:workflow/restate");
    assert_eq!(
        alice
            .refused("approve", json!({"task_id": "t-c"}))
            .await
            .code,
        ErrorCode::TaskClosed
    );
    assert_eq!(
        alice.refused("claim", json!({"task_id": "t-c"})).await.code,
        ErrorCode::TaskClosed
    );
    assert_eq!(
        flow.ok("cancel", json!({"task_id": "t-c"})).await["status"],
        "cancelled"
    );
    assert_eq!(
        flow.ok("escalate", json!({"task_id": "t-c"})).await["status"],
        "cancelled"
    );

    flow.ok("create", approval("t-d")).await;
    alice.ok("reject", json!({"task_id": "t-d"})).await;
    let kept = flow.ok("cancel", json!({"task_id": "t-d"})).await;
    assert_eq!(kept["status"], "rejected");
    assert_eq!(kept["decided_by"], "key:alice");
}

async fn another_tenant_neither_sees_nor_decides_the_task(engine: Engine) {
    let inbox = Inbox::start(engine).await;
    let flow = inbox.as_("acme", Some("provider:workflow/restate"));
    flow.ok("create", approval("t-x")).await;
    let intruder = inbox.as_("globex", Some("key:mallory"));
    assert_eq!(intruder.ok("list", json!({})).await["tasks"], json!([]));
    for action in ["get", "claim", "approve", "reject", "escalate", "cancel"] {
        let problem = intruder.refused(action, json!({"task_id": "t-x"})).await;
        assert_eq!(problem.code, ErrorCode::ResourceNotFound, "{action}");
    }
    // Its own task of the same id is its own, and leaves acme's untouched.
    intruder.ok("create", approval("t-x")).await;
    intruder.ok("approve", json!({"task_id": "t-x"})).await;
    let acme = flow.ok("get", json!({"task_id": "t-x"})).await;
    assert_eq!(acme["status"], "open");
}
