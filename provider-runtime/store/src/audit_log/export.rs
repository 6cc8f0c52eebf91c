//! A tenant's whole log as text, page by page, for an auditor to keep and re-verify offline:
//! every field of every record, the hashes included, in `seq` order.

use serde_json::Value;
use switchyard_contracts::TenantId;

use super::AuditRecord;
use super::query::{AuditFilter, AuditOrder};
use crate::{PlatformStore, StoreError};

/// Records per page of an export: one query each, and what a caller holds at a time.
const PAGE: u32 = 500;

/// The CSV columns, in the order of a record's fields (its hash rule's order, `hash` last).
pub const CSV_HEADER: &str =
    "tenant,seq,at,actor,entity,operation,old,new,request_id,source,prev_hash,hash\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One record per line as the JSON object the list answers (`application/x-ndjson`).
    JsonLines,
    /// RFC 4180: a header, then one row per record; old and new as their JSON text, empty
    /// when absent (`text/csv`).
    Csv,
}

/// The export of one tenant's log, written a page at a time ([`AuditExport::next_chunk`]), so
/// a log of any length leaves without being held whole.
pub struct AuditExport {
    store: PlatformStore,
    tenant: TenantId,
    format: ExportFormat,
    after_seq: Option<i64>,
    started: bool,
    done: bool,
}

impl PlatformStore {
    pub fn export_audit(&self, tenant: &TenantId, format: ExportFormat) -> AuditExport {
        AuditExport {
            store: self.clone(),
            tenant: tenant.clone(),
            format,
            after_seq: None,
            started: false,
            done: false,
        }
    }
}

impl AuditExport {
    /// The next piece of the export, or `None` once it is whole. The CSV header comes with the
    /// first piece, so even an empty log exports as a header.
    pub async fn next_chunk(&mut self) -> Result<Option<String>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let filter = AuditFilter {
            order: AuditOrder::BySeq,
            after_seq: self.after_seq,
            limit: PAGE,
            ..AuditFilter::default()
        };
        let page = self.store.list_audit(&self.tenant, &filter).await?;
        self.done = page.len() < PAGE as usize;
        self.after_seq = page.last().map(|r| r.seq).or(self.after_seq);
        let mut text = String::new();
        if !self.started && self.format == ExportFormat::Csv {
            text.push_str(CSV_HEADER);
        }
        self.started = true;
        for record in &page {
            match self.format {
                ExportFormat::JsonLines => {
                    text.push_str(&serde_json::to_string(record).map_err(|e| {
                        StoreError::Invalid(format!("an audit record as JSON: {e}"))
                    })?);
                    text.push('\n');
                }
                ExportFormat::Csv => text.push_str(&csv_row(record)),
            }
        }
        Ok(if text.is_empty() { None } else { Some(text) })
    }
}

/// One record as a CSV row, its fields in [`CSV_HEADER`]'s order.
fn csv_row(record: &AuditRecord) -> String {
    let value = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
    let fields = [
        record.tenant.clone(),
        record.seq.to_string(),
        record.at.clone(),
        record.actor.clone(),
        record.entity.clone(),
        record.operation.clone(),
        value(&record.old),
        value(&record.new),
        record.request_id.clone().unwrap_or_default(),
        record.source.clone().unwrap_or_default(),
        record.prev_hash.clone(),
        record.hash.clone(),
    ];
    let mut row = fields.map(|f| csv_field(&f)).join(",");
    row.push_str("\r\n");
    row
}

/// A field quoted when it holds a separator, a quote or a line break, quotes doubled.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_separators_quotes_or_line_breaks_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field(r#"{"k":"v"}"#), r#""{""k"":""v""}""#);
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
