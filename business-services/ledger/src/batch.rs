//! `post_journals`: many journals in one db `transaction`, each idempotent.
//!
//! The batch is written optimistically: one statement on PostgreSQL (`POST_POSTGRES_BATCH`,
//! which chains the journals in SQL under the lanes' locks and adds each account's change
//! once), on SQLite each journal's batch as it would be posted alone, the links computed from
//! the heads read before. When the database refuses it, the ledger reads the batch's ids
//! once: journals already posted with the same content are answered `replayed` and left out,
//! and the rest is written again; a journal id taken by other content, or a journal a guard
//! refuses, fails the whole batch with a problem whose pointers start at `/journals/<index>`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem, event::now_rfc3339};
use switchyard_outbox::Dialect;

use crate::Ledger;
use crate::chain::{self, Head};
use crate::db;
use crate::journal::{Journal, PostParams};
use crate::statements::{Posting, batch_changes};

/// Writes a batch tries while other writers keep taking its ids or moving its lanes' heads.
const ATTEMPTS: usize = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchParams {
    journals: Vec<PostParams>,
}

/// One journal of the batch and what became of it.
struct Entry<'j> {
    index: usize,
    posting: Posting<'j>,
    replayed: bool,
}

impl Ledger<'_> {
    pub async fn post_journals(&self, params: BatchParams) -> Result<Value, Problem> {
        let recorded_at = now_rfc3339();
        let journals = params
            .journals
            .into_iter()
            .enumerate()
            .map(|(index, params)| {
                let journal = Journal::from_params(params, recorded_at.clone())
                    .map_err(|p| at_index(p, index))?;
                journal.check_balanced().map_err(|p| at_index(p, index))?;
                Ok(journal)
            })
            .collect::<Result<Vec<_>, Problem>>()?;
        let mut entries: Vec<Entry> = Vec::with_capacity(journals.len());
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        for (index, journal) in journals.iter().enumerate() {
            let posting = Posting::new(journal).map_err(|p| at_index(p, index))?;
            // The same id twice in one batch: a replay of the first, or a conflict.
            let replayed = match first_of.get(journal.journal_id.as_str()) {
                Some(&first) if entries[first].posting.fingerprint == posting.fingerprint => true,
                Some(_) => return Err(taken(&journal.journal_id, index)),
                None => {
                    first_of.insert(&journal.journal_id, index);
                    false
                }
            };
            entries.push(Entry {
                index,
                posting,
                replayed,
            });
        }
        let postings: Vec<&Posting> = entries.iter().map(|e| &e.posting).collect();
        batch_changes(&postings)?;
        self.write_batch(&mut entries).await?;
        let answers: Vec<Value> = entries
            .iter()
            .map(|e| json!({"journal_id": e.posting.journal.journal_id, "replayed": e.replayed}))
            .collect();
        let replayed = entries.iter().filter(|e| e.replayed).count();
        Ok(json!({
            "posted": entries.len() - replayed,
            "replayed": replayed,
            "journals": answers,
        }))
    }

    /// Writes the entries not yet `replayed`, marking those found posted already.
    async fn write_batch(&self, entries: &mut [Entry<'_>]) -> Result<(), Problem> {
        let postgres = self.db.dialect(self.client).await? == Dialect::Postgres;
        let mut unexplained = 0;
        for _ in 0..ATTEMPTS {
            let pending: Vec<usize> = (0..entries.len())
                .filter(|&i| !entries[i].replayed)
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            let (statements, owners, heads) =
                self.batch_statements(entries, &pending, postgres).await?;
            let refused = match self.db.transaction(self.client, statements).await {
                Ok(()) => return Ok(()),
                Err(problem) if problem.code == ErrorCode::Conflict => problem,
                Err(problem) => return Err(problem),
            };
            if self.mark_replayed(entries, &pending).await? {
                continue;
            }
            // No id was taken: the refused statement's journal says why, or another does.
            let failed = failed_statement(&refused).and_then(|s| owners.get(s).copied().flatten());
            let mut raced = false;
            for i in failed.into_iter().chain(pending.iter().copied()) {
                let entry = &entries[i];
                match self.explain_conflict(&entry.posting).await {
                    Ok(None) => {}
                    // Posted by another writer since the look above: look again.
                    Ok(Some(_)) => {
                        raced = true;
                        break;
                    }
                    Err(problem) => return Err(at_index(problem, entry.index)),
                }
            }
            // A lane head that moved under the batch (on PostgreSQL only a lane created
            // meanwhile): write it again from the new heads.
            unexplained += 1;
            let moved = if postgres {
                unexplained < 3
            } else {
                self.heads().await? != heads
            };
            if !raced && !moved {
                return Err(match failed {
                    Some(i) => at_index(refused, entries[i].index),
                    None => refused,
                });
            }
        }
        Err(Problem::new(
            ErrorCode::Conflict,
            "the batch kept meeting concurrent writes to its journals; send it again",
        ))
    }

    /// The batch's statements, for each statement the entry it belongs to, and on SQLite the
    /// lane heads they were computed from.
    async fn batch_statements(
        &self,
        entries: &[Entry<'_>],
        pending: &[usize],
        postgres: bool,
    ) -> Result<(Vec<Value>, Vec<Option<usize>>, BTreeMap<i64, Head>), Problem> {
        let mut statements = Vec::new();
        let mut owners = Vec::new();
        if postgres {
            let postings: Vec<&Posting> = pending.iter().map(|&i| &entries[i].posting).collect();
            let (sql, params) = self.postgres_batch(&postings)?;
            statements.push(self.write(sql, params));
            owners.push(None);
            for &i in pending {
                statements.extend(self.outbox_row(&entries[i].posting));
                owners.resize(statements.len(), Some(i));
            }
            return Ok((statements, owners, BTreeMap::new()));
        }
        let read = self.heads().await?;
        let mut heads = read.clone();
        for &i in pending {
            let posting = &entries[i].posting;
            let journal = posting.journal;
            let lane = chain::lane(&journal.journal_id);
            statements.extend(self.sqlite_posting(posting));
            let head = heads.entry(lane).or_insert_with(Head::genesis);
            statements.extend(self.chain_statements(
                &journal.journal_id,
                &posting.fingerprint,
                lane,
                head,
            )?);
            // The next journal of this lane in the batch links to this one.
            *head = head.next(&journal.journal_id, &posting.fingerprint);
            statements.extend(self.outbox_row(posting));
            owners.resize(statements.len(), Some(i));
        }
        Ok((statements, owners, read))
    }

    /// Marks the pending entries already posted with the same content as `replayed`; a pending
    /// id posted with other content fails the batch. Answers whether any was marked.
    async fn mark_replayed(
        &self,
        entries: &mut [Entry<'_>],
        pending: &[usize],
    ) -> Result<bool, Problem> {
        let ids: BTreeSet<&str> = pending
            .iter()
            .map(|&i| entries[i].posting.journal.journal_id.as_str())
            .collect();
        let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("?{n}")).collect();
        let rows = self
            .db
            .query(
                self.client,
                &format!(
                    "SELECT journal_id, fingerprint FROM gl_journal WHERE journal_id IN ({})",
                    placeholders.join(", ")
                ),
                ids.iter().map(|id| json!(id)).collect(),
            )
            .await?;
        let mut stored = HashMap::new();
        for row in &rows {
            stored.insert(
                db::text(row, "journal_id")?.to_owned(),
                db::text(row, "fingerprint")?.to_owned(),
            );
        }
        let mut marked = false;
        for &i in pending {
            let entry = &mut entries[i];
            let journal = entry.posting.journal;
            match stored.get(&journal.journal_id) {
                Some(fingerprint) if *fingerprint == entry.posting.fingerprint => {
                    entry.replayed = true;
                    marked = true;
                }
                Some(_) => {
                    self.check_lines(journal)
                        .await
                        .map_err(|p| at_index(p, entry.index))?;
                    return Err(taken(&journal.journal_id, entry.index));
                }
                None => {}
            }
        }
        Ok(marked)
    }
}

/// `conflict` for journal `index` of the batch, whose id was posted with other content.
fn taken(journal_id: &str, index: usize) -> Problem {
    at_index(
        Problem::new(
            ErrorCode::Conflict,
            format!(
                "journal {journal_id} was already posted with other content; journal ids are \
                 never reused"
            ),
        ),
        index,
    )
}

/// `problem` about journal `index` of the batch: its detail says which, and every pointer
/// starts at `/journals/<index>` (the journal itself when the problem named no field).
fn at_index(mut problem: Problem, index: usize) -> Problem {
    let prefix = format!("/journals/{index}");
    problem.detail = format!("journals[{index}]: {}", problem.detail);
    if problem.errors.is_empty() {
        problem.errors.push(FieldError {
            pointer: prefix,
            detail: problem.detail.clone(),
        });
    } else {
        for error in &mut problem.errors {
            error.pointer = format!("{prefix}{}", error.pointer);
        }
    }
    problem
}

/// The index of the statement a refused `transaction` names (`/statements/<n>/…`).
fn failed_statement(problem: &Problem) -> Option<usize> {
    problem.errors.iter().find_map(|e| {
        e.pointer
            .strip_prefix("/statements/")?
            .split('/')
            .next()?
            .parse()
            .ok()
    })
}
