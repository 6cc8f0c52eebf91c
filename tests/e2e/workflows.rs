//! Workflows on a real Restate server (`workflow/restate`, business-services/workflows):
//! `serve` hosts the flows' endpoint and registers it; instances are the tenant's own.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_integration_fakes::payments::{FakePayments, Options as PaymentOptions};

use crate::common;
use common::restate::Restate;
use common::{Api, Server, tenant_with_key};

pub const WORKFLOW: &str = "/providers/workflow/restate";

pub async fn call(api: &Api, path: &str, params: Value) -> Value {
    let (status, body) = api.post(path, json!({"params": params})).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body["data"].clone()
}

/// Ten sheets at 4.00 in `main/main`, and customer `globex`.
pub async fn stock_up(api: &Api) {
    stock_up_with(api, "10").await;
}

/// `quantity` sheets at 4.00 in `main/main`, and customer `globex`.
pub async fn stock_up_with(api: &Api, quantity: &str) {
    for (action, params) in [
        (
            "define_item",
            json!({"item": "sheet", "name": "Sheet", "uom": "EA"}),
        ),
        (
            "define_warehouse",
            json!({"warehouse": "main", "name": "Main"}),
        ),
        ("define_bin", json!({"warehouse": "main", "bin": "main"})),
        (
            "receive",
            json!({"item": "sheet", "warehouse": "main", "bin": "main", "quantity": quantity, "unit_cost": "4.00"}),
        ),
    ] {
        call(api, &format!("/services/inventory/{action}"), params).await;
    }
    call(
        api,
        "/services/orders/define_customer",
        json!({"customer": "globex", "name": "Globex Retail"}),
    )
    .await;
}

pub async fn available(api: &Api) -> String {
    let stock = call(
        api,
        "/services/inventory/stock",
        json!({"item": "sheet", "warehouse": "main"}),
    )
    .await;
    stock["rows"][0]["available"]
        .as_str()
        .unwrap_or("0")
        .to_owned()
}

/// Polls `query` until the instance ended; answers the last answer.
pub async fn ended(api: &Api, workflow: &str, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let queried = call(
            api,
            &format!("{WORKFLOW}/query"),
            json!({"workflow": workflow, "id": id}),
        )
        .await;
        if ["completed", "failed", "cancelled"].contains(&queried["status"].as_str().unwrap_or(""))
        {
            return queried;
        }
        assert!(Instant::now() < deadline, "{id} still running: {queried}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `serve` with a Restate server of its own, waited for until the flows are registered.
pub async fn serve_with_restate(dir: &std::path::Path, restate: &Restate) -> Server {
    let mut env = restate.env();
    let server = Server::start_with_env(dir, &[], &mut env);
    restate.wait_for_workflow("QuoteToCash").await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quote_to_cash_instance_is_the_tenants_own_and_a_failed_payment_cancels_its_order() {
    let restate = Restate::start();
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_restate(dir.path(), &restate).await;
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    stock_up(&acme).await;

    // No payments connector configured: the authorization fails for good, and the flow
    // undoes the order it created (its reservation released).
    let input = json!({"customer": "globex", "warehouse": "main",
                       "lines": [{"item": "sheet", "quantity": "3", "unit_price": "12.50", "currency": "EUR"}],
                       "payment_method": "pm_card_visa"});
    let start = json!({"workflow": "QuoteToCash", "id": "SO-1", "input": input});
    let started = call(&acme, &format!("{WORKFLOW}/launch"), start.clone()).await;
    assert_eq!(started["started"], true, "{started}");
    let again = call(&acme, &format!("{WORKFLOW}/launch"), start).await;
    assert_eq!(again["started"], false, "{again}");

    let done = ended(&acme, "QuoteToCash", "SO-1", Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"]["outcome"], "failed", "{done}");
    assert_eq!(
        done["state"]["compensated"],
        json!(["order cancelled"]),
        "{done}"
    );
    let order = call(&acme, "/services/orders/get", json!({"order_id": "SO-1"})).await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(available(&acme).await, "10");

    let steps = call(
        &acme,
        &format!("{WORKFLOW}/steps"),
        json!({"workflow": "QuoteToCash", "id": "SO-1"}),
    )
    .await;
    let names: Vec<&str> = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for step in ["clock", "order", "authorize", "cancel"] {
        assert!(names.contains(&step), "{step} not in {names:?}");
    }
    let listed = call(&acme, &format!("{WORKFLOW}/list"), json!({})).await;
    assert_eq!(listed["instances"][0]["id"], "SO-1", "{listed}");

    // Another tenant sees none of it, and the same id there is another instance.
    let theirs = call(&globex, &format!("{WORKFLOW}/list"), json!({})).await;
    assert_eq!(theirs["instances"], json!([]), "{theirs}");
    for action in ["query", "steps", "cancel"] {
        let (status, body) = globex
            .post(
                &format!("{WORKFLOW}/{action}"),
                json!({"params": {"workflow": "QuoteToCash", "id": "SO-1"}}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("resource_not_found")),
            "{action}: {body}"
        );
    }

    // A task's signal comes from deciding the task, never from a key directly; ids cannot
    // reach into another tenant's namespace; only workflows can be started.
    let (status, body) = acme
        .post(
            &format!("{WORKFLOW}/signal"),
            json!({"params": {"workflow": "QuoteToCash", "id": "SO-1", "name": "task:SO-1.approval",
                              "payload": {"decision": "approved"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = acme
        .post(
            &format!("{WORKFLOW}/query"),
            json!({"params": {"workflow": "QuoteToCash", "id": "globex~SO-1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = acme
        .post(
            &format!("{WORKFLOW}/launch"),
            json!({"params": {"workflow": "NoSuchFlow", "id": "x"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("resource_not_found")),
        "{body}"
    );
}

/// Polls `query` until the published state satisfies `ready`; answers it.
pub async fn state_until(
    api: &Api,
    workflow: &str,
    id: &str,
    within: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let queried = call(
            api,
            &format!("{WORKFLOW}/query"),
            json!({"workflow": workflow, "id": id}),
        )
        .await;
        if ready(&queried["state"]) {
            return queried["state"].clone();
        }
        assert!(Instant::now() < deadline, "{id}: {queried}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An order of 25.00, with no threshold of its own: the tenant's config sets one (10).
fn above_ten(sla_ms: u64) -> Value {
    json!({"customer": "globex", "warehouse": "main",
           "lines": [{"item": "sheet", "quantity": "2", "unit_price": "12.50", "currency": "EUR"}],
           "payment_method": "pm_card_visa", "approval_sla_ms": sla_ms})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_task_escalates_past_its_sla_and_cancelling_the_flow_undoes_task_and_order() {
    let restate = Restate::start();
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_restate(dir.path(), &restate).await;
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    stock_up(&acme).await;
    // The threshold is the tenant admin's, in the config: a launch cannot leave it out.
    let (status, body) = acme
        .post(
            "/providers/workflow/restate/configure",
            json!({"config": {"quote_to_cash_approval_above": "10"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Above the threshold: the flow opens a task and waits; nobody acts within the SLA, so
    // the durable timer escalates it; an approval then lets the flow go on.
    call(
        &acme,
        &format!("{WORKFLOW}/launch"),
        json!({"workflow": "QuoteToCash", "id": "SO-2", "input": above_ten(1_500)}),
    )
    .await;
    let waiting = state_until(&acme, "QuoteToCash", "SO-2", Duration::from_secs(20), |s| {
        s["waiting_for"] == "SO-2.approval"
    })
    .await;
    assert_eq!(waiting["total"], "25.0000", "{waiting}");
    let task = call(
        &acme,
        "/services/tasks/get",
        json!({"task_id": "SO-2.approval"}),
    )
    .await;
    assert_eq!(
        (
            task["status"].as_str(),
            task["workflow"].as_str(),
            task["instance"].as_str()
        ),
        (Some("open"), Some("QuoteToCash"), Some("SO-2")),
        "{task}"
    );
    let theirs = call(&globex, "/services/tasks/list", json!({})).await;
    assert_eq!(theirs["tasks"], json!([]), "{theirs}");
    let (status, body) = globex
        .post(
            "/services/tasks/approve",
            json!({"params": {"task_id": "SO-2.approval"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    state_until(&acme, "QuoteToCash", "SO-2", Duration::from_secs(20), |s| {
        s["escalated"] == true
    })
    .await;
    let task = call(
        &acme,
        "/services/tasks/get",
        json!({"task_id": "SO-2.approval"}),
    )
    .await;
    assert_eq!(task["status"], "escalated", "{task}");
    call(
        &acme,
        "/services/tasks/approve",
        json!({"task_id": "SO-2.approval", "comment": "ok"}),
    )
    .await;
    let done = ended(&acme, "QuoteToCash", "SO-2", Duration::from_secs(30)).await;
    assert_eq!(done["state"]["approval"]["decision"], "approved", "{done}");
    // No payments connector here: the approved order fails at authorization and is undone.
    assert_eq!(done["output"]["outcome"], "failed", "{done}");
    assert_eq!(
        done["state"]["compensated"],
        json!(["order cancelled"]),
        "{done}"
    );

    // Cancelled while it waits for its approver: the task is withdrawn, the order cancelled
    // and its stock released; the instance ends cancelled.
    call(
        &acme,
        &format!("{WORKFLOW}/launch"),
        json!({"workflow": "QuoteToCash", "id": "SO-3", "input": above_ten(600_000)}),
    )
    .await;
    state_until(&acme, "QuoteToCash", "SO-3", Duration::from_secs(20), |s| {
        s["waiting_for"] == "SO-3.approval"
    })
    .await;
    assert_eq!(available(&acme).await, "8");
    let cancel = json!({"workflow": "QuoteToCash", "id": "SO-3"});
    let cancelled = call(&acme, &format!("{WORKFLOW}/cancel"), cancel.clone()).await;
    assert_eq!(cancelled["cancelled"], true);
    let done = ended(&acme, "QuoteToCash", "SO-3", Duration::from_secs(30)).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(
        done["state"]["compensated"],
        json!(["task cancelled", "order cancelled"]),
        "{done}"
    );
    let task = call(
        &acme,
        "/services/tasks/get",
        json!({"task_id": "SO-3.approval"}),
    )
    .await;
    assert_eq!(task["status"], "cancelled", "{task}");
    assert_eq!(available(&acme).await, "10");
    let again = call(&acme, &format!("{WORKFLOW}/cancel"), cancel).await;
    assert_eq!(again["cancelled"], false);
}

/// `serve` with a Restate server, an operator config that lets tenants reach loopback (the
/// fake payments API) and keep secret files, and `acme` paying through `fake`'s first account.
pub async fn serve_paying(
    dir: &std::path::Path,
    restate: &Restate,
    fake: &FakePayments,
) -> (Server, Api) {
    let config = crate::integration::operator_config(dir);
    let mut env = restate.env();
    let server = Server::start_with_env(dir, &["--config", &config], &mut env);
    restate.wait_for_workflow("QuoteToCash").await;
    let acme = Api::new(&server, &tenant_with_key(dir, "acme", "*"));
    configure_payments(&acme, dir, fake).await;
    (server, acme)
}

pub async fn configure_payments(acme: &Api, dir: &std::path::Path, fake: &FakePayments) {
    let key = &fake.options().accounts[0].secret_key;
    let secret = crate::integration::tenant_secret(dir, "acme", "payments-sk", key);
    let config = json!({"api_url": fake.base_url(), "secret_key": secret,
                        "allowed_networks": ["127.0.0.0/8"]});
    let (status, body) = acme
        .post(
            "/providers/integration/payments/configure",
            json!({"config": config}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

pub fn order_of(quantity: &str, payment_method: &str) -> Value {
    json!({"customer": "globex", "warehouse": "main",
           "lines": [{"item": "sheet", "quantity": quantity, "unit_price": "12.50", "currency": "EUR"}],
           "payment_method": payment_method})
}

pub async fn balance(api: &Api, account: &str) -> String {
    let balance = call(
        api,
        "/services/ledger/balance",
        json!({"account": account, "currency": "EUR"}),
    )
    .await;
    balance["balance"].as_str().unwrap_or("0").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn quote_to_cash_with_the_fake_payments_api_captures_once_fulfils_and_books_the_cash() {
    let restate = Restate::start();
    let fake = FakePayments::start(PaymentOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let (_server, acme) = serve_paying(dir.path(), &restate, &fake).await;
    stock_up(&acme).await;
    let key = fake.options().accounts[0].secret_key.clone();

    call(
        &acme,
        &format!("{WORKFLOW}/launch"),
        json!({"workflow": "QuoteToCash", "id": "SO-10", "input": order_of("3", "pm_card_visa")}),
    )
    .await;
    let done = ended(&acme, "QuoteToCash", "SO-10", Duration::from_secs(30)).await;
    assert_eq!(done["output"]["outcome"], "completed", "{done}");
    let payment = done["state"]["payment"].as_str().unwrap().to_owned();
    let counts = fake.counts(&key, &payment).unwrap();
    assert_eq!(
        (counts.captures, counts.amount_received, counts.refunds),
        (1, 3750, 0)
    );
    let order = call(&acme, "/services/orders/get", json!({"order_id": "SO-10"})).await;
    assert_eq!(order["status"], "fulfilled", "{order}");
    assert_eq!(available(&acme).await, "7");
    assert_eq!(balance(&acme, "1000-EUR").await, "37.5000");
    assert_eq!(balance(&acme, "1100-EUR").await, "0.0000");
    let trial = call(&acme, "/services/ledger/trial_balance", json!({})).await;
    assert_eq!(trial["balanced"], true, "{trial}");
    // The invoice reached the tenant's bus as a CloudEvent.
    let polled = call(
        &acme,
        "/providers/bus/embedded/poll",
        json!({"topic": "billing", "group": "test"}),
    )
    .await;
    let records = polled["records"].as_array().expect("records");
    assert_eq!(records.len(), 1, "{polled}");
    assert_eq!(
        records[0]["headers"]["ce_type"], "billing.invoice.issued",
        "{polled}"
    );
    assert_eq!(records[0]["payload"]["invoice_id"], "INV-SO-10", "{polled}");
    assert_eq!(
        records[0]["payload"]["payment_id"],
        json!(payment),
        "{polled}"
    );

    // A declined card: the order is cancelled and its stock released; nothing was captured.
    call(
        &acme,
        &format!("{WORKFLOW}/launch"),
        json!({"workflow": "QuoteToCash", "id": "SO-11",
               "input": order_of("2", "pm_card_chargeDeclined")}),
    )
    .await;
    let done = ended(&acme, "QuoteToCash", "SO-11", Duration::from_secs(30)).await;
    assert_eq!(done["output"]["outcome"], "declined", "{done}");
    assert_eq!(
        done["state"]["compensated"],
        json!(["order cancelled"]),
        "{done}"
    );
    assert_eq!(available(&acme).await, "7");
}

async fn signal(
    api: &Api,
    workflow: &str,
    id: &str,
    name: &str,
    payload: Value,
) -> (StatusCode, Value) {
    api.post(
        &format!("{WORKFLOW}/signal"),
        json!({"params": {"workflow": workflow, "id": id, "name": name, "payload": payload}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn procure_to_pay_receives_lots_and_a_mismatched_invoice_waits_for_a_human_before_the_payable()
 {
    let restate = Restate::start();
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_restate(dir.path(), &restate).await;
    restate.wait_for_workflow("ProcureToPay").await;
    let acme = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    for (action, params) in [
        (
            "define_item",
            json!({"item": "bolt", "name": "Bolt", "uom": "EA"}),
        ),
        (
            "define_item",
            json!({"item": "nut", "name": "Nut", "uom": "EA"}),
        ),
        (
            "define_warehouse",
            json!({"warehouse": "main", "name": "Main"}),
        ),
        ("define_bin", json!({"warehouse": "main", "bin": "main"})),
    ] {
        call(&acme, &format!("/services/inventory/{action}"), params).await;
    }
    let po = |id: &str| {
        json!({"workflow": "ProcureToPay", "id": id, "input": {
            "supplier": "acme-supply", "warehouse": "main", "currency": "EUR",
            "lines": [{"item": "bolt", "quantity": "10", "unit_price": "2.00"},
                      {"item": "nut", "quantity": "5", "unit_price": "1.00"}]}})
    };
    call(&acme, &format!("{WORKFLOW}/launch"), po("PO-1")).await;
    state_until(
        &acme,
        "ProcureToPay",
        "PO-1",
        Duration::from_secs(20),
        |s| s["step"] == "receipt",
    )
    .await;

    // A malformed receipt is refused by the workflow and changes nothing; another tenant
    // cannot reach the order at all.
    let (status, body) = signal(
        &acme,
        "ProcureToPay",
        "PO-1",
        "receipt",
        json!({"lines": "ten"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("params_unprocessable")
        ),
        "{body}"
    );
    let (status, _) = signal(
        &globex,
        "ProcureToPay",
        "PO-1",
        "receipt",
        json!({"lines": []}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = signal(
        &acme,
        "ProcureToPay",
        "PO-1",
        "receipt",
        json!({"lines": [{"item": "bolt", "quantity": "10", "lot": "L-B1"},
                         {"item": "nut", "quantity": "4", "lot": "L-N1"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    state_until(
        &acme,
        "ProcureToPay",
        "PO-1",
        Duration::from_secs(20),
        |s| s["step"] == "invoice",
    )
    .await;
    let lot = call(&acme, "/services/inventory/lot", json!({"lot": "L-B1"})).await;
    assert_eq!(
        (lot["item"].as_str(), lot["quantity"].as_str()),
        (Some("bolt"), Some("10")),
        "{lot}"
    );
    assert_eq!(balance(&acme, "1300-EUR").await, "24.0000");
    assert_eq!(balance(&acme, "2100-EUR").await, "24.0000");

    // The invoice bills the bolts dearer and five nuts where four arrived: it stops for a
    // human, with both differences in the task.
    signal(
        &acme,
        "ProcureToPay",
        "PO-1",
        "invoice",
        json!({"invoice_id": "INV-7", "lines": [{"item": "bolt", "quantity": "10", "unit_price": "2.10"},
                                                  {"item": "nut", "quantity": "5", "unit_price": "1.00"}]}),
    )
    .await;
    let waiting = state_until(
        &acme,
        "ProcureToPay",
        "PO-1",
        Duration::from_secs(20),
        |s| s["waiting_for"] == "PO-1.invoice",
    )
    .await;
    assert_eq!(
        waiting["mismatches"].as_array().map(Vec::len),
        Some(2),
        "{waiting}"
    );
    let task = call(
        &acme,
        "/services/tasks/get",
        json!({"task_id": "PO-1.invoice"}),
    )
    .await;
    assert_eq!(task["data"]["mismatches"], waiting["mismatches"], "{task}");
    call(
        &acme,
        "/services/tasks/approve",
        json!({"task_id": "PO-1.invoice", "comment": "price rise agreed"}),
    )
    .await;
    let done = ended(&acme, "ProcureToPay", "PO-1", Duration::from_secs(30)).await;
    assert_eq!(done["output"]["outcome"], "paid_with_variance", "{done}");
    assert_eq!(balance(&acme, "2100-EUR").await, "0.0000");
    assert_eq!(balance(&acme, "2000-EUR").await, "26.0000");
    assert_eq!(balance(&acme, "5100-EUR").await, "2.0000");

    // The same order invoiced as received and ordered: paid with no human.
    call(&acme, &format!("{WORKFLOW}/launch"), po("PO-2")).await;
    state_until(
        &acme,
        "ProcureToPay",
        "PO-2",
        Duration::from_secs(20),
        |s| s["step"] == "receipt",
    )
    .await;
    signal(
        &acme,
        "ProcureToPay",
        "PO-2",
        "receipt",
        json!({"lines": [{"item": "bolt", "quantity": "10"}, {"item": "nut", "quantity": "5"}]}),
    )
    .await;
    state_until(
        &acme,
        "ProcureToPay",
        "PO-2",
        Duration::from_secs(20),
        |s| s["step"] == "invoice",
    )
    .await;
    signal(&acme, "ProcureToPay", "PO-2", "invoice",
           json!({"invoice_id": "INV-8", "lines": [{"item": "bolt", "quantity": "10", "unit_price": "2.00"},
                                                     {"item": "nut", "quantity": "5", "unit_price": "1.00"}]})).await;
    let done = ended(&acme, "ProcureToPay", "PO-2", Duration::from_secs(30)).await;
    assert_eq!(done["output"]["outcome"], "paid", "{done}");
    assert_eq!(balance(&acme, "2000-EUR").await, "51.0000");
    let trial = call(&acme, "/services/ledger/trial_balance", json!({})).await;
    assert_eq!(trial["balanced"], true, "{trial}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_posting_above_the_four_eyes_threshold_is_posted_once_an_approver_decides_its_task() {
    let restate = Restate::start();
    let dir = tempfile::tempdir().unwrap();
    let idp = common::Idp::start();
    let bundle = common::policy_bundle(dir.path(), "four-eyes");
    let config = common::write_config(
        dir.path(),
        &format!(
            "[policy]\nbundle = \"{}\"\n{}",
            bundle.display(),
            idp.oidc_config()
        ),
    );
    let mut env = restate.env();
    let server = Server::start_with_env(dir.path(), &["--config", &config], &mut env);
    restate.wait_for_workflow("JournalApproval").await;
    let admin = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let developer = Api::new(
        &server,
        &idp.token("dev", "acme", "read invoke", &["developer"]),
    );
    let approver = Api::new(
        &server,
        &idp.token("ann", "acme", "read invoke", &["approver"]),
    );
    for (code, name, kind) in [("1000", "Cash", "asset"), ("4000", "Sales", "income")] {
        call(
            &admin,
            "/services/ledger/create_account",
            json!({"code": code, "name": name, "type": kind, "currency": "EUR"}),
        )
        .await;
    }
    let journal = json!({"posting_time": "2026-03-01T09:00:00Z", "memo": "large sale",
                         "lines": [{"account": "1000", "debit": "20000.00", "currency": "EUR"},
                                   {"account": "4000", "credit": "20000.00", "currency": "EUR"}]});

    // Straight to the ledger, the developer is refused by the four-eyes rule.
    let mut direct = journal.clone();
    direct["journal_id"] = json!("J-BIG");
    let (status, body) = developer
        .post("/services/ledger/post_journal", json!({"params": direct}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("policy_denied")),
        "{body}"
    );

    // Through the workflow: a task an approver decides, then the posting.
    call(
        &developer,
        &format!("{WORKFLOW}/launch"),
        json!({"workflow": "JournalApproval", "id": "J-BIG", "input": {"journal": journal}}),
    )
    .await;
    state_until(
        &developer,
        "JournalApproval",
        "J-BIG",
        Duration::from_secs(20),
        |s| s["waiting_for"] == "J-BIG.approval",
    )
    .await;
    let (status, body) = developer
        .post(
            "/services/tasks/approve",
            json!({"params": {"task_id": "J-BIG.approval"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    call(
        &approver,
        "/services/tasks/approve",
        json!({"task_id": "J-BIG.approval"}),
    )
    .await;
    let done = ended(
        &developer,
        "JournalApproval",
        "J-BIG",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(done["output"]["outcome"], "posted", "{done}");
    assert_eq!(
        done["state"]["approval"]["decided_by"], "oidc:ann",
        "{done}"
    );
    let posted = call(
        &admin,
        "/services/ledger/get_journal",
        json!({"journal_id": "J-BIG"}),
    )
    .await;
    assert_eq!(posted["journal_id"], "J-BIG", "{posted}");
    assert_eq!(balance(&admin, "1000").await, "20000.0000");
}
