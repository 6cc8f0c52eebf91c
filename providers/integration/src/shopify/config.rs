//! Per-tenant config of `integration/shopify`: the shop, the Admin API access token, the API
//! version, the app's webhook secret, and the domain's shared sync settings.
//!
//! The JSON Schema derived from [`ShopifyConfig`] is checked by the runtime against the
//! *stored* config, where secrets are `secret://` references; the factory gets the *resolved*
//! config, where they are the values. So this type has no `Debug`: nothing prints a secret.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::sync::Settings;

/// A `secret://` reference as the runtime's resolver parses it: `env/NAME`, `file/<path>` or
/// `vault/<mount>/<path>#<key>`.
const SECRET_PATTERN: &str = r"^secret://(env/[^/]+|file/[\s\S]*|vault/[^/#]+/[^#]+#[\s\S]+)$";
/// An http(s) origin: a host (a name of letters, digits, dots and dashes, or a bracketed IPv6
/// address) and an optional port; no credentials, no path.
const ORIGIN_PATTERN: &str = r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$";
/// A stable Admin API version (`2025-01`: Shopify releases one a quarter) or `unstable`.
const VERSION_PATTERN: &str = r"^([0-9]{4}-(01|04|07|10)|unstable)$";

/// The version the connector was written and tested against.
pub(crate) const DEFAULT_API_VERSION: &str = "2025-01";
/// Shopify's largest `limit`.
pub(crate) const MAX_PAGE_SIZE: u32 = 250;

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

fn default_page_size() -> u32 {
    MAX_PAGE_SIZE
}

/// A tenant's connection to one Shopify shop, as a custom app installed on it.
#[derive(Deserialize, JsonSchema)]
#[schemars(transform = switchyard_spi::unconfigured_or_complete)]
pub(crate) struct ShopifyConfig {
    /// The shop's admin origin, `https://{shop}.myshopify.com`.
    #[schemars(regex(pattern = ORIGIN_PATTERN))]
    pub(crate) shop_url: String,
    /// A secret:// reference to the app's Admin API access token (`shpat_…`), sent as
    /// X-Shopify-Access-Token. Scopes: read_orders, read_products, read_customers,
    /// write_customers (for upsert), read_inventory, read_locations.
    #[schemars(regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
    pub(crate) access_token: String,
    /// The REST Admin API version of every call (`/admin/api/<api_version>/…`).
    #[serde(default = "default_api_version")]
    #[schemars(regex(pattern = VERSION_PATTERN))]
    pub(crate) api_version: String,
    /// A secret:// reference to the app's client secret, which signs its webhooks
    /// (X-Shopify-Hmac-Sha256). Absent: every inbound webhook is refused.
    #[serde(default)]
    #[schemars(regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
    pub(crate) webhook_secret: Option<String>,
    /// Records a page asks for (Shopify's `limit`).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = MAX_PAGE_SIZE))]
    pub(crate) page_size: u32,
    /// Mappings, destinations, events and networks, as every connector has them.
    #[serde(flatten)]
    pub(crate) sync: Settings,
}
