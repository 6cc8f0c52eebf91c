//! One EPCIS event read back as a lot event: the exact inverse of `to_epcis`, every field that
//! does not map named with its pointer.

use serde_json::{Map, Value, json};
use switchyard_contracts::FieldError;
use switchyard_service_kit::clock;

use super::vocabulary::{decode, is_code, quantity_from};
use super::{LOCATION, NAMESPACE, PARTY, UUID};
use crate::lotevent::{Details, LotEvent, LotQty, Transformation, What};

/// Reads one EPCIS event, collecting every field it cannot map with its pointer.
struct Reader<'a> {
    event: &'a Map<String, Value>,
    at: String,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    fn fail(&mut self, field: &str, detail: impl Into<String>) {
        self.errors.push(FieldError {
            pointer: format!("{}/{field}", self.at),
            detail: detail.into(),
        });
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        let event: &'a Map<String, Value> = self.event;
        event.get(name).or_else(|| {
            let extension = name.strip_prefix("sy:")?;
            event.get(&format!("{NAMESPACE}{extension}"))
        })
    }

    fn text(&mut self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            None => None,
            Some(_) => {
                self.fail(name, "must be a string");
                None
            }
        }
    }

    fn required(&mut self, name: &str) -> String {
        self.text(name).unwrap_or_else(|| {
            self.fail(name, "is required");
            String::new()
        })
    }

    fn time(&mut self, name: &str) -> Option<String> {
        let raw = self.text(name)?;
        match clock::normalize(&raw, "") {
            Ok(time) => Some(time),
            Err(_) => {
                self.fail(name, "is not an RFC 3339 date-time");
                None
            }
        }
    }

    fn quantities(&mut self, name: &str) -> Vec<LotQty> {
        let Some(Value::Array(list)) = self.get(name) else {
            self.fail(name, "is required: a list of lots with quantities");
            return vec![];
        };
        let mut lots = Vec::new();
        for (i, element) in list.iter().enumerate() {
            match quantity_from(element) {
                Ok(lot) => lots.push(lot),
                Err(why) => self.fail(&format!("{name}/{i}"), why),
            }
        }
        if lots.is_empty() && self.errors.is_empty() {
            self.fail(name, "names no lot");
        }
        lots
    }

    fn single(&mut self, name: &str) -> Option<LotQty> {
        let mut lots = self.quantities(name);
        if lots.len() > 1 {
            self.fail(name, "this service records one lot per object event");
        }
        lots.pop()
    }

    /// The business documents of the event, by this service's identifier kinds.
    fn documents(&mut self) -> Map<String, Value> {
        let mut found = Map::new();
        if let Some(Value::Array(list)) = self.get("bizTransactionList") {
            for document in list {
                let Some(uri) = document["bizTransaction"].as_str() else {
                    continue;
                };
                for kind in ["reference", "job", "order", "shipment"] {
                    if let Some(id) = uri.strip_prefix(&format!("urn:switchyard:{kind}:")) {
                        match decode(id) {
                            Some(id) => {
                                found.insert(kind.into(), json!(id));
                            }
                            None => self.fail("bizTransactionList", "malformed percent-encoding"),
                        }
                    }
                }
            }
        }
        found
    }

    fn details(&mut self) -> Details {
        let mut details = Details::default();
        let Some(Value::Object(ilmd)) = self.get("ilmd") else {
            return details;
        };
        let entry = |name: &str| {
            ilmd.get(name).or_else(|| {
                let extension = name.strip_prefix("sy:")?;
                ilmd.get(&format!("{NAMESPACE}{extension}"))
            })
        };
        if let Some(date) = entry("cbvmda:itemExpirationDate").and_then(Value::as_str) {
            match clock::date(date, "") {
                Ok(date) => details.expires_on = Some(date),
                Err(_) => self.fail("ilmd", "itemExpirationDate is not a calendar date"),
            }
        }
        details.supplier = entry("sy:supplier")
            .and_then(Value::as_str)
            .map(str::to_owned);
        details.supplier_lot = entry("sy:supplierLot")
            .and_then(Value::as_str)
            .map(str::to_owned);
        details.quality = entry("sy:quality").and_then(Value::as_object).cloned();
        details
    }

    fn location(&mut self) -> (String, String) {
        let id = self
            .get("readPoint")
            .and_then(|p| p["id"].as_str())
            .and_then(|id| id.strip_prefix(LOCATION))
            .and_then(|rest| rest.split_once(':'))
            .filter(|(warehouse, bin)| is_code(warehouse) && is_code(bin));
        match id {
            Some((warehouse, bin)) => (warehouse.to_owned(), bin.to_owned()),
            None => {
                self.fail(
                    "readPoint",
                    format!("must be {LOCATION}<warehouse>:<bin>, a bin of this service"),
                );
                (String::new(), String::new())
            }
        }
    }
}

/// A bizStep in any of its spellings (bare, CBV URN or GS1 web vocabulary).
fn biz_step(raw: &str) -> &str {
    [
        "https://ref.gs1.org/cbv/BizStep-",
        "https://gs1.org/voc/BizStep-",
        "urn:epcglobal:cbv:bizstep:",
    ]
    .iter()
    .find_map(|prefix| raw.strip_prefix(prefix))
    .unwrap_or(raw)
}

/// One EPCIS event as a lot event (items still unresolved), or what does not map.
pub fn from_epcis(value: &Value, at: String) -> Result<LotEvent, Vec<FieldError>> {
    let Some(event) = value.as_object() else {
        return Err(vec![FieldError {
            pointer: at,
            detail: "an event must be an object".into(),
        }]);
    };
    let mut r = Reader {
        event,
        at,
        errors: Vec::new(),
    };
    let event_id = match r.required("eventID") {
        id if id.starts_with(UUID) => id[UUID.len()..].to_owned(),
        id => id,
    };
    let event_time = r.time("eventTime");
    if event_time.is_none() && r.errors.is_empty() {
        r.fail("eventTime", "is required");
    }
    let record_time = r.time("recordTime").unwrap_or_else(clock::now);
    let (warehouse, bin) = r.location();
    let documents = r.documents();
    let doc = |kind: &str| {
        documents
            .get(kind)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let kind = r.required("type");
    let step = r.text("bizStep").unwrap_or_default();
    let what = match (kind.as_str(), biz_step(&step)) {
        ("ObjectEvent", "receiving") => {
            if r.text("action").as_deref() != Some("ADD") {
                r.fail("action", "a receiving event adds its lot: ADD");
            }
            r.single("quantityList").map(|lot| What::Receiving {
                lot,
                details: r.details(),
                reference: doc("reference"),
            })
        }
        ("ObjectEvent", "shipping") => {
            let customer = r
                .get("destinationList")
                .and_then(Value::as_array)
                .and_then(|list| {
                    list.iter()
                        .find_map(|d| d["destination"].as_str()?.strip_prefix(PARTY))
                })
                .and_then(decode);
            if customer.is_none() {
                r.fail("destinationList", format!("needs the customer as {PARTY}…"));
            }
            if doc("shipment").is_none() {
                r.fail(
                    "bizTransactionList",
                    "needs the shipment (urn:switchyard:shipment:…)",
                );
            }
            r.single("quantityList").map(|lot| What::Shipping {
                lot,
                shipment: doc("shipment").unwrap_or_default(),
                customer: customer.unwrap_or_default(),
                order: doc("order"),
            })
        }
        ("ObjectEvent", "destroying") => {
            let reason = r.required("sy:reason");
            let operator = r.text("sy:operator");
            let equipment = r.text("sy:equipment");
            r.single("quantityList").map(|lot| What::Waste {
                lot,
                reason,
                operator,
                equipment,
                job: doc("job"),
            })
        }
        ("TransformationEvent", _) => {
            let transformation = match r.text("sy:transformationKind") {
                None => Transformation::Production,
                Some(kind) => Transformation::parse(&kind).unwrap_or_else(|| {
                    r.fail("sy:transformationKind", "is split, merge or production");
                    Transformation::Production
                }),
            };
            let inputs = r.quantities("inputQuantityList");
            let outputs = r.quantities("outputQuantityList");
            Some(What::Transformation {
                transformation,
                inputs,
                outputs,
                details: r.details(),
                job: doc("job"),
                order: doc("order"),
                operator: r.text("sy:operator"),
                equipment: r.text("sy:equipment"),
            })
        }
        (kind, step) => {
            r.fail(
                "type",
                format!(
                    "{kind} with bizStep {step:?} is not a lot event this service records \
                     (receiving, shipping, destroying, or a TransformationEvent)"
                ),
            );
            None
        }
    };
    match (what, event_time) {
        (Some(what), Some(event_time)) if r.errors.is_empty() => Ok(LotEvent {
            event_id,
            event_time,
            record_time,
            warehouse,
            bin,
            what,
        }),
        _ => Err(r.errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_outside_the_model_are_refused_with_pointers() {
        let errors = from_epcis(
            &json!({"type": "AggregationEvent", "eventID": "urn:uuid:x",
                    "eventTime": "2025-01-01T00:00:00Z",
                    "readPoint": {"id": "urn:switchyard:location:W:B"}}),
            "/document/epcisBody/eventList/3".into(),
        )
        .unwrap_err();
        assert_eq!(errors[0].pointer, "/document/epcisBody/eventList/3/type");
        let errors = from_epcis(
            &json!({"type": "ObjectEvent", "action": "ADD", "bizStep": "receiving",
                    "eventID": "urn:uuid:x", "eventTime": "2025-01-01T00:00:00Z",
                    "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"},
                    "quantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 1}]}),
            "/e".into(),
        )
        .unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/e/readPoint", "/e/quantityList/0"]);
    }
}
