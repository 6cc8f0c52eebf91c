//! The cache domain's params and results (`contracts/schemas/domains/cache.json`) as Rust
//! types, shared by every engine so that they read and answer exactly the same shapes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `get` and `delete`.
#[derive(Deserialize)]
pub(crate) struct KeyParams {
    pub(crate) key: String,
}

/// `set`, and one entry of `mset`.
#[derive(Deserialize)]
pub(crate) struct SetParams {
    pub(crate) key: String,
    pub(crate) value: Value,
    pub(crate) ttl_ms: Option<u64>,
}

#[derive(Deserialize)]
pub(crate) struct MgetParams {
    pub(crate) keys: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct MsetParams {
    pub(crate) entries: Vec<SetParams>,
}

#[derive(Deserialize)]
pub(crate) struct IncrParams {
    pub(crate) key: String,
    #[serde(default = "one")]
    pub(crate) by: i64,
    pub(crate) ttl_ms: Option<u64>,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
pub(crate) struct PrefixParams {
    pub(crate) prefix: String,
}

/// What `get` answers, and each entry of `mget`'s answer.
#[derive(Serialize)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) found: bool,
    /// The stored value; null when not found.
    pub(crate) value: Value,
}

impl Entry {
    pub(crate) fn found(key: String, value: Value) -> Self {
        Entry {
            key,
            found: true,
            value,
        }
    }

    pub(crate) fn missing(key: String) -> Self {
        Entry {
            key,
            found: false,
            value: Value::Null,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct SetResult {
    pub(crate) key: String,
}

#[derive(Serialize)]
pub(crate) struct DeleteResult {
    pub(crate) deleted: bool,
}

#[derive(Serialize)]
pub(crate) struct MgetResult {
    pub(crate) entries: Vec<Entry>,
}

#[derive(Serialize)]
pub(crate) struct MsetResult {
    pub(crate) stored: usize,
}

#[derive(Serialize)]
pub(crate) struct IncrResult {
    pub(crate) key: String,
    pub(crate) value: i64,
}

#[derive(Serialize)]
pub(crate) struct DeletePrefixResult {
    pub(crate) deleted: u64,
}
