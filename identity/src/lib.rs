//! Who is calling, once verified, and how an OIDC bearer token becomes that.
//!
//! The gateway authenticates every request into an [`Identity`]; the `auth/jwt` provider
//! verifies a tenant's tokens with the same [`oidc::OidcVerifier`]. Both live here, in a crate
//! with no HTTP server in it, so a provider that verifies tokens does not pull in the gateway
//! (and Pingora), and the gateway's authentication filters share the type without importing
//! each other.

pub mod oidc;

use switchyard_contracts::{Scopes, TenantId};

/// Who the caller is, once verified. API keys, OIDC tokens and client certificates all end
/// in this one shape, so nothing after authentication cares which was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub tenant: TenantId,
    /// `key:<id>` for API keys, `oidc:<sub>` for tokens, `cert:<serial>` for client certificates.
    pub subject: String,
    pub scopes: Scopes,
    /// Roles from the token's claims (empty for keys and certificates); read by the policy step.
    pub roles: Vec<String>,
}
