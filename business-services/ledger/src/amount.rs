//! The ledger's own limit on money; amounts themselves are the kit's [`Money`] (scaled
//! integers, scale 4, with its one rounding rule, which the ledger never needs: it only adds).
//!
//! [`Money`]: switchyard_service_kit::Money

/// The largest debit or credit total a balance row holds (a `CHECK` in the table): it keeps
/// SQLite's integer arithmetic, which turns to floating point on overflow, away from `i64::MAX`.
pub const TOTAL_LIMIT: i64 = 9_000_000_000_000_000_000;
