//! The event store is the truth and the snapshot a cache of it: `verify` replays every stream
//! of `inv_event` from nothing and compares the result with `stock_bin` and `stock_value`,
//! field by field.
//!
//! A replay applies each event's legs that fall in the event's own stream (an event touching
//! two warehouses is stored once per stream, each copy carrying all legs), in `seq` order, and
//! checks that every stream's `seq` runs 1, 2, 3, … without a gap. Run it while the tenant is
//! quiet: a write committing between its reads shows up as a difference.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use switchyard_contracts::Problem;
use switchyard_service_kit::{Money, Quantity, Sign};

use crate::Inventory;
use crate::db;
use crate::engine::stream_id;

type BinKey = (String, String, String, String);

/// What a replay of the event store gives: per bin (item, warehouse, bin, lot) on hand and
/// reserved; per stream on hand, value and last seq; and what could not be replayed.
#[derive(Debug, Default, PartialEq)]
pub struct Replayed {
    pub bins: BTreeMap<BinKey, (i64, i64)>,
    pub streams: BTreeMap<String, (i64, i64, i64)>,
    pub broken: Vec<String>,
}

/// One stored event: its stream, seq and payload.
pub struct Stored {
    pub stream: String,
    pub seq: i64,
    pub payload: Value,
}

fn quantity_field(leg: &Value, name: &str) -> Option<i64> {
    Some(Quantity::parse(leg[name].as_str()?, Sign::Any, "").ok()?.0)
}

fn money_field(leg: &Value, name: &str) -> Option<i64> {
    Some(Money::parse(leg[name].as_str()?, Sign::Any, "").ok()?.0)
}

/// Replays `events` (any order) into the snapshot they imply.
pub fn replay(mut events: Vec<Stored>) -> Replayed {
    events.sort_by(|a, b| (&a.stream, a.seq).cmp(&(&b.stream, b.seq)));
    let mut out = Replayed::default();
    for event in &events {
        let head = out.streams.entry(event.stream.clone()).or_default();
        if event.seq != head.2 + 1 {
            out.broken.push(format!(
                "stream {} has seq {} after {}",
                event.stream, event.seq, head.2
            ));
        }
        head.2 = event.seq;
        let legs = event.payload["legs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for leg in &legs {
            let text = |name: &str| leg[name].as_str().unwrap_or_default().to_owned();
            if stream_id(&text("item"), &text("warehouse")) != event.stream {
                continue;
            }
            let (Some(on_hand), Some(reserved), Some(value)) = (
                quantity_field(leg, "on_hand"),
                quantity_field(leg, "reserved"),
                money_field(leg, "value"),
            ) else {
                out.broken.push(format!(
                    "stream {} seq {}: unreadable leg {leg}",
                    event.stream, event.seq
                ));
                continue;
            };
            let head = out.streams.entry(event.stream.clone()).or_default();
            head.0 += on_hand;
            head.1 += value;
            let bin = out
                .bins
                .entry((text("item"), text("warehouse"), text("bin"), text("lot")))
                .or_default();
            bin.0 += on_hand;
            bin.1 += reserved;
        }
    }
    out
}

fn difference(table: &str, key: &str, field: &str, stored: String, replayed: String) -> Value {
    json!({"table": table, "key": key, "field": field, "snapshot": stored, "replayed": replayed})
}

impl Inventory<'_> {
    pub async fn verify(&self) -> Result<Value, Problem> {
        let events = db::all(
            self.db,
            self.client,
            "SELECT id, stream, seq, payload FROM inv_event",
            "",
            vec![],
            &["id"],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(Stored {
                stream: db::text(row, "stream")?,
                seq: db::int(row, "seq")?,
                payload: db::json_text(row, "payload")?,
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
        let count = events.len();
        let replayed = replay(events);
        let bins = db::all(
            self.db,
            self.client,
            "SELECT item, warehouse, bin, lot, on_hand, reserved FROM stock_bin",
            "",
            vec![],
            &["item", "warehouse", "bin", "lot"],
        )
        .await?;
        let heads = db::all(
            self.db,
            self.client,
            "SELECT item, warehouse, on_hand, value, seq FROM stock_value",
            "",
            vec![],
            &["item", "warehouse"],
        )
        .await?;
        let mut stored_bins = BTreeMap::new();
        for row in &bins {
            let key = (
                db::text(row, "item")?,
                db::text(row, "warehouse")?,
                db::text(row, "bin")?,
                db::text(row, "lot")?,
            );
            stored_bins.insert(key, (db::int(row, "on_hand")?, db::int(row, "reserved")?));
        }
        let mut stored_heads = BTreeMap::new();
        for row in &heads {
            let key = stream_id(&db::text(row, "item")?, &db::text(row, "warehouse")?);
            let head = (
                db::int(row, "on_hand")?,
                db::int(row, "value")?,
                db::int(row, "seq")?,
            );
            stored_heads.insert(key, head);
        }
        let mut differences = Vec::new();
        let keys: BTreeSet<&BinKey> = stored_bins.keys().chain(replayed.bins.keys()).collect();
        for key in keys {
            let (item, warehouse, bin, lot) = key;
            let name = format!("{item}/{warehouse}/{bin}/{lot}");
            let stored = stored_bins.get(key).copied().unwrap_or_default();
            let again = replayed.bins.get(key).copied().unwrap_or_default();
            for (field, a, b) in [
                ("on_hand", stored.0, again.0),
                ("reserved", stored.1, again.1),
            ] {
                if a != b {
                    differences.push(difference(
                        "stock_bin",
                        &name,
                        field,
                        Quantity(a).to_string(),
                        Quantity(b).to_string(),
                    ));
                }
            }
        }
        let keys: BTreeSet<&String> = stored_heads.keys().chain(replayed.streams.keys()).collect();
        for key in keys {
            let stored = stored_heads.get(key).copied().unwrap_or_default();
            let again = replayed.streams.get(key).copied().unwrap_or_default();
            let fields = [
                (
                    "on_hand",
                    Quantity(stored.0).to_string(),
                    Quantity(again.0).to_string(),
                ),
                (
                    "value",
                    Money(stored.1).to_string(),
                    Money(again.1).to_string(),
                ),
                ("seq", stored.2.to_string(), again.2.to_string()),
            ];
            for (field, a, b) in fields {
                if a != b {
                    differences.push(difference("stock_value", key, field, a, b));
                }
            }
        }
        for broken in &replayed.broken {
            differences.push(json!({"table": "inv_event", "key": broken, "field": "seq",
                                    "snapshot": "", "replayed": ""}));
        }
        Ok(json!({
            "events": count,
            "streams": replayed.streams.len(),
            "bins": replayed.bins.len(),
            "differences": differences,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(stream: &str, seq: i64, legs: Value) -> Stored {
        Stored {
            stream: stream.into(),
            seq,
            payload: json!({"legs": legs}),
        }
    }

    #[test]
    fn a_replay_applies_each_streams_own_legs_in_seq_order() {
        let transfer = json!([
            {"item": "p", "warehouse": "a", "bin": "1", "on_hand": "-2", "reserved": "0", "value": "-4.0000"},
            {"item": "p", "warehouse": "b", "bin": "9", "on_hand": "2", "reserved": "0", "value": "4.0000"}
        ]);
        let events = vec![
            stored("p/a", 2, transfer.clone()),
            stored("p/b", 1, transfer),
            stored(
                "p/a",
                1,
                json!([{"item": "p", "warehouse": "a", "bin": "1", "lot": "L1",
                        "on_hand": "5", "reserved": "1.5", "value": "10.0000"}]),
            ),
        ];
        let replayed = replay(events);
        assert!(replayed.broken.is_empty(), "{:?}", replayed.broken);
        assert_eq!(
            replayed.streams["p/a"],
            (3_000_000, 60_000, 2),
            "5 in, 2 out; 10.0000 in, 4.0000 out"
        );
        assert_eq!(replayed.streams["p/b"], (2_000_000, 40_000, 1));
        assert_eq!(
            replayed.bins[&("p".into(), "a".into(), "1".into(), "L1".into())],
            (5_000_000, 1_500_000)
        );
        assert_eq!(
            replayed.bins[&("p".into(), "a".into(), "1".into(), "".into())],
            (-2_000_000, 0)
        );
    }

    #[test]
    fn a_gap_in_a_stream_is_reported() {
        let replayed = replay(vec![
            stored("p/a", 1, json!([])),
            stored("p/a", 3, json!([])),
        ]);
        assert_eq!(replayed.broken.len(), 1);
        assert!(replayed.broken[0].contains("seq 3 after 1"));
    }
}
