//! integration/payments as the runtime hosts it (`builtins`, params and results checked
//! against the contract's schemas), against the fake payments API (Stripe's PaymentIntents)
//! on loopback: no real payments API is reachable here.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_integration_fakes::payments::{FakePayments, Options, Webhook};
use switchyard_provider_integration::builtins;
use switchyard_spi::tenancy::{EgressCeiling, Tenancy};
use switchyard_spi::testkit::{Harness, TenantInstance};
use switchyard_spi::{ErrorCode, Host, ProviderFactory};

fn engine(data: &Path) -> Arc<dyn ProviderFactory> {
    let tenancy = Tenancy {
        egress: EgressCeiling {
            allowed_networks: vec!["127.0.0.0/8".parse().expect("a network")],
            allowed_ports: Vec::new(),
        },
        ..Tenancy::default()
    };
    let host = Host {
        data,
        books: data,
        tenancy: &tenancy,
    };
    builtins(&host)
        .expect("the integration engines")
        .into_iter()
        .find(|f| f.descriptor().name == "payments")
        .expect("integration/payments is a builtin")
}

/// Tenant `account`'s config as the factory gets it: secrets already resolved.
fn config(fake: &FakePayments, account: usize) -> Value {
    let account = &fake.options().accounts[account];
    json!({
        "api_url": fake.base_url(),
        "secret_key": account.secret_key,
        "webhook_secret": account.webhook_secret,
    })
}

struct Setup {
    fake: FakePayments,
    _data: tempfile::TempDir,
    harness: Harness,
}

async fn setup() -> Setup {
    let fake = FakePayments::start(Options::default()).await;
    let data = tempfile::tempdir().expect("a temp dir");
    let harness = Harness::new(engine(data.path()));
    Setup {
        fake,
        _data: data,
        harness,
    }
}

impl Setup {
    async fn tenant(&self, name: &str, account: usize) -> TenantInstance {
        self.harness
            .tenant_with_config(name, config(&self.fake, account))
            .await
    }

    fn key(&self, account: usize) -> String {
        self.fake.options().accounts[account].secret_key.clone()
    }
}

fn authorize(pm: &str, key: &str) -> Value {
    json!({
        "operation": "authorize",
        "idempotency_key": key,
        "params": {"amount": 4200, "currency": "EUR", "payment_method": pm, "reference": "order-7"}
    })
}

fn op(operation: &str, payment_id: &str, key: Option<&str>) -> Value {
    let mut call = json!({"operation": operation, "params": {"payment_id": payment_id}});
    if let Some(key) = key {
        call["idempotency_key"] = json!(key);
    }
    call
}

async fn authorized(acme: &TenantInstance, key: &str) -> String {
    let answer = acme.ok("execute", authorize("pm_card_visa", key)).await;
    assert_eq!(answer["result"]["status"], "authorized", "{answer}");
    answer["result"]["payment_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn authorize_capture_and_refund_fake_payments() {
    let s = setup().await;
    let acme = s.tenant("acme", 0).await;
    assert_eq!(acme.ok("check", json!({})).await["ok"], true);
    let answer = acme
        .ok("execute", authorize("pm_card_visa", "o7:authorize"))
        .await;
    let result = &answer["result"];
    assert_eq!(
        (
            result["amount"].as_i64(),
            result["currency"].as_str(),
            result["reference"].as_str()
        ),
        (Some(4200), Some("eur"), Some("order-7"))
    );
    assert_eq!(result["amount_capturable"], 4200);
    assert_eq!(answer["replayed"], false);
    let id = result["payment_id"].as_str().unwrap();

    let captured = acme
        .ok("execute", op("capture", id, Some("o7:capture")))
        .await;
    assert_eq!(captured["result"]["status"], "captured");
    assert_eq!(captured["result"]["amount_captured"], 4200);

    let mut refund = op("refund", id, Some("o7:refund:1"));
    refund["params"]["amount"] = json!(1200);
    let refunded = acme.ok("execute", refund).await;
    assert_eq!(refunded["result"]["amount_refunded"], 1200);
    assert_eq!(refunded["result"]["status"], "captured");
    assert_eq!(refunded["result"]["refund"]["amount"], 1200);
    let rest = acme
        .ok("execute", op("refund", id, Some("o7:refund:2")))
        .await;
    assert_eq!(rest["result"]["status"], "refunded");
    let got = acme.ok("execute", op("get", id, None)).await;
    assert_eq!(got["result"]["amount_refunded"], 4200);
    let counts = s.fake.counts(&s.key(0), id).unwrap();
    assert_eq!((counts.captures, counts.refunds), (1, 2));

    // A refund past what is left is a conflict, not a retry.
    let err = acme
        .err("execute", op("refund", id, Some("o7:refund:3")))
        .await;
    assert_eq!(err.code, ErrorCode::Conflict);
    assert!(!err.retryable);
}

#[tokio::test]
async fn a_declined_card_is_payment_declined_and_not_retryable_fake_payments() {
    let s = setup().await;
    let acme = s.tenant("acme", 0).await;
    let err = acme
        .err(
            "execute",
            authorize("pm_card_chargeDeclined", "o8:authorize"),
        )
        .await;
    assert_eq!(err.code, ErrorCode::PaymentDeclined);
    assert!(!err.retryable);
    assert!(err.detail.contains("generic_decline"), "{}", err.detail);
    let err = acme
        .err(
            "execute",
            authorize("pm_card_chargeDeclinedInsufficientFunds", "o9:authorize"),
        )
        .await;
    assert!(err.detail.contains("insufficient_funds"), "{}", err.detail);
    // The same key answers the same decline, without a second authorization attempt.
    let again = acme
        .err(
            "execute",
            authorize("pm_card_chargeDeclined", "o8:authorize"),
        )
        .await;
    assert_eq!(again.code, ErrorCode::PaymentDeclined);
    let failed = s.fake.events(&s.key(0));
    assert_eq!(
        failed.len(),
        2,
        "one payment_failed event per authorization attempt"
    );
}

#[tokio::test]
async fn void_releases_and_a_captured_payment_cannot_be_voided_fake_payments() {
    let s = setup().await;
    let acme = s.tenant("acme", 0).await;
    let id = authorized(&acme, "a:authorize").await;
    let voided = acme.ok("execute", op("void", &id, Some("a:void"))).await;
    assert_eq!(voided["result"]["status"], "voided");
    assert_eq!(voided["result"]["amount_capturable"], 0);
    let err = acme
        .err("execute", op("capture", &id, Some("a:capture")))
        .await;
    assert_eq!(err.code, ErrorCode::Conflict);

    let id = authorized(&acme, "b:authorize").await;
    acme.ok("execute", op("capture", &id, Some("b:capture")))
        .await;
    let err = acme.err("execute", op("void", &id, Some("b:void"))).await;
    assert_eq!(err.code, ErrorCode::Conflict);
    // A mutating operation without a key is refused before anything is sent.
    let calls = s.fake.calls();
    let err = acme.err("execute", op("capture", &id, None)).await;
    assert_eq!(err.code, ErrorCode::ParamsUnprocessable);
    assert_eq!(s.fake.calls(), calls);
}

#[tokio::test]
async fn a_retried_capture_with_its_key_captures_once_fake_payments() {
    let s = setup().await;
    let acme = s.tenant("acme", 0).await;
    let id = authorized(&acme, "c:authorize").await;

    // The step crashed after sending: the caller retries with the same key and is answered
    // the first capture, replayed.
    let first = acme
        .ok("execute", op("capture", &id, Some("c:capture")))
        .await;
    let retried = acme
        .ok("execute", op("capture", &id, Some("c:capture")))
        .await;
    assert_eq!(retried["replayed"], true);
    assert_eq!(retried["result"], first["result"]);

    // The response is lost on the way back, then the API fails twice: the engine's own
    // retries with the same key end on the saved capture.
    let id2 = authorized(&acme, "d:authorize").await;
    s.fake.lose_next(1);
    let answer = acme
        .ok("execute", op("capture", &id2, Some("d:capture")))
        .await;
    assert_eq!(answer["replayed"], true);
    s.fake.fail_next(2);
    acme.ok("execute", op("capture", &id2, Some("d:capture")))
        .await;

    for id in [&id, &id2] {
        let counts = s.fake.counts(&s.key(0), id).unwrap();
        assert_eq!((counts.captures, counts.amount_received), (1, 4200), "{id}");
    }
    let succeeded = s
        .fake
        .events(&s.key(0))
        .iter()
        .filter(|e| e["type"] == "payment_intent.succeeded")
        .count();
    assert_eq!(succeeded, 2);

    // An outage longer than the engine's retries is retryable for the caller.
    s.fake.fail_next(10);
    let err = acme.err("execute", op("get", &id, None)).await;
    assert_eq!(err.code, ErrorCode::UpstreamUnavailable);
    assert!(err.retryable);
}

#[tokio::test]
async fn a_key_replayed_with_changed_params_is_refused_fake_payments() {
    let s = setup().await;
    let acme = s.tenant("acme", 0).await;
    authorized(&acme, "e:authorize").await;
    let mut changed = authorize("pm_card_visa", "e:authorize");
    changed["params"]["amount"] = json!(9900);
    let err = acme.err("execute", changed).await;
    assert_eq!(err.code, ErrorCode::IdempotencyKeyReused);
    assert!(!err.retryable);
    assert_eq!(s.fake.options().accounts.len(), 2);
}

#[tokio::test]
async fn webhooks_verify_dedupe_and_refuse_tampering_fake_payments() {
    let s = setup().await;
    let acme = s.tenant("acme", 0).await;
    let id = authorized(&acme, "f:authorize").await;
    acme.ok("execute", op("capture", &id, Some("f:capture")))
        .await;
    let webhook = s
        .fake
        .webhook(&s.key(0), "payment_intent.succeeded")
        .expect("the capture's event");
    let receive = |w: &Webhook| {
        let w = w.clone();
        let acme = &acme;
        async move {
            acme.call_with_payload(
                "receive",
                json!({"headers": w.headers}),
                Some(w.body.into()),
            )
            .await
        }
    };
    let received = receive(&webhook).await.unwrap();
    assert_eq!(received["duplicate"], false);
    assert_eq!(received["event"]["type"], "payment_intent.succeeded");
    assert_eq!(received["event"]["object_id"], id.as_str());
    assert_eq!(received["event"]["data"]["status"], "captured");
    assert_eq!(receive(&webhook).await.unwrap()["duplicate"], true);

    let mut tampered = webhook.clone();
    tampered.body = String::from_utf8(webhook.body.clone())
        .unwrap()
        .replace("4200", "1")
        .into_bytes();
    assert_eq!(
        receive(&tampered).await.unwrap_err().code,
        ErrorCode::SignatureInvalid
    );
    // Signed by another account's secret, or long ago: refused too.
    let event: Value = serde_json::from_slice(&webhook.body).unwrap();
    let globex_secret = &s.fake.options().accounts[1].webhook_secret;
    let foreign = Webhook::signed(globex_secret, now(), &event);
    assert_eq!(
        receive(&foreign).await.unwrap_err().code,
        ErrorCode::SignatureInvalid
    );
    let own_secret = &s.fake.options().accounts[0].webhook_secret;
    let stale = Webhook::signed(own_secret, now() - 3600, &event);
    assert_eq!(
        receive(&stale).await.unwrap_err().code,
        ErrorCode::SignatureInvalid
    );

    // A refund's event is about the charge, answered as the payment it belongs to.
    acme.ok("execute", op("refund", &id, Some("f:refund")))
        .await;
    let refunded = s.fake.webhook(&s.key(0), "charge.refunded").unwrap();
    let received = receive(&refunded).await.unwrap();
    assert_eq!(received["stream"], "charges");
    assert_eq!(received["event"]["object_id"], id.as_str());
    assert_eq!(received["event"]["data"]["status"], "refunded");
}

#[tokio::test]
async fn the_secret_key_never_appears_in_answers_or_errors_fake_payments() {
    let s = setup().await;
    let key = s.key(0);
    let acme = s.tenant("acme", 0).await;
    let id = authorized(&acme, "g:authorize").await;
    let mut seen = vec![
        acme.ok("execute", op("get", &id, None)).await.to_string(),
        acme.err("execute", authorize("pm_card_chargeDeclined", "g2"))
            .await
            .detail,
        acme.err("execute", op("get", "pi_nope", None)).await.detail,
    ];
    // A key the API refuses: the error says so without quoting any of it.
    let mut wrong = config(&s.fake, 0);
    wrong["secret_key"] = json!("sk_test_wrong_SECRETVALUE1234");
    let revoked = s.harness.tenant_with_config("revoked", wrong).await;
    let err = revoked.err("check", json!({})).await;
    assert_eq!(err.code, ErrorCode::UpstreamCredentialsInvalid);
    seen.push(format!("{err:?}"));
    for text in seen {
        assert!(
            !text.contains(&key) && !text.contains("SECRETVALUE") && !text.contains("1234"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn another_tenants_account_cannot_reach_a_payment_cross_tenant_fake_payments() {
    let s = setup().await;
    let acme = s.tenant("acme", 0).await;
    let globex = s.tenant("globex", 1).await;
    let id = authorized(&acme, "h:authorize").await;

    let err = globex.err("execute", op("get", &id, None)).await;
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
    for (operation, key) in [
        ("capture", "x:capture"),
        ("void", "x:void"),
        ("refund", "x:refund"),
    ] {
        let err = globex.err("execute", op(operation, &id, Some(key))).await;
        assert_eq!(err.code, ErrorCode::ResourceNotFound, "{operation}");
    }
    // The same idempotency key in the other account is that account's own.
    let theirs = globex
        .ok("execute", authorize("pm_card_visa", "h:authorize"))
        .await;
    assert_ne!(theirs["result"]["payment_id"], id.as_str());
    assert_eq!(theirs["replayed"], false);
    let counts = s.fake.counts(&s.key(0), &id).unwrap();
    assert_eq!((counts.captures, counts.refunds), (0, 0));
    assert_eq!(
        acme.ok("execute", op("get", &id, None)).await["result"]["status"],
        "authorized"
    );
    // acme's webhook does not verify for globex.
    let webhook = s
        .fake
        .webhook(&s.key(0), "payment_intent.amount_capturable_updated")
        .unwrap();
    let err = globex
        .call_with_payload(
            "receive",
            json!({"headers": webhook.headers}),
            Some(webhook.body.into()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SignatureInvalid);
    // A tenant that configured nothing has no account at all.
    let initech = s.harness.tenant("initech").await;
    let err = initech.err("execute", op("get", &id, None)).await;
    assert_eq!(err.code, ErrorCode::ProviderNotConfigured);
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
