//! The gateway's request filters, one module each, listed in the order a request meets them.

pub mod authenticate;
pub mod authorize;
pub mod body_limit;
pub mod client_cert;
pub mod decision_log;
pub mod forward;
pub mod idempotency;
pub mod inbound;
pub mod policy;
pub mod rate_limit;
pub mod request_id;
pub mod route;
pub mod tenant;
pub mod trace_context;
