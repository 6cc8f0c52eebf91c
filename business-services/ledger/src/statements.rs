//! The SQL of a posting. PostgreSQL gets one statement (a data-modifying CTE) per journal;
//! SQLite, which has no data-modifying CTEs, a small batch in one `transaction`. Both carry
//! the same guards: a refused guard fails the write with `conflict`, and only then does the
//! ledger read to explain it (`posting::explain_conflict`).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Problem};

use crate::Ledger;
use crate::amount::TOTAL_LIMIT;
use crate::chain;
use crate::journal::Journal;

/// gl_entry rows per multi-row insert: 6 parameters a row (2 more shared by all rows) stay
/// within a statement's 999, and a 500-line journal needs 4 statements, not 500.
const ENTRIES_PER_STATEMENT: usize = 160;
/// gl_balance rows per multi-row upsert (4 parameters a row).
const BALANCES_PER_STATEMENT: usize = 240;

/// The event store stream of one journal.
pub fn stream(journal_id: &str) -> String {
    format!("journal-{journal_id}")
}

/// A posting on PostgreSQL, in one statement. `$1`–`$7` are the header, `$8` the lane, `$9`
/// the `journal.posted` payload, `$10` the `journal.reversed` payload of a reversal (NULL
/// otherwise), `$11` the lines and `$12` the per-account balance changes (JSON arrays, so
/// the text is the same for every journal).
///
/// - `guard` is NULL when the books are closed at the posting time, or when a line's
///   `(account, currency)` is not an account kept in that currency; the header's
///   `in_open_period` (NOT NULL) then refuses the statement. The accounts are looked up one by
///   one by key (`LATERAL … OFFSET 0`, which the planner cannot turn back into a join): a hash
///   join scanned the whole chart (1 ms for 5,000 accounts, 0.05 ms by key), since the planner
///   guesses 100 rows for the JSON.
/// - `link` appends the journal to its lane of the hash chain: the lane row's lock orders
///   concurrent postings of a lane, and the link is computed under it. It is the CTE the
///   final insert reads, so it runs first: every posting takes its lane lock, then the journal
///   id, then the balance rows in one order, and two postings cannot deadlock.
/// - Balances are incremented in SQL (`total + change`), never read and written back.
const POST_POSTGRES: &str = r#"WITH bal AS (
    SELECT b.a, b.c, b.d, b.k
      FROM json_to_recordset($12::json) AS b(a text, c text, d bigint, k bigint)
), guard AS (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM gl_period WHERE closed_through >= $2::text) THEN NULL
                WHEN (SELECT count(*) FROM bal, LATERAL (SELECT 1 FROM gl_account
                                                        WHERE code = bal.a AND currency = bal.c OFFSET 0) found)
                     <> (SELECT count(*) FROM bal) THEN NULL
                ELSE 1 END AS open
), header AS (
    INSERT INTO gl_journal (journal_id, posting_time, memo, external_ref, reverses, fingerprint,
                            recorded_at, in_open_period)
    SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, open FROM guard
), events AS (
    INSERT INTO acc_event (stream, seq, event_type, payload, recorded_at)
    SELECT e.stream, e.seq, e.event_type, e.payload, $7::text
      FROM (VALUES ('journal-' || $1::text, 1, 'journal.posted', $9::text),
                   ('journal-' || $5::text, 2, 'journal.reversed', $10::text))
           AS e(stream, seq, event_type, payload)
     WHERE e.stream IS NOT NULL
), entries AS (
    INSERT INTO gl_entry (journal_id, line_no, account, currency, debit, credit, posting_time, memo)
    SELECT $1::text, l.n, l.a, l.c, l.d, l.k, $2::text, l.m
      FROM json_to_recordset($11::json) AS l(n int, a text, c text, d bigint, k bigint, m text)
     ORDER BY l.n
), balances AS (
    INSERT INTO gl_balance (account, currency, debit_total, credit_total)
    SELECT a, c, d, k FROM bal ORDER BY a COLLATE "C", c COLLATE "C"
    ON CONFLICT (account, currency) DO UPDATE
       SET debit_total = gl_balance.debit_total + excluded.debit_total,
           credit_total = gl_balance.credit_total + excluded.credit_total
), link AS (
    INSERT INTO gl_chain (lane, seq, head_journal, head_hash, prev_journal, prev_hash)
    VALUES ($8::int, 1, $1::text,
            encode(sha256(decode(repeat('0', 64) || $6::text, 'hex')), 'hex'), NULL, repeat('0', 64))
    ON CONFLICT (lane) DO UPDATE
       SET seq = gl_chain.seq + 1, prev_journal = gl_chain.head_journal,
           prev_hash = gl_chain.head_hash, head_journal = excluded.head_journal,
           head_hash = encode(sha256(decode(gl_chain.head_hash || $6::text, 'hex')), 'hex')
    RETURNING lane, seq, prev_journal, prev_hash, head_hash
)
INSERT INTO gl_seal (journal_id, lane, seq, prev_journal, prev_hash, hash)
SELECT $1::text, lane, seq, prev_journal, prev_hash, head_hash FROM link"#;

/// The header's guard on SQLite: NULL (refusing the NOT NULL column) when the books are closed
/// at `?2` or a balance change of `?8` names no account kept in its currency.
const SQLITE_HEADER: &str =
    "INSERT INTO gl_journal (journal_id, posting_time, memo, external_ref, reverses,
                                 fingerprint, recorded_at, in_open_period)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                 (SELECT CASE WHEN EXISTS (SELECT 1 FROM gl_period WHERE closed_through >= ?2)
                              THEN NULL
                              WHEN (SELECT count(*) FROM json_each(?8) AS b
                                      JOIN gl_account AS a
                                        ON a.code = json_extract(b.value, '$.a')
                                       AND a.currency = json_extract(b.value, '$.c'))
                                   <> json_array_length(?8)
                              THEN NULL
                              ELSE 1 END))";

/// What a posting writes besides the chain, computed once.
pub struct Posting<'j> {
    pub journal: &'j Journal,
    pub fingerprint: String,
    pub payload: Value,
    /// `[{a, c, d, k}]`: account, currency, debit and credit change, in key order.
    balances: Value,
}

impl<'j> Posting<'j> {
    /// Refuses a journal whose change to one account would not fit a balance row.
    pub fn new(journal: &'j Journal) -> Result<Posting<'j>, Problem> {
        let balances = journal
            .balance_changes()?
            .into_iter()
            .map(|(a, c, d, k)| json!({"a": a, "c": c, "d": d, "k": k}))
            .collect();
        Ok(Posting {
            fingerprint: journal.fingerprint(),
            payload: journal.to_json(),
            journal,
            balances,
        })
    }

    /// The `journal.reversed` event's payload, for a reversal.
    fn reversed_payload(&self) -> Option<Value> {
        self.journal.reverses.as_ref().map(|original| {
            json!({
                "journal_id": original,
                "reversed_by": self.journal.journal_id,
                "posting_time": self.journal.posting_time,
            })
        })
    }

    fn header_params(&self) -> Vec<Value> {
        let j = self.journal;
        vec![
            json!(j.journal_id),
            json!(j.posting_time),
            json!(j.memo),
            json!(j.external_ref),
            json!(j.reverses),
            json!(self.fingerprint),
            json!(j.recorded_at),
        ]
    }
}

impl Ledger<'_> {
    /// A write of the ledger's. The ledger never reads the key an insert generated, so each
    /// write says so (`last_insert_id: false`) and db/postgres does not look it up per row.
    pub fn write(&self, text: &str, params: Vec<Value>) -> Value {
        let mut statement = self.db.statement(text, params);
        statement["last_insert_id"] = json!(false);
        statement
    }

    /// The posting as one PostgreSQL statement (see [`POST_POSTGRES`]).
    pub fn postgres_posting(&self, posting: &Posting, lane: i64) -> (&'static str, Vec<Value>) {
        let lines: Vec<Value> = posting
            .journal
            .lines
            .iter()
            .map(|line| {
                let (debit, credit) = line.debit_credit();
                json!({"n": line.line, "a": line.account, "c": line.currency,
                       "d": debit, "k": credit, "m": line.memo})
            })
            .collect();
        let mut params = posting.header_params();
        params.extend([
            json!(lane),
            json!(posting.payload.to_string()),
            json!(posting.reversed_payload().map(|p| p.to_string())),
            json!(Value::Array(lines).to_string()),
            json!(posting.balances.to_string()),
        ]);
        (POST_POSTGRES, params)
    }

    /// The posting as a SQLite batch, without the chain's statements
    /// ([`Ledger::chain_statements`]) and the outbox row.
    pub fn sqlite_posting(&self, posting: &Posting) -> Vec<Value> {
        let journal = posting.journal;
        let mut header = posting.header_params();
        header.push(json!(posting.balances.to_string()));
        let mut statements = vec![
            self.write(SQLITE_HEADER, header),
            self.event_statement(
                &stream(&journal.journal_id),
                1,
                "journal.posted",
                &posting.payload,
                &journal.recorded_at,
            ),
        ];
        if let (Some(original), Some(payload)) = (&journal.reverses, posting.reversed_payload()) {
            // Seq 2 of the original's stream: UNIQUE (stream, seq) is a second guard, beside
            // gl_journal's UNIQUE (reverses), that a journal is reversed once.
            statements.push(self.event_statement(
                &stream(original),
                2,
                "journal.reversed",
                &payload,
                &journal.recorded_at,
            ));
        }
        statements.extend(self.entry_statements(journal));
        statements.extend(self.balance_statements(posting));
        statements
    }

    fn event_statement(
        &self,
        stream: &str,
        seq: i64,
        event_type: &str,
        payload: &Value,
        recorded_at: &str,
    ) -> Value {
        self.write(
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
                self.write(
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
    fn balance_statements(&self, posting: &Posting) -> Vec<Value> {
        let changes = posting
            .balances
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        changes
            .chunks(BALANCES_PER_STATEMENT)
            .map(|chunk| {
                let mut params = Vec::with_capacity(chunk.len() * 4);
                let mut rows = Vec::with_capacity(chunk.len());
                for change in chunk {
                    let n = params.len();
                    rows.push(format!("(?{}, ?{}, ?{}, ?{})", n + 1, n + 2, n + 3, n + 4));
                    params.extend(["a", "c", "d", "k"].map(|key| change[key].clone()));
                }
                self.write(
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
            .collect()
    }
}

/// A batch of journals on PostgreSQL, in one statement: `$1` the headers, `$2` the recording
/// time, `$3` the lines, `$4` the balance changes summed over the batch, `$5` each journal's
/// lane, place among the batch's journals of that lane (`k`, from 1) and content digest.
///
/// `heads` locks the batch's lanes in order (`FOR UPDATE` waits for a lane's current holder
/// and reads the head it left), then `links` chains each lane's journals from its head in SQL,
/// one after the other (a recursive CTE), and `link` moves each head once. A lane nobody had
/// when `heads` ran but another posting created since is not moved (its `seq` is not the one
/// expected); its journals' seals get a NULL `seq` and the statement is refused. As in a single
/// posting, lanes are locked first and balance rows last, in key order.
const POST_POSTGRES_BATCH: &str = r#"WITH hdr AS (
    SELECT h.i, h.id, h.pt, h.memo, h.ext, h.fp, h.payload
      FROM json_to_recordset($1::json)
           AS h(i int, id text, pt text, memo text, ext text, fp text, payload text)
), bal AS (
    SELECT b.a, b.c, b.d, b.k
      FROM json_to_recordset($4::json) AS b(a text, c text, d bigint, k bigint)
), accounts AS (
    SELECT CASE WHEN (SELECT count(*) FROM bal, LATERAL (SELECT 1 FROM gl_account
                                                        WHERE code = bal.a AND currency = bal.c OFFSET 0) found)
                     = (SELECT count(*) FROM bal) THEN 1 END AS ok
), js AS (
    SELECT s.j, s.lane, s.k, s.fp
      FROM json_to_recordset($5::json) AS s(j text, lane int, k int, fp text)
), heads AS (
    SELECT lane, seq, head_journal, head_hash FROM gl_chain
     WHERE lane IN (SELECT lane FROM js) ORDER BY lane FOR UPDATE
), links AS (
    WITH RECURSIVE r (lane, k, seq, j, pj, ph, h) AS (
        SELECT js.lane, js.k, coalesce(heads.seq, 0) + 1, js.j, heads.head_journal::text,
               coalesce(heads.head_hash::text, repeat('0', 64)),
               encode(sha256(decode(coalesce(heads.head_hash::text, repeat('0', 64)) || js.fp,
                                    'hex')), 'hex')
          FROM js LEFT JOIN heads ON heads.lane = js.lane
         WHERE js.k = 1
        UNION ALL
        SELECT js.lane, js.k, r.seq + 1, js.j, r.j, r.h,
               encode(sha256(decode(r.h || js.fp, 'hex')), 'hex')
          FROM r JOIN js ON js.lane = r.lane AND js.k = r.k + 1
    )
    SELECT lane, k, seq, j, pj, ph, h FROM r
), link AS (
    INSERT INTO gl_chain (lane, seq, head_journal, head_hash, prev_journal, prev_hash)
    SELECT DISTINCT ON (lane) lane, seq, j, h, pj, ph FROM links ORDER BY lane, k DESC
    ON CONFLICT (lane) DO UPDATE
       SET seq = excluded.seq, head_journal = excluded.head_journal,
           head_hash = excluded.head_hash, prev_journal = excluded.prev_journal,
           prev_hash = excluded.prev_hash
     WHERE gl_chain.seq = excluded.seq - (SELECT max(js.k) FROM js WHERE js.lane = excluded.lane)
    RETURNING lane
), header AS (
    INSERT INTO gl_journal (journal_id, posting_time, memo, external_ref, reverses, fingerprint,
                            recorded_at, in_open_period)
    SELECT h.id, h.pt, h.memo, h.ext, NULL, h.fp, $2::text,
           CASE WHEN NOT EXISTS (SELECT 1 FROM gl_period WHERE closed_through >= h.pt)
                THEN accounts.ok END
      FROM hdr h, accounts
     ORDER BY h.i
), events AS (
    INSERT INTO acc_event (stream, seq, event_type, payload, recorded_at)
    SELECT 'journal-' || h.id, 1, 'journal.posted', h.payload, $2::text FROM hdr h ORDER BY h.i
), entries AS (
    INSERT INTO gl_entry (journal_id, line_no, account, currency, debit, credit, posting_time, memo)
    SELECT l.j, l.n, l.a, l.c, l.d, l.k, l.pt, l.m
      FROM json_to_recordset($3::json)
           AS l(o int, j text, n int, a text, c text, d bigint, k bigint, pt text, m text)
     ORDER BY l.o
), balances AS (
    INSERT INTO gl_balance (account, currency, debit_total, credit_total)
    SELECT a, c, d, k FROM bal ORDER BY a COLLATE "C", c COLLATE "C"
    ON CONFLICT (account, currency) DO UPDATE
       SET debit_total = gl_balance.debit_total + excluded.debit_total,
           credit_total = gl_balance.credit_total + excluded.credit_total
)
INSERT INTO gl_seal (journal_id, lane, seq, prev_journal, prev_hash, hash)
SELECT links.j, links.lane, CASE WHEN link.lane IS NOT NULL THEN links.seq END,
       links.pj, links.ph, links.h
  FROM links LEFT JOIN link ON link.lane = links.lane"#;

impl Ledger<'_> {
    /// Journals `postings` (none reversing another, ids distinct) as one PostgreSQL statement
    /// (see [`POST_POSTGRES_BATCH`]), or `params_unprocessable` when their changes to one
    /// account add up to more than a balance row holds.
    pub fn postgres_batch(
        &self,
        postings: &[&Posting],
    ) -> Result<(&'static str, Vec<Value>), Problem> {
        let mut headers = Vec::with_capacity(postings.len());
        let mut lines = Vec::new();
        let mut chain = Vec::with_capacity(postings.len());
        let mut per_lane: BTreeMap<i64, i64> = BTreeMap::new();
        for (i, posting) in postings.iter().enumerate() {
            let j = posting.journal;
            headers.push(
                json!({"i": i, "id": j.journal_id, "pt": j.posting_time, "memo": j.memo,
                                "ext": j.external_ref, "fp": posting.fingerprint,
                                "payload": posting.payload.to_string()}),
            );
            for line in &j.lines {
                let (debit, credit) = line.debit_credit();
                lines.push(json!({"o": lines.len(), "j": j.journal_id, "n": line.line,
                                  "a": line.account, "c": line.currency, "d": debit,
                                  "k": credit, "pt": j.posting_time, "m": line.memo}));
            }
            let lane = chain::lane(&j.journal_id);
            let k = per_lane.entry(lane).or_default();
            *k += 1;
            chain
                .push(json!({"j": j.journal_id, "lane": lane, "k": *k, "fp": posting.fingerprint}));
        }
        let balances = batch_changes(postings)?;

        let params = vec![
            json!(Value::Array(headers).to_string()),
            json!(postings.first().map(|p| &p.journal.recorded_at)),
            json!(Value::Array(lines).to_string()),
            json!(Value::Array(balances).to_string()),
            json!(Value::Array(chain).to_string()),
        ];
        Ok((POST_POSTGRES_BATCH, params))
    }
}

/// The batch's change to each account, `[{a, c, d, k}]` in key order, or
/// `params_unprocessable` when one adds up to more than a balance row holds (each journal
/// alone fits: [`Posting::new`] checked it).
pub fn batch_changes(postings: &[&Posting]) -> Result<Vec<Value>, Problem> {
    let mut changes: BTreeMap<(&str, &str), (i128, i128)> = BTreeMap::new();
    for line in postings.iter().flat_map(|p| &p.journal.lines) {
        let (debit, credit) = line.debit_credit();
        let change = changes.entry((&line.account, &line.currency)).or_default();
        change.0 += i128::from(debit);
        change.1 += i128::from(credit);
    }
    changes
        .into_iter()
        .map(|((a, c), (d, k))| {
            let fits = |units: i128| {
                i64::try_from(units)
                    .ok()
                    .filter(|u| *u <= TOTAL_LIMIT)
                    .ok_or_else(|| {
                        Problem::new(
                            ErrorCode::ParamsUnprocessable,
                            format!(
                                "the batch's lines on account {a} add up to more than the \
                                 ledger holds; send them in smaller batches"
                            ),
                        )
                    })
            };
            Ok(json!({"a": a, "c": c, "d": fits(d)?, "k": fits(k)?}))
        })
        .collect()
}
