//! `verify`: the hash chain recomputed from the stored rows (see `chain`).
//!
//! Each lane is walked from its genesis link to its head; each link also names the journal
//! before it, so a deleted journal is named by its successor (or by the lane's head), and a
//! journal without a link is one the ledger did not write.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use switchyard_contracts::Problem;

use crate::Ledger;
use crate::chain::{Head, link};
use crate::db::{self, PAGE, Row};
use crate::journal::Journal;

/// Bad journals listed in an answer.
const MAX_BAD: usize = 100;

/// One stored link.
struct Seal {
    journal_id: String,
    seq: i64,
    prev_journal: Option<String>,
    prev_hash: String,
    hash: String,
}

/// A journal found altered, deleted or outside the chain.
struct Bad {
    /// Recording order, to pick the first: the journal's `recorded_at`, its successor's for a
    /// deleted one, or none known (a lane's deleted last journal), which sorts last.
    order: Option<String>,
    journal_id: String,
    reason: String,
}

impl Ledger<'_> {
    /// Recomputes every lane from the stored rows (see the module docs). Reads the heads
    /// first, then the links, then the journals: links past a head read earlier, and journals
    /// whose link commits during the run, belong to postings made while it ran.
    pub async fn verify(&self) -> Result<Value, Problem> {
        let heads = self.heads().await?;
        let mut lanes: BTreeMap<i64, Vec<Seal>> = BTreeMap::new();
        let mut sealed: HashMap<String, i64> = HashMap::new();
        for row in self
            .all(
                "gl_seal",
                "journal_id, lane, seq, prev_journal, prev_hash, hash",
            )
            .await?
        {
            let lane = db::id(&row, "lane")?;
            let seal = Seal {
                journal_id: db::text(&row, "journal_id")?.into(),
                seq: db::id(&row, "seq")?,
                prev_journal: db::optional_text(&row, "prev_journal"),
                prev_hash: db::text(&row, "prev_hash")?.into(),
                hash: db::text(&row, "hash")?.into(),
            };
            if heads.get(&lane).is_some_and(|head| seal.seq > head.seq) {
                continue;
            }
            sealed.insert(seal.journal_id.clone(), lane);
            lanes.entry(lane).or_default().push(seal);
        }
        let journals = self.journals().await?;

        // Lanes begun after the heads were read, if their heads exist now.
        let begun = if lanes.keys().all(|lane| heads.contains_key(lane)) {
            BTreeMap::new()
        } else {
            self.heads().await?
        };
        let mut bad = Vec::new();
        for (lane, seals) in &mut lanes {
            seals.sort_by_key(|s| s.seq);
            let head = match heads.get(lane) {
                Some(head) => Some(head),
                // Its links so far must chain; its head has moved on since.
                None if begun.contains_key(lane) => None,
                None => {
                    bad.push(Bad {
                        order: None,
                        journal_id: seals
                            .last()
                            .map(|s| s.journal_id.clone())
                            .unwrap_or_default(),
                        reason: format!("deleted: lane {lane}'s head is gone, its links remain"),
                    });
                    continue;
                }
            };
            if let Some(found) = walk(*lane, seals, head, &journals, &sealed) {
                bad.push(found);
            }
        }
        for (lane, head) in &heads {
            if !lanes.contains_key(lane) {
                bad.push(Bad {
                    order: None,
                    journal_id: head.journal.clone().unwrap_or_default(),
                    reason: format!("deleted: lane {lane}'s head names it, and no link is left"),
                });
            }
        }
        let unsealed: Vec<&String> = journals
            .keys()
            .filter(|id| !sealed.contains_key(*id))
            .collect();
        for journal_id in self.still_unsealed(&unsealed).await? {
            bad.push(Bad {
                order: Some(journals[&journal_id].recorded_at.clone()),
                journal_id,
                reason: "not in the chain: the ledger did not write it".into(),
            });
        }

        bad.sort_by(|a, b| {
            let key = |bad: &Bad| {
                (
                    bad.order.is_none(),
                    bad.order.clone(),
                    bad.journal_id.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        let first = bad.first();
        Ok(json!({
            "ok": bad.is_empty(),
            "journals": sealed.len(),
            "first_bad": first.map(|b| &b.journal_id),
            "reason": first.map(|b| &b.reason),
            "bad": bad.iter().take(MAX_BAD).map(|b| json!({"journal_id": b.journal_id, "reason": b.reason})).collect::<Vec<_>>(),
            "lanes": heads.iter().map(|(lane, head)| json!({"lane": lane, "seq": head.seq, "head": head.hash})).collect::<Vec<_>>(),
        }))
    }

    /// Every lane's head now.
    pub(crate) async fn heads(&self) -> Result<BTreeMap<i64, Head>, Problem> {
        let rows = self
            .db
            .query(
                self.client,
                "SELECT lane, seq, head_journal, head_hash FROM gl_chain",
                vec![],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    db::id(row, "lane")?,
                    Head {
                        seq: db::id(row, "seq")?,
                        journal: Some(db::text(row, "head_journal")?.into()),
                        hash: db::text(row, "head_hash")?.into(),
                    },
                ))
            })
            .collect()
    }

    /// Every row of `table` (keyed by `journal_id`), paged.
    async fn all(&self, table: &str, columns: &str) -> Result<Vec<Row>, Problem> {
        let mut rows = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .db
                .query(
                    self.client,
                    &format!(
                        "SELECT {columns} FROM {table} WHERE journal_id > ?1
                          ORDER BY journal_id LIMIT {PAGE}"
                    ),
                    vec![json!(after)],
                )
                .await?;
            let full = page.len() == PAGE;
            if let Some(last) = page.last() {
                after = db::text(last, "journal_id")?.into();
            }
            rows.extend(page);
            if !full {
                return Ok(rows);
            }
        }
    }

    /// Every journal as stored, by id.
    async fn journals(&self) -> Result<HashMap<String, Journal>, Problem> {
        let headers = self
            .all(
                "gl_journal",
                "journal_id, posting_time, memo, external_ref, reverses, recorded_at",
            )
            .await?;
        let mut entries: HashMap<String, Vec<Row>> = HashMap::new();
        let mut after = 0;
        loop {
            let page = self
                .db
                .query(
                    self.client,
                    &format!(
                        "SELECT id, journal_id, line_no, account, currency, debit, credit, memo
                           FROM gl_entry WHERE id > ?1 ORDER BY id LIMIT {PAGE}"
                    ),
                    vec![json!(after)],
                )
                .await?;
            if let Some(last) = page.last() {
                after = db::id(last, "id")?;
            }
            let full = page.len() == PAGE;
            for row in page {
                entries
                    .entry(db::text(&row, "journal_id")?.into())
                    .or_default()
                    .push(row);
            }
            if !full {
                break;
            }
        }
        let mut journals = HashMap::with_capacity(headers.len());
        for header in &headers {
            let id = db::text(header, "journal_id")?;
            let mut lines = entries.remove(id).unwrap_or_default();
            lines.sort_by_key(|row| db::id(row, "line_no").unwrap_or_default());
            journals.insert(id.to_owned(), Journal::from_rows(header, &lines)?);
        }
        Ok(journals)
    }

    /// Those of `journal_ids` that still have no link (the others were posted during the run).
    async fn still_unsealed(&self, journal_ids: &[&String]) -> Result<Vec<String>, Problem> {
        let mut unsealed = Vec::new();
        for chunk in journal_ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("?{n}")).collect();
            let rows = self
                .db
                .query(
                    self.client,
                    &format!(
                        "SELECT journal_id FROM gl_seal WHERE journal_id IN ({})",
                        placeholders.join(", ")
                    ),
                    chunk.iter().map(|id| json!(id)).collect(),
                )
                .await?;
            let now: Vec<&str> = rows
                .iter()
                .map(|row| db::text(row, "journal_id"))
                .collect::<Result<_, _>>()?;
            unsealed.extend(
                chunk
                    .iter()
                    .filter(|id| !now.contains(&id.as_str()))
                    .map(|id| (*id).clone()),
            );
        }
        Ok(unsealed)
    }
}

/// The first bad journal of one lane, walking its links in order from the genesis link to
/// `head` (`None`: a lane begun during the run, whose links read must chain but whose head
/// has moved on).
fn walk(
    lane: i64,
    seals: &[Seal],
    head: Option<&Head>,
    journals: &HashMap<String, Journal>,
    sealed: &HashMap<String, i64>,
) -> Option<Bad> {
    let mut before = Head::genesis();
    for seal in seals {
        let order = || {
            journals
                .get(&seal.journal_id)
                .map(|j| j.recorded_at.clone())
        };
        if seal.seq != before.seq + 1 || seal.prev_journal != before.journal {
            // A link is missing between `before` and this one: the journal it names as its
            // predecessor, when that one has no link any more.
            let missing = seal
                .prev_journal
                .clone()
                .filter(|prev| !sealed.contains_key(prev));
            return Some(match missing {
                Some(journal_id) => Bad {
                    order: order(),
                    reason: format!(
                        "deleted: lane {lane} link {} is gone; {} names it as the journal before it",
                        seal.seq - 1,
                        seal.journal_id
                    ),
                    journal_id,
                },
                None => Bad {
                    order: order(),
                    journal_id: seal.journal_id.clone(),
                    reason: format!("its link (lane {lane}, seq {}) was altered", seal.seq),
                },
            });
        }
        let Some(journal) = journals.get(&seal.journal_id) else {
            return Some(Bad {
                order: order(),
                journal_id: seal.journal_id.clone(),
                reason: format!("deleted: its link (lane {lane}, seq {}) remains", seal.seq),
            });
        };
        let recomputed = link(&before.hash, &journal.fingerprint());
        if seal.prev_hash != before.hash || recomputed.as_deref() != Some(seal.hash.as_str()) {
            return Some(Bad {
                order: order(),
                journal_id: seal.journal_id.clone(),
                reason: format!(
                    "altered: its header or lines no longer hash to its link (lane {lane}, seq {})",
                    seal.seq
                ),
            });
        }
        before = Head {
            seq: seal.seq,
            journal: Some(seal.journal_id.clone()),
            hash: seal.hash.clone(),
        };
    }
    if let Some(head) = head
        && before != *head
    {
        let journal_id = head.journal.clone().unwrap_or_default();
        return Some(Bad {
            order: None,
            reason: format!(
                "deleted: lane {lane}'s head is link {} ({journal_id}) but its links end at {}",
                head.seq, before.seq
            ),
            journal_id,
        });
    }
    None
}
