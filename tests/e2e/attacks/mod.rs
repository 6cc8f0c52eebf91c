//! The tenant boundary, tried as a hostile tenant admin would (issue 17, ADR 20): one module
//! per hole, each driving `switchyard serve` over HTTP with a tenant's own keys. Every test
//! here was written to fail on the code before the fix.

mod config_echo;
mod egress;
mod oidc_tenant;
mod policy_view;
mod pooled_postgres;
mod quotas;
mod secrets;
mod service_books;
mod small;
