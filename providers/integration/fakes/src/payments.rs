//! A fake payments API on 127.0.0.1, following Stripe's documented PaymentIntents API (the
//! subset a card payment with a separate capture uses; docs.stripe.com/api):
//!
//! - `POST /v1/payment_intents` (form-encoded: `amount`, `currency`, `capture_method`,
//!   `confirm`, `payment_method`, `description`, `metadata[…]`, `expand[]`): with
//!   `confirm=true` and `capture_method=manual` it authorizes (`requires_capture`); the
//!   documented test payment methods decline (`pm_card_chargeDeclined`: 402 `card_error`
//!   `card_declined`, `generic_decline`; `…InsufficientFunds`, `…ExpiredCard`).
//! - `POST /v1/payment_intents/{id}/capture` (`amount_to_capture`), `…/cancel`
//!   (`cancellation_reason`): a second capture, or a cancel after capture, is 400
//!   `payment_intent_unexpected_state`, as Stripe answers.
//! - `POST /v1/refunds` (`payment_intent`, `amount`, `reason`): at most the captured amount
//!   (400 `amount_too_large`, `charge_already_refunded`).
//! - `GET /v1/payment_intents/{id}` (`expand[]=latest_charge` shows the charge's
//!   `amount_refunded` and refunds), `GET /v1/payment_intents` (newest first, `limit`,
//!   `starting_after`), `GET /v1/charges/{id}`, `GET /v1/refunds?payment_intent=`,
//!   `GET /v1/events`, `GET /v1/balance`.
//! - Secret-key auth (`Authorization: Bearer sk_…`, or Basic with the key as user name), else
//!   401. Every object belongs to the account of the key that made it: another account's key
//!   gets 404 `resource_missing`, like two Stripe accounts.
//! - `Idempotency-Key` as Stripe documents it: the first response of a key (whatever its
//!   status, once the endpoint started executing) is saved and replayed, byte for byte, for
//!   the same key with the same parameters (`Idempotent-Replayed: true`); the same key with
//!   other parameters or another endpoint is 400 `idempotency_error`; the same key while the
//!   first request is still running is 409 `idempotency_key_in_use`. Keys are per account.
//! - Webhooks: `payment_intent.amount_capturable_updated`, `payment_intent.succeeded`,
//!   `payment_intent.canceled`, `payment_intent.payment_failed`, `charge.refunded`, POSTed to
//!   the account's endpoint ([`FakePayments::set_webhook_endpoint`]) and signed as Stripe
//!   signs them: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed
//!   with the endpoint's `whsec_…` secret.
//!
//! Simplifications, none of which a connector can tell through the calls above: no 3-D
//! Secure (`requires_action`), no automatic payment methods, a canceled authorization's
//! charge is left uncaptured rather than shown as refunded, and idempotency keys never expire
//! (Stripe prunes them after 24 hours).
//!
//! For chaos tests: [`FakePayments::fail_next`] (500 before anything executes),
//! [`FakePayments::lose_next`] (the request executes and its result is saved for replay, but
//! the client gets a 500, as when a response is lost on the way back) and
//! [`FakePayments::set_delay`]; and [`FakePayments::counts`], how many captures and refunds
//! the fake performed per payment intent (a replay performs none).

mod server;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One Stripe account the fake serves: the secret key its calls carry and its webhook
/// endpoint's signing secret.
#[derive(Debug, Clone)]
pub struct Account {
    /// `sk_test_…`.
    pub secret_key: String,
    /// `whsec_…`.
    pub webhook_secret: String,
}

/// How the fake is set up: the accounts it knows.
#[derive(Debug, Clone)]
pub struct Options {
    pub accounts: Vec<Account>,
}

impl Default for Options {
    /// Two accounts (`acme`'s and `globex`'s), so a test can show one cannot reach the other's
    /// objects.
    fn default() -> Self {
        Options {
            accounts: ["acme", "globex"]
                .into_iter()
                .map(|name| Account {
                    secret_key: format!("sk_test_fake_{name}_4eC39HqLyjWDarjtT1zdp7dc"),
                    webhook_secret: format!("whsec_fake_{name}_5b0c4ea1d2e3f4a5b6c7d8e9"),
                })
                .collect(),
        }
    }
}

/// What the fake performed on one payment intent, for a chaos test's assertions (Stripe's
/// objects show the amounts too: `amount_received`, the charge's `amount_refunded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Captures executed (a replayed capture is not one; Stripe refuses a second).
    pub captures: u32,
    /// Refunds created.
    pub refunds: u32,
    pub amount_received: i64,
    pub amount_refunded: i64,
}

/// A payment intent, as the fake keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Intent {
    pub(crate) id: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) status: &'static str,
    pub(crate) capture_method: String,
    pub(crate) payment_method: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) created: i64,
    pub(crate) amount_capturable: i64,
    pub(crate) amount_received: i64,
    pub(crate) latest_charge: Option<String>,
    pub(crate) canceled_at: Option<i64>,
    pub(crate) cancellation_reason: Option<String>,
    pub(crate) last_payment_error: Option<Value>,
    pub(crate) captures: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Charge {
    pub(crate) id: String,
    pub(crate) payment_intent: String,
    pub(crate) amount: i64,
    pub(crate) amount_captured: i64,
    pub(crate) amount_refunded: i64,
    pub(crate) currency: String,
    pub(crate) captured: bool,
    pub(crate) status: &'static str,
    pub(crate) created: i64,
    pub(crate) refunds: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Refund {
    pub(crate) id: String,
    pub(crate) amount: i64,
    pub(crate) charge: String,
    pub(crate) payment_intent: String,
    pub(crate) currency: String,
    pub(crate) reason: Option<String>,
    pub(crate) created: i64,
}

/// A saved idempotent request: what it was, and its response once it has one.
#[derive(Debug, Clone)]
pub(crate) struct Saved {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) params: Vec<(String, String)>,
    /// `None` while the first request is still executing.
    pub(crate) response: Option<(u16, Vec<u8>)>,
}

/// One account's objects, events and idempotency keys.
pub(crate) struct Ledger {
    pub(crate) webhook_secret: String,
    pub(crate) endpoint: Option<String>,
    /// Payment intents in creation order (the list answers newest first).
    pub(crate) intents: Vec<Intent>,
    pub(crate) charges: HashMap<String, Charge>,
    pub(crate) refunds: Vec<Refund>,
    pub(crate) events: Vec<Value>,
    pub(crate) keys: HashMap<String, Saved>,
}

impl Ledger {
    pub(crate) fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }

    pub(crate) fn intent_mut(&mut self, id: &str) -> Option<&mut Intent> {
        self.intents.iter_mut().find(|i| i.id == id)
    }
}

/// The fake's state, shared by the server's connections and the test's knobs.
pub(crate) struct Bank {
    /// By secret key.
    pub(crate) accounts: HashMap<String, Ledger>,
    next_id: u64,
    pub(crate) calls: u64,
    pub(crate) fail_next: u32,
    pub(crate) lose_next: u32,
    pub(crate) delay: Duration,
    pub(crate) webhooks_delivered: u64,
}

impl Bank {
    /// A fresh object id, `<prefix>_fake…` (Stripe's ids are a prefix and 24 characters).
    pub(crate) fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_fake{:020}", self.next_id)
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Stripe's webhook signature of `body` sent at unix time `t`: the hex HMAC-SHA256 of
/// `"<t>.<body>"` keyed with the endpoint's whole `whsec_…` secret, as the `v1` scheme.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One signed webhook delivery, as Stripe would POST it.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Header names lower-cased (`content-type`, `stripe-signature`).
    pub headers: BTreeMap<String, String>,
    /// The raw body the signature covers.
    pub body: Vec<u8>,
}

impl Webhook {
    /// `event` signed with `secret` at unix time `t`.
    pub fn signed(secret: &str, t: i64, event: &Value) -> Webhook {
        let body = serde_json::to_vec(event).expect("JSON");
        let headers = [
            ("content-type", "application/json; charset=utf-8".to_owned()),
            (
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)".to_owned(),
            ),
            (
                "stripe-signature",
                format!("t={t},v1={}", sign(secret, t, &body)),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        Webhook { headers, body }
    }

    /// POSTs the delivery to `url`; answers the receiver's status.
    pub async fn deliver(&self, url: &str) -> Result<u16, reqwest::Error> {
        let mut request = reqwest::Client::new().post(url).body(self.body.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        Ok(request.send().await?.status().as_u16())
    }
}

/// A fake payments API, serving until dropped.
pub struct FakePayments {
    addr: SocketAddr,
    bank: Arc<Mutex<Bank>>,
    options: Options,
    server: JoinHandle<()>,
}

impl Drop for FakePayments {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakePayments {
    /// The accounts of `options`, with no objects, serving on a fresh loopback port.
    pub async fn start(options: Options) -> FakePayments {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake payments API");
        let addr = listener.local_addr().expect("local addr");
        let accounts = options
            .accounts
            .iter()
            .map(|account| {
                let ledger = Ledger {
                    webhook_secret: account.webhook_secret.clone(),
                    endpoint: None,
                    intents: Vec::new(),
                    charges: HashMap::new(),
                    refunds: Vec::new(),
                    events: Vec::new(),
                    keys: HashMap::new(),
                };
                (account.secret_key.clone(), ledger)
            })
            .collect();
        let bank = Arc::new(Mutex::new(Bank {
            accounts,
            next_id: 0,
            calls: 0,
            fail_next: 0,
            lose_next: 0,
            delay: Duration::ZERO,
            webhooks_delivered: 0,
        }));
        let server = tokio::spawn(server::serve(listener, bank.clone()));
        FakePayments {
            addr,
            bank,
            options,
            server,
        }
    }

    fn bank(&self) -> MutexGuard<'_, Bank> {
        self.bank.lock().expect("the fake payments' lock")
    }

    /// `http://127.0.0.1:<port>`, the API's base URL (Stripe's `https://api.stripe.com`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Where the events of the account of `secret_key` are POSTed from now on (`None`: kept
    /// in `GET /v1/events` only).
    pub fn set_webhook_endpoint(&self, secret_key: &str, url: Option<&str>) {
        if let Some(ledger) = self.bank().accounts.get_mut(secret_key) {
            ledger.endpoint = url.map(str::to_owned);
        }
    }

    /// The next `requests` authenticated requests answer 500 `api_error` before anything
    /// executes (nothing is saved under their idempotency keys).
    pub fn fail_next(&self, requests: u32) {
        self.bank().fail_next = requests;
    }

    /// The next `requests` authenticated POSTs execute, and their responses are saved under
    /// their idempotency keys, but the client gets 500 instead: the response was lost.
    pub fn lose_next(&self, requests: u32) {
        self.bank().lose_next = requests;
    }

    /// Every request waits this long before it executes (while its idempotency key is held).
    pub fn set_delay(&self, delay: Duration) {
        self.bank().delay = delay;
    }

    /// Every request the fake received, whatever it answered.
    pub fn calls(&self) -> u64 {
        self.bank().calls
    }

    /// Webhooks delivered with a 2xx answer.
    pub fn webhooks_delivered(&self) -> u64 {
        self.bank().webhooks_delivered
    }

    /// What the fake performed on payment intent `id` of the account of `secret_key`.
    pub fn counts(&self, secret_key: &str, id: &str) -> Option<Counts> {
        let bank = self.bank();
        let ledger = bank.accounts.get(secret_key)?;
        let intent = ledger.intent(id)?;
        let charge = intent
            .latest_charge
            .as_ref()
            .and_then(|c| ledger.charges.get(c));
        Some(Counts {
            captures: intent.captures,
            refunds: charge.map_or(0, |c| c.refunds.len() as u32),
            amount_received: intent.amount_received,
            amount_refunded: charge.map_or(0, |c| c.amount_refunded),
        })
    }

    /// The account's events, oldest first.
    pub fn events(&self, secret_key: &str) -> Vec<Value> {
        self.bank()
            .accounts
            .get(secret_key)
            .map(|ledger| ledger.events.clone())
            .unwrap_or_default()
    }

    /// The account's last event of `event_type` as a delivery signed now with the account's
    /// webhook secret.
    pub fn webhook(&self, secret_key: &str, event_type: &str) -> Option<Webhook> {
        let bank = self.bank();
        let ledger = bank.accounts.get(secret_key)?;
        let event = ledger
            .events
            .iter()
            .rev()
            .find(|e| e["type"] == event_type)?;
        Some(Webhook::signed(&ledger.webhook_secret, now(), event))
    }
}

/// Records `event_type` about `object` in the account and POSTs it to the account's endpoint,
/// if any (in the background, three attempts, as Stripe retries a failed delivery).
pub(crate) fn emit(
    bank: &Arc<Mutex<Bank>>,
    locked: &mut Bank,
    key: &str,
    event_type: &str,
    object: Value,
) {
    let id = locked.id("evt");
    let Some(ledger) = locked.accounts.get_mut(key) else {
        return;
    };
    let event = json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": now(),
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": u8::from(ledger.endpoint.is_some()),
        "type": event_type,
    });
    ledger.events.push(event.clone());
    let Some(url) = ledger.endpoint.clone() else {
        return;
    };
    let secret = ledger.webhook_secret.clone();
    let bank = bank.clone();
    tokio::spawn(async move {
        for attempt in 0..3u32 {
            let webhook = Webhook::signed(&secret, now(), &event);
            if let Ok(status) = webhook.deliver(&url).await
                && (200..300).contains(&status)
            {
                bank.lock()
                    .expect("the fake payments' lock")
                    .webhooks_delivered += 1;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
    });
}

#[cfg(test)]
mod tests;
