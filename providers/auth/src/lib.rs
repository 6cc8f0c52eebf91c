//! Auth providers: the gateway's own token verification and policy decisions, offered as
//! providers of the `auth` domain (`contracts/schemas/domains/auth.json`) so that business
//! services authenticate and authorize exactly as the gateway does, without their own copy.
//!
//! Each engine serves part of the domain: [`JwtFactory`] (`auth/jwt`) verifies and introspects
//! tokens, [`OpaFactory`] (`auth/opa`) evaluates the policy bundle. Both are proven by the suite
//! in `tests/conformance/`.

mod contract;
mod engine;
pub mod jwt;
pub mod opa;

pub use jwt::JwtFactory;
pub use opa::{OpaFactory, PolicySource};
