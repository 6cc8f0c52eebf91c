//! Reading one tenant's audit log: pages by `seq` (a chain's records are numbered without
//! gaps), so a page never shifts under concurrent appends, and filters an auditor asks for.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use switchyard_contracts::TenantId;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::AuditRecord;
use crate::{PlatformStore, StoreError};

/// Which way a page runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditOrder {
    /// Highest `seq` first: what changed last.
    #[default]
    NewestFirst,
    /// Lowest `seq` first: the chain's own order, for reading it whole.
    BySeq,
}

/// Which records an auditor wants; the tenant is always the auditor's own.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Records whose entity starts with this (`api_key/`, `provider/db/`, ...).
    pub entity_prefix: Option<String>,
    pub actor: Option<String>,
    pub operation: Option<String>,
    /// Records at or after this time.
    pub from: Option<OffsetDateTime>,
    /// Records before this time.
    pub to: Option<OffsetDateTime>,
    /// The `seq` of the last record of the previous page.
    pub after_seq: Option<i64>,
    pub order: AuditOrder,
    pub limit: u32,
}

/// Every column of a record, in the order [`decode`] reads them.
pub(super) const COLUMNS: &str = "tenant_id, seq, at, actor, entity, operation, old_value, \
                                  new_value, request_id, source, prev_hash, hash";

impl PlatformStore {
    /// One page of the tenant's records.
    pub async fn list_audit(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(audit_page(&mut conn, tenant.as_str(), filter)
            .await?
            .into_iter()
            .map(|(record, _)| record)
            .collect())
    }
}

/// [`PlatformStore::list_audit`] of any chain (the platform's too) on one connection, each
/// record with whether its stored values are the exact text its hash was computed over.
pub(super) async fn audit_page(
    conn: &mut AnyConnection,
    tenant: &str,
    filter: &AuditFilter,
) -> Result<Vec<(AuditRecord, bool)>, StoreError> {
    let (after, order) = match filter.order {
        AuditOrder::NewestFirst => ("seq < $7", "seq DESC"),
        AuditOrder::BySeq => ("seq > $7", "seq ASC"),
    };
    // One statement for every filter: an absent filter binds NULL and drops out. The
    // entity is matched by `substr`, not LIKE, whose `_` would match any character of
    // `api_key/`. Times compare as text: the log writes RFC 3339 in UTC, and the bounds
    // are written the same way.
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log
              WHERE tenant_id = $1
                AND ($2 IS NULL OR substr(entity, 1, length($2)) = $2)
                AND ($3 IS NULL OR actor = $3)
                AND ($4 IS NULL OR operation = $4)
                AND ($5 IS NULL OR at >= $5)
                AND ($6 IS NULL OR at < $6)
                AND ($7 IS NULL OR {after})
              ORDER BY {order}
              LIMIT $8"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant)
        .bind(filter.entity_prefix.as_deref())
        .bind(filter.actor.as_deref())
        .bind(filter.operation.as_deref())
        .bind(filter.from.map(as_stored))
        .bind(filter.to.map(as_stored))
        .bind(filter.after_seq)
        .bind(i64::from(filter.limit))
        .fetch_all(conn)
        .await?;
    rows.iter().map(decode).collect()
}

/// A time as the log writes its `at`. A bound past what UTC dates can hold (year 9999 with a
/// negative offset) is the latest time there is, one before them the earliest.
fn as_stored(at: OffsetDateTime) -> String {
    let utc = at
        .checked_to_offset(UtcOffset::UTC)
        .unwrap_or(if at.year() > 0 {
            PrimitiveDateTime::MAX.assume_utc()
        } else {
            PrimitiveDateTime::MIN.assume_utc()
        });
    // Before year 0 RFC 3339 has no text; the empty one sorts before every record.
    utc.format(&Rfc3339).unwrap_or_default()
}

/// A row as a record, and whether its old and new values are stored exactly as the writer
/// serialized them. A value that is not JSON at all (only a hand-edited row has one) is read
/// as a JSON string of its text, so the log stays readable and the chain check flags it.
pub(super) fn decode(row: &AnyRow) -> Result<(AuditRecord, bool), StoreError> {
    let mut canonical = true;
    let mut value = |column: &str| -> Result<Option<Value>, StoreError> {
        let text: Option<String> = row.try_get(column)?;
        Ok(text.map(|text| match serde_json::from_str::<Value>(&text) {
            Ok(value) => {
                // (Not `value == text`: a Value equals a String only when it is that string.)
                canonical &= serde_json::to_string(&value).is_ok_and(|written| written == text);
                value
            }
            Err(_) => {
                canonical = false;
                Value::String(text)
            }
        }))
    };
    let (old, new) = (value("old_value")?, value("new_value")?);
    let record = AuditRecord {
        tenant: row.try_get("tenant_id")?,
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        entity: row.try_get("entity")?,
        operation: row.try_get("operation")?,
        old,
        new,
        request_id: row.try_get("request_id")?,
        source: row.try_get("source")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    };
    Ok((record, canonical))
}

#[cfg(test)]
mod tests {
    use time::{Date, Month, Time};

    use super::*;

    fn at(year: i32, month: Month, day: u8, hour: u8, offset_hours: i8) -> OffsetDateTime {
        let date = Date::from_calendar_date(year, month, day).unwrap();
        PrimitiveDateTime::new(date, Time::from_hms(hour, 30, 0).unwrap())
            .assume_offset(UtcOffset::from_hms(offset_hours, 0, 0).unwrap())
    }

    #[test]
    fn bounds_are_written_as_the_log_writes_times_and_clamped_past_the_calendar() {
        assert_eq!(
            as_stored(at(2026, Month::March, 1, 1, 2)),
            "2026-02-28T23:30:00Z"
        );
        assert_eq!(
            as_stored(at(9999, Month::December, 31, 23, -5)),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert_eq!(as_stored(at(0, Month::January, 1, 0, 1)), "");
    }
}
