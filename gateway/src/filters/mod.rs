//! The gateway's request filters, one module each, listed in the order a request meets them.

pub mod authenticate;
pub mod authorize;
pub mod forward;
pub mod request_id;
pub mod route;
pub mod tenant;
