//! The human task inbox (`/services/tasks/*`) against `switchyard serve` with the policy bundle
//! and an OIDC issuer: a task created as a workflow creates it, invisible to another tenant,
//! refused by the policy to principals without the approver role (a developer's token, a key
//! whose scopes make it a developer), claimed and approved by an approver whose subject the
//! service records, a second decision refused with `task_closed`, an overdue task escalated;
//! and the console's inbox in headless Chromium (`console/tasks.cjs`), screenshots in
//! `target/console-screenshots/`.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{Api, Idp, Server, cli, tenant_with_key, write_config};
use serde_json::{Value, json};

const JOURNEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/console/tasks.cjs");
const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/console-screenshots");

/// `serve` with the repository's policies and a test IdP; the acme admin's key.
fn serve(dir: &std::path::Path, idp: &Idp) -> (Server, String) {
    let bundle = common::policy_bundle(dir, "tasks-r1");
    let config = write_config(
        dir,
        &format!(
            "[policy]\nbundle = \"{}\"\n{}",
            bundle.display(),
            idp.oidc_config()
        ),
    );
    let server = Server::start_with(dir, &["--config", &config]);
    let admin = tenant_with_key(dir, "acme", "*");
    (server, admin)
}

async fn call(api: &Api, action: &str, params: Value) -> (u16, Value) {
    let (status, body) = api
        .post(
            &format!("/services/tasks/{action}"),
            json!({"params": params}),
        )
        .await;
    (status.as_u16(), body)
}

fn approval(task_id: &str) -> Value {
    json!({"task_id": task_id, "kind": "approval", "title": "Approve order o-1 above 10,000",
        "data": {"order": "o-1", "amount": "12500.00", "currency": "EUR"}, "sla_ms": 3_600_000})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_task_is_decided_once_by_an_approver_and_hidden_from_other_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start();
    let (server, admin_key) = serve(dir.path(), &idp);
    let workflow = Api::new(&server, &admin_key);
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    let developer_key = Api::new(
        &server,
        cli(
            dir.path(),
            &[
                "key",
                "create",
                "--tenant",
                "acme",
                "--scopes",
                "read,invoke",
            ],
        )
        .trim(),
    );
    let developer = Api::new(
        &server,
        &idp.token("dev", "acme", "read invoke", &["developer"]),
    );
    let approver = Api::new(
        &server,
        &idp.token("ann", "acme", "read invoke", &["approver"]),
    );

    let created = workflow
        .service_ok("tasks", "create", approval("t-1"))
        .await;
    assert_eq!(created["status"], "open");
    assert_eq!(created["created_by"], format!("key:{}", key_id(&admin_key)));

    // Another tenant: nothing listed, nothing found, nothing decided.
    let (status, listed) = call(&globex, "list", json!({})).await;
    assert_eq!((status, &listed["data"]["tasks"]), (200, &json!([])));
    for action in ["get", "claim", "approve", "reject", "escalate", "cancel"] {
        let (status, body) = call(&globex, action, json!({"task_id": "t-1"})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("resource_not_found")),
            "{action}: {body}"
        );
    }

    // Without the approver role the policy refuses claiming and deciding.
    for (who, api) in [
        ("developer token", &developer),
        ("developer key", &developer_key),
    ] {
        for action in ["claim", "approve", "reject"] {
            let (status, body) = call(api, action, json!({"task_id": "t-1"})).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("policy_denied")),
                "{who} {action}: {body}"
            );
        }
    }
    let unchanged = workflow
        .service_ok("tasks", "get", json!({"task_id": "t-1"}))
        .await;
    assert_eq!(unchanged["status"], "open");

    // The approver claims and approves; the service records the token's subject.
    let (status, inbox) = call(&approver, "list", json!({"role": "approver"})).await;
    assert_eq!(status, 200, "{inbox}");
    assert_eq!(inbox["data"]["tasks"][0]["task_id"], "t-1");
    let claimed = approver
        .service_ok("tasks", "claim", json!({"task_id": "t-1"}))
        .await;
    assert_eq!(claimed["claimed_by"], "oidc:ann");
    let approved = approver
        .service_ok(
            "tasks",
            "approve",
            json!({"task_id": "t-1", "comment": "customer in good standing"}),
        )
        .await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decided_by"], "oidc:ann");
    assert_eq!(approved["delivered"], true);

    // A second decision is refused; the same one again is answered from the store.
    let (status, body) = call(&approver, "reject", json!({"task_id": "t-1"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("task_closed")),
        "{body}"
    );
    let again = approver
        .service_ok("tasks", "approve", json!({"task_id": "t-1"}))
        .await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["decided_at"], approved["decided_at"]);

    // Nobody acts within the SLA: the task shows overdue, and the workflow's timer escalates it.
    let mut short = approval("t-2");
    short["sla_ms"] = json!(300);
    short["escalate_to_role"] = json!("finance_lead");
    workflow.service_ok("tasks", "create", short).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let open = approver
        .service_ok("tasks", "list", json!({"status": "open"}))
        .await;
    assert_eq!(open["tasks"][0]["task_id"], "t-2");
    assert_eq!(open["tasks"][0]["overdue"], true, "{open}");
    let escalated = developer_key
        .service_ok("tasks", "escalate", json!({"task_id": "t-2"}))
        .await;
    assert_eq!(escalated["status"], "escalated");
    assert_eq!(escalated["role"], "finance_lead");

    // A decision the workflow waits on is recorded even when its signal cannot be delivered
    // (no workflow provider here): the task says so, and the same decision again retries.
    let mut waiting = approval("t-3");
    waiting["workflow"] = json!("quote_to_cash");
    waiting["instance"] = json!("q-1");
    workflow.service_ok("tasks", "create", waiting).await;
    let decided = approver
        .service_ok("tasks", "reject", json!({"task_id": "t-3"}))
        .await;
    assert_eq!(decided["status"], "rejected");
    assert_eq!(decided["delivered"], false, "{decided}");
    assert!(decided["delivery_error"].is_string(), "{decided}");
}

/// The id part of a key `sy_<id>_<secret>`.
fn key_id(key: &str) -> &str {
    key.strip_prefix("sy_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id)
        .expect("a key of the form sy_<id>_<secret>")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_inbox_lets_an_approver_decide_and_shows_a_developer_the_refusal() {
    let playwright = std::env::var("SWITCHYARD_TEST_PLAYWRIGHT").expect(
        "SWITCHYARD_TEST_PLAYWRIGHT is not set: scripts/test installs playwright-core and Debian's chromium",
    );
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start();
    let (server, admin_key) = serve(dir.path(), &idp);
    let workflow = Api::new(&server, &admin_key);
    workflow
        .service_ok("tasks", "create", approval("po-17"))
        .await;
    let mut overdue = approval("po-18");
    overdue["title"] = json!("Approve purchase order po-18 (three-way match off by 4.20)");
    overdue["sla_ms"] = json!(1);
    workflow.service_ok("tasks", "create", overdue).await;
    std::fs::create_dir_all(SCREENSHOTS).unwrap();

    let out = Command::new("node")
        .arg(JOURNEY)
        .env("PLAYWRIGHT_CORE", &playwright)
        .env("CONSOLE_BASE", &server.base)
        .env("SCREENSHOTS", SCREENSHOTS)
        .env(
            "APPROVER_TOKEN",
            idp.token("ann", "acme", "read invoke", &["approver"]),
        )
        .env(
            "DEVELOPER_TOKEN",
            idp.token("dev", "acme", "read invoke", &["developer"]),
        )
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the browser journey failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(seen["rows"], json!(["po-17", "po-18"]), "{seen}");
    assert_eq!(seen["overdue"], 1, "{seen}");
    assert!(
        seen["developer_refusal"]
            .as_str()
            .unwrap()
            .contains("403 policy_denied"),
        "{seen}"
    );
    assert_eq!(seen["claimed"], "Task po-17 claimed.", "{seen}");
    assert_eq!(seen["approved"], "Task po-17 approved.", "{seen}");
    assert_eq!(seen["status_after"], "approved", "{seen}");
    assert_eq!(seen["buttons_after"], 0, "{seen}");

    // What the browser did, read back from the API.
    let task = workflow
        .service_ok("tasks", "get", json!({"task_id": "po-17"}))
        .await;
    assert_eq!(task["status"], "approved");
    assert_eq!(task["decided_by"], "oidc:ann");
    assert_eq!(task["comment"], "matches the contract");
    let other = workflow
        .service_ok("tasks", "get", json!({"task_id": "po-18"}))
        .await;
    assert_eq!(
        other["status"], "open",
        "the developer's refusal left it open"
    );
}
