//! The fake payments API's HTTP side: secret-key auth, injected faults, the idempotency
//! layer, then the endpoints. The order is Stripe's: a request that fails authentication or
//! validation saves nothing under its idempotency key; one that started executing saves its
//! response, whatever its status.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::{Bank, Charge, Intent, Ledger, Refund, Saved, emit, now};

/// Stripe's documented test payment methods: the ones that authorize, and the ones that
/// decline with their `code` and `decline_code`.
const APPROVED: [&str; 4] = [
    "pm_card_visa",
    "pm_card_mastercard",
    "pm_card_amex",
    "pm_card_visa_debit",
];
const DECLINED: [(&str, &str, &str, &str); 3] = [
    (
        "pm_card_chargeDeclined",
        "card_declined",
        "generic_decline",
        "Your card was declined.",
    ),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    (
        "pm_card_chargeDeclinedExpiredCard",
        "expired_card",
        "expired_card",
        "Your card has expired.",
    ),
];
/// The statuses a payment intent may be canceled in.
const CANCELABLE: [&str; 5] = [
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
];

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, bank: Arc<Mutex<Bank>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let bank = bank.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let bank = bank.clone();
            async move { Ok::<_, Infallible>(answer(request, &bank).await) }
        });
        tokio::spawn(async move {
            // A client hanging up mid-request is none of the fake's business.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A response: status, JSON body, extra headers; `save` says whether the endpoint started
/// executing (so the idempotency layer keeps it).
struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    save: bool,
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        body: serde_json::to_vec(&body).expect("JSON"),
        headers: Vec::new(),
        save: true,
    }
}

/// Stripe's error object, `{"error": {type, code, message, param, …}}`.
fn error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: String,
    param: Option<&str>,
) -> Reply {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        ));
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    Reply {
        status,
        body: serde_json::to_vec(&json!({"error": error})).expect("JSON"),
        headers: Vec::new(),
        save: true,
    }
}

/// A parameter refused before the endpoint executes: nothing is saved under the key.
fn invalid(code: &str, message: String, param: &str) -> Reply {
    Reply {
        save: false,
        ..error(
            400,
            "invalid_request_error",
            Some(code),
            message,
            Some(param),
        )
    }
}

fn missing(kind: &str, id: &str, param: &str) -> Reply {
    error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        format!("No such {kind}: '{id}'"),
        Some(param),
    )
}

fn respond(reply: Reply, request_id: &str) -> Response<Full<Bytes>> {
    let mut response = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json")
        .header("request-id", request_id)
        .header("stripe-version", "2024-06-20");
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    response
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a valid response")
}

/// The secret key of `Authorization: Bearer <key>` or `Basic base64(<key>:)`.
fn secret_key(authorization: Option<&str>) -> Option<String> {
    let value = authorization?;
    if let Some(key) = value.strip_prefix("Bearer ") {
        return Some(key.trim().to_owned());
    }
    let decoded = STANDARD.decode(value.strip_prefix("Basic ")?.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split(':').next()?.to_owned())
}

async fn answer(request: Request<Incoming>, bank: &Arc<Mutex<Bank>>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|h| h.to_str().ok());
    let key = secret_key(header("authorization"));
    let idempotency_key = header("idempotency-key").map(str::to_owned);
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let params: Vec<(String, String)> = if method == Method::POST {
        form_urlencoded::parse(&body).into_owned().collect()
    } else {
        parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default()
    };

    let (request_id, delay) = {
        let mut locked = bank.lock().expect("the fake payments' lock");
        locked.calls += 1;
        let request_id = locked.id("req");
        let Some(key) = key.as_deref().filter(|k| locked.accounts.contains_key(*k)) else {
            let message = match &key {
                None => "You did not provide an API key. You need to provide your API key in \
                         the Authorization header, using Bearer auth."
                    .to_owned(),
                // Stripe shows only the key's last four characters.
                Some(k) => format!(
                    "Invalid API Key provided: sk_test_****{}",
                    &k[k.len().saturating_sub(4)..]
                ),
            };
            return respond(
                error(401, "invalid_request_error", None, message, None),
                &request_id,
            );
        };
        if locked.fail_next > 0 {
            locked.fail_next -= 1;
            return respond(
                error(
                    500,
                    "api_error",
                    None,
                    "An unknown error occurred".into(),
                    None,
                ),
                &request_id,
            );
        }
        if method == Method::POST
            && let Some(idem) = &idempotency_key
        {
            let ledger = locked.accounts.get_mut(key).expect("checked above");
            let mut sorted = params.clone();
            sorted.sort();
            match ledger.keys.get(idem) {
                Some(saved) if saved.response.is_none() => {
                    return respond(
                        error(
                            409,
                            "invalid_request_error",
                            Some("idempotency_key_in_use"),
                            format!(
                                "There is currently another in-progress request using this \
                                 idempotency key (that probably means you submitted twice, and \
                                 the other request is still going through): '{idem}'. Please try \
                                 again later."
                            ),
                            None,
                        ),
                        &request_id,
                    );
                }
                Some(saved)
                    if saved.method != method.as_str()
                        || saved.path != path
                        || saved.params != sorted =>
                {
                    return respond(
                        error(
                            400,
                            "idempotency_error",
                            None,
                            format!(
                                "Keys for idempotent requests can only be used with the same \
                                 parameters they were first used with. Try using a key other \
                                 than '{idem}' if you meant to execute a different request."
                            ),
                            None,
                        ),
                        &request_id,
                    );
                }
                Some(saved) => {
                    let (status, body) = saved.response.clone().expect("matched above");
                    let replay = Reply {
                        status,
                        body,
                        headers: vec![("idempotent-replayed", "true".into())],
                        save: true,
                    };
                    return respond(replay, &request_id);
                }
                None => {
                    ledger.keys.insert(
                        idem.clone(),
                        Saved {
                            method: method.as_str().to_owned(),
                            path: path.clone(),
                            params: sorted,
                            response: None,
                        },
                    );
                }
            }
        }
        (request_id, locked.delay)
    };
    let key = key.expect("authenticated above");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let mut locked = bank.lock().expect("the fake payments' lock");
    let reply = route(bank, &mut locked, &key, &method, &path, &params);
    if method == Method::POST
        && let Some(idem) = &idempotency_key
    {
        let ledger = locked.accounts.get_mut(&key).expect("authenticated above");
        if reply.save {
            if let Some(saved) = ledger.keys.get_mut(idem) {
                saved.response = Some((reply.status, reply.body.clone()));
            }
        } else {
            ledger.keys.remove(idem);
        }
    }
    if method == Method::POST && locked.lose_next > 0 {
        locked.lose_next -= 1;
        return respond(
            error(
                500,
                "api_error",
                None,
                "An unknown error occurred".into(),
                None,
            ),
            &request_id,
        );
    }
    respond(reply, &request_id)
}

/// The request's parameters by name (the last value of a repeated one).
struct Params<'a>(&'a [(String, String)]);

impl Params<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `metadata[<key>]=<value>` pairs.
    fn metadata(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(n, v)| {
                let key = n.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((key.to_owned(), v.clone()))
            })
            .collect()
    }

    fn expands(&self, field: &str) -> bool {
        self.0.iter().any(|(n, v)| n == "expand[]" && v == field)
    }

    /// A positive integer amount, or the 400 Stripe answers.
    fn amount(&self, name: &str, required: bool) -> Result<Option<i64>, Reply> {
        match self.get(name) {
            None if required => Err(invalid(
                "parameter_missing",
                format!("Missing required param: {name}."),
                name,
            )),
            None => Ok(None),
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(invalid(
                    "parameter_invalid_integer",
                    format!("Invalid integer: {text}"),
                    name,
                )),
            },
        }
    }

    fn limit(&self) -> Result<usize, Reply> {
        match self.get("limit") {
            None => Ok(10),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "parameter_invalid_integer",
                        "This value must be greater than or equal to 1 and at most 100.".into(),
                        "limit",
                    )
                }),
        }
    }
}

fn route(
    bank: &Arc<Mutex<Bank>>,
    locked: &mut Bank,
    key: &str,
    method: &Method,
    path: &str,
    params: &[(String, String)],
) -> Reply {
    let p = Params(params);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match (method, segments.as_slice()) {
        (&Method::POST, ["v1", "payment_intents"]) => create(bank, locked, key, &p),
        (&Method::GET, ["v1", "payment_intents"]) => list_intents(ledger(locked, key), &p),
        (&Method::GET, ["v1", "payment_intents", id]) => {
            let ledger = ledger(locked, key);
            ledger
                .intent(id)
                .map(|i| ok(intent_json(ledger, i, p.expands("latest_charge"))))
                .ok_or_else(|| missing("payment_intent", id, "intent"))
        }
        (&Method::POST, ["v1", "payment_intents", id, "capture"]) => {
            capture(bank, locked, key, id, &p)
        }
        (&Method::POST, ["v1", "payment_intents", id, "cancel"]) => {
            cancel(bank, locked, key, id, &p)
        }
        (&Method::POST, ["v1", "refunds"]) => refund(bank, locked, key, &p),
        (&Method::GET, ["v1", "refunds"]) => {
            let ledger = ledger(locked, key);
            let data: Vec<Value> = ledger
                .refunds
                .iter()
                .rev()
                .filter(|r| {
                    p.get("payment_intent")
                        .is_none_or(|pi| r.payment_intent == pi)
                })
                .map(refund_json)
                .collect();
            Ok(ok(list("/v1/refunds", data, false)))
        }
        (&Method::GET, ["v1", "charges", id]) => {
            let ledger = ledger(locked, key);
            ledger
                .charges
                .get(*id)
                .map(|c| ok(charge_json(ledger, c)))
                .ok_or_else(|| missing("charge", id, "id"))
        }
        (&Method::GET, ["v1", "events"]) => {
            let limit = match p.limit() {
                Ok(limit) => limit,
                Err(reply) => return reply,
            };
            let ledger = ledger(locked, key);
            let matching: Vec<Value> = ledger
                .events
                .iter()
                .rev()
                .filter(|e| p.get("type").is_none_or(|t| e["type"] == t))
                .cloned()
                .collect();
            let more = matching.len() > limit;
            Ok(ok(list(
                "/v1/events",
                matching.into_iter().take(limit).collect(),
                more,
            )))
        }
        (&Method::GET, ["v1", "balance"]) => Ok(ok(balance(ledger(locked, key)))),
        _ => Err(error(
            404,
            "invalid_request_error",
            None,
            format!("Unrecognized request URL ({method}: {path})."),
            None,
        )),
    };
    result.unwrap_or_else(|reply| reply)
}

fn ledger<'a>(locked: &'a mut Bank, key: &str) -> &'a mut Ledger {
    locked.accounts.get_mut(key).expect("authenticated")
}

fn list(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({"object": "list", "url": url, "has_more": has_more, "data": data})
}

fn intent_json(ledger: &Ledger, intent: &Intent, expand_charge: bool) -> Value {
    let latest_charge = match &intent.latest_charge {
        Some(id) if expand_charge => ledger
            .charges
            .get(id)
            .map_or(Value::Null, |c| charge_json(ledger, c)),
        Some(id) => json!(id),
        None => Value::Null,
    };
    json!({
        "id": intent.id,
        "object": "payment_intent",
        "amount": intent.amount,
        "amount_capturable": intent.amount_capturable,
        "amount_received": intent.amount_received,
        "canceled_at": intent.canceled_at,
        "cancellation_reason": intent.cancellation_reason,
        "capture_method": intent.capture_method,
        "created": intent.created,
        "currency": intent.currency,
        "description": intent.description,
        "last_payment_error": intent.last_payment_error,
        "latest_charge": latest_charge,
        "livemode": false,
        "metadata": intent.metadata,
        "payment_method": intent.payment_method,
        "status": intent.status,
    })
}

fn charge_json(ledger: &Ledger, charge: &Charge) -> Value {
    let refunds: Vec<Value> = ledger
        .refunds
        .iter()
        .rev()
        .filter(|r| charge.refunds.contains(&r.id))
        .map(refund_json)
        .collect();
    json!({
        "id": charge.id,
        "object": "charge",
        "amount": charge.amount,
        "amount_captured": charge.amount_captured,
        "amount_refunded": charge.amount_refunded,
        "captured": charge.captured,
        "created": charge.created,
        "currency": charge.currency,
        "livemode": false,
        "paid": charge.status == "succeeded",
        "payment_intent": charge.payment_intent,
        "refunded": charge.amount_captured > 0 && charge.amount_refunded == charge.amount_captured,
        "refunds": list(&format!("/v1/charges/{}/refunds", charge.id), refunds, false),
        "status": charge.status,
    })
}

fn refund_json(refund: &Refund) -> Value {
    json!({
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "charge": refund.charge,
        "created": refund.created,
        "currency": refund.currency,
        "payment_intent": refund.payment_intent,
        "reason": refund.reason,
        "status": "succeeded",
    })
}

fn balance(ledger: &Ledger) -> Value {
    let mut available: BTreeMap<&str, i64> = BTreeMap::new();
    for charge in ledger.charges.values() {
        *available.entry(&charge.currency).or_default() +=
            charge.amount_captured - charge.amount_refunded;
    }
    let available: Vec<Value> = available
        .into_iter()
        .map(|(currency, amount)| json!({"amount": amount, "currency": currency}))
        .collect();
    json!({"object": "balance", "available": available, "pending": [], "livemode": false})
}

fn list_intents(ledger: &Ledger, p: &Params) -> Result<Reply, Reply> {
    let limit = p.limit()?;
    let newest_first = ledger.intents.iter().rev();
    let after: Vec<&Intent> = match p.get("starting_after") {
        None => newest_first.collect(),
        Some(id) => {
            if ledger.intent(id).is_none() {
                return Err(missing("payment_intent", id, "starting_after"));
            }
            newest_first.skip_while(|i| i.id != id).skip(1).collect()
        }
    };
    let more = after.len() > limit;
    let data = after
        .into_iter()
        .take(limit)
        .map(|i| intent_json(ledger, i, p.expands("data.latest_charge")))
        .collect();
    Ok(ok(list("/v1/payment_intents", data, more)))
}

fn create(
    bank: &Arc<Mutex<Bank>>,
    locked: &mut Bank,
    key: &str,
    p: &Params,
) -> Result<Reply, Reply> {
    let amount = p.amount("amount", true)?.expect("required");
    let currency = match p.get("currency") {
        Some(c) if c.len() == 3 && c.chars().all(|c| c.is_ascii_alphabetic()) => {
            c.to_ascii_lowercase()
        }
        Some(c) => {
            return Err(invalid(
                "parameter_invalid_string",
                format!("Invalid currency: {c}"),
                "currency",
            ));
        }
        None => {
            return Err(invalid(
                "parameter_missing",
                "Missing required param: currency.".into(),
                "currency",
            ));
        }
    };
    let capture_method = match p.get("capture_method").unwrap_or("automatic") {
        m @ ("automatic" | "automatic_async" | "manual") => m.to_owned(),
        other => {
            return Err(invalid(
                "parameter_invalid_string",
                format!(
                    "Invalid capture_method: must be one of automatic, automatic_async, or manual (got {other})"
                ),
                "capture_method",
            ));
        }
    };
    let confirm = match p.get("confirm") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(invalid(
                "parameter_invalid_boolean",
                format!("Invalid boolean: {other}"),
                "confirm",
            ));
        }
    };
    let payment_method = p.get("payment_method").map(str::to_owned);
    let decline = payment_method
        .as_deref()
        .and_then(|pm| DECLINED.iter().find(|(name, ..)| *name == pm));
    if let Some(pm) = payment_method.as_deref()
        && !APPROVED.contains(&pm)
        && decline.is_none()
    {
        return Err(invalid(
            "resource_missing",
            format!("No such PaymentMethod: '{pm}'"),
            "payment_method",
        ));
    }
    if confirm && payment_method.is_none() {
        return Err(invalid(
            "parameter_missing",
            "You cannot confirm this PaymentIntent because it's missing a payment method.".into(),
            "payment_method",
        ));
    }
    let id = locked.id("pi");
    let mut intent = Intent {
        id: id.clone(),
        amount,
        currency: currency.clone(),
        status: if payment_method.is_some() {
            "requires_confirmation"
        } else {
            "requires_payment_method"
        },
        capture_method: capture_method.clone(),
        payment_method: payment_method.clone(),
        description: p.get("description").map(str::to_owned),
        metadata: p.metadata(),
        created: now(),
        amount_capturable: 0,
        amount_received: 0,
        latest_charge: None,
        canceled_at: None,
        cancellation_reason: None,
        last_payment_error: None,
        captures: 0,
    };
    if !confirm {
        let ledger = ledger(locked, key);
        let body = intent_json(ledger, &intent, false);
        ledger.intents.push(intent);
        return Ok(ok(body));
    }
    let charge_id = locked.id("ch");
    let manual = capture_method == "manual";
    let mut charge = Charge {
        id: charge_id.clone(),
        payment_intent: id.clone(),
        amount,
        amount_captured: 0,
        amount_refunded: 0,
        currency,
        captured: false,
        status: "succeeded",
        created: now(),
        refunds: Vec::new(),
    };
    intent.latest_charge = Some(charge_id.clone());
    let expand = p.expands("latest_charge");
    if let Some((pm, code, decline_code, message)) = decline {
        charge.status = "failed";
        let last_error = json!({
            "type": "card_error", "code": code, "decline_code": decline_code, "message": message,
            "charge": charge_id, "payment_method": {"id": pm, "object": "payment_method"},
        });
        intent.status = "requires_payment_method";
        intent.last_payment_error = Some(last_error.clone());
        let ledger = ledger(locked, key);
        ledger.charges.insert(charge_id, charge);
        let intent_body = intent_json(ledger, &intent, false);
        ledger.intents.push(intent);
        emit(
            bank,
            locked,
            key,
            "payment_intent.payment_failed",
            intent_body.clone(),
        );
        let mut body = last_error;
        body["payment_intent"] = intent_body;
        body["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        ));
        return Ok(Reply {
            status: 402,
            body: serde_json::to_vec(&json!({"error": body})).expect("JSON"),
            headers: Vec::new(),
            save: true,
        });
    }
    let event = if manual {
        intent.status = "requires_capture";
        intent.amount_capturable = amount;
        "payment_intent.amount_capturable_updated"
    } else {
        intent.status = "succeeded";
        intent.amount_received = amount;
        intent.captures = 1;
        charge.captured = true;
        charge.amount_captured = amount;
        "payment_intent.succeeded"
    };
    let ledger = ledger(locked, key);
    ledger.charges.insert(charge_id, charge);
    let body = intent_json(ledger, &intent, expand);
    let event_body = intent_json(ledger, &intent, false);
    ledger.intents.push(intent);
    emit(bank, locked, key, event, event_body);
    Ok(ok(body))
}

fn unexpected_state(intent: &Intent, verb: &str, allowed: &str, ledger: &Ledger) -> Reply {
    let mut reply = error(
        400,
        "invalid_request_error",
        Some("payment_intent_unexpected_state"),
        format!(
            "This PaymentIntent could not be {verb} because it has a status of {}. Only a \
             PaymentIntent with one of the following statuses may be {verb}: {allowed}.",
            intent.status
        ),
        None,
    );
    let mut body: Value = serde_json::from_slice(&reply.body).expect("JSON");
    body["error"]["payment_intent"] = intent_json(ledger, intent, false);
    reply.body = serde_json::to_vec(&body).expect("JSON");
    reply
}

fn capture(
    bank: &Arc<Mutex<Bank>>,
    locked: &mut Bank,
    key: &str,
    id: &str,
    p: &Params,
) -> Result<Reply, Reply> {
    let to_capture = p.amount("amount_to_capture", false)?;
    let ledger = ledger(locked, key);
    let intent = ledger
        .intent(id)
        .ok_or_else(|| missing("payment_intent", id, "intent"))?;
    if intent.status != "requires_capture" {
        return Err(unexpected_state(
            intent,
            "captured",
            "requires_capture",
            ledger,
        ));
    }
    let amount = to_capture.unwrap_or(intent.amount_capturable);
    if amount > intent.amount_capturable {
        return Err(error(
            400,
            "invalid_request_error",
            Some("amount_too_large"),
            format!(
                "The amount to capture ({amount}) is greater than the amount capturable ({}).",
                intent.amount_capturable
            ),
            Some("amount_to_capture"),
        ));
    }
    let charge_id = intent
        .latest_charge
        .clone()
        .expect("an authorized intent has a charge");
    let intent = ledger.intent_mut(id).expect("found above");
    intent.status = "succeeded";
    intent.amount_capturable = 0;
    intent.amount_received = amount;
    intent.captures += 1;
    if let Some(charge) = ledger.charges.get_mut(&charge_id) {
        charge.captured = true;
        charge.amount_captured = amount;
    }
    let intent = ledger.intent(id).expect("found above");
    let body = intent_json(ledger, intent, p.expands("latest_charge"));
    let event = intent_json(ledger, intent, false);
    emit(bank, locked, key, "payment_intent.succeeded", event);
    Ok(ok(body))
}

fn cancel(
    bank: &Arc<Mutex<Bank>>,
    locked: &mut Bank,
    key: &str,
    id: &str,
    p: &Params,
) -> Result<Reply, Reply> {
    let reason = match p.get("cancellation_reason") {
        None => None,
        Some(r @ ("duplicate" | "fraudulent" | "requested_by_customer" | "abandoned")) => {
            Some(r.to_owned())
        }
        Some(other) => {
            return Err(invalid(
                "parameter_invalid_string",
                format!("Invalid cancellation_reason: {other}"),
                "cancellation_reason",
            ));
        }
    };
    let ledger = ledger(locked, key);
    let intent = ledger
        .intent(id)
        .ok_or_else(|| missing("payment_intent", id, "intent"))?;
    if !CANCELABLE.contains(&intent.status) {
        return Err(unexpected_state(
            intent,
            "canceled",
            &CANCELABLE.join(", "),
            ledger,
        ));
    }
    let intent = ledger.intent_mut(id).expect("found above");
    intent.status = "canceled";
    intent.amount_capturable = 0;
    intent.canceled_at = Some(now());
    intent.cancellation_reason = reason;
    let intent = ledger.intent(id).expect("found above");
    let body = intent_json(ledger, intent, p.expands("latest_charge"));
    let event = intent_json(ledger, intent, false);
    emit(bank, locked, key, "payment_intent.canceled", event);
    Ok(ok(body))
}

fn refund(
    bank: &Arc<Mutex<Bank>>,
    locked: &mut Bank,
    key: &str,
    p: &Params,
) -> Result<Reply, Reply> {
    let amount = p.amount("amount", false)?;
    let reason = match p.get("reason") {
        None => None,
        Some(r @ ("duplicate" | "fraudulent" | "requested_by_customer")) => Some(r.to_owned()),
        Some(other) => {
            return Err(invalid(
                "parameter_invalid_string",
                format!("Invalid reason: {other}"),
                "reason",
            ));
        }
    };
    let Some(pi) = p.get("payment_intent") else {
        return Err(invalid(
            "parameter_missing",
            "One of the following params should be provided for this request: payment_intent or charge.".into(),
            "payment_intent",
        ));
    };
    let refund_id = locked.id("re");
    let ledger = ledger(locked, key);
    let intent = ledger
        .intent(pi)
        .ok_or_else(|| missing("payment_intent", pi, "payment_intent"))?;
    let charge = intent
        .latest_charge
        .as_ref()
        .and_then(|c| ledger.charges.get(c));
    let Some(charge) = charge.filter(|c| intent.status == "succeeded" && c.captured) else {
        return Err(error(
            400,
            "invalid_request_error",
            Some("payment_intent_unexpected_state"),
            format!("This PaymentIntent ({pi}) does not have a successful charge to refund."),
            Some("payment_intent"),
        ));
    };
    let remaining = charge.amount_captured - charge.amount_refunded;
    if remaining == 0 {
        return Err(error(
            400,
            "invalid_request_error",
            Some("charge_already_refunded"),
            format!("Charge {} has already been refunded.", charge.id),
            None,
        ));
    }
    let amount = amount.unwrap_or(remaining);
    if amount > remaining {
        return Err(error(
            400,
            "invalid_request_error",
            Some("amount_too_large"),
            format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"
            ),
            Some("amount"),
        ));
    }
    let refund = Refund {
        id: refund_id.clone(),
        amount,
        charge: charge.id.clone(),
        payment_intent: pi.to_owned(),
        currency: charge.currency.clone(),
        reason,
        created: now(),
    };
    let charge_id = charge.id.clone();
    let charge = ledger.charges.get_mut(&charge_id).expect("found above");
    charge.amount_refunded += amount;
    charge.refunds.push(refund_id);
    let body = refund_json(&refund);
    ledger.refunds.push(refund);
    let event = charge_json(ledger, &ledger.charges[&charge_id]);
    emit(bank, locked, key, "charge.refunded", event);
    Ok(ok(body))
}
