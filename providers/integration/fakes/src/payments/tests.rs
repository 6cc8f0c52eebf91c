//! The fake's own promises, over HTTP as a connector sees them.

use serde_json::Value;

use super::*;

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    fn new(fake: &FakePayments, account: usize) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: fake.base_url(),
            key: fake.options().accounts[account].secret_key.clone(),
        }
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        key: Option<&str>,
    ) -> (u16, Value, bool) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .form(form);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.unwrap();
        let replayed = response.headers().get("idempotent-replayed").is_some();
        (
            response.status().as_u16(),
            response.json().await.unwrap(),
            replayed,
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

const AUTHORIZE: [(&str, &str); 5] = [
    ("amount", "1250"),
    ("currency", "eur"),
    ("capture_method", "manual"),
    ("confirm", "true"),
    ("payment_method", "pm_card_visa"),
];

#[tokio::test]
async fn authorize_capture_refund_and_the_idempotency_layer_fake_payments() {
    let fake = FakePayments::start(Options::default()).await;
    let acme = Client::new(&fake, 0);
    let (status, pi, replayed) = acme
        .post("/v1/payment_intents", &AUTHORIZE, Some("k1"))
        .await;
    assert_eq!(
        (status, pi["status"].as_str(), replayed),
        (200, Some("requires_capture"), false)
    );
    let id = pi["id"].as_str().unwrap().to_owned();

    // Same key, same params: the same object, replayed; other params: idempotency_error.
    let (_, again, replayed) = acme
        .post("/v1/payment_intents", &AUTHORIZE, Some("k1"))
        .await;
    assert_eq!((again["id"].as_str(), replayed), (Some(id.as_str()), true));
    let mut other = AUTHORIZE;
    other[0] = ("amount", "999");
    let (status, err, _) = acme.post("/v1/payment_intents", &other, Some("k1")).await;
    assert_eq!(
        (status, err["error"]["type"].as_str()),
        (400, Some("idempotency_error"))
    );

    let capture = format!("/v1/payment_intents/{id}/capture");
    let (status, captured, _) = acme.post(&capture, &[], Some("c1")).await;
    assert_eq!(
        (status, captured["amount_received"].as_i64()),
        (200, Some(1250))
    );
    let (_, _, replayed) = acme.post(&capture, &[], Some("c1")).await;
    assert!(replayed);
    let (status, err, _) = acme.post(&capture, &[], Some("c2")).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("payment_intent_unexpected_state"))
    );

    let refund = [("payment_intent", id.as_str()), ("amount", "250")];
    assert_eq!(acme.post("/v1/refunds", &refund, Some("r1")).await.0, 200);
    let too_much = [("payment_intent", id.as_str()), ("amount", "1001")];
    let (status, err, _) = acme.post("/v1/refunds", &too_much, Some("r2")).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("amount_too_large"))
    );
    let (_, expanded) = acme
        .get(&format!("/v1/payment_intents/{id}?expand[]=latest_charge"))
        .await;
    assert_eq!(expanded["latest_charge"]["amount_refunded"], 250);
    assert_eq!(
        fake.counts(&acme.key, &id),
        Some(Counts {
            captures: 1,
            refunds: 1,
            amount_received: 1250,
            amount_refunded: 250
        })
    );
    let types: Vec<Value> = fake
        .events(&acme.key)
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(
        types,
        [
            "payment_intent.amount_capturable_updated",
            "payment_intent.succeeded",
            "charge.refunded"
        ]
    );
}

#[tokio::test]
async fn declines_accounts_auth_and_faults_fake_payments() {
    let fake = FakePayments::start(Options::default()).await;
    let acme = Client::new(&fake, 0);
    let globex = Client::new(&fake, 1);
    let mut declined = AUTHORIZE;
    declined[4] = ("payment_method", "pm_card_chargeDeclined");
    let (status, err, _) = acme.post("/v1/payment_intents", &declined, None).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (402, Some("card_declined"))
    );
    assert_eq!(err["error"]["decline_code"], "generic_decline");

    let (_, pi, _) = acme.post("/v1/payment_intents", &AUTHORIZE, None).await;
    let id = pi["id"].as_str().unwrap();
    let (status, err) = globex.get(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("resource_missing"))
    );
    let (status, _, _) = globex
        .post(&format!("/v1/payment_intents/{id}/capture"), &[], None)
        .await;
    assert_eq!(status, 404);
    let (_, listed) = globex.get("/v1/payment_intents").await;
    assert_eq!(listed["data"], serde_json::json!([]));

    let stranger = Client {
        key: "sk_test_unknown_0000".into(),
        ..Client::new(&fake, 0)
    };
    let (status, err) = stranger.get("/v1/balance").await;
    assert_eq!(status, 401);
    assert!(!err.to_string().contains("sk_test_unknown"), "{err}");

    // A lost response: executed and saved, so the retry with its key replays it.
    fake.lose_next(1);
    let capture = format!("/v1/payment_intents/{id}/capture");
    assert_eq!(acme.post(&capture, &[], Some("lost")).await.0, 500);
    let (status, _, replayed) = acme.post(&capture, &[], Some("lost")).await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(fake.counts(&acme.key, id).unwrap().captures, 1);
    fake.fail_next(1);
    assert_eq!(acme.get("/v1/balance").await.0, 500);
    assert_eq!(
        acme.get("/v1/balance").await.1["available"][0]["amount"],
        1250
    );
}

#[test]
fn the_signature_is_stripes_v1_scheme() {
    // HMAC-SHA256("whsec_test", "1700000000.{}"), computed independently with openssl.
    assert_eq!(
        sign("whsec_test", 1_700_000_000, b"{}"),
        "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
    );
}
