//! The engine's operations (`execute`'s `operation` and `params`), each read strictly, and
//! the payment every operation answers: the system's object read into one vocabulary, so a
//! workflow never branches on Stripe's statuses.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use switchyard_spi::{ErrorCode, ProviderError};

/// The operations, and whether each changes the account (and so needs an idempotency key).
pub(super) const OPERATIONS: [(&str, bool); 5] = [
    ("authorize", true),
    ("capture", true),
    ("void", true),
    ("refund", true),
    ("get", false),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Authorize {
    /// In the currency's minor unit (cents).
    pub(super) amount: i64,
    /// ISO 4217, e.g. `eur`.
    pub(super) currency: String,
    /// The payment method the payer gave (a `pm_…` id).
    pub(super) payment_method: String,
    /// The caller's own reference (an order id), kept on the payment as metadata.
    pub(super) reference: String,
    #[serde(default)]
    pub(super) description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Capture {
    pub(super) payment_id: String,
    /// Less than authorized captures part and releases the rest; absent: all of it.
    #[serde(default)]
    pub(super) amount: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PaymentId {
    pub(super) payment_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Refund {
    pub(super) payment_id: String,
    /// Absent: whatever is left unrefunded.
    #[serde(default)]
    pub(super) amount: Option<i64>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    #[serde(default)]
    pub(super) reason: Option<String>,
}

fn invalid(pointer: &str, detail: impl Into<String>) -> ProviderError {
    ProviderError::field(ErrorCode::ParamsInvalid, pointer, detail)
}

/// `params` read as `T`; what does not fit is params_invalid under `/params`.
pub(super) fn parse<T: DeserializeOwned>(params: Value) -> Result<T, ProviderError> {
    serde_json::from_value(params).map_err(|e| invalid("/params", e.to_string()))
}

/// A payment id the API could have issued: it goes into a URL path, so nothing else passes.
pub(super) fn payment_id(id: &str) -> Result<&str, ProviderError> {
    let ok = id.strip_prefix("pi_").is_some_and(|rest| {
        (1..=250).contains(&rest.len())
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if ok {
        Ok(id)
    } else {
        Err(invalid(
            "/params/payment_id",
            "not a payment id (pi_ followed by letters, digits, _)",
        ))
    }
}

pub(super) fn amount(amount: i64, pointer: &str) -> Result<String, ProviderError> {
    if amount >= 1 {
        Ok(amount.to_string())
    } else {
        Err(invalid(
            pointer,
            "must be a positive integer in the currency's minor unit",
        ))
    }
}

impl Authorize {
    /// The checks the API would make too, made before anything is sent.
    pub(super) fn check(&self) -> Result<(), ProviderError> {
        amount(self.amount, "/params/amount")?;
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(invalid(
                "/params/currency",
                "must be an ISO 4217 code such as eur",
            ));
        }
        let pm = &self.payment_method;
        if pm.is_empty()
            || pm.len() > 255
            || !pm.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(invalid(
                "/params/payment_method",
                "must be a payment method id such as pm_…",
            ));
        }
        // Stripe's limit on a metadata value.
        if self.reference.is_empty() || self.reference.chars().count() > 500 {
            return Err(invalid("/params/reference", "must be 1 to 500 characters"));
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 1000)
        {
            return Err(invalid(
                "/params/description",
                "must be at most 1000 characters",
            ));
        }
        Ok(())
    }
}

impl Refund {
    pub(super) fn check(&self) -> Result<(), ProviderError> {
        if let Some(reason) = &self.reason
            && !matches!(
                reason.as_str(),
                "duplicate" | "fraudulent" | "requested_by_customer"
            )
        {
            return Err(invalid(
                "/params/reason",
                "must be duplicate, fraudulent or requested_by_customer",
            ));
        }
        Ok(())
    }
}

/// A PaymentIntent (with `latest_charge` expanded, or not) as the engine answers a payment:
/// `payment_id`, `status` (`authorized`, `captured`, `refunded`, `voided`, `declined`,
/// `pending`, `processing`, `requires_action`), `amount`, `currency`, `amount_capturable`,
/// `amount_captured`, `amount_refunded`, `reference`, and the system's own `provider_status`.
pub(super) fn payment(intent: &Value) -> Value {
    let refunded = intent["latest_charge"]["amount_refunded"]
        .as_i64()
        .unwrap_or(0);
    let captured = intent["amount_received"].as_i64().unwrap_or(0);
    let provider_status = intent["status"].as_str().unwrap_or_default();
    let status = match provider_status {
        "requires_capture" => "authorized",
        "succeeded" if captured > 0 && refunded >= captured => "refunded",
        "succeeded" => "captured",
        "canceled" => "voided",
        "requires_payment_method" if !intent["last_payment_error"].is_null() => "declined",
        "processing" => "processing",
        "requires_action" => "requires_action",
        _ => "pending",
    };
    json!({
        "payment_id": intent["id"],
        "status": status,
        "amount": intent["amount"],
        "currency": intent["currency"],
        "amount_capturable": intent["amount_capturable"],
        "amount_captured": captured,
        "amount_refunded": refunded,
        "reference": intent["metadata"]["reference"],
        "provider_status": provider_status,
    })
}

/// A Charge (what `charge.*` events carry) as the payment it belongs to, as far as it shows.
pub(super) fn payment_of_charge(charge: &Value) -> Value {
    let captured = charge["amount_captured"].as_i64().unwrap_or(0);
    let refunded = charge["amount_refunded"].as_i64().unwrap_or(0);
    let status = if captured > 0 && refunded >= captured {
        "refunded"
    } else if charge["captured"] == true {
        "captured"
    } else {
        "authorized"
    };
    json!({
        "payment_id": charge["payment_intent"],
        "status": status,
        "amount": charge["amount"],
        "currency": charge["currency"],
        "amount_capturable": 0,
        "amount_captured": captured,
        "amount_refunded": refunded,
        "reference": charge["metadata"]["reference"],
        "provider_status": charge["status"],
    })
}
