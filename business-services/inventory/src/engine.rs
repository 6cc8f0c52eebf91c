//! How every stock movement is written: one db `transaction` holding the event, the snapshot
//! updates and whatever the operation records besides (lots, genealogy, outbox), with no read
//! in between.
//!
//! **Streams.** Stock of one item in one warehouse is one event stream, `item/warehouse`,
//! whose head row in `stock_value` holds its quantity, its value (moving average cost =
//! value / quantity) and its last `seq`. An operation reads the heads of the streams it
//! touches, decides costs from them, and appends its event to each stream at the head's next
//! `seq`. `UNIQUE (stream, seq)` on `inv_event` is the optimistic lock: if another operation
//! appended first, the append fails, nothing is committed, and the operation runs again on
//! fresh heads. Costs are therefore always decided on the state they are committed against.
//!
//! **Negative stock.** The quantities themselves are never compared here: see [`refusal`].

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use switchyard_contracts::{ErrorCode, Event, Problem};
use switchyard_service_kit::money::LIMIT;
use switchyard_service_kit::{Money, Quantity, clock};

use crate::db;
use crate::{Inventory, TOPIC};

/// Attempts of an operation whose streams other operations keep appending to. Each lost
/// attempt means another operation on the same stream committed, so this bounds the number
/// of writers one call can wait behind, not a time.
const ATTEMPTS: usize = 64;

/// A stream: an item in a warehouse.
pub type StreamKey = (String, String);

pub fn stream_id(item: &str, warehouse: &str) -> String {
    format!("{item}/{warehouse}")
}

/// One change to one `stock_bin` row, and the value it moves (scaled integers, signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub item: String,
    pub warehouse: String,
    pub bin: String,
    /// `""` for stock not tracked by lot.
    pub lot: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub value: i64,
}

impl Leg {
    pub fn stream(&self) -> StreamKey {
        (self.item.clone(), self.warehouse.clone())
    }

    pub fn to_json(&self) -> Value {
        let mut leg = json!({
            "item": self.item, "warehouse": self.warehouse, "bin": self.bin,
            "on_hand": Quantity(self.on_hand).to_string(),
            "reserved": Quantity(self.reserved).to_string(),
            "value": Money(self.value).to_string(),
        });
        if !self.lot.is_empty() {
            leg["lot"] = json!(self.lot);
        }
        leg
    }
}

#[derive(Debug, Clone, Copy)]
struct Head {
    on_hand: i64,
    value: i64,
    seq: i64,
    existed: bool,
}

/// The stream heads as read before an attempt, and the running quantity and value while the
/// operation takes stock out and puts it in, so several legs on one stream cost correctly.
pub struct Heads {
    read: BTreeMap<StreamKey, Head>,
    now: BTreeMap<StreamKey, (i64, i64)>,
}

impl Heads {
    fn now(&mut self, item: &str, warehouse: &str) -> &mut (i64, i64) {
        self.now
            .entry((item.to_owned(), warehouse.to_owned()))
            .or_insert((0, 0))
    }

    /// Takes `qty` out at the moving average and answers its cost. Taking everything takes
    /// the whole value, so no rounding residue is left on an empty stream. Taking more than
    /// there is costs everything there is; the database then refuses the movement.
    pub fn take(&mut self, item: &str, warehouse: &str, qty: i64) -> i64 {
        let (on_hand, value) = self.now(item, warehouse);
        let cost = Money(*value).share(Quantity(qty), Quantity(*on_hand)).0;
        *on_hand -= qty;
        *value -= cost;
        cost
    }

    /// Puts `qty` in carrying `value`.
    pub fn put(&mut self, item: &str, warehouse: &str, qty: i64, value: i64) {
        let (on_hand, total) = self.now(item, warehouse);
        *on_hand += qty;
        *total += value;
    }

    /// What `qty` is worth at the stream's current average (zero on an empty stream).
    pub fn value_at_average(
        &mut self,
        item: &str,
        warehouse: &str,
        qty: i64,
    ) -> Result<i64, Problem> {
        let (on_hand, value) = *self.now(item, warehouse);
        if on_hand <= 0 {
            return Ok(0);
        }
        let value = Money(value).at_average(Quantity(qty), Quantity(on_hand));
        value.map(|v| v.0).ok_or_else(|| {
            Problem::new(
                ErrorCode::ParamsInvalid,
                format!("the stock of {item} in {warehouse} would exceed what is kept"),
            )
        })
    }
}

/// What an operation decided on one attempt's heads.
pub struct Plan {
    /// The event type without the `inventory.` prefix: `stock.issued`, `lot.split`, …
    pub kind: &'static str,
    /// The item or lot the event is about (CloudEvents `subject`).
    pub subject: String,
    pub legs: Vec<Leg>,
    /// The event's own fields; `event_id`, `type`, `occurred_at` and `legs` are added.
    pub fields: Map<String, Value>,
    /// More statements committed with the event (lots, genealogy, lot events).
    pub rows: Vec<Value>,
    /// The answer; `event_id` and `type` are added.
    pub result: Map<String, Value>,
}

/// What a failed statement of the batch means.
#[derive(Debug, Clone)]
enum Guard {
    /// Any other statement: its failure is reported as it is.
    Plain,
    /// A stream append: a unique violation means another operation appended first.
    Append,
    /// A snapshot update whose CHECK refuses stock the bin or stream does not have.
    Stock { what: String, release_only: bool },
    /// The record of an idempotent request: a unique violation means the same request
    /// committed first; the next attempt answers its result.
    Request,
}

enum Outcome {
    Retry,
    Refused(Problem),
}

/// Negative stock is refused by the database, atomically, not by reading and comparing here:
/// a read followed by a write would let two concurrent issues both see the last unit. Every
/// movement is written as `SET on_hand = on_hand + ?` (negative for an issue) on `stock_bin`
/// and `stock_value`, whose `CHECK (on_hand >= 0 AND reserved >= 0 AND on_hand - reserved >=
/// 0)` the database evaluates on the row as it is at commit order — after waiting for any
/// concurrent writer of that row. A violation fails the whole `transaction` with `conflict`,
/// and the failing statement's pointer (`/statements/<i>`) says which guard it was: a stock
/// update means `insufficient_stock` (or, for a release, more than is reserved), a stream
/// append means the heads were stale and the operation runs again; anything else stands.
fn refusal(problem: Problem, guards: &[Guard]) -> Outcome {
    if problem.code != ErrorCode::Conflict {
        return Outcome::Refused(problem);
    }
    let failed = problem.errors.iter().find_map(|e| {
        e.pointer
            .strip_prefix("/statements/")?
            .split('/')
            .next()?
            .parse::<usize>()
            .ok()
    });
    match failed.and_then(|index| guards.get(index)) {
        Some(Guard::Append | Guard::Request) => Outcome::Retry,
        Some(Guard::Stock {
            what,
            release_only: true,
        }) => Outcome::Refused(Problem::new(
            ErrorCode::Conflict,
            format!("cannot release more than is reserved of {what}"),
        )),
        Some(Guard::Stock { what, .. }) => Outcome::Refused(Problem::new(
            ErrorCode::InsufficientStock,
            format!("not enough available stock of {what}"),
        )),
        Some(Guard::Plain) | None => Outcome::Refused(problem),
    }
}

impl Inventory<'_> {
    /// Runs an operation on `streams`: reads their heads, lets `plan` decide, and commits the
    /// plan with its events, retrying on fresh heads when another operation appended first.
    pub async fn record(
        &self,
        streams: &[StreamKey],
        occurred_at: &str,
        plan: impl Fn(&mut Heads, &str) -> Result<Plan, Problem>,
    ) -> Result<Value, Problem> {
        self.record_once(None, streams, occurred_at, plan).await
    }

    /// [`Inventory::record`], once per `request`: a request id already recorded answers the
    /// first answer and moves nothing. The id is the caller's to keep unique per request
    /// within the tenant (a saga derives it from its order and step).
    pub async fn record_once(
        &self,
        request: Option<&str>,
        streams: &[StreamKey],
        occurred_at: &str,
        plan: impl Fn(&mut Heads, &str) -> Result<Plan, Problem>,
    ) -> Result<Value, Problem> {
        let event_id = uuid::Uuid::now_v7().to_string();
        for _ in 0..ATTEMPTS {
            // Before planning: the first request's movement may be what the plan would now
            // refuse (a lot it created, stock it took).
            if let Some(request) = request
                && let Some(result) = self.answered(request).await?
            {
                return Ok(result);
            }
            let mut heads = self.heads(streams).await?;
            let plan = plan(&mut heads, &event_id)?;
            let (mut statements, mut guards, result) =
                self.batch(&heads, plan, &event_id, occurred_at)?;
            if let Some(request) = request {
                statements.push(self.db.statement(
                    "INSERT INTO inv_request (request_id, result) VALUES (?1, ?2)",
                    vec![json!(request), json!(result.to_string())],
                ));
                guards.push(Guard::Request);
            }
            match self.db.transaction(self.client, statements).await {
                Ok(()) => return Ok(result),
                Err(problem) => match refusal(problem, &guards) {
                    Outcome::Retry => continue,
                    Outcome::Refused(problem) => return Err(problem),
                },
            }
        }
        Err(Problem::new(
            ErrorCode::Conflict,
            format!("{ATTEMPTS} other operations on the same stock committed first; send it again"),
        )
        .with_retryable(true))
    }

    /// The answer of request `request` if it was recorded.
    pub(crate) async fn answered(&self, request: &str) -> Result<Option<Value>, Problem> {
        let rows = self
            .db
            .query(
                self.client,
                "SELECT result FROM inv_request WHERE request_id = ?1",
                vec![json!(request)],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let result = db::text(row, "result")?;
        serde_json::from_str(&result).map(Some).map_err(|e| {
            Problem::new(
                ErrorCode::Internal,
                format!("stored answer of {request}: {e}"),
            )
        })
    }

    async fn heads(&self, streams: &[StreamKey]) -> Result<Heads, Problem> {
        let mut read = BTreeMap::new();
        for (item, warehouse) in streams {
            read.insert(
                (item.clone(), warehouse.clone()),
                Head {
                    on_hand: 0,
                    value: 0,
                    seq: 0,
                    existed: false,
                },
            );
        }
        let keys: Vec<StreamKey> = read.keys().cloned().collect();
        for chunk in keys.chunks(200) {
            let mut params = Vec::new();
            let mut terms = Vec::new();
            for (item, warehouse) in chunk {
                terms.push(format!(
                    "(item = ?{} AND warehouse = ?{})",
                    params.len() + 1,
                    params.len() + 2
                ));
                params.push(json!(item));
                params.push(json!(warehouse));
            }
            let sql = format!(
                "SELECT item, warehouse, on_hand, value, seq FROM stock_value WHERE {}",
                terms.join(" OR ")
            );
            for row in self.db.query(self.client, &sql, params).await? {
                let key = (db::text(&row, "item")?, db::text(&row, "warehouse")?);
                read.insert(
                    key,
                    Head {
                        on_hand: db::int(&row, "on_hand")?,
                        value: db::int(&row, "value")?,
                        seq: db::int(&row, "seq")?,
                        existed: true,
                    },
                );
            }
        }
        let now = read
            .iter()
            .map(|(key, head)| (key.clone(), (head.on_hand, head.value)))
            .collect();
        Ok(Heads { read, now })
    }

    /// The statements of one attempt, each with what its failure would mean, and the answer.
    /// Order matters on PostgreSQL: the stream heads come first (in key order, so two
    /// operations on the same streams lock them in the same order and cannot deadlock), then
    /// the appends, so a stale attempt fails on its append before any stock check can
    /// misreport it.
    fn batch(
        &self,
        heads: &Heads,
        plan: Plan,
        event_id: &str,
        occurred_at: &str,
    ) -> Result<(Vec<Value>, Vec<Guard>, Value), Problem> {
        let recorded_at = clock::now();
        let mut per_stream: BTreeMap<StreamKey, (i64, i64)> = BTreeMap::new();
        let mut per_bin: BTreeMap<(String, String, String, String), (i64, i64)> = BTreeMap::new();
        for leg in &plan.legs {
            if !heads.read.contains_key(&leg.stream()) {
                return Err(Problem::new(
                    ErrorCode::Internal,
                    format!("a movement on {} outside the operation's streams", leg.item),
                ));
            }
            let stream = per_stream.entry(leg.stream()).or_default();
            stream.0 += leg.on_hand;
            stream.1 += leg.value;
            let bin = per_bin
                .entry((
                    leg.item.clone(),
                    leg.warehouse.clone(),
                    leg.bin.clone(),
                    leg.lot.clone(),
                ))
                .or_default();
            bin.0 += leg.on_hand;
            bin.1 += leg.reserved;
        }
        let type_name = format!("inventory.{}", plan.kind);
        let mut payload = Map::new();
        payload.insert("event_id".into(), json!(event_id));
        payload.insert("type".into(), json!(type_name));
        payload.insert("occurred_at".into(), json!(occurred_at));
        payload.extend(plan.fields);
        payload.insert(
            "legs".into(),
            Value::Array(plan.legs.iter().map(Leg::to_json).collect()),
        );
        let payload = Value::Object(payload);
        let payload_text = payload.to_string();

        let mut statements = Vec::new();
        let mut guards = Vec::new();
        let mut push = |statement: Value, guard: Guard| {
            statements.push(statement);
            guards.push(guard);
        };
        let mut primary = None;
        for ((item, warehouse), head) in &heads.read {
            let (on_hand, value) = per_stream
                .get(&(item.clone(), warehouse.clone()))
                .copied()
                .unwrap_or_default();
            // The CHECK would refuse these too, but as if stock were short.
            if head.on_hand + on_hand > LIMIT || head.value + value > LIMIT {
                return Err(Problem::new(
                    ErrorCode::ParamsInvalid,
                    format!("the stock of {item} in {warehouse} would exceed what is kept"),
                ));
            }
            if !head.existed {
                push(
                    self.db.statement(
                        "INSERT INTO stock_value (item, warehouse, on_hand, value, seq)
                         VALUES (?1, ?2, 0, 0, 0) ON CONFLICT (item, warehouse) DO NOTHING",
                        vec![json!(item), json!(warehouse)],
                    ),
                    Guard::Plain,
                );
            }
            push(
                self.db.statement(
                    "UPDATE stock_value SET on_hand = on_hand + ?1, value = value + ?2, seq = ?3
                     WHERE item = ?4 AND warehouse = ?5 AND seq = ?6",
                    vec![
                        json!(on_hand),
                        json!(value),
                        json!(head.seq + 1),
                        json!(item),
                        json!(warehouse),
                        json!(head.seq),
                    ],
                ),
                Guard::Stock {
                    what: format!("{item} in {warehouse}"),
                    release_only: false,
                },
            );
            let stream = stream_id(item, warehouse);
            push(
                self.db.statement(
                    "INSERT INTO inv_event (event_id, stream, seq, event_type, payload, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    vec![
                        json!(event_id),
                        json!(stream),
                        json!(head.seq + 1),
                        json!(type_name),
                        json!(payload_text),
                        json!(recorded_at),
                    ],
                ),
                Guard::Append,
            );
            primary.get_or_insert(stream);
        }
        for ((item, warehouse, bin, lot), (on_hand, reserved)) in per_bin {
            let params = vec![
                json!(item),
                json!(warehouse),
                json!(bin),
                json!(lot),
                json!(recorded_at),
            ];
            push(
                self.db.statement(
                    "INSERT INTO stock_bin (item, warehouse, bin, lot, on_hand, reserved, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 0, 0, ?5)
                     ON CONFLICT (item, warehouse, bin, lot) DO NOTHING",
                    params.clone(),
                ),
                Guard::Plain,
            );
            let mut what = format!("{item} in {warehouse}/{bin}");
            if !lot.is_empty() {
                what.push_str(&format!(" (lot {lot})"));
            }
            push(
                self.db.statement(
                    "UPDATE stock_bin SET on_hand = on_hand + ?6, reserved = reserved + ?7,
                     updated_at = ?5 WHERE item = ?1 AND warehouse = ?2 AND bin = ?3 AND lot = ?4",
                    [params, vec![json!(on_hand), json!(reserved)]].concat(),
                ),
                Guard::Stock {
                    what,
                    release_only: on_hand == 0 && reserved < 0,
                },
            );
        }
        for row in plan.rows {
            push(row, Guard::Plain);
        }
        if let Some(outbox) = self.outbox {
            let mut event = Event::new(&type_name, "/services/inventory", TOPIC, payload)
                .with_subject(plan.subject);
            event.id = event_id.to_owned();
            if let Some(stream) = primary {
                event = event.with_key(stream);
            }
            push(outbox.statement(self.client.tenant(), &event), Guard::Plain);
        }
        let mut result = plan.result;
        result.insert("event_id".into(), json!(event_id));
        result.insert("type".into(), json!(type_name));
        Ok((statements, guards, Value::Object(result)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_contracts::FieldError;

    fn conflict_at(index: usize) -> Problem {
        Problem::new(ErrorCode::Conflict, "CHECK constraint failed").with_errors(vec![FieldError {
            pointer: format!("/statements/{index}/sql"),
            detail: "CHECK constraint failed".into(),
        }])
    }

    #[test]
    fn a_refused_stock_update_is_insufficient_stock_and_a_lost_append_a_retry() {
        let guards = [
            Guard::Plain,
            Guard::Append,
            Guard::Stock {
                what: "paper in main/A1".into(),
                release_only: false,
            },
            Guard::Stock {
                what: "paper in main/A1".into(),
                release_only: true,
            },
        ];
        assert!(matches!(refusal(conflict_at(1), &guards), Outcome::Retry));
        let Outcome::Refused(short) = refusal(conflict_at(2), &guards) else {
            panic!("a stock guard is not retried");
        };
        assert_eq!(short.code, ErrorCode::InsufficientStock);
        assert!(short.detail.contains("paper in main/A1"));
        let Outcome::Refused(release) = refusal(conflict_at(3), &guards) else {
            panic!("a release guard is not retried");
        };
        assert_eq!(release.code, ErrorCode::Conflict);
        for other in [
            conflict_at(0),
            conflict_at(9),
            Problem::new(ErrorCode::Timeout, "slow"),
        ] {
            let code = other.code;
            let Outcome::Refused(kept) = refusal(other, &guards) else {
                panic!("only appends are retried");
            };
            assert_eq!(kept.code, code);
        }
    }

    #[test]
    fn taking_everything_takes_the_whole_value_and_partial_takes_round() {
        let mut heads = Heads {
            read: BTreeMap::new(),
            now: BTreeMap::from([(("p".into(), "w".into()), (3_000_000, 100_000))]),
        };
        assert_eq!(heads.take("p", "w", 1_000_000), 33_333);
        assert_eq!(heads.value_at_average("p", "w", 1_000_000), Ok(33_334));
        assert_eq!(heads.take("p", "w", 2_000_000), 66_667);
        assert_eq!(heads.now[&("p".into(), "w".into())], (0, 0));
        heads.put("p", "w", 2_000_000, 50_000);
        assert_eq!(heads.take("p", "w", 5_000_000), 50_000);
    }
}
