//! The config of `integration/rest`: where the API is, how calls authenticate, and one
//! declarative description per resource (path, where the records sit in an answer, primary
//! key, cursor, pagination, deleted feed), beside the domain's shared sync settings.
//!
//! The JSON Schema derived from [`RestConfig`] is what the runtime checks the *stored* config
//! against (credentials are `secret://` references there; the factory gets them resolved), so
//! everything a schema can say is said here (page size bounds, a path that starts with one
//! `/`); the checks below (used by [`super::Rest`]'s `connect`) refuse the rest (a base URL
//! the URL standard refuses, a path that would leave the base URL's origin, a header an API
//! key may not go in) as `config_unprocessable`.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use reqwest::Url;
use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_spi::{ErrorCode, ProviderError};

use crate::http::{Auth, Grant, OAuth2, Secret, Tokens};

/// A `secret://` reference as the runtime's resolver parses it: `env/NAME`, `file/<path>` or
/// `vault/<mount>/<path>#<key>`.
const SECRET_PATTERN: &str = r"^secret://(env/[^/]+|file/[\s\S]*|vault/[^/#]+/[^#]+#[\s\S]+)$";
/// An http(s) URL with a host (letters, digits, dots and dashes, or a bracketed IPv6
/// address), no credentials, an optional port and path; no query or fragment, since resource
/// paths are appended to it.
const BASE_URL_PATTERN: &str =
    r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^?#\s]*)?$";
/// A token endpoint: an http(s) URL with a host, no credentials, an optional port, path and
/// query.
const TOKEN_URL_PATTERN: &str =
    r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?][^#\s]*)?$";
/// A path below the base URL, with an optional query: one leading `/` and never two, so it
/// cannot name another host (`//evil.example/`), and no fragment.
const PATH_PATTERN: &str = r"^/([^/#\s][^#\s]*)?$";
/// An HTTP header name (RFC 9110 token).
const HEADER_PATTERN: &str = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$";
/// A page may hold up to this many records: enough for every API's maximum seen (Shopify
/// 250, Salesforce 2,000 by its own batch size, GitHub 100) without one answer's body
/// growing without bound.
pub(super) const MAX_PAGE_SIZE: u64 = 1000;

/// The whole config of `integration/rest`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(transform = switchyard_spi::unconfigured_or_complete)]
pub(crate) struct RestConfig {
    /// The API's root, e.g. `https://api.example.com/v2`. Every call goes to this origin
    /// (scheme, host and port): resource paths are appended to it, and a next-page link
    /// pointing elsewhere is refused.
    #[schemars(regex(pattern = BASE_URL_PATTERN))]
    pub(super) base_url: String,
    /// How calls authenticate; none when absent.
    #[serde(default)]
    pub(super) auth: AuthConfig,
    /// At most this many calls a second to the API, e.g. to stay inside an allowance the API
    /// states only in its documentation (429s and `Retry-After` are followed either way).
    #[schemars(range(min = 1, max = 1000))]
    pub(super) requests_per_second: Option<NonZeroU32>,
    /// The API's resources, each read as the stream of the same name.
    #[schemars(extend(
        "minProperties" = 1,
        "maxProperties" = 64,
        "propertyNames" = {"pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"}
    ))]
    pub(super) resources: BTreeMap<String, ResourceConfig>,
    /// The settings every connector shares: mappings, destinations, events, networks.
    #[serde(flatten)]
    pub(super) sync: crate::sync::Settings,
}

/// How every call authenticates.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum AuthConfig {
    /// A public API.
    #[default]
    None,
    /// A key sent in a header of the API's choosing, e.g. `X-API-Key`.
    ApiKey {
        #[schemars(regex(pattern = HEADER_PATTERN), length(max = 64))]
        header: String,
        /// A secret:// reference to the key.
        #[schemars(regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
        key: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// A secret:// reference to the token.
        #[schemars(regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
        token: String,
    },
    /// OAuth2 client credentials (RFC 6749 section 4.4): the client's id and secret obtain an
    /// access token at `token_url`, sent as `Authorization: Bearer` and obtained again before
    /// it expires (and once when the API refuses it).
    #[serde(rename = "oauth2")]
    OAuth2 {
        /// The authorization server's token endpoint (it may be another host than the API's).
        #[schemars(regex(pattern = TOKEN_URL_PATTERN))]
        token_url: String,
        #[schemars(length(min = 1, max = 256))]
        client_id: String,
        /// A secret:// reference to the client secret.
        #[schemars(regex(pattern = SECRET_PATTERN), extend("x-secret" = true))]
        client_secret: String,
        /// Scopes asked for; none asks for the client's default.
        #[serde(default)]
        #[schemars(length(max = 32), inner(length(min = 1, max = 256)))]
        scopes: Vec<String>,
        /// Sends the client id and secret as form fields of the token request instead of
        /// HTTP Basic authentication (RFC 6749 prefers Basic; some servers take only this).
        #[serde(default)]
        credentials_in_body: bool,
    },
}

/// One resource of the API, read as a stream.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResourceConfig {
    /// The resource's path below `base_url`, with fixed query parameters if the API needs
    /// them, e.g. `/orders?status=any`.
    #[schemars(regex(pattern = PATH_PATTERN), length(max = 2048))]
    pub(super) path: String,
    /// Where the records sit in an answer: a JSON pointer (`/data/items`) or a dotted path
    /// (`data.items`); empty when the answer is itself the array of records.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub(super) records_path: String,
    /// The record's top-level field that identifies it (a string or an integer).
    #[schemars(length(min = 1, max = 128))]
    pub(super) primary_key: String,
    /// The record's top-level field an incremental read resumes from (e.g. `updated_at`);
    /// without it the resource is read whole every time.
    #[schemars(length(min = 1, max = 128))]
    pub(super) cursor_field: Option<String>,
    /// The query parameter that asks the API for records whose cursor field is at or after a
    /// value (e.g. `updated_at_gte`, `updated_since`). Without it an incremental read reads
    /// everything and drops older records itself.
    #[schemars(length(min = 1, max = 128))]
    pub(super) cursor_param: Option<String>,
    /// Query parameters sent on every read so that the API answers in ascending order of
    /// `cursor_field` (e.g. `{"_sort": "updated_at", "_order": "asc"}`), which an incremental
    /// sync needs to checkpoint after every page.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 8))]
    pub(super) sort_params: BTreeMap<String, String>,
    /// How the API pages its answers.
    pub(super) pagination: PaginationConfig,
    /// The API's feed of deleted records for this resource, if it has one; without it
    /// deletes are found by a full refresh.
    pub(super) deleted: Option<DeletedConfig>,
    /// Fields `discover` lists (name → JSON type), beside those of the first record the API
    /// answers; a declared type wins over one seen.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 256))]
    pub(super) fields: BTreeMap<String, FieldType>,
}

/// A field's JSON type, as `discover` reports it.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FieldType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl FieldType {
    pub(super) fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Integer => "integer",
            FieldType::Boolean => "boolean",
            FieldType::Object => "object",
            FieldType::Array => "array",
        }
    }
}

/// The four ways REST APIs page a list.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum PaginationConfig {
    /// A token in the answer's body names the next page; sent back as a query parameter.
    Cursor {
        /// The query parameter the token is sent in, e.g. `cursor`, `page_info`.
        #[schemars(length(min = 1, max = 128))]
        param: String,
        /// Where the token sits in the body (JSON pointer or dotted path, e.g.
        /// `meta.next_cursor`); absent, null or empty there means the last page.
        #[schemars(length(min = 1, max = 256))]
        next_path: String,
    },
    /// The answer's `Link` header names the next page (RFC 8288 `rel="next"`), which must
    /// stay on `base_url`'s origin.
    Link {},
    /// An offset and a limit (`?_start=20&_limit=10`); a short page is the last one.
    Offset {
        #[schemars(length(min = 1, max = 128))]
        offset_param: String,
        #[schemars(length(min = 1, max = 128))]
        limit_param: String,
        #[schemars(range(min = 1, max = MAX_PAGE_SIZE))]
        limit: u64,
    },
    /// A page number and a page size (`?page=3&per_page=50`); a short page is the last one.
    Page {
        #[schemars(length(min = 1, max = 128))]
        page_param: String,
        #[schemars(length(min = 1, max = 128))]
        size_param: String,
        #[schemars(range(min = 1, max = MAX_PAGE_SIZE))]
        size: u64,
        /// The number of the first page: 1 for most APIs, 0 for some.
        #[serde(default = "first_page")]
        #[schemars(range(min = 0, max = 1))]
        first: u64,
    },
}

fn first_page() -> u64 {
    1
}

/// A feed of deleted records: a list read like the resource (same records path and
/// pagination) whose records name a deleted record's key and when it was deleted.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeletedConfig {
    /// The feed's path below `base_url`, like a resource's `path`.
    #[schemars(regex(pattern = PATH_PATTERN), length(max = 2048))]
    pub(super) path: String,
    /// The field holding the deleted record's primary key; the resource's `primary_key`
    /// when absent.
    #[schemars(length(min = 1, max = 128))]
    pub(super) key_field: Option<String>,
    /// The field holding when it was deleted; the resource's `cursor_field` when absent.
    #[schemars(length(min = 1, max = 128))]
    pub(super) at_field: Option<String>,
    /// The query parameter for "deleted at or after"; the resource's `cursor_param` when
    /// absent.
    #[schemars(length(min = 1, max = 128))]
    pub(super) cursor_param: Option<String>,
    /// Query parameters sent on every read of the feed (its ascending order).
    #[serde(default)]
    #[schemars(extend("maxProperties" = 8))]
    pub(super) sort_params: BTreeMap<String, String>,
}

/// Request headers a config may not set: they would change where or how the request goes,
/// not authenticate it.
const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// `base_url`, checked for what its schema pattern cannot say.
pub(super) fn base_url(raw: &str) -> Result<Url, ProviderError> {
    let refuse =
        |detail: &str| ProviderError::field(ErrorCode::ConfigUnprocessable, "/base_url", detail);
    let url = Url::parse(raw).map_err(|_| refuse("not a URL the URL standard accepts"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(refuse("not an http(s) URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("credentials go in auth, not in the URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("a base URL has no query or fragment"));
    }
    Ok(url)
}

/// `path` below `base`: appended to the base URL's path (so `/v2` + `/items` is
/// `/v2/items`), and refused if the result leaves the base URL's origin.
pub(super) fn join(base: &Url, path: &str, pointer: &str) -> Result<Url, ProviderError> {
    let refuse =
        |detail: &str| ProviderError::field(ErrorCode::ConfigUnprocessable, pointer, detail);
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(refuse("a path starts with exactly one /"));
    }
    let joined = format!("{}{path}", base.as_str().trim_end_matches('/'));
    let url = Url::parse(&joined).map_err(|_| refuse("not a path the URL standard accepts"))?;
    if url.origin() != base.origin() || url.fragment().is_some() {
        return Err(refuse("the path leaves base_url's origin"));
    }
    Ok(url)
}

pub(super) fn auth(config: AuthConfig, tokens: Tokens) -> Result<Auth, ProviderError> {
    Ok(match config {
        AuthConfig::None => Auth::None,
        AuthConfig::ApiKey { header, key } => {
            let name = header.to_ascii_lowercase();
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || RESERVED_HEADERS.contains(&name.as_str())
            {
                return Err(ProviderError::field(
                    ErrorCode::ConfigUnprocessable,
                    "/auth/api_key/header",
                    "not a header a key can be sent in",
                ));
            }
            Auth::Header {
                name,
                value: Secret(key),
            }
        }
        AuthConfig::Bearer { token } => Auth::bearer(&Secret(token)),
        AuthConfig::OAuth2 {
            token_url,
            client_id,
            client_secret,
            scopes,
            credentials_in_body,
        } => {
            let token_url = Url::parse(&token_url)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
                .ok_or_else(|| {
                    ProviderError::field(
                        ErrorCode::ConfigUnprocessable,
                        "/auth/oauth2/token_url",
                        "not an http(s) URL with a host",
                    )
                })?;
            Auth::OAuth2 {
                grant: OAuth2 {
                    token_url,
                    client_id,
                    client_secret: Some(Secret(client_secret)),
                    grant: Grant::ClientCredentials,
                    scopes,
                    credentials_in_body,
                },
                tokens,
            }
        }
    })
}
