//! Reads: balances, the trial balance, account statements and the event store.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem};
use switchyard_service_kit::{Money, clock};

use crate::Ledger;
use crate::db::{self, PAGE, Row};
use crate::journal::{Line, Side};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceParams {
    account: String,
    currency: Option<String>,
    as_of: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialBalanceParams {
    as_of: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementParams {
    account: String,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    stream: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

impl Ledger<'_> {
    pub async fn balance(&self, params: BalanceParams) -> Result<Value, Problem> {
        let account = self.account(&params.account, "/account").await?;
        if let Some(currency) = &params.currency
            && *currency != account.currency
        {
            // Which currency an account is kept in is data, not schema (ADR 23): 422.
            return Err(Problem::new(
                ErrorCode::ParamsUnprocessable,
                format!("account {} is kept in {}", account.code, account.currency),
            )
            .with_errors(vec![FieldError {
                pointer: "/currency".into(),
                detail: format!("account {} has no {currency} balance", account.code),
            }]));
        }
        let as_of = params
            .as_of
            .map(|t| clock::normalize(&t, "/as_of"))
            .transpose()?;
        let rows = match &as_of {
            Some(as_of) => {
                self.db
                    .query(
                        self.client,
                        "SELECT COALESCE(SUM(debit), 0) AS debit_total,
                                COALESCE(SUM(credit), 0) AS credit_total
                           FROM gl_entry WHERE account = ?1 AND currency = ?2 AND posting_time <= ?3",
                        vec![json!(account.code), json!(account.currency), json!(as_of)],
                    )
                    .await?
            }
            None => {
                self.db
                    .query(
                        self.client,
                        "SELECT debit_total, credit_total FROM gl_balance
                          WHERE account = ?1 AND currency = ?2",
                        vec![json!(account.code), json!(account.currency)],
                    )
                    .await?
            }
        };
        let (debit, credit) = match rows.first() {
            Some(row) => (
                db::integer(row, "debit_total")?,
                db::integer(row, "credit_total")?,
            ),
            None => (0, 0),
        };
        let side = account.normal_side();
        let balance = match side {
            Side::Debit => debit - credit,
            Side::Credit => credit - debit,
        };
        Ok(json!({
            "account": account.code,
            "currency": account.currency,
            "normal_side": side.as_str(),
            "debit_total": Money::format_sum(debit),
            "credit_total": Money::format_sum(credit),
            "balance": Money::format_sum(balance),
            "as_of": as_of,
        }))
    }

    /// Per-account totals from the projection (or from the entries up to `as_of`), and per
    /// currency their sums, added up here in `i128` rather than by the database, whose
    /// 64-bit `SUM` could overflow across many accounts.
    pub async fn trial_balance(&self, params: TrialBalanceParams) -> Result<Value, Problem> {
        let as_of = params
            .as_of
            .map(|t| clock::normalize(&t, "/as_of"))
            .transpose()?;
        let mut accounts = Vec::new();
        let mut currencies: BTreeMap<String, (i128, i128)> = BTreeMap::new();
        let (mut after_account, mut after_currency) = (String::new(), String::new());
        loop {
            // Keyset paging on (account, currency), the projection's primary key.
            let after = "(account > ?1 OR (account = ?1 AND currency > ?2))";
            let rows = match &as_of {
                Some(as_of) => {
                    self.db
                        .query(
                            self.client,
                            &format!(
                                "SELECT account, currency, SUM(debit) AS debit_total,
                                        SUM(credit) AS credit_total
                                   FROM gl_entry WHERE posting_time <= ?3 AND {after}
                                  GROUP BY account, currency ORDER BY account, currency LIMIT {PAGE}"
                            ),
                            vec![json!(after_account), json!(after_currency), json!(as_of)],
                        )
                        .await?
                }
                None => {
                    self.db
                        .query(
                            self.client,
                            &format!(
                                "SELECT account, currency, debit_total, credit_total
                                   FROM gl_balance WHERE {after}
                                  ORDER BY account, currency LIMIT {PAGE}"
                            ),
                            vec![json!(after_account), json!(after_currency)],
                        )
                        .await?
                }
            };
            for row in &rows {
                let currency = db::text(row, "currency")?;
                let debit = db::integer(row, "debit_total")?;
                let credit = db::integer(row, "credit_total")?;
                let sums = currencies.entry(currency.to_owned()).or_default();
                sums.0 += debit;
                sums.1 += credit;
                accounts.push(json!({
                    "account": db::text(row, "account")?,
                    "currency": currency,
                    "debit_total": Money::format_sum(debit),
                    "credit_total": Money::format_sum(credit),
                }));
            }
            match rows.last() {
                Some(last) if rows.len() == PAGE => {
                    after_account = db::text(last, "account")?.into();
                    after_currency = db::text(last, "currency")?.into();
                }
                _ => break,
            }
        }
        let currencies: Vec<Value> = currencies
            .into_iter()
            .map(|(currency, (debit, credit))| {
                json!({
                    "currency": currency,
                    "debit_total": Money::format_sum(debit),
                    "credit_total": Money::format_sum(credit),
                    "balanced": debit == credit,
                })
            })
            .collect();
        let balanced = currencies.iter().all(|c| c["balanced"] == json!(true));
        Ok(json!({
            "as_of": as_of,
            "balanced": balanced,
            "currencies": currencies,
            "accounts": accounts,
        }))
    }

    /// An account's entries in recording order. The cursor is the last entry's id: recording
    /// order only ever grows at its end, so a page once read never gains an entry later
    /// (posting-time order would let a back-dated journal slip into pages already read).
    pub async fn statement(&self, params: StatementParams) -> Result<Value, Problem> {
        let account = self.account(&params.account, "/account").await?;
        let limit = params.limit.unwrap_or(100).clamp(1, 500) as usize;
        let after: i64 = match &params.cursor {
            None => 0,
            Some(cursor) => cursor.parse().map_err(|_| {
                Problem::new(
                    ErrorCode::ParamsUnprocessable,
                    "the cursor is not one this ledger gave",
                )
                .with_errors(vec![FieldError {
                    pointer: "/cursor".into(),
                    detail: "not a statement cursor".into(),
                }])
            })?,
        };
        let mut sql = String::from(
            "SELECT id, journal_id, line_no, account, currency, debit, credit, posting_time, memo
               FROM gl_entry WHERE account = ?1 AND id > ?2",
        );
        let mut values = vec![json!(account.code), json!(after), json!(limit + 1)];
        for (bound, op, pointer) in [(&params.from, ">=", "/from"), (&params.to, "<=", "/to")] {
            if let Some(time) = bound {
                values.push(json!(clock::normalize(time, pointer)?));
                sql.push_str(&format!(" AND posting_time {op} ?{}", values.len()));
            }
        }
        sql.push_str(" ORDER BY id LIMIT ?3");
        let rows = self.db.query(self.client, &sql, values).await?;
        let next_cursor = (rows.len() > limit)
            .then(|| db::id(&rows[limit - 1], "id").map(|id| id.to_string()))
            .transpose()?;
        let entries = rows
            .iter()
            .take(limit)
            .map(|row| {
                let line = Line::from_entry(row)?;
                let mut entry = line.to_json();
                let fields = entry.as_object_mut().ok_or_else(|| db::broken("a line"))?;
                fields.remove("account");
                fields.remove("currency");
                fields.insert("journal_id".into(), json!(db::text(row, "journal_id")?));
                fields.insert("posting_time".into(), json!(db::text(row, "posting_time")?));
                Ok(entry)
            })
            .collect::<Result<Vec<Value>, Problem>>()?;
        Ok(json!({
            "account": account.code,
            "currency": account.currency,
            "entries": entries,
            "next_cursor": next_cursor,
        }))
    }

    pub async fn events(&self, params: EventsParams) -> Result<Value, Problem> {
        let limit = params.limit.unwrap_or(100).clamp(1, 1000) as usize;
        let after = params.after.unwrap_or(0);
        let rows = match &params.stream {
            Some(stream) => {
                self.db
                    .query(
                        self.client,
                        "SELECT id, stream, seq, event_type, payload, recorded_at FROM acc_event
                          WHERE stream = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                        vec![json!(stream), json!(after), json!(limit + 1)],
                    )
                    .await?
            }
            None => self.event_page(after, limit + 1).await?,
        };
        let next_after = (rows.len() > limit)
            .then(|| db::id(&rows[limit - 1], "id"))
            .transpose()?;
        let events = rows
            .iter()
            .take(limit)
            .map(event_json)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({"events": events, "next_after": next_after}))
    }

    /// Up to `limit` events after id `after`, in the order recorded.
    pub async fn event_page(&self, after: i64, limit: usize) -> Result<Vec<Row>, Problem> {
        self.db
            .query(
                self.client,
                "SELECT id, stream, seq, event_type, payload, recorded_at FROM acc_event
                  WHERE id > ?1 ORDER BY id LIMIT ?2",
                vec![json!(after), json!(limit)],
            )
            .await
    }
}

/// An `acc_event` row as the `events` action answers it, its payload parsed.
pub fn event_json(row: &Row) -> Result<Value, Problem> {
    let payload: Value = serde_json::from_str(db::text(row, "payload")?)
        .map_err(|_| db::broken("an event payload that is not JSON"))?;
    Ok(json!({
        "id": db::id(row, "id")?,
        "stream": db::text(row, "stream")?,
        "seq": db::id(row, "seq")?,
        "event_type": db::text(row, "event_type")?,
        "payload": payload,
        "recorded_at": db::text(row, "recorded_at")?,
    }))
}
