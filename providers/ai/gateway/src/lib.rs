//! The `ai/gateway` engine's building blocks: each module is pure (no HTTP, no store) and
//! tested on its own, so the engine that strings them together reads as a list of steps.
//!
//! - [`redact`]: PII (emails, phones, IBANs, cards, operator patterns) replaced by
//!   placeholders before a prompt leaves the platform, and restored in the answer on request.
//! - [`guard`]: denylists and prompt-injection phrases on the request, denylists on the answer.
//! - [`template`]: versioned prompt templates (minijinja) rendered into messages.
//! - [`cache`]: the exact-match answer cache of one tenant's instance.
//! - [`pick`]: weighted choice of a target, the fallback order, cooldowns and retry backoff.
//! - [`tokens`]: prompt token bounds for budget reservations and policy input.

mod audit;
mod budget;
pub mod cache;
mod chat;
mod config;
mod engine;
pub mod guard;
pub mod pick;
pub mod redact;
mod route;
pub mod template;
pub mod tokens;
mod wire;

pub use config::GatewayConfigFields;
pub use engine::AiGatewayFactory;
