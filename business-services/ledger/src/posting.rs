//! Writes: posting and reversing journals, closing periods. Each is one db call (one
//! statement on PostgreSQL, see `statements`), so a journal's header, events, entries,
//! balances, link of the hash chain and outbox row commit together or not at all; nothing is
//! ever updated or deleted except the balance totals, which only grow, and the chain's heads.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Event, Problem, event::now_rfc3339};
use switchyard_outbox::Dialect;
use switchyard_service_kit::clock;

use crate::Ledger;
use crate::chain;
use crate::db::{self, Row};
use crate::journal::{Journal, PostParams};
use crate::statements::Posting;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReverseParams {
    journal_id: String,
    reversal_id: String,
    posting_time: String,
    memo: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    journal_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseParams {
    through: String,
}

/// Writes a SQLite posting tries while other postings keep moving its lane's head.
const HEAD_ATTEMPTS: usize = 50;

impl Ledger<'_> {
    pub async fn post_journal(&self, params: PostParams) -> Result<Value, Problem> {
        let journal = Journal::from_params(params, now_rfc3339())?;
        journal.check_balanced()?;
        self.record(&journal).await
    }

    pub async fn reverse_journal(&self, params: ReverseParams) -> Result<Value, Problem> {
        let posting_time = clock::normalize(&params.posting_time, "/posting_time")?;
        let original = self.journal(&params.journal_id).await?.ok_or_else(|| {
            Problem::new(
                ErrorCode::ResourceNotFound,
                format!("journal {} does not exist", params.journal_id),
            )
        })?;
        let reversal = Journal::reversal_of(
            &original.journal,
            params.reversal_id,
            posting_time,
            params.memo,
            now_rfc3339(),
        );
        self.record(&reversal).await
    }

    pub async fn get_journal(&self, params: GetParams) -> Result<Value, Problem> {
        let stored = self.journal(&params.journal_id).await?.ok_or_else(|| {
            Problem::new(
                ErrorCode::ResourceNotFound,
                format!("journal {} does not exist", params.journal_id),
            )
        })?;
        let mut answer = stored.journal.to_json();
        answer["reversed_by"] = json!(self.reversed_by(&params.journal_id).await?);
        Ok(answer)
    }

    pub async fn close_period(&self, params: CloseParams) -> Result<Value, Problem> {
        let through = clock::normalize(&params.through, "/through")?;
        let closed_at = now_rfc3339();
        // Forwards only, decided by the database in the same statement: the update's WHERE
        // makes a backwards close change no row.
        let changed = self
            .db
            .execute(
                self.client,
                "INSERT INTO gl_period (id, closed_through, closed_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE
                    SET closed_through = excluded.closed_through, closed_at = excluded.closed_at
                  WHERE gl_period.closed_through <= excluded.closed_through",
                vec![json!(through), json!(closed_at)],
            )
            .await?;
        if changed == 0 {
            let current = self.closed_through().await?.unwrap_or_default();
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!(
                    "the books are closed through {current}; a period is never reopened, so \
                     {through} is refused"
                ),
            ));
        }
        Ok(json!({"closed_through": through, "closed_at": closed_at}))
    }

    /// Stores `journal` (checked as far as the database is not needed) in one transaction,
    /// or explains why the database refused it.
    pub(crate) async fn record(&self, journal: &Journal) -> Result<Value, Problem> {
        let posting = Posting::new(journal)?;
        let lane = chain::lane(&journal.journal_id);
        if self.db.dialect(self.client).await? == Dialect::Postgres {
            let (sql, params) = self.postgres_posting(&posting, lane);
            let mut statements = vec![self.write(sql, params)];
            statements.extend(self.outbox_row(&posting));
            let written = self.db.transaction(self.client, statements).await;
            return self.answer(&posting, written).await;
        }
        // SQLite: the link is computed here from the head read before the write; a head
        // moved by another posting meanwhile refuses the batch, and the posting is retried.
        let mut attempts = 0;
        loop {
            let head = self.head(lane).await?;
            let mut statements = self.sqlite_posting(&posting);
            statements.extend(self.chain_statements(
                &journal.journal_id,
                &posting.fingerprint,
                lane,
                &head,
            )?);
            statements.extend(self.outbox_row(&posting));
            attempts += 1;
            match self.db.transaction(self.client, statements).await {
                Ok(()) => return Ok(journal.posted(false)),
                Err(problem) if problem.code == ErrorCode::Conflict => {
                    if let Some(replayed) = self.explain_conflict(&posting).await? {
                        return Ok(replayed);
                    }
                    if attempts < HEAD_ATTEMPTS && self.head(lane).await? != head {
                        continue;
                    }
                    return Err(problem);
                }
                Err(problem) => return Err(problem),
            }
        }
    }

    /// The outbox row of `ledger.journal.posted`, when the ledger has a bus.
    pub(crate) fn outbox_row(&self, posting: &Posting) -> Option<Value> {
        let outbox = self.outbox?;
        let journal_id = &posting.journal.journal_id;
        let event = Event::new(
            crate::JOURNAL_POSTED,
            "/services/ledger",
            "ledger",
            posting.payload.clone(),
        )
        .with_key(journal_id)
        .with_subject(journal_id);
        Some(outbox.statement(self.client.tenant(), &event))
    }

    /// The answer to a write: the posted journal, or why the database refused it.
    async fn answer(
        &self,
        posting: &Posting<'_>,
        written: Result<(), Problem>,
    ) -> Result<Value, Problem> {
        match written {
            Ok(()) => Ok(posting.journal.posted(false)),
            Err(problem) if problem.code == ErrorCode::Conflict => {
                Ok(self.explain_conflict(posting).await?.ok_or(problem)?)
            }
            Err(problem) => Err(problem),
        }
    }

    /// Why the database refused a posting with `conflict`, in the order the guards matter to
    /// the caller: the journal id is taken (an idempotent replay, answered `Some`, or another
    /// journal), a line's account is unknown or kept in another currency, the period is
    /// closed, the original was already reversed. `None` when no guard explains it (a balance
    /// total beyond its limit, or on SQLite a lane head that moved).
    pub(crate) async fn explain_conflict(
        &self,
        posting: &Posting<'_>,
    ) -> Result<Option<Value>, Problem> {
        let journal = posting.journal;
        if let Some(stored) = self.journal(&journal.journal_id).await? {
            if stored.fingerprint == posting.fingerprint {
                return Ok(Some(stored.journal.posted(true)));
            }
            self.check_lines(journal).await?;
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!(
                    "journal {} was already posted with other content; journal ids are \
                     never reused",
                    journal.journal_id
                ),
            ));
        }
        self.check_lines(journal).await?;
        if let Some(through) = self.closed_through().await?
            && through >= journal.posting_time
        {
            return Err(Problem::new(
                ErrorCode::PeriodClosed,
                format!(
                    "the books are closed through {through}; journal {} is dated {}",
                    journal.journal_id, journal.posting_time
                ),
            ));
        }
        if let Some(original) = &journal.reverses
            && let Some(by) = self.reversed_by(original).await?
        {
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!("journal {original} was already reversed by {by}"),
            ));
        }
        Ok(None)
    }

    /// A stored journal with its fingerprint, or `None`.
    pub(crate) async fn journal(&self, journal_id: &str) -> Result<Option<Stored>, Problem> {
        let headers = self
            .db
            .query(
                self.client,
                "SELECT journal_id, posting_time, memo, external_ref, reverses, fingerprint,
                        recorded_at
                   FROM gl_journal WHERE journal_id = ?1",
                vec![json!(journal_id)],
            )
            .await?;
        let Some(header) = headers.first() else {
            return Ok(None);
        };
        let entries = self
            .db
            .query(
                self.client,
                "SELECT line_no, account, currency, debit, credit, memo
                   FROM gl_entry WHERE journal_id = ?1 ORDER BY line_no",
                vec![json!(journal_id)],
            )
            .await?;
        Ok(Some(Stored {
            journal: Journal::from_rows(header, &entries)?,
            fingerprint: db::text(header, "fingerprint")?.into(),
        }))
    }

    async fn reversed_by(&self, journal_id: &str) -> Result<Option<String>, Problem> {
        let rows = self
            .db
            .query(
                self.client,
                "SELECT journal_id FROM gl_journal WHERE reverses = ?1",
                vec![json!(journal_id)],
            )
            .await?;
        rows.first()
            .map(|row: &Row| db::text(row, "journal_id").map(str::to_owned))
            .transpose()
    }

    async fn closed_through(&self) -> Result<Option<String>, Problem> {
        let rows = self
            .db
            .query(
                self.client,
                "SELECT closed_through FROM gl_period WHERE id = 1",
                vec![],
            )
            .await?;
        rows.first()
            .map(|row| db::text(row, "closed_through").map(str::to_owned))
            .transpose()
    }
}

pub(crate) struct Stored {
    pub journal: Journal,
    pub fingerprint: String,
}
