//! The `integration` domain suite (`contracts/schemas/domains/integration.json`), one file per
//! concern: the webhook engines' checks (those that serve `trigger`) here, the connectors'
//! (those that serve `sync`) in [`acceptance`].
//!
//! Deliveries go to a real HTTP receiver on loopback ([`receiver`]) that verifies signatures
//! with an independent Standard Webhooks implementation. Reaching it takes an operator who
//! opens loopback to tenants, which only a test fixture is: the checks that deliver (or that
//! count on the ceiling below) require `fixture:loopback_egress`, meaning the provider runs
//! under the egress ceiling `127.0.0.0/8`, `::1/128`, `10.20.0.0/16` (the last a private
//! network a tenant may narrow to). Without it — `switchyard conformance`, whose operator
//! opens nothing — they are skipped; the egress refusals that hold under any ceiling still run.

pub mod acceptance;
mod dead_letters;
mod idempotency;
mod receiver;
mod retries;
mod ssrf;
mod tenancy;
mod trigger;

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use switchyard_spi::testkit::TenantInstance;

use crate::{Check, Level, check};
use dead_letters::*;
use idempotency::*;
use retries::*;
use ssrf::*;
use tenancy::*;
use trigger::*;

/// What a built-in engine's fixture knows beyond the contract.
#[derive(Debug, Default)]
pub struct Fixture {
    /// The folder the engine keeps its tenants' files in: the restart check then also sees one
    /// database file per tenant there. `None` (a provider certified from the command line):
    /// that part is not looked at.
    pub storage: Option<PathBuf>,
    /// The system a connector engine is certified against: the acceptance checks run only
    /// with one (a connector certified from the command line has none, and they are skipped).
    pub source: Option<acceptance::SourceFixture>,
}

/// Every check with its level, in the order reports list them.
pub fn checks() -> Vec<Check> {
    let mut checks = vec![
        // trigger
        check!(
            Level::Core,
            a_trigger_is_delivered_once_signed_per_standard_webhooks,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            a_signature_under_another_secret_does_not_verify,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            callers_name_an_endpoint_never_a_url,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            an_unconfigured_tenant_has_no_endpoints,
            requires = ["action:trigger"]
        ),
        check!(
            Level::Core,
            an_oversized_payload_is_refused_unsent,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        // the egress guard
        check!(
            Level::Core,
            internal_ip_literals_are_refused_when_configured,
            requires = ["action:trigger"]
        ),
        check!(
            Level::Core,
            allowlisting_is_per_network,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            a_tenant_cannot_widen_the_operators_ceiling,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            a_hostname_resolving_to_loopback_is_refused_unsent_and_unstored,
            requires = ["action:trigger"]
        ),
        check!(
            Level::Core,
            an_allowlisted_hostname_is_delivered_to,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        // idempotency keys
        check!(
            Level::Core,
            the_same_key_answers_the_same_message_without_a_second_delivery,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            the_same_key_for_another_delivery_is_refused_unsent,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        // retries
        check!(
            Level::Core,
            server_errors_are_retried_with_the_same_id_until_delivered,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            retry_after_is_honoured_on_429_and_503,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            a_refusal_other_than_429_is_dead_lettered_without_retry,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            attempts_stop_at_max_attempts,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            a_call_ends_within_max_total_ms_whatever_the_receiver_asks,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        // dead letters
        check!(
            Level::Core,
            a_down_receiver_dead_letters_and_redeliver_succeeds_once_it_is_up,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            dead_letters_are_listed_oldest_first_a_page_at_a_time,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            redeliver_of_an_unknown_message_is_not_found,
            requires = ["action:trigger"]
        ),
        check!(
            Level::Core,
            redeliver_uses_the_endpoints_current_url,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        // concurrency
        check!(
            Level::Transactions,
            concurrent_triggers_with_one_key_deliver_once,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        // tenancy
        check!(
            Level::Isolation,
            tenant_b_cannot_see_or_redeliver_tenant_as_dead_letters,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        check!(
            Level::Isolation,
            idempotency_keys_are_per_tenant,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
        // restarts
        check!(
            Level::Resilience,
            dead_letters_survive_a_restart,
            requires = ["action:trigger", "fixture:loopback_egress"]
        ),
    ];
    checks.extend(acceptance::checks());
    checks
}

/// A Standard Webhooks secret, as the runtime hands it over once the tenant's `secret://`
/// reference is resolved.
fn secret(seed: u8) -> String {
    format!("whsec_{}", STANDARD.encode([seed; 32]))
}

/// A config with one endpoint, `hook`, at `url`, loopback allowlisted and a fast budget:
/// 3 attempts, 10 ms first wait, 5 s in all. `changes` replace or add fields.
fn config(url: &str, secret: &str, changes: Value) -> Value {
    let mut config = json!({
        "endpoints": {"hook": {"url": url, "secret": secret}},
        "allowed_networks": ["127.0.0.0/8"],
        "max_attempts": 3,
        "initial_backoff_ms": 10,
        "max_backoff_ms": 50,
        "attempt_timeout_ms": 2000,
        "max_total_ms": 5000
    });
    if let (Some(config), Some(changes)) = (config.as_object_mut(), changes.as_object()) {
        config.extend(changes.clone());
    }
    config
}

/// Triggers `event_type` with `payload` at the endpoint `hook`.
async fn trigger(tenant: &TenantInstance, payload: Value) -> Value {
    tenant
        .ok(
            "trigger",
            json!({"endpoint": "hook", "event_type": "orders.order.created", "payload": payload}),
        )
        .await
}

/// The message ids of a tenant's dead letters, oldest first (one page of up to 100).
async fn dead_letter_ids(tenant: &TenantInstance) -> Vec<String> {
    let page = tenant.ok("dead_letters", json!({"limit": 100})).await;
    page["dead_letters"]
        .as_array()
        .expect("dead_letters")
        .iter()
        .map(|d| d["message_id"].as_str().expect("message_id").to_owned())
        .collect()
}
