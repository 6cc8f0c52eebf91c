//! Replaying the event store: the proof that the projections (`gl_entry`, `gl_balance`) say
//! exactly what the events say.
//!
//! The replay builds a fresh projection in memory, never touching the live tables, and
//! compares. It holds every entry of the tenant in memory at once: fine for an audit run,
//! and the place to start streaming a comparison if ledgers outgrow it.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchyard_contracts::Problem;
use switchyard_service_kit::Money;

use crate::Ledger;
use crate::db::{self, PAGE};
use crate::journal::{Journal, Line};

/// Differences listed in an answer; `equal` still counts all of them.
const MAX_DIFFERENCES: usize = 100;

/// A projection: entries by `journal_id#line`, totals by `account currency`.
#[derive(Default)]
struct Projection {
    entries: BTreeMap<String, Value>,
    balances: BTreeMap<String, (i128, i128)>,
}

/// An entry under its key, as both sides of the comparison describe it.
fn entry(journal_id: &str, posting_time: &str, line: &Line) -> (String, Value) {
    let mut entry = line.to_json();
    entry["journal_id"] = json!(journal_id);
    entry["posting_time"] = json!(posting_time);
    (format!("{journal_id}#{}", line.line), entry)
}

impl Projection {
    fn add(&mut self, journal_id: &str, posting_time: &str, line: &Line) {
        let (key, value) = entry(journal_id, posting_time, line);
        self.entries.insert(key, value);
        let (debit, credit) = line.debit_credit();
        let totals = self
            .balances
            .entry(format!("{} {}", line.account, line.currency))
            .or_default();
        totals.0 += i128::from(debit);
        totals.1 += i128::from(credit);
    }
}

fn totals_json((debit, credit): (i128, i128)) -> Value {
    json!({"debit_total": Money::format_sum(debit), "credit_total": Money::format_sum(credit)})
}

/// Every key on which `replayed` and `live` disagree.
fn compare(
    kind: &str,
    replayed: &BTreeMap<String, Value>,
    live: &BTreeMap<String, Value>,
) -> Vec<Value> {
    let keys: std::collections::BTreeSet<&String> = replayed.keys().chain(live.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let (from_events, now) = (replayed.get(key), live.get(key));
            (from_events != now)
                .then(|| json!({"kind": kind, "key": key, "from_events": from_events, "live": now}))
        })
        .collect()
}

impl Ledger<'_> {
    pub async fn rebuild(&self) -> Result<Value, Problem> {
        let mut replayed = Projection::default();
        let mut events = 0_u64;
        let mut after = 0;
        loop {
            let page = self.event_page(after, PAGE).await?;
            for row in &page {
                events += 1;
                match db::text(row, "event_type")? {
                    "journal.posted" => {
                        let payload: Value = serde_json::from_str(db::text(row, "payload")?)
                            .map_err(|_| db::broken("an event payload that is not JSON"))?;
                        let journal = Journal::from_event(&payload).ok_or_else(|| {
                            db::broken(&format!("an unreadable journal event: {payload}"))
                        })?;
                        for line in &journal.lines {
                            replayed.add(&journal.journal_id, &journal.posting_time, line);
                        }
                    }
                    // The reversing journal's own `journal.posted` carries its lines; this
                    // event only marks the original's stream.
                    "journal.reversed" => {}
                    other => return Err(db::broken(&format!("an unknown event type {other:?}"))),
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = db::id(last, "id")?,
                _ => break,
            }
        }

        let mut live = Projection::default();
        let mut after = 0;
        loop {
            let page = self
                .db
                .query(
                    self.client,
                    &format!(
                        "SELECT id, journal_id, line_no, account, currency, debit, credit,
                                posting_time, memo
                           FROM gl_entry WHERE id > ?1 ORDER BY id LIMIT {PAGE}"
                    ),
                    vec![json!(after)],
                )
                .await?;
            for row in &page {
                let (key, value) = entry(
                    db::text(row, "journal_id")?,
                    db::text(row, "posting_time")?,
                    &Line::from_entry(row)?,
                );
                live.entries.insert(key, value);
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = db::id(last, "id")?,
                _ => break,
            }
        }
        let (mut after_account, mut after_currency) = (String::new(), String::new());
        loop {
            let page = self
                .db
                .query(
                    self.client,
                    &format!(
                        "SELECT account, currency, debit_total, credit_total FROM gl_balance
                          WHERE account > ?1 OR (account = ?1 AND currency > ?2)
                          ORDER BY account, currency LIMIT {PAGE}"
                    ),
                    vec![json!(after_account), json!(after_currency)],
                )
                .await?;
            for row in &page {
                live.balances.insert(
                    format!(
                        "{} {}",
                        db::text(row, "account")?,
                        db::text(row, "currency")?
                    ),
                    (
                        db::integer(row, "debit_total")?,
                        db::integer(row, "credit_total")?,
                    ),
                );
            }
            match page.last() {
                Some(last) if page.len() == PAGE => {
                    after_account = db::text(last, "account")?.into();
                    after_currency = db::text(last, "currency")?.into();
                }
                _ => break,
            }
        }

        let balances = |p: &Projection| -> BTreeMap<String, Value> {
            p.balances
                .iter()
                .map(|(key, totals)| (key.clone(), totals_json(*totals)))
                .collect()
        };
        let mut differences = compare("entry", &replayed.entries, &live.entries);
        differences.extend(compare("balance", &balances(&replayed), &balances(&live)));
        let equal = differences.is_empty();
        differences.truncate(MAX_DIFFERENCES);
        Ok(json!({"events": events, "equal": equal, "differences": differences}))
    }
}
