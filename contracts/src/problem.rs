//! RFC 9457 problem details with a stable machine-readable `code`.
//!
//! Clients branch on `code`, never on `title` or `detail`: the code list is part of the
//! published contract (`schemas/problem.schema.json` lists it, and a test keeps the two equal).

use serde::{Deserialize, Serialize};

/// Media type of every error body, gateway and runtime alike.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Stable error codes. Adding a code is a minor change; renaming or removing one is breaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthenticated,
    TokenInvalid,
    TokenExpired,
    TenantForbidden,
    ScopeForbidden,
    RouteNotFound,
    ProviderNotFound,
    ActionNotFound,
    MethodNotAllowed,
    RequestInvalid,
    ParamsInvalid,
    ConfigInvalid,
    UnsupportedMediaType,
    PayloadTooLarge,
    ResourceNotFound,
    Conflict,
    StatementFailed,
    ProviderUnavailable,
    UpstreamUnavailable,
    Timeout,
    Internal,
    RateLimited,
    IdempotencyKeyReused,
    IdempotencyInFlight,
    ShuttingDown,
    PolicyDenied,
    /// A provider broke its side of the contract: a plugin panicked, a remote provider
    /// answered something that is not the contract's envelope. Not the caller's fault and not
    /// worth retrying blindly; the runtime keeps serving every other provider.
    ProviderFailed,
    /// Business rules of the services, appended after the platform's codes.
    JournalUnbalanced,
    PeriodClosed,
    InsufficientStock,
    /// The tenant boundary (ADR 19), appended after the services' codes. A secret reference
    /// outside the tenant's own space (another tenant's Vault path, a host file, an env var).
    SecretForbidden,
    /// A literal credential where the config expects a `secret://` reference.
    SecretRequired,
    /// An outbound address outside what the operator allows (loopback, metadata, private).
    EgressForbidden,
    /// A per-tenant quota the operator set is used up (bytes, connections, versions).
    QuotaExceeded,
    /// The provider exists but this tenant has not configured it (and it has no default).
    ProviderNotConfigured,
    /// Runtime registration (issue 19), appended after the tenant boundary's codes. A route
    /// of the platform operator (`/providers/register`) called without the operator's token,
    /// e.g. with a tenant's key.
    OperatorOnly,
    /// A remote provider's manifest the runtime cannot use (no endpoint, a plaintext token).
    ManifestInvalid,
    /// A provider failed a core conformance check of its domain; the problem's `errors` name
    /// each failing check (`/checks/<name>`) and why.
    ConformanceFailed,
    /// Params the action's published schema accepts but that break a rule no JSON Schema can
    /// state: a check digit, a name given twice in a list, lines in different currencies, a
    /// cursor the provider never returned (ADR 0023). `params_invalid` (400) is kept for params
    /// the schema itself refuses.
    ParamsUnprocessable,
    /// The config side of `params_unprocessable`: a config the provider's published schema
    /// accepts but that breaks a rule no JSON Schema can state (`min_n` above `max_n`,
    /// backoffs out of order, a secret reference that resolves to nothing). `config_invalid`
    /// (400) is kept for configs the schema itself refuses (ADR 0023).
    ConfigUnprocessable,
    /// Integration (issue 21), appended. The third-party system refused the connection's
    /// credentials (401/403 after a token refresh, a revoked refresh token): a config problem
    /// the tenant fixes, not a transient one (Airbyte's taxonomy), so it is not retryable.
    UpstreamCredentialsInvalid,
    /// An inbound webhook whose signature does not verify with the tenant's secret for that
    /// system, or whose timestamp is outside the replay window: nothing of it is kept.
    SignatureInvalid,
    /// An AI call whose reserved tokens or cost would take a budget of the tenant, the key or
    /// the end user past its cap in the current window (ADR 37).
    BudgetExceeded,
    /// An AI prompt a guardrail of the tenant refuses (a denied phrase, a prompt injection).
    GuardrailRefused,
    /// An AI answer a response filter of the tenant refuses: nothing of it is returned.
    ResponseRefused,
    /// Config history (issue 24), appended. A rollback to a version this provider's config
    /// never had, or one pruned by the operator's `config_versions_kept`; the detail says which.
    ConfigVersionNotFound,
    /// A tenant secret's name that is not one path segment of `A-Z a-z 0-9 . _ -` (1 to 128
    /// characters, not `.` or `..`): it could not stay inside the tenant's Vault prefix.
    SecretNameInvalid,
    /// The operator plane (issue 24), appended. The caller's tenant is suspended, or being
    /// deleted, by the platform operator: every call is refused until it is resumed.
    TenantSuspended,
    /// Human tasks (issue 25), appended. The task is closed: it was already decided otherwise
    /// (a second, different decision) or cancelled, so it can be neither claimed nor decided
    /// again. The detail names the decision and who made it.
    TaskClosed,
    /// Payments (issue 25), appended. The payment system declined the payment (a declined
    /// card, insufficient funds, an expired card): sending it again will not help; the payer
    /// must use another payment method. The detail carries the system's decline reason.
    PaymentDeclined,
}

impl ErrorCode {
    /// Every code, in the order the published schema lists them.
    pub const ALL: [ErrorCode; 50] = [
        ErrorCode::Unauthenticated,
        ErrorCode::TokenInvalid,
        ErrorCode::TokenExpired,
        ErrorCode::TenantForbidden,
        ErrorCode::ScopeForbidden,
        ErrorCode::RouteNotFound,
        ErrorCode::ProviderNotFound,
        ErrorCode::ActionNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestInvalid,
        ErrorCode::ParamsInvalid,
        ErrorCode::ConfigInvalid,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::ResourceNotFound,
        ErrorCode::Conflict,
        ErrorCode::StatementFailed,
        ErrorCode::ProviderUnavailable,
        ErrorCode::UpstreamUnavailable,
        ErrorCode::Timeout,
        ErrorCode::Internal,
        ErrorCode::RateLimited,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::IdempotencyInFlight,
        ErrorCode::ShuttingDown,
        ErrorCode::PolicyDenied,
        ErrorCode::ProviderFailed,
        ErrorCode::JournalUnbalanced,
        ErrorCode::PeriodClosed,
        ErrorCode::InsufficientStock,
        ErrorCode::SecretForbidden,
        ErrorCode::SecretRequired,
        ErrorCode::EgressForbidden,
        ErrorCode::QuotaExceeded,
        ErrorCode::ProviderNotConfigured,
        ErrorCode::OperatorOnly,
        ErrorCode::ManifestInvalid,
        ErrorCode::ConformanceFailed,
        ErrorCode::ParamsUnprocessable,
        ErrorCode::ConfigUnprocessable,
        ErrorCode::UpstreamCredentialsInvalid,
        ErrorCode::SignatureInvalid,
        ErrorCode::BudgetExceeded,
        ErrorCode::GuardrailRefused,
        ErrorCode::ResponseRefused,
        ErrorCode::ConfigVersionNotFound,
        ErrorCode::SecretNameInvalid,
        ErrorCode::TenantSuspended,
        ErrorCode::TaskClosed,
        ErrorCode::PaymentDeclined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TenantForbidden => "tenant_forbidden",
            ErrorCode::ScopeForbidden => "scope_forbidden",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::ProviderNotFound => "provider_not_found",
            ErrorCode::ActionNotFound => "action_not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestInvalid => "request_invalid",
            ErrorCode::ParamsInvalid => "params_invalid",
            ErrorCode::ConfigInvalid => "config_invalid",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::ResourceNotFound => "resource_not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::StatementFailed => "statement_failed",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::UpstreamUnavailable => "upstream_unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::IdempotencyInFlight => "idempotency_in_flight",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::PolicyDenied => "policy_denied",
            ErrorCode::ProviderFailed => "provider_failed",
            ErrorCode::JournalUnbalanced => "journal_unbalanced",
            ErrorCode::PeriodClosed => "period_closed",
            ErrorCode::InsufficientStock => "insufficient_stock",
            ErrorCode::SecretForbidden => "secret_forbidden",
            ErrorCode::SecretRequired => "secret_required",
            ErrorCode::EgressForbidden => "egress_forbidden",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::ProviderNotConfigured => "provider_not_configured",
            ErrorCode::OperatorOnly => "operator_only",
            ErrorCode::ManifestInvalid => "manifest_invalid",
            ErrorCode::ConformanceFailed => "conformance_failed",
            ErrorCode::ParamsUnprocessable => "params_unprocessable",
            ErrorCode::ConfigUnprocessable => "config_unprocessable",
            ErrorCode::UpstreamCredentialsInvalid => "upstream_credentials_invalid",
            ErrorCode::SignatureInvalid => "signature_invalid",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::GuardrailRefused => "guardrail_refused",
            ErrorCode::ResponseRefused => "response_refused",
            ErrorCode::ConfigVersionNotFound => "config_version_not_found",
            ErrorCode::SecretNameInvalid => "secret_name_invalid",
            ErrorCode::TenantSuspended => "tenant_suspended",
            ErrorCode::TaskClosed => "task_closed",
            ErrorCode::PaymentDeclined => "payment_declined",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated | ErrorCode::TokenInvalid | ErrorCode::TokenExpired => 401,
            ErrorCode::TenantForbidden
            | ErrorCode::ScopeForbidden
            | ErrorCode::PolicyDenied
            | ErrorCode::SecretForbidden
            | ErrorCode::EgressForbidden
            | ErrorCode::OperatorOnly => 403,
            ErrorCode::RouteNotFound
            | ErrorCode::ProviderNotFound
            | ErrorCode::ActionNotFound
            | ErrorCode::ResourceNotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestInvalid
            | ErrorCode::ParamsInvalid
            | ErrorCode::ConfigInvalid
            | ErrorCode::SecretRequired
            | ErrorCode::ManifestInvalid => 400,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Conflict | ErrorCode::IdempotencyInFlight | ErrorCode::TaskClosed => 409,
            ErrorCode::IdempotencyKeyReused => 422,
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded | ErrorCode::BudgetExceeded => 429,
            ErrorCode::GuardrailRefused => 400,
            ErrorCode::PaymentDeclined => 402,
            ErrorCode::ResponseRefused => 422,
            ErrorCode::ConfigVersionNotFound => 404,
            ErrorCode::SecretNameInvalid => 400,
            ErrorCode::TenantSuspended => 403,
            ErrorCode::StatementFailed
            | ErrorCode::JournalUnbalanced
            | ErrorCode::ConformanceFailed
            | ErrorCode::ParamsUnprocessable
            | ErrorCode::ConfigUnprocessable => 422,
            ErrorCode::PeriodClosed
            | ErrorCode::InsufficientStock
            | ErrorCode::ProviderNotConfigured => 409,
            ErrorCode::ProviderUnavailable
            | ErrorCode::UpstreamUnavailable
            | ErrorCode::ShuttingDown => 503,
            ErrorCode::ProviderFailed | ErrorCode::UpstreamCredentialsInvalid => 502,
            ErrorCode::SignatureInvalid => 401,
            ErrorCode::Timeout => 504,
            ErrorCode::Internal => 500,
        }
    }

    /// Whether the same request may succeed if simply sent again later. A provider may
    /// override this per error (a busy database is retryable, a syntax error is not).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::ProviderUnavailable
                | ErrorCode::UpstreamUnavailable
                | ErrorCode::Timeout
                | ErrorCode::RateLimited
                | ErrorCode::IdempotencyInFlight
                | ErrorCode::ShuttingDown
        )
    }

    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "Missing or invalid credentials",
            ErrorCode::TokenInvalid => "The bearer token is not valid",
            ErrorCode::TokenExpired => "The bearer token has expired",
            ErrorCode::TenantForbidden => "Tenant does not match the credentials",
            ErrorCode::ScopeForbidden => "Credentials lack the required scope",
            ErrorCode::RouteNotFound => "No such route",
            ErrorCode::ProviderNotFound => "No such provider",
            ErrorCode::ActionNotFound => "No such action",
            ErrorCode::MethodNotAllowed => "Method not allowed",
            ErrorCode::RequestInvalid => "Malformed request",
            ErrorCode::ParamsInvalid => "Params do not match the action's schema",
            ErrorCode::ConfigInvalid => "Config does not match the provider's config schema",
            ErrorCode::UnsupportedMediaType => "Unsupported media type",
            ErrorCode::PayloadTooLarge => "Payload too large",
            ErrorCode::ResourceNotFound => "Resource not found",
            ErrorCode::Conflict => "Conflict with the current state",
            ErrorCode::StatementFailed => "Statement failed",
            ErrorCode::ProviderUnavailable => "Provider unavailable",
            ErrorCode::UpstreamUnavailable => "Upstream unavailable",
            ErrorCode::Timeout => "Timed out",
            ErrorCode::Internal => "Internal error",
            ErrorCode::RateLimited => "Rate limit exceeded",
            ErrorCode::IdempotencyKeyReused => "Idempotency key reused with a different request",
            ErrorCode::IdempotencyInFlight => "A request with this idempotency key is in flight",
            ErrorCode::ShuttingDown => "The gateway is shutting down",
            ErrorCode::PolicyDenied => "Denied by policy",
            ErrorCode::ProviderFailed => "The provider failed to honour the contract",
            ErrorCode::JournalUnbalanced => "Debits and credits differ in some currency",
            ErrorCode::PeriodClosed => "The posting date falls in a closed period",
            ErrorCode::InsufficientStock => "Not enough available stock",
            ErrorCode::SecretForbidden => "The secret reference is outside the tenant's space",
            ErrorCode::SecretRequired => "A credential must be a secret:// reference",
            ErrorCode::EgressForbidden => "The outbound address is not allowed",
            ErrorCode::QuotaExceeded => "A tenant quota is used up",
            ErrorCode::ProviderNotConfigured => "The provider is not configured for this tenant",
            ErrorCode::OperatorOnly => "Only the platform operator may do this",
            ErrorCode::ManifestInvalid => "The provider manifest cannot be used",
            ErrorCode::ConformanceFailed => {
                "The provider failed its domain's core conformance checks"
            }
            ErrorCode::ParamsUnprocessable => "Params break a rule their schema cannot state",
            ErrorCode::ConfigUnprocessable => "Config breaks a rule its schema cannot state",
            ErrorCode::UpstreamCredentialsInvalid => {
                "The third-party system refused the connection's credentials"
            }
            ErrorCode::SignatureInvalid => "The inbound webhook's signature does not verify",
            ErrorCode::BudgetExceeded => "An AI budget would be exceeded",
            ErrorCode::GuardrailRefused => "A guardrail refused the prompt",
            ErrorCode::ResponseRefused => "A response filter refused the answer",
            ErrorCode::ConfigVersionNotFound => "No such config version",
            ErrorCode::SecretNameInvalid => "The secret name is not allowed",
            ErrorCode::TenantSuspended => "The tenant is suspended",
            ErrorCode::TaskClosed => "The task is already decided or cancelled",
            ErrorCode::PaymentDeclined => "The payment was declined",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invalid field: where (a JSON pointer into the request body's `params` or `config`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

/// An RFC 9457 problem document as every Switchyard component answers it.
///
/// `type`, `title` and `status` follow from `code`, so they are written out when serializing
/// rather than stored: a `Problem` stays small enough to travel in `Result`s cheaply.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub code: ErrorCode,
    pub detail: String,
    pub retryable: bool,
    pub request_id: String,
    pub errors: Vec<FieldError>,
    /// The policy decision that refused the request, for `policy_denied`; auditors find it in
    /// the decision log.
    pub decision_id: Option<String>,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Problem {
            code,
            detail: detail.into(),
            retryable: code.retryable(),
            request_id: String::new(),
            errors: Vec::new(),
            decision_id: None,
        }
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn type_uri(&self) -> String {
        format!("urn:switchyard:problem:{}", self.code.as_str())
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    pub fn with_decision_id(mut self, decision_id: impl Into<String>) -> Self {
        self.decision_id = Some(decision_id.into());
        self
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    pub fn to_body(&self) -> Vec<u8> {
        // Strings, numbers and bools only: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The problem in OpenAI's error shape, which the OpenAI-compatible surface (`/v1/*`)
    /// answers so that OpenAI's own clients read it: `error.type` is the class their SDKs
    /// know, `error.code` the stable code, `error.param` the first invalid field's pointer.
    pub fn to_openai_body(&self) -> Vec<u8> {
        let kind = match self.status() {
            400 | 404 | 409 | 413 | 415 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            429 if self.code == ErrorCode::BudgetExceeded => "insufficient_quota",
            429 => "rate_limit_error",
            _ => "api_error",
        };
        let mut message = self.detail.clone();
        if let Some(id) = &self.decision_id {
            message.push_str(&format!(" (decision {id})"));
        }
        serde_json::to_vec(&serde_json::json!({"error": {
            "message": message,
            "type": kind,
            "param": self.errors.first().map(|e| e.pointer.as_str()),
            "code": self.code.as_str(),
        }}))
        .unwrap_or_default()
    }
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", &self.type_uri())?;
        map.serialize_entry("title", self.code.title())?;
        map.serialize_entry("status", &self.status())?;
        map.serialize_entry("detail", &self.detail)?;
        map.serialize_entry("code", &self.code)?;
        map.serialize_entry("retryable", &self.retryable)?;
        map.serialize_entry("request_id", &self.request_id)?;
        if !self.errors.is_empty() {
            map.serialize_entry("errors", &self.errors)?;
        }
        if let Some(decision_id) = &self.decision_id {
            map.serialize_entry("decision_id", decision_id)?;
        }
        map.end()
    }
}

/// The wire form read back, for clients of the HTTP API: `type`, `title` and `status` are
/// derived from `code`, so only the fields a `Problem` stores are read.
#[derive(Deserialize)]
struct WireProblem {
    code: ErrorCode,
    #[serde(default)]
    detail: String,
    retryable: Option<bool>,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    errors: Vec<FieldError>,
    decision_id: Option<String>,
}

impl<'de> Deserialize<'de> for Problem {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireProblem::deserialize(deserializer)?;
        Ok(Problem {
            retryable: wire.retryable.unwrap_or(wire.code.retryable()),
            code: wire.code,
            detail: wire.detail,
            request_id: wire.request_id,
            errors: wire.errors,
            decision_id: wire.decision_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_survives_the_wire() {
        let p = Problem::new(ErrorCode::PolicyDenied, "no")
            .with_request_id("r9")
            .with_decision_id("d1")
            .with_errors(vec![FieldError {
                pointer: "/params/x".into(),
                detail: "bad".into(),
            }]);
        let back: Problem = serde_json::from_slice(&p.to_body()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn code_names_round_trip_through_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), code);
        }
    }

    #[test]
    fn problem_type_and_status_follow_the_code() {
        let p = Problem::new(ErrorCode::ParamsInvalid, "bad").with_request_id("r1");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["status"], 400);
        assert_eq!(json["type"], "urn:switchyard:problem:params_invalid");
        assert_eq!(json["title"], ErrorCode::ParamsInvalid.title());
        assert_eq!(json["retryable"], false);
        assert!(json.get("errors").is_none());
        assert!(Problem::new(ErrorCode::Timeout, "slow").retryable);
    }
}
