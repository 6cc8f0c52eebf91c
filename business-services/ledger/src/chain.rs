//! Tamper-evident books: every journal is a link of a hash chain (ADR 29).
//!
//! A journal's *content digest* is its fingerprint (SHA-256 of the canonical encoding of its
//! id, posting time, memo, references and lines: accounts, sides, scaled amounts, currencies;
//! see [`Journal::fingerprint`]). Its *link* is `SHA-256(previous link ‖ content digest)`
//! over the raw 32-byte values, stored in `gl_seal` with its place in the chain.
//!
//! One chain per tenant would be a row every posting locks (pgbench's branch row), so the
//! chain is striped into 256 lanes: a journal's lane is a hash of its id, each lane has
//! its own head in `gl_chain`, and postings in different lanes never wait on each other.
//! PostgreSQL computes the link in the posting's own statement (`sha256`, under the lane
//! row's lock, so concurrent postings queue instead of retrying); SQLite has no SHA-256, so
//! the ledger reads the head, computes the link in Rust and writes it with a guard that fails
//! when the head moved meanwhile ([`Ledger::chain_statements`]); the posting is then retried.
//!
//! `verify` (module `verify`) recomputes every lane in Rust from the stored rows. Each link also names the
//! journal before it, so a deleted journal is named by its successor (or by the lane's head).
//! Books from before the chain are chained once, on the first call of a process that finds
//! journals and no chain ([`Ledger::chain_existing`]).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_contracts::{ErrorCode, Problem};

use crate::Ledger;
use crate::db::{self, PAGE};

/// Tries at chaining the books from before the chain while postings move heads.
const CHAIN_ATTEMPTS: usize = 10;

/// The link before a lane's first journal.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The lane of `journal_id`: the first byte of its SHA-256, so one of 256. Many more lanes
/// than a tenant's concurrent postings keep two of them from meeting on one head: with 8
/// posting at once, two share a lane about a tenth of the time (with 16 lanes, most of it).
pub fn lane(journal_id: &str) -> i64 {
    i64::from(Sha256::digest(journal_id.as_bytes())[0])
}

/// `SHA-256(prev ‖ digest)` of two hex hashes, in hex: what PostgreSQL computes as
/// `encode(sha256(decode(prev || digest, 'hex')), 'hex')`.
pub fn link(prev: &str, digest: &str) -> Option<String> {
    let mut hasher = Sha256::new();
    hasher.update(hex::decode(prev).ok()?);
    hasher.update(hex::decode(digest).ok()?);
    Some(hex::encode(hasher.finalize()))
}

/// A lane's last link as read: the journal and its hash, and the lane's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub journal: Option<String>,
    pub hash: String,
}

impl Head {
    /// The head after `journal_id` (content digest `fingerprint`) is appended.
    pub fn next(&self, journal_id: &str, fingerprint: &str) -> Head {
        Head {
            seq: self.seq + 1,
            journal: Some(journal_id.to_owned()),
            hash: link(&self.hash, fingerprint).unwrap_or_default(),
        }
    }

    /// An empty lane.
    pub fn genesis() -> Head {
        Head {
            seq: 0,
            journal: None,
            hash: GENESIS.into(),
        }
    }
}

impl Ledger<'_> {
    /// The head of `lane` now.
    pub async fn head(&self, lane: i64) -> Result<Head, Problem> {
        let rows = self
            .db
            .query(
                self.client,
                "SELECT seq, head_journal, head_hash FROM gl_chain WHERE lane = ?1",
                vec![json!(lane)],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(Head::genesis());
        };
        Ok(Head {
            seq: db::id(row, "seq")?,
            journal: Some(db::text(row, "head_journal")?.into()),
            hash: db::text(row, "head_hash")?.into(),
        })
    }

    /// The two statements that append `journal_id` (content digest `fingerprint`) to `lane`
    /// after `head`, with the link computed here. The upsert moves the head only if it is
    /// still `head`; the seal's `seq` (NOT NULL) is read from the moved head, so a head that
    /// moved meanwhile leaves it NULL and the whole batch is refused with `conflict`.
    pub fn chain_statements(
        &self,
        journal_id: &str,
        fingerprint: &str,
        lane: i64,
        head: &Head,
    ) -> Result<Vec<Value>, Problem> {
        let hash = link(&head.hash, fingerprint)
            .ok_or_else(|| db::broken(&format!("a hash that is not hex: {}", head.hash)))?;
        Ok(vec![
            self.write(
                "INSERT INTO gl_chain (lane, seq, head_journal, head_hash, prev_journal, prev_hash)
                 VALUES (?1, 1, ?2, ?3, NULL, ?4)
                 ON CONFLICT (lane) DO UPDATE
                    SET seq = gl_chain.seq + 1, prev_journal = gl_chain.head_journal,
                        prev_hash = gl_chain.head_hash, head_journal = excluded.head_journal,
                        head_hash = excluded.head_hash
                  WHERE gl_chain.head_hash = ?5",
                vec![
                    json!(lane),
                    json!(journal_id),
                    json!(hash),
                    json!(GENESIS),
                    json!(head.hash),
                ],
            ),
            self.write(
                "INSERT INTO gl_seal (journal_id, lane, seq, prev_journal, prev_hash, hash)
                 VALUES (?1, ?2, (SELECT seq FROM gl_chain WHERE lane = ?2 AND head_hash = ?3),
                         ?4, ?5, ?3)",
                vec![
                    json!(journal_id),
                    json!(lane),
                    json!(hash),
                    json!(head.journal),
                    json!(head.hash),
                ],
            ),
        ])
    }

    /// Chains the journals posted before the chain existed, once: when journals exist and no
    /// lane has a head yet. Later journals are chained by their posting, so a journal without a
    /// link afterwards is one the ledger did not write, and `verify` says so.
    pub async fn chain_existing(&self) -> Result<(), Problem> {
        let started = self
            .db
            .query(self.client, "SELECT lane FROM gl_chain LIMIT 1", vec![])
            .await?;
        if !started.is_empty() {
            return Ok(());
        }
        // All in one transaction, so an interrupted run leaves no half-chained books (the
        // next run would not start: a lane has a head). Retried while postings of this
        // version move heads meanwhile.
        for _ in 0..CHAIN_ATTEMPTS {
            let unchained = self.unchained().await?;
            if unchained.is_empty() {
                return Ok(());
            }
            let mut heads = self.heads().await?;
            let mut statements = Vec::with_capacity(unchained.len() * 2);
            for (journal_id, fingerprint) in &unchained {
                let lane = lane(journal_id);
                let head = heads.entry(lane).or_insert_with(Head::genesis);
                statements.extend(self.chain_statements(journal_id, fingerprint, lane, head)?);
                *head = head.next(journal_id, fingerprint);
            }
            match self.db.transaction(self.client, statements).await {
                Ok(()) => return Ok(()),
                Err(problem) if problem.code == ErrorCode::Conflict => {}
                Err(problem) => return Err(problem),
            }
        }
        Err(Problem::new(
            ErrorCode::Conflict,
            "the books from before the hash chain could not be chained while postings kept \
             moving its heads; the next call tries again",
        ))
    }

    /// Every journal without a link, with its content digest, in recording order.
    async fn unchained(&self) -> Result<Vec<(String, String)>, Problem> {
        let mut unchained = Vec::new();
        let (mut after_time, mut after_id) = (String::new(), String::new());
        loop {
            let page = self
                .db
                .query(
                    self.client,
                    &format!(
                        "SELECT j.journal_id, j.recorded_at FROM gl_journal j
                          WHERE (j.recorded_at > ?1 OR (j.recorded_at = ?1 AND j.journal_id > ?2))
                            AND NOT EXISTS (SELECT 1 FROM gl_seal s WHERE s.journal_id = j.journal_id)
                          ORDER BY j.recorded_at, j.journal_id LIMIT {PAGE}"
                    ),
                    vec![json!(after_time), json!(after_id)],
                )
                .await?;
            for row in &page {
                let journal_id = db::text(row, "journal_id")?;
                if let Some(stored) = self.journal(journal_id).await? {
                    unchained.push((journal_id.to_owned(), stored.journal.fingerprint()));
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => {
                    after_time = db::text(last, "recorded_at")?.into();
                    after_id = db::text(last, "journal_id")?.into();
                }
                _ => return Ok(unchained),
            }
        }
    }
}
