//! Storage providers for Switchyard: object storage (put, get, head, list, delete by key, and
//! presigned URLs where the engine's server signs them) behind the `storage` domain contract.
//!
//! Each engine lives in its own module, as in Apache OpenDAL, so that adding one (GCS, Azure)
//! is its folder and one line in [`builtins`]: the contract, its action schemas and the
//! storage suite of the conformance kit (`provider-runtime/conformance`) are common to all
//! engines, and every engine must pass that suite. What the schemas cannot say — the key
//! rules, how content arrives, the size limit — the adapter in `engine` applies before any
//! engine sees a call, so the engines cannot drift apart.
//!
//! - [`fs`]: objects as files on a local or mounted filesystem.
//! - [`s3`]: objects in a bucket of an S3-compatible server, one key prefix per tenant.
//! - [`memory`]: objects in the process's memory, for development and tests.

mod contract;
mod engine;
pub mod fs;
mod key;
pub mod memory;
pub mod s3;

use std::sync::Arc;

pub use fs::FsFactory;
pub use memory::MemoryStorageFactory;
pub use s3::{S3Factory, S3Settings};
use switchyard_contracts::SchemaError;
use switchyard_spi::{Host, ProviderFactory};

/// The storage engines `switchyard` hosts: a new engine is its folder and one line here.
pub fn builtins(host: &Host) -> Result<Vec<Arc<dyn ProviderFactory>>, SchemaError> {
    switchyard_spi::builtins(host, &[fs::builtin, s3::builtin, memory::builtin])
}
