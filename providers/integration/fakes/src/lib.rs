//! Fakes of third-party APIs that no test here can reach (Shopify, Salesforce, Stripe's
//! PaymentIntents): each follows the system's documented API (pagination, rate-limit headers and 429s, token expiry, deleted records,
//! webhook signatures) closely enough that a connector passing against it would pass against
//! the real one, and counts the calls it serves so a test can prove a call was not made.
//! Tests using them say "fake" in their names.

pub mod payments;
pub mod salesforce;
pub mod shopify;
