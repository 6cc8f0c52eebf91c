//! `export_epcis`: the lot events of a period as an EPCIS 2.0 JSON-LD document.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_service_kit::clock;

use super::vocabulary::{encode, quantity_element};
use super::{LOCATION, NAMESPACE, PARTY, UUID};
use crate::Inventory;
use crate::db;
use crate::lotevent::{Details, LotEvent, Transformation, What};

/// The EPCIS 2.0 JSON-LD context.
pub const CONTEXT: &str = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    from: String,
    to: String,
}

/// A business document or party identifier of this service: `urn:switchyard:{kind}:{id}`.
fn urn(kind: &str, id: &str) -> String {
    format!("urn:switchyard:{kind}:{}", encode(id))
}

fn event_uri(event_id: &str) -> String {
    match uuid::Uuid::parse_str(event_id) {
        Ok(_) => format!("{UUID}{event_id}"),
        Err(_) => event_id.to_owned(),
    }
}

fn ilmd(details: &Details) -> Option<Value> {
    let mut ilmd = Map::new();
    if let Some(date) = &details.expires_on {
        ilmd.insert("cbvmda:itemExpirationDate".into(), json!(date));
    }
    if let Some(supplier) = &details.supplier {
        ilmd.insert("sy:supplier".into(), json!(supplier));
    }
    if let Some(lot) = &details.supplier_lot {
        ilmd.insert("sy:supplierLot".into(), json!(lot));
    }
    if let Some(quality) = &details.quality {
        ilmd.insert("sy:quality".into(), Value::Object(quality.clone()));
    }
    (!ilmd.is_empty()).then_some(Value::Object(ilmd))
}

/// One lot event as an EPCIS 2.0 event.
pub fn to_epcis(event: &LotEvent) -> Value {
    let mut e = Map::new();
    let mut put = |name: &str, value: Value| {
        e.insert(name.to_owned(), value);
    };
    put("eventTime", json!(event.event_time));
    put("eventTimeZoneOffset", json!("+00:00"));
    put("recordTime", json!(event.record_time));
    put("eventID", json!(event_uri(&event.event_id)));
    put(
        "readPoint",
        json!({"id": format!("{LOCATION}{}:{}", event.warehouse, event.bin)}),
    );
    put(
        "bizLocation",
        json!({"id": format!("{LOCATION}{}", event.warehouse)}),
    );
    let mut documents = Vec::new();
    let mut document = |kind: &str, prefix: &str, id: &Option<String>| {
        if let Some(id) = id {
            documents.push(json!({"type": kind, "bizTransaction": urn(prefix, id)}));
        }
    };
    match &event.what {
        What::Receiving {
            lot,
            details,
            reference,
        } => {
            put("type", json!("ObjectEvent"));
            put("action", json!("ADD"));
            put("bizStep", json!("receiving"));
            put("disposition", json!("in_progress"));
            put("quantityList", json!([quantity_element(lot)]));
            document("po", "reference", reference);
            if let Some(ilmd) = ilmd(details) {
                put("ilmd", ilmd);
            }
        }
        What::Transformation {
            transformation,
            inputs,
            outputs,
            details,
            job,
            order,
            operator,
            equipment,
        } => {
            put("type", json!("TransformationEvent"));
            put(
                "inputQuantityList",
                inputs.iter().map(quantity_element).collect(),
            );
            put(
                "outputQuantityList",
                outputs.iter().map(quantity_element).collect(),
            );
            put(
                "bizStep",
                json!(match transformation {
                    Transformation::Production => "creating_class_instance",
                    Transformation::Split | Transformation::Merge => "repackaging",
                }),
            );
            put("sy:transformationKind", json!(transformation.as_str()));
            document("prodorder", "job", job);
            document("po", "order", order);
            if let Some(operator) = operator {
                put("sy:operator", json!(operator));
            }
            if let Some(equipment) = equipment {
                put("sy:equipment", json!(equipment));
            }
            if let Some(ilmd) = ilmd(details) {
                put("ilmd", ilmd);
            }
        }
        What::Shipping {
            lot,
            shipment,
            customer,
            order,
        } => {
            put("type", json!("ObjectEvent"));
            put("action", json!("OBSERVE"));
            put("bizStep", json!("shipping"));
            put("disposition", json!("in_transit"));
            put("quantityList", json!([quantity_element(lot)]));
            document("desadv", "shipment", &Some(shipment.clone()));
            document("po", "order", order);
            put(
                "destinationList",
                json!([{"type": "owning_party", "destination": format!("{PARTY}{}", encode(customer))}]),
            );
        }
        What::Waste {
            lot,
            reason,
            operator,
            equipment,
            job,
        } => {
            put("type", json!("ObjectEvent"));
            put("action", json!("OBSERVE"));
            put("bizStep", json!("destroying"));
            put("disposition", json!("destroyed"));
            put("quantityList", json!([quantity_element(lot)]));
            document("prodorder", "job", job);
            put("sy:reason", json!(reason));
            if let Some(operator) = operator {
                put("sy:operator", json!(operator));
            }
            if let Some(equipment) = equipment {
                put("sy:equipment", json!(equipment));
            }
        }
    }
    if !documents.is_empty() {
        e.insert("bizTransactionList".into(), Value::Array(documents));
    }
    Value::Object(e)
}

/// An EPCIS document holding `events`. Its `creationDate` is the newest record time among
/// them (`at` when there are none), so the same events always give the same document.
pub fn document(events: &[LotEvent], at: &str) -> Value {
    let created = events
        .iter()
        .map(|e| e.record_time.as_str())
        .max()
        .unwrap_or(at);
    json!({
        "@context": [CONTEXT, {"sy": NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created,
        "epcisBody": {"eventList": events.iter().map(to_epcis).collect::<Vec<_>>()},
    })
}

impl Inventory<'_> {
    pub async fn export_epcis(&self, p: ExportQuery) -> Result<Value, Problem> {
        let from = clock::normalize(&p.from, "/from")?;
        let to = clock::normalize(&p.to, "/to")?;
        let rows = db::all(
            self.db,
            self.client,
            "SELECT id, event_time, payload FROM lot_event",
            "event_time >= ?1 AND event_time < ?2",
            vec![json!(from), json!(to)],
            &["event_time", "id"],
        )
        .await?;
        let events = rows
            .iter()
            .map(|row| {
                serde_json::from_value(db::json_text(row, "payload")?).map_err(|e| {
                    Problem::new(
                        ErrorCode::Internal,
                        format!("a stored lot event is unreadable: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<LotEvent>, Problem>>()?;
        Ok(json!({"events": events.len(), "document": document(&events, &from)}))
    }
}
