//! Per-tenant config of `integration/salesforce`: where the org's tokens come from, the
//! connected app's credentials, the REST API version, and the domain's shared sync settings.
//!
//! The JSON Schema derived from [`SalesforceConfig`] is checked by the runtime against the
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
/// A REST API version as Salesforce spells it in URLs (`60.0`).
const VERSION_PATTERN: &str = r"^[1-9][0-9]\.0$";

pub(crate) const DEFAULT_API_VERSION: &str = "60.0";

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

/// A tenant's connection to one Salesforce org.
#[derive(Deserialize, JsonSchema)]
#[schemars(transform = switchyard_spi::unconfigured_or_complete)]
pub(crate) struct SalesforceConfig {
    /// Where access tokens are requested (`<login_url>/services/oauth2/token`): the org's My
    /// Domain URL (`https://<domain>.my.salesforce.com`, which the client credentials flow
    /// requires) or `https://login.salesforce.com` (`https://test.salesforce.com` for a
    /// sandbox). Data calls go to the `instance_url` the token answer names.
    #[schemars(regex(pattern = ORIGIN_PATTERN))]
    pub(crate) login_url: String,
    /// The connected app's consumer key.
    #[schemars(length(min = 1, max = 256))]
    pub(crate) client_id: String,
    /// A secret:// reference to the connected app's consumer secret.
    #[schemars(regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
    pub(crate) client_secret: String,
    /// A secret:// reference to a refresh token the org granted the connected app (the web
    /// server flow, `refresh_token` scope). Absent: the client credentials flow, as the
    /// connected app's run-as user.
    #[serde(default)]
    #[schemars(regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
    pub(crate) refresh_token: Option<String>,
    /// The REST API version of every call (`/services/data/v<api_version>/...`).
    #[serde(default = "default_api_version")]
    #[schemars(regex(pattern = VERSION_PATTERN))]
    pub(crate) api_version: String,
    /// Mappings, destinations, events and networks, as every connector has them.
    #[serde(flatten)]
    pub(crate) sync: Settings,
}
