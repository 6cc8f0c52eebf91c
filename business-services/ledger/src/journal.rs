//! A journal: what a posting says, checked before anything is stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use switchyard_contracts::{ErrorCode, FieldError, Problem};
use switchyard_service_kit::{Money, Sign, clock};

use crate::amount;
use crate::db::{self, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based position in the journal.
    pub line: i64,
    pub account: String,
    pub currency: String,
    pub side: Side,
    /// Scaled units, always positive.
    pub units: i64,
    pub memo: Option<String>,
}

impl Line {
    /// `(debit, credit)` in scaled units, one of them zero: how `gl_entry` stores a line.
    pub fn debit_credit(&self) -> (i64, i64) {
        match self.side {
            Side::Debit => (self.units, 0),
            Side::Credit => (0, self.units),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut line = json!({
            "line": self.line,
            "account": self.account,
            "currency": self.currency,
        });
        line[self.side.as_str()] = json!(Money(self.units).to_string());
        if let Some(memo) = &self.memo {
            line["memo"] = json!(memo);
        }
        line
    }

    /// A `gl_entry` row read back.
    pub fn from_entry(row: &Row) -> Result<Line, Problem> {
        let debit = db::integer(row, "debit")?;
        let credit = db::integer(row, "credit")?;
        let (side, units) = match (debit, credit) {
            (d, 0) if d > 0 => (Side::Debit, d),
            (0, c) if c > 0 => (Side::Credit, c),
            _ => {
                return Err(db::broken(&format!(
                    "an entry with debit and credit: {row:?}"
                )));
            }
        };
        Ok(Line {
            line: db::id(row, "line_no")?,
            account: db::text(row, "account")?.into(),
            currency: db::text(row, "currency")?.into(),
            side,
            units: i64::try_from(units).map_err(|_| db::broken("an amount beyond 64 bits"))?,
            memo: db::optional_text(row, "memo"),
        })
    }
}

/// A journal as stored: the header and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    pub journal_id: String,
    /// Normalised (see [`clock`]).
    pub posting_time: String,
    pub recorded_at: String,
    pub memo: Option<String>,
    pub external_ref: Option<String>,
    pub reverses: Option<String>,
    pub lines: Vec<Line>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostParams {
    journal_id: String,
    posting_time: String,
    memo: Option<String>,
    external_ref: Option<String>,
    lines: Vec<LineParams>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineParams {
    account: String,
    debit: Option<String>,
    credit: Option<String>,
    currency: String,
    memo: Option<String>,
}

/// What the idempotency fingerprint is taken over: everything a client said, normalised, in
/// a fixed field order (a struct, not a JSON map, so the bytes cannot change with a serde
/// feature elsewhere in the build). `recorded_at` is the ledger's, not the client's.
#[derive(Serialize)]
struct Canonical<'a> {
    journal_id: &'a str,
    posting_time: &'a str,
    memo: Option<&'a str>,
    external_ref: Option<&'a str>,
    reverses: Option<&'a str>,
    lines: Vec<(&'a str, &'a str, Side, i64, Option<&'a str>)>,
}

impl Journal {
    /// Checks what can be checked without the database: line count, one side per line,
    /// amounts, the posting time. `recorded_at` is the moment of the request.
    pub fn from_params(params: PostParams, recorded_at: String) -> Result<Journal, Problem> {
        if !(2..=500).contains(&params.lines.len()) {
            return Err(invalid("/lines", "a journal has 2 to 500 lines"));
        }
        let mut lines = Vec::with_capacity(params.lines.len());
        for (i, line) in params.lines.into_iter().enumerate() {
            let (side, raw, field) = match (&line.debit, &line.credit) {
                (Some(debit), None) => (Side::Debit, debit, "debit"),
                (None, Some(credit)) => (Side::Credit, credit, "credit"),
                _ => {
                    return Err(invalid(
                        &format!("/lines/{i}"),
                        "a line has exactly one of debit or credit",
                    ));
                }
            };
            lines.push(Line {
                line: i as i64 + 1,
                units: Money::parse(raw, Sign::Positive, &format!("/lines/{i}/{field}"))?.0,
                side,
                account: line.account,
                currency: line.currency,
                memo: line.memo,
            });
        }
        Ok(Journal {
            posting_time: clock::normalize(&params.posting_time, "/posting_time")?,
            journal_id: params.journal_id,
            recorded_at,
            memo: params.memo,
            external_ref: params.external_ref,
            reverses: None,
            lines,
        })
    }

    /// The journal that undoes `original`: the same lines with debit and credit swapped.
    pub fn reversal_of(
        original: &Journal,
        reversal_id: String,
        posting_time: String,
        memo: Option<String>,
        recorded_at: String,
    ) -> Journal {
        Journal {
            journal_id: reversal_id,
            posting_time,
            recorded_at,
            memo,
            external_ref: None,
            reverses: Some(original.journal_id.clone()),
            lines: original
                .lines
                .iter()
                .map(|line| Line {
                    side: line.side.opposite(),
                    ..line.clone()
                })
                .collect(),
        }
    }

    /// Debits equal credits in every currency, or `journal_unbalanced` listing each
    /// currency that is off and by how much.
    pub fn check_balanced(&self) -> Result<(), Problem> {
        let off: Vec<FieldError> = self
            .totals()
            .into_iter()
            .filter(|(_, (debit, credit))| debit != credit)
            .map(|(currency, (debit, credit))| FieldError {
                pointer: "/lines".into(),
                detail: format!(
                    "{currency}: debits {} and credits {} differ by {}",
                    Money::format_sum(debit),
                    Money::format_sum(credit),
                    Money::format_sum(debit - credit)
                ),
            })
            .collect();
        if off.is_empty() {
            return Ok(());
        }
        let summary: Vec<&str> = off.iter().map(|e| e.detail.as_str()).collect();
        Err(Problem::new(
            ErrorCode::JournalUnbalanced,
            format!(
                "journal {} does not balance: {}",
                self.journal_id,
                summary.join("; ")
            ),
        )
        .with_errors(off))
    }

    /// Total debits and credits per currency.
    pub fn totals(&self) -> BTreeMap<&str, (i128, i128)> {
        let mut totals: BTreeMap<&str, (i128, i128)> = BTreeMap::new();
        for line in &self.lines {
            let (debit, credit) = line.debit_credit();
            let entry = totals.entry(&line.currency).or_default();
            entry.0 += i128::from(debit);
            entry.1 += i128::from(credit);
        }
        totals
    }

    /// The per-account change this journal makes to the balance projection, in key order (so
    /// concurrent postings lock balance rows in one order and cannot deadlock), or
    /// `params_invalid` when one account's change would not fit a balance row.
    pub fn balance_changes(&self) -> Result<Vec<(&str, &str, i64, i64)>, Problem> {
        let mut changes: BTreeMap<(&str, &str), (i128, i128)> = BTreeMap::new();
        for line in &self.lines {
            let (debit, credit) = line.debit_credit();
            let entry = changes.entry((&line.account, &line.currency)).or_default();
            entry.0 += i128::from(debit);
            entry.1 += i128::from(credit);
        }
        changes
            .into_iter()
            .map(|((account, currency), (debit, credit))| {
                let fits = |units: i128| {
                    i64::try_from(units)
                        .ok()
                        .filter(|u| *u <= amount::TOTAL_LIMIT)
                        .ok_or_else(|| {
                            invalid(
                                "/lines",
                                &format!("the lines on account {account} add up to more than the ledger holds"),
                            )
                        })
                };
                Ok((account, currency, fits(debit)?, fits(credit)?))
            })
            .collect()
    }

    /// A hex SHA-256 of the client's content: equal for a retry, different for any other
    /// journal under the same id.
    pub fn fingerprint(&self) -> String {
        let canonical = Canonical {
            journal_id: &self.journal_id,
            posting_time: &self.posting_time,
            memo: self.memo.as_deref(),
            external_ref: self.external_ref.as_deref(),
            reverses: self.reverses.as_deref(),
            lines: self
                .lines
                .iter()
                .map(|l| {
                    (
                        l.account.as_str(),
                        l.currency.as_str(),
                        l.side,
                        l.units,
                        l.memo.as_deref(),
                    )
                })
                .collect(),
        };
        // Strings, integers and enums only: serializing cannot fail.
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }

    /// The journal's JSON: the answer's body and the `journal.posted` event's payload.
    pub fn to_json(&self) -> Value {
        let mut journal = Map::new();
        journal.insert("journal_id".into(), json!(self.journal_id));
        journal.insert("posting_time".into(), json!(self.posting_time));
        journal.insert("recorded_at".into(), json!(self.recorded_at));
        for (key, value) in [
            ("memo", &self.memo),
            ("external_ref", &self.external_ref),
            ("reverses", &self.reverses),
        ] {
            if let Some(value) = value {
                journal.insert(key.into(), json!(value));
            }
        }
        journal.insert(
            "lines".into(),
            self.lines.iter().map(Line::to_json).collect(),
        );
        Value::Object(journal)
    }

    /// The answer to a posting: the journal and whether this was a replay.
    pub fn posted(&self, replayed: bool) -> Value {
        let mut answer = self.to_json();
        answer["replayed"] = json!(replayed);
        answer
    }

    /// A `gl_journal` row and its `gl_entry` rows read back.
    pub fn from_rows(header: &Row, entries: &[Row]) -> Result<Journal, Problem> {
        Ok(Journal {
            journal_id: db::text(header, "journal_id")?.into(),
            posting_time: db::text(header, "posting_time")?.into(),
            recorded_at: db::text(header, "recorded_at")?.into(),
            memo: db::optional_text(header, "memo"),
            external_ref: db::optional_text(header, "external_ref"),
            reverses: db::optional_text(header, "reverses"),
            lines: entries
                .iter()
                .map(Line::from_entry)
                .collect::<Result<_, _>>()?,
        })
    }

    /// A `journal.posted` event's payload read back (the inverse of [`Journal::to_json`]).
    pub fn from_event(payload: &Value) -> Option<Journal> {
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        let lines = payload
            .get("lines")?
            .as_array()?
            .iter()
            .map(|line| {
                let (side, raw) = match (line.get("debit"), line.get("credit")) {
                    (Some(debit), None) => (Side::Debit, debit),
                    (None, Some(credit)) => (Side::Credit, credit),
                    _ => return None,
                };
                Some(Line {
                    line: line.get("line")?.as_i64()?,
                    account: text(line, "account")?,
                    currency: text(line, "currency")?,
                    side,
                    units: Money::parse(raw.as_str()?, Sign::Positive, "").ok()?.0,
                    memo: text(line, "memo"),
                })
            })
            .collect::<Option<Vec<Line>>>()?;
        Some(Journal {
            journal_id: text(payload, "journal_id")?,
            posting_time: text(payload, "posting_time")?,
            recorded_at: text(payload, "recorded_at")?,
            memo: text(payload, "memo"),
            external_ref: text(payload, "external_ref"),
            reverses: text(payload, "reverses"),
            lines,
        })
    }
}

/// `params_invalid` pointing at one field.
pub fn invalid(pointer: &str, detail: &str) -> Problem {
    Problem::new(ErrorCode::ParamsInvalid, detail.to_owned()).with_errors(vec![FieldError {
        pointer: pointer.into(),
        detail: detail.into(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(lines: Value) -> Result<Journal, Problem> {
        let params = serde_json::from_value(json!({
            "journal_id": "J-1",
            "posting_time": "2024-03-01T10:00:00+01:00",
            "lines": lines,
        }))
        .unwrap();
        Journal::from_params(params, "now".into())
    }

    #[test]
    fn an_unbalanced_journal_lists_every_currency_that_is_off() {
        let j = journal(json!([
            {"account": "1000", "debit": "100", "currency": "EUR"},
            {"account": "4000", "credit": "90.5", "currency": "EUR"},
            {"account": "1100", "debit": "5", "currency": "USD"},
            {"account": "4100", "credit": "5.00", "currency": "USD"},
            {"account": "1200", "debit": "1", "currency": "CHF"},
        ]))
        .unwrap();
        let problem = j.check_balanced().unwrap_err();
        assert_eq!(problem.code, ErrorCode::JournalUnbalanced);
        assert_eq!(problem.errors.len(), 2, "{:?}", problem.errors);
        assert!(
            problem
                .detail
                .contains("EUR: debits 100.0000 and credits 90.5000 differ by 9.5000")
        );
        assert!(problem.detail.contains("CHF"));
        assert!(!problem.detail.contains("USD"));
    }

    #[test]
    fn a_line_needs_exactly_one_side() {
        for bad in [
            json!([{"account": "1", "currency": "EUR"}, {"account": "2", "credit": "1", "currency": "EUR"}]),
            json!([{"account": "1", "debit": "1", "credit": "1", "currency": "EUR"}, {"account": "2", "credit": "1", "currency": "EUR"}]),
        ] {
            let problem = journal(bad).unwrap_err();
            assert_eq!(problem.errors[0].pointer, "/lines/0");
        }
    }

    #[test]
    fn the_fingerprint_ignores_spelling_and_the_recording_time_but_not_content() {
        let a = journal(json!([
            {"account": "1000", "debit": "100", "currency": "EUR"},
            {"account": "4000", "credit": "100", "currency": "EUR"},
        ]))
        .unwrap();
        let mut b = journal(json!([
            {"account": "1000", "debit": "100.00", "currency": "EUR"},
            {"account": "4000", "credit": "100.0000", "currency": "EUR"},
        ]))
        .unwrap();
        b.recorded_at = "later".into();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.lines[0].units += 1;
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn a_reversal_swaps_sides_and_an_event_payload_reads_back() {
        let original = journal(json!([
            {"account": "1000", "debit": "7.25", "currency": "EUR", "memo": "cash"},
            {"account": "4000", "credit": "7.25", "currency": "EUR"},
        ]))
        .unwrap();
        let reversal = Journal::reversal_of(
            &original,
            "R-1".into(),
            original.posting_time.clone(),
            None,
            "t".into(),
        );
        assert_eq!(reversal.lines[0].side, Side::Credit);
        assert_eq!(reversal.lines[1].side, Side::Debit);
        assert_eq!(reversal.reverses.as_deref(), Some("J-1"));
        assert_eq!(Journal::from_event(&reversal.to_json()), Some(reversal));
    }
}
