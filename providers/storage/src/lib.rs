//! Storage providers for Switchyard: object storage (put, get, head, list, delete by key)
//! behind the `storage` domain contract.
//!
//! Each engine lives in its own module, as in Apache OpenDAL, so that adding one (S3, GCS)
//! touches nothing shared: the contract, its action schemas and the conformance suite under
//! `tests/conformance/` are common to all engines, and every engine must pass that suite.
//!
//! - [`fs`]: objects as files on a local or mounted filesystem.

pub mod fs;

pub use fs::FsFactory;
