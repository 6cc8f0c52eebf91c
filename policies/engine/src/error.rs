//! Errors name the file, test or signature problem so that a refused bundle can be fixed
//! without reproducing the load.

use std::path::PathBuf;

/// Why a bundle could not be built, loaded or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("policy source {}: {message}", path.display())]
    Source { path: PathBuf, message: String },
    #[error("bundle archive is unreadable: {0}")]
    Archive(String),
    #[error("bundle file {file}: {message}")]
    File { file: String, message: String },
    #[error("bundle manifest: {0}")]
    Manifest(String),
    #[error("data file {file}: {message}")]
    Data { file: String, message: String },
    #[error("policy {file} does not compile: {message}")]
    Compile { file: String, message: String },
    #[error("bundle signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("cannot sign the bundle: {0}")]
    Signing(String),
    #[error("policy tests failed: {}", failed.join(", "))]
    TestsFailed { failed: Vec<String> },
    #[error("policy evaluation failed: {0}")]
    Evaluation(String),
    #[error("decision has an unexpected shape: {0}")]
    Decision(String),
}

/// Why a bundle's `.signatures.json` was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("bundle is not signed but a verification key is configured")]
    Missing,
    #[error(".signatures.json is malformed: {0}")]
    Malformed(String),
    #[error("verification key is unusable: {0}")]
    Key(String),
    #[error("signature does not verify: {0}")]
    Invalid(String),
    #[error("file {0} is not covered by the signature")]
    Uncovered(String),
    #[error("file {0} does not match its signed hash")]
    HashMismatch(String),
    #[error("signed file {0} is missing from the bundle")]
    MissingFile(String),
    #[error("file {file} is signed with unsupported hash algorithm {algorithm}")]
    UnsupportedAlgorithm { file: String, algorithm: String },
}
