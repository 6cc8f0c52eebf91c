//! The fake AI upstream against the documented APIs, through a real HTTP client: one test
//! binary (one link) for the OpenAI family, the Anthropic family, the record and the binary.

mod anthropic;
mod openai;
mod record;
mod support;
