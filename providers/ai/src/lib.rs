//! AI providers behind the `ai` domain contract (`contracts/schemas/domains/ai.json`). Engines
//! serve part of the domain:
//! - `local`, the embedded default: `embed` and `classify` from hashed character n-grams,
//!   offline and deterministic. It is arithmetic on character counts, not a language model.
//! - `openai`: `chat` (whole or streamed) and `embed` through an OpenAI-compatible HTTP
//!   server the tenant configures.
//! - `anthropic`: `chat` (whole or streamed) through the Anthropic Messages API.
//!
//! The conformance kit's ai checks (`provider-runtime/conformance/src/ai/`) hold every engine
//! to the actions it serves.

pub mod anthropic;
mod contract;
mod engine;
pub mod local;
pub mod openai;
mod upstream;

use std::sync::Arc;

pub use anthropic::AnthropicFactory;
pub use local::LocalAiFactory;
pub use openai::OpenAiFactory;
use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

/// The ai engines `switchyard` hosts: a new engine is its folder and one line here.
pub fn builtins(host: &Host) -> Result<Vec<Arc<dyn ProviderFactory>>, SchemaError> {
    switchyard_spi::builtins(host, &[local::builtin, openai::builtin, anthropic::builtin])
}
