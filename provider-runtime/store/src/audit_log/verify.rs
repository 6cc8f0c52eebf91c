//! The chain check: recompute every record's hash in `seq` order, follow the links, and
//! compare the end with the chain's head.

use serde::Serialize;
use sqlx::Row;

use super::query::{AuditFilter, AuditOrder, audit_page};
use super::{AuditRecord, GENESIS};
use crate::{Backend, PlatformStore, StoreError};

/// Records read per query while checking.
const PAGE: u32 = 1000;

/// What the check found. `first_bad_seq` is the lowest place where the stored chain differs
/// from one written by the log itself: a record whose fields no longer give its hash, one that
/// does not point at its predecessor's hash, a number missing, or a head that disagrees with
/// the last record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainCheck {
    /// How many records the chain holds.
    pub records: u64,
    pub ok: bool,
    pub first_bad_seq: Option<i64>,
    pub why: Option<String>,
}

/// The check as it walks the chain: what it expects next, and the first fault it met.
struct Walk {
    records: u64,
    next_seq: i64,
    prev_hash: String,
    fault: Option<(i64, String)>,
}

impl Walk {
    fn fault(&mut self, seq: i64, why: String) {
        self.fault.get_or_insert((seq, why));
    }

    fn step(&mut self, record: &AuditRecord, canonical: bool) {
        self.records += 1;
        let seq = record.seq;
        if seq != self.next_seq {
            let why = if seq > self.next_seq {
                format!(
                    "record {} is missing: the chain goes from {} to {seq}",
                    self.next_seq,
                    self.next_seq - 1
                )
            } else {
                format!(
                    "record {seq} is out of place after record {}",
                    self.next_seq - 1
                )
            };
            self.fault(self.next_seq.min(seq), why);
        }
        if !canonical || record.expected_hash() != record.hash {
            self.fault(
                seq,
                format!("record {seq} was altered: its fields do not give its hash"),
            );
        }
        if record.prev_hash != self.prev_hash {
            self.fault(
                seq,
                format!("record {seq} does not point at the hash of the record before it"),
            );
        }
        self.next_seq = seq + 1;
        self.prev_hash.clone_from(&record.hash);
    }

    /// Compares the end of the walk with the head written beside every append.
    fn end(&mut self, head: Option<(i64, String)>) {
        let last = self.next_seq - 1;
        match head {
            None if self.records == 0 => {}
            None => self.fault(last, "the chain has records but no head".into()),
            Some((seq, _)) if seq > last => self.fault(
                last + 1,
                format!(
                    "records {} to {seq} are missing: the head is record {seq}",
                    last + 1
                ),
            ),
            Some((seq, _)) if seq < last => self.fault(
                seq + 1,
                format!("record {} is past the chain's head (record {seq})", seq + 1),
            ),
            Some((_, hash)) if hash != self.prev_hash => self.fault(
                last,
                format!("the head's hash is not that of record {last}"),
            ),
            Some(_) => {}
        }
    }
}

impl Walk {
    fn finish(self) -> ChainCheck {
        let (first_bad_seq, why) = self.fault.unzip();
        ChainCheck {
            records: self.records,
            ok: first_bad_seq.is_none(),
            first_bad_seq,
            why,
        }
    }
}

impl PlatformStore {
    /// Checks one tenant's chain (or [`super::PLATFORM_CHAIN`]) from its first record to its
    /// head. Finds any record changed, removed or inserted by someone who cannot recompute
    /// the hashes after it and the head; see docs/adr/0041 for what it cannot find.
    pub async fn verify_audit_chain(&self, tenant: &str) -> Result<ChainCheck, StoreError> {
        // One snapshot for the head and every page, so a record appended meanwhile is in
        // neither: PostgreSQL's repeatable read; SQLite's read transaction (WAL) is one already.
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let head = sqlx::query("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| -> Result<(i64, String), StoreError> {
                Ok((row.try_get("seq")?, row.try_get("hash")?))
            })
            .transpose()?;
        let mut walk = Walk {
            records: 0,
            next_seq: 1,
            prev_hash: GENESIS.to_owned(),
            fault: None,
        };
        let mut filter = AuditFilter {
            order: AuditOrder::BySeq,
            limit: PAGE,
            ..AuditFilter::default()
        };
        loop {
            let page = audit_page(&mut tx, tenant, &filter).await?;
            for (record, canonical) in &page {
                walk.step(record, *canonical);
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => filter.after_seq = Some(last.0.seq),
                _ => break,
            }
        }
        tx.rollback().await?;
        walk.end(head);
        Ok(walk.finish())
    }
}
