//! Per-tenant config of `integration/payments`: the payments API's origin, the account's
//! secret key, the webhook endpoint's signing secret, and the networks the engine may reach.
//!
//! The JSON Schema derived from [`PaymentsConfig`] is checked by the runtime against the
//! *stored* config, where secrets are `secret://` references; the factory gets the *resolved*
//! config, where they are the values. So this type has no `Debug`: nothing prints a secret.

use schemars::JsonSchema;
use serde::Deserialize;

/// A `secret://` reference as the runtime's resolver parses it (the other connectors' rule).
const SECRET_PATTERN: &str = r"^secret://(env/[^/]+|file/[\s\S]*|vault/[^/#]+/[^#]+#[\s\S]+)$";
/// An http(s) origin: a host and an optional port; no credentials, no path.
const ORIGIN_PATTERN: &str = r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$";

/// Stripe's own default tolerance for a webhook's timestamp (its libraries' 300 s).
const DEFAULT_TOLERANCE_S: u64 = 300;

fn default_tolerance() -> u64 {
    DEFAULT_TOLERANCE_S
}

/// A tenant's connection to its own payments account (Stripe's PaymentIntents API).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = switchyard_spi::unconfigured_or_complete)]
pub(crate) struct PaymentsConfig {
    /// The API's origin, `https://api.stripe.com` (a test points it at the fake).
    #[schemars(regex(pattern = ORIGIN_PATTERN))]
    pub(crate) api_url: String,
    /// A secret:// reference to the account's secret key (`sk_…`, or a restricted `rk_…` with
    /// PaymentIntents and Refunds write access), sent as `Authorization: Bearer`. The account
    /// is the tenant's own: every payment it creates is reachable with this key only.
    #[schemars(regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
    pub(crate) secret_key: String,
    /// A secret:// reference to the webhook endpoint's signing secret (`whsec_…`), which
    /// `Stripe-Signature` is checked with. Absent: every inbound webhook is refused.
    #[serde(default)]
    #[schemars(regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
    pub(crate) webhook_secret: Option<String>,
    /// How far a webhook's signed timestamp may be from now, in seconds, before it is refused
    /// as a replay.
    #[serde(default = "default_tolerance")]
    #[schemars(range(min = 1, max = 3600))]
    pub(crate) webhook_tolerance_s: u64,
    /// Narrows the networks the API may be reached on to these CIDR networks, each inside the
    /// operator's [tenancy.egress] allowed_networks (else egress_forbidden). Absent: every
    /// network the operator allows.
    #[serde(default)]
    #[schemars(
        with = "Vec<String>",
        length(max = 64),
        inner(regex(pattern = "^[0-9a-fA-F.:]+/[0-9]{1,3}$"))
    )]
    pub(crate) allowed_networks: Option<Vec<String>>,
}
