//! Writes: posting and reversing journals, closing periods. Each is one db `transaction`
//! call, so a journal's header, events, entries, balances and outbox row commit together or
//! not at all; nothing is ever updated or deleted except the balance totals, which only grow.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Event, Problem, event::now_rfc3339};
use switchyard_service_kit::clock;

use crate::Ledger;
use crate::db::{self, Row};
use crate::journal::{Journal, PostParams};

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

/// gl_entry rows per multi-row insert: 6 parameters a row (2 more shared by all rows) stay
/// within a statement's 999, and a 500-line journal needs 4 statements, not 500.
const ENTRIES_PER_STATEMENT: usize = 160;
/// gl_balance rows per multi-row upsert (4 parameters a row).
const BALANCES_PER_STATEMENT: usize = 240;

/// The event store stream of one journal.
pub fn stream(journal_id: &str) -> String {
    format!("journal-{journal_id}")
}

impl Ledger<'_> {
    pub async fn post_journal(&self, params: PostParams) -> Result<Value, Problem> {
        let journal = Journal::from_params(params, now_rfc3339())?;
        journal.check_balanced()?;
        self.check_lines(&journal).await?;
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

    /// Stores `journal` (already checked) in one transaction, or explains why the database
    /// refused it.
    async fn record(&self, journal: &Journal) -> Result<Value, Problem> {
        let fingerprint = journal.fingerprint();
        let payload = journal.to_json();
        let mut statements = vec![
            self.header_statement(journal, &fingerprint),
            self.event_statement(
                &stream(&journal.journal_id),
                1,
                "journal.posted",
                &payload,
                &journal.recorded_at,
            ),
        ];
        if let Some(original) = &journal.reverses {
            // Seq 2 of the original's stream: UNIQUE (stream, seq) is a second guard, beside
            // gl_journal's UNIQUE (reverses), that a journal is reversed once.
            statements.push(self.event_statement(
                &stream(original),
                2,
                "journal.reversed",
                &json!({
                    "journal_id": original,
                    "reversed_by": journal.journal_id,
                    "posting_time": journal.posting_time,
                }),
                &journal.recorded_at,
            ));
        }
        statements.extend(self.entry_statements(journal));
        statements.extend(self.balance_statements(journal)?);
        if let Some(outbox) = self.outbox {
            let event = Event::new(crate::JOURNAL_POSTED, "/services/ledger", "ledger", payload)
                .with_key(&journal.journal_id)
                .with_subject(&journal.journal_id);
            statements.push(outbox.statement(self.client.tenant(), &event));
        }
        match self.db.transaction(self.client, statements).await {
            Ok(()) => Ok(journal.posted(false)),
            Err(problem) if problem.code == ErrorCode::Conflict => {
                self.explain_conflict(journal, &fingerprint, problem).await
            }
            Err(problem) => Err(problem),
        }
    }

    /// The journal header insert, which is also the closed-period check.
    ///
    /// A `transaction` call is a batch of writes with no reads between them, so the ledger
    /// cannot look at the period and then decide inside the same transaction. Instead the
    /// header's `in_open_period` column (NOT NULL) is filled by a sub-select that yields NULL
    /// when the books are closed at or after the posting time: the insert then violates
    /// NOT NULL, the database rolls the whole batch back, and the provider answers
    /// `conflict`. [`Ledger::explain_conflict`] looks up which guard fired. The check and the
    /// write are one statement, so no close can slip between them.
    fn header_statement(&self, journal: &Journal, fingerprint: &str) -> Value {
        self.db.statement(
            "INSERT INTO gl_journal (journal_id, posting_time, memo, external_ref, reverses,
                                     fingerprint, recorded_at, in_open_period)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                     (SELECT CASE WHEN EXISTS (SELECT 1 FROM gl_period WHERE closed_through >= ?2)
                                  THEN NULL ELSE 1 END))",
            vec![
                json!(journal.journal_id),
                json!(journal.posting_time),
                json!(journal.memo),
                json!(journal.external_ref),
                json!(journal.reverses),
                json!(fingerprint),
                json!(journal.recorded_at),
            ],
        )
    }

    fn event_statement(
        &self,
        stream: &str,
        seq: i64,
        event_type: &str,
        payload: &Value,
        recorded_at: &str,
    ) -> Value {
        self.db.statement(
            "INSERT INTO acc_event (stream, seq, event_type, payload, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![
                json!(stream),
                json!(seq),
                json!(event_type),
                json!(payload.to_string()),
                json!(recorded_at),
            ],
        )
    }

    fn entry_statements(&self, journal: &Journal) -> Vec<Value> {
        journal
            .lines
            .chunks(ENTRIES_PER_STATEMENT)
            .map(|chunk| {
                let mut params = vec![json!(journal.journal_id), json!(journal.posting_time)];
                let mut rows = Vec::with_capacity(chunk.len());
                for line in chunk {
                    let n = params.len();
                    rows.push(format!(
                        "(?1, ?{}, ?{}, ?{}, ?{}, ?{}, ?2, ?{})",
                        n + 1,
                        n + 2,
                        n + 3,
                        n + 4,
                        n + 5,
                        n + 6
                    ));
                    let (debit, credit) = line.debit_credit();
                    params.extend([
                        json!(line.line),
                        json!(line.account),
                        json!(line.currency),
                        json!(debit),
                        json!(credit),
                        json!(line.memo),
                    ]);
                }
                self.db.statement(
                    &format!(
                        "INSERT INTO gl_entry (journal_id, line_no, account, currency, debit, \
                         credit, posting_time, memo) VALUES {}",
                        rows.join(", ")
                    ),
                    params,
                )
            })
            .collect()
    }

    /// The projection's increments, computed by the database (`total = total + change`), so
    /// concurrent postings to one account each add their own change and none is lost; the
    /// ledger never reads a total and writes it back.
    fn balance_statements(&self, journal: &Journal) -> Result<Vec<Value>, Problem> {
        let changes = journal.balance_changes()?;
        Ok(changes
            .chunks(BALANCES_PER_STATEMENT)
            .map(|chunk| {
                let mut params = Vec::with_capacity(chunk.len() * 4);
                let mut rows = Vec::with_capacity(chunk.len());
                for (account, currency, debit, credit) in chunk {
                    let n = params.len();
                    rows.push(format!("(?{}, ?{}, ?{}, ?{})", n + 1, n + 2, n + 3, n + 4));
                    params.extend([json!(account), json!(currency), json!(debit), json!(credit)]);
                }
                self.db.statement(
                    &format!(
                        "INSERT INTO gl_balance (account, currency, debit_total, credit_total)
                         VALUES {}
                         ON CONFLICT (account, currency) DO UPDATE
                            SET debit_total = gl_balance.debit_total + excluded.debit_total,
                                credit_total = gl_balance.credit_total + excluded.credit_total",
                        rows.join(", ")
                    ),
                    params,
                )
            })
            .collect())
    }

    /// Why the database refused a posting with `conflict`, in the order the guards matter to
    /// the caller: the journal id is taken (an idempotent replay, or another journal), the
    /// period is closed, the original was already reversed. Anything else (a balance total
    /// beyond its limit) is answered as the database's own conflict.
    async fn explain_conflict(
        &self,
        journal: &Journal,
        fingerprint: &str,
        refused: Problem,
    ) -> Result<Value, Problem> {
        if let Some(stored) = self.journal(&journal.journal_id).await? {
            if stored.fingerprint == fingerprint {
                return Ok(stored.journal.posted(true));
            }
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!(
                    "journal {} was already posted with other content; journal ids are \
                     never reused",
                    journal.journal_id
                ),
            ));
        }
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
        Err(refused)
    }

    /// A stored journal with its fingerprint, or `None`.
    async fn journal(&self, journal_id: &str) -> Result<Option<Stored>, Problem> {
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

struct Stored {
    journal: Journal,
    fingerprint: String,
}
