use std::num::{NonZeroU32, NonZeroU64};

use serde::Deserialize;

const MIB: u64 = 1024 * 1024;

/// The operator's per-tenant quotas (`[tenancy.quotas]`): how much of the shared process one
/// tenant may use. Every tenant runs inside the same process, so without these one tenant's
/// cache values, queries, connections or stored records could take the memory, CPU or
/// connections every other tenant needs. A tenant's own config may lower a limit where it has
/// a matching setting, never raise it. Exceeding a quota answers `quota_exceeded` (429) or
/// `payload_too_large` (413); a config above a ceiling is `config_invalid` at its field.
///
/// Sizes are in bytes. Zero is refused when the file is read: a quota of nothing would make
/// the resource unusable rather than bounded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    /// `cache/memory`: what one tenant's entries may hold in all (keys, values as JSON text
    /// and a fixed per-entry overhead). A write past it is refused with `quota_exceeded`; no
    /// entry, the tenant's or another's, is evicted to make room. Default 64 MiB.
    pub cache_bytes_per_tenant: NonZeroU64,
    /// `cache/memory`: the largest single value (as JSON text); larger is
    /// `payload_too_large`. A tenant's `max_value_bytes` may only be lower. Default 1 MiB.
    pub cache_max_value_bytes: NonZeroU64,
    /// `db/sqlite`: the largest string, blob or row a statement may build
    /// (`SQLITE_LIMIT_LENGTH` on every connection), so `randomblob(999999999)` is refused
    /// before it allocates. Default 16 MiB.
    pub sqlite_max_length_bytes: NonZeroU32,
    /// `db/sqlite`: the heap all SQLite connections of the process may use together
    /// (`sqlite3_hard_heap_limit64`), the backstop for whatever the length limit does not
    /// catch; past it a statement fails with a retryable `provider_unavailable` instead of the
    /// process running out of memory. It also bounds the platform store's SQLite. Default
    /// 1 GiB.
    pub sqlite_heap_bytes: NonZeroU64,
    /// Every db engine: the rows one `query` returns, measured as JSON; a larger result is
    /// refused with `payload_too_large` rather than built in memory and sent. Default 16 MiB.
    pub db_result_bytes: NonZeroU64,
    /// Every db engine: the ceiling on a tenant's `max_connections`. Default 8.
    pub db_max_connections: NonZeroU32,
    /// Every db engine with a statement timeout: the ceiling on a tenant's
    /// `statement_timeout_ms`. Default 30000, the default call timeout: a statement running
    /// longer than its call only burns CPU for an answer nobody waits for.
    pub db_statement_timeout_ms: NonZeroU64,
    /// Idempotency records: what one tenant's stored responses (and a fixed per-record
    /// overhead) may hold while they are retained. A request with an `Idempotency-Key` from
    /// a tenant at its quota is refused with `quota_exceeded` before it runs; a request
    /// already admitted keeps its replay. Default 64 MiB.
    pub idempotency_bytes_per_tenant: NonZeroU64,
    /// Config versions kept per tenant and provider; older versions are deleted when a new
    /// one is saved (only the newest is ever read back). Default 20.
    pub config_versions_kept: NonZeroU32,
    /// `ai/gateway`: the tokens one tenant's AI calls may reserve and spend per UTC day, over
    /// all its keys, users and aliases, whatever budgets the tenant sets itself: a call past
    /// it is refused with `quota_exceeded` before anything is sent. Default: no ceiling.
    pub ai_tokens_per_day: Option<NonZeroU64>,
}

impl Default for Quotas {
    fn default() -> Self {
        let bytes = |n: u64| NonZeroU64::new(n).expect("a non-zero default");
        let count = |n: u32| NonZeroU32::new(n).expect("a non-zero default");
        Quotas {
            cache_bytes_per_tenant: bytes(64 * MIB),
            cache_max_value_bytes: bytes(MIB),
            sqlite_max_length_bytes: count(16 * 1024 * 1024),
            sqlite_heap_bytes: bytes(1024 * MIB),
            db_result_bytes: bytes(16 * MIB),
            db_max_connections: count(8),
            db_statement_timeout_ms: bytes(30_000),
            idempotency_bytes_per_tenant: bytes(64 * MIB),
            config_versions_kept: count(20),
            ai_tokens_per_day: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_their_defaults_and_zero_or_unknown_fields_are_refused() {
        let quotas: Quotas = serde_json::from_str(r#"{"db_max_connections": 2}"#).unwrap();
        assert_eq!(quotas.db_max_connections.get(), 2);
        assert_eq!(
            Quotas {
                db_max_connections: Quotas::default().db_max_connections,
                ..quotas
            },
            Quotas::default()
        );
        assert_eq!(Quotas::default().cache_bytes_per_tenant.get(), 64 * MIB);
        for bad in [
            r#"{"config_versions_kept": 0}"#,
            r#"{"cache_bytes_per_tenant": 0}"#,
            r#"{"cache_bytes": 5}"#,
        ] {
            assert!(serde_json::from_str::<Quotas>(bad).is_err(), "{bad}");
        }
    }
}
