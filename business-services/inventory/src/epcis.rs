//! GS1 EPCIS 2.0: the lot events of a period as an EPCIS JSON-LD document, and such a
//! document imported back.
//!
//! | lot event | EPCIS event |
//! |---|---|
//! | receiving | `ObjectEvent`, `ADD`, bizStep `receiving`, the lot's ILMD (expiry, supplier, quality) |
//! | transformation (split, merge, production) | `TransformationEvent`, input and output quantity lists |
//! | shipping | `ObjectEvent`, `OBSERVE`, bizStep `shipping`, a despatch advice and the customer as destination |
//! | waste | `ObjectEvent`, `OBSERVE`, bizStep `destroying`, disposition `destroyed` |
//!
//! Lots are class-level identifiers with quantities, LGTIN-style (item class + lot): the GS1
//! Digital Link `https://id.gs1.org/01/{gtin}/10/{lot}` when the item has a GTIN, else
//! `urn:switchyard:lgtin:{item}:{lot}`. Warehouses and bins, parties and business documents
//! are `urn:switchyard:…` identifiers; what EPCIS has no field for (operator, equipment, waste
//! reason, supplier, quality, the kind of transformation) travels as extension properties in
//! the namespace `urn:switchyard:epcis:` (prefix `sy`). Import is the exact inverse of export,
//! so export → import → export gives the same document; it records traceability (lots,
//! genealogy, shipments, waste), not stock.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem};
use switchyard_service_kit::{Quantity, Sign, clock, money::LIMIT};

use crate::Inventory;
use crate::db;
use crate::lotevent::{Details, LotEvent, LotQty, Transformation, What};

/// The EPCIS 2.0 JSON-LD context.
pub const CONTEXT: &str = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld";
/// The namespace of this service's extension properties, prefix `sy`.
pub const NAMESPACE: &str = "urn:switchyard:epcis:";

const DIGITAL_LINK: &str = "https://id.gs1.org/01/";
const LGTIN: &str = "urn:switchyard:lgtin:";
const LOCATION: &str = "urn:switchyard:location:";
const PARTY: &str = "urn:switchyard:party:";
const UUID: &str = "urn:uuid:";
/// Most statements one import transaction carries (the db contract allows 1000).
const BATCH: usize = 900;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    document: Value,
}

/// RFC 3986 percent-encoding of everything but unreserved characters, so free text (a
/// customer's name) can sit in a URI.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> Option<String> {
    let mut bytes = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// A business document or party identifier of this service: `urn:switchyard:{kind}:{id}`.
fn urn(kind: &str, id: &str) -> String {
    format!("urn:switchyard:{kind}:{}", encode(id))
}

fn class(lot: &LotQty) -> String {
    match &lot.gtin {
        Some(gtin) => format!("{DIGITAL_LINK}{gtin}/10/{}", encode(&lot.lot)),
        None => format!("{LGTIN}{}:{}", lot.item, lot.lot),
    }
}

/// A quantity as the JSON number EPCIS requires: an integer when whole, else the shortest
/// decimal (exact for up to 15 significant digits, which a double carries).
fn number(units: i64) -> Value {
    let scale = 10_i64.pow(Quantity::SCALE);
    if units % scale == 0 {
        return json!(units / scale);
    }
    Quantity(units)
        .to_string()
        .parse::<f64>()
        .map(|f| json!(f))
        .unwrap_or(Value::Null)
}

fn quantity_element(lot: &LotQty) -> Value {
    json!({"epcClass": class(lot), "quantity": number(lot.quantity), "uom": lot.uom})
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

/// An item, warehouse, bin or lot code (the contract's identifier pattern).
fn is_code(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && text.as_bytes()[0].is_ascii_alphanumeric()
}

/// A quantity element as a lot with an unresolved item (a GTIN, or an item code).
fn quantity_from(element: &Value) -> Result<LotQty, String> {
    let uri = element["epcClass"].as_str().ok_or("epcClass is required")?;
    let (item, gtin, lot) = if let Some(rest) = uri.strip_prefix(DIGITAL_LINK) {
        let (gtin, lot) = rest
            .split_once("/10/")
            .ok_or("a Digital Link class needs /01/{gtin}/10/{lot}")?;
        let lot = decode(lot).ok_or("malformed percent-encoding")?;
        (String::new(), Some(gtin.to_owned()), lot)
    } else if let Some(rest) = uri.strip_prefix(LGTIN) {
        let (item, lot) = rest.split_once(':').ok_or("needs {item}:{lot}")?;
        (item.to_owned(), None, lot.to_owned())
    } else {
        return Err(format!(
            "{uri:?} is not a lot class of this service ({DIGITAL_LINK}… or {LGTIN}…)"
        ));
    };
    if !is_code(&lot) || !(item.is_empty() || is_code(&item)) {
        return Err(format!(
            "{uri:?} names an item or lot outside the code pattern"
        ));
    }
    let quantity = match &element["quantity"] {
        Value::Number(n) => match n.as_i64() {
            Some(whole) => whole.checked_mul(10_i64.pow(Quantity::SCALE)),
            None => n
                .as_f64()
                .and_then(|f| Quantity::parse(&f.to_string(), Sign::Positive, "").ok())
                .map(|q| q.0),
        },
        _ => None,
    }
    .filter(|q| *q > 0 && *q <= LIMIT)
    .ok_or("quantity must be a positive number with at most 6 fraction digits")?;
    let uom = element["uom"].as_str().ok_or("uom is required")?;
    Ok(LotQty {
        item,
        gtin,
        lot,
        quantity,
        uom: uom.to_owned(),
    })
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
fn from_epcis(value: &Value, at: String) -> Result<LotEvent, Vec<FieldError>> {
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

fn invalid(detail: &str, errors: Vec<FieldError>) -> Problem {
    Problem::new(ErrorCode::ParamsInvalid, detail).with_errors(errors)
}

/// A document of the published shape whose events the inventory cannot take (EPCIS's own
/// rules, which the params schema leaves to this code): 422, not a schema violation.
fn unprocessable(detail: &str, errors: Vec<FieldError>) -> Problem {
    Problem::new(ErrorCode::ParamsUnprocessable, detail).with_errors(errors)
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

    pub async fn import_epcis(&self, p: ImportParams) -> Result<Value, Problem> {
        let doc = &p.document;
        if doc["type"] != json!("EPCISDocument") {
            return Err(invalid(
                "not an EPCIS document",
                vec![FieldError {
                    pointer: "/document/type".into(),
                    detail: "must be EPCISDocument".into(),
                }],
            ));
        }
        let Some(list) = doc["epcisBody"]["eventList"].as_array() else {
            return Err(invalid(
                "not an EPCIS document",
                vec![FieldError {
                    pointer: "/document/epcisBody/eventList".into(),
                    detail: "is required: the list of events".into(),
                }],
            ));
        };
        let mut events = Vec::new();
        let mut errors = Vec::new();
        for (i, value) in list.iter().enumerate() {
            match from_epcis(value, format!("/document/epcisBody/eventList/{i}")) {
                Ok(event) => events.push(event),
                Err(found) => errors.extend(found),
            }
        }
        if !errors.is_empty() {
            return Err(unprocessable("events that do not map onto lots", errors));
        }
        self.resolve_items(&mut events).await?;
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        if ids.iter().collect::<BTreeSet<_>>().len() != ids.len() {
            return Err(unprocessable("the document holds an eventID twice", vec![]));
        }
        let known = self.known_events(&ids).await?;
        let fresh: Vec<&LotEvent> = events
            .iter()
            .filter(|e| !known.contains(&e.event_id))
            .collect();
        let created: Vec<&str> = fresh
            .iter()
            .flat_map(|e| e.created())
            .map(|lot| lot.lot.as_str())
            .collect();
        if created.iter().collect::<BTreeSet<_>>().len() != created.len() {
            return Err(unprocessable("the document creates a lot twice", vec![]));
        }
        if let Some(lot) = self.existing_lots(&created).await?.first() {
            return Err(Problem::new(
                ErrorCode::Conflict,
                format!("lot {lot} exists already"),
            ));
        }
        let mut batch = Vec::new();
        for event in &fresh {
            let rows = event.rows(self.db, true);
            if rows.len() > BATCH {
                return Err(unprocessable(
                    "an event names too many lots to import at once",
                    vec![],
                ));
            }
            if batch.len() + rows.len() > BATCH {
                self.db
                    .transaction(self.client, std::mem::take(&mut batch))
                    .await?;
            }
            batch.extend(rows);
        }
        if !batch.is_empty() {
            self.db.transaction(self.client, batch).await?;
        }
        Ok(json!({"imported": fresh.len(), "skipped": events.len() - fresh.len()}))
    }

    /// Fills in each lot's item (from its GTIN where the class is a Digital Link) and checks
    /// that items exist and quantities are in their units.
    async fn resolve_items(&self, events: &mut [LotEvent]) -> Result<(), Problem> {
        let gtins: Vec<String> = events
            .iter()
            .flat_map(|e| e.lots())
            .filter_map(|lot| lot.gtin.clone())
            .collect();
        let gtins: Vec<&str> = gtins.iter().map(String::as_str).collect();
        let by_gtin = self.items_by_gtin(&gtins).await?;
        let codes: Vec<String> = events
            .iter()
            .flat_map(|e| e.lots())
            .filter(|lot| lot.gtin.is_none())
            .map(|lot| lot.item.clone())
            .collect();
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        let by_code = self.find_items(&codes).await?;
        let mut errors = Vec::new();
        for (i, event) in events.iter_mut().enumerate() {
            for lot in event.lots_mut() {
                let found = match &lot.gtin {
                    Some(gtin) => by_gtin.get(gtin),
                    None => by_code.get(&lot.item),
                };
                let pointer = format!("/document/epcisBody/eventList/{i}");
                match found {
                    None => errors.push(FieldError {
                        pointer,
                        detail: format!(
                            "lot {} is of an unknown item ({})",
                            lot.lot,
                            lot.gtin.as_deref().unwrap_or(&lot.item)
                        ),
                    }),
                    Some(item) if item.uom != lot.uom => errors.push(FieldError {
                        pointer,
                        detail: format!(
                            "lot {} is counted in {}, but item {} in {}",
                            lot.lot, lot.uom, item.item, item.uom
                        ),
                    }),
                    Some(item) => lot.item = item.item.clone(),
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(unprocessable("lots of unknown items", errors))
        }
    }

    async fn known_events(&self, ids: &[&str]) -> Result<BTreeSet<String>, Problem> {
        let mut known = BTreeSet::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT event_id FROM lot_event WHERE event_id IN ({})",
                db::placeholders(1, chunk.len())
            );
            let params = chunk.iter().map(|id| json!(id)).collect();
            for row in self.db.query(self.client, &sql, params).await? {
                known.insert(db::text(&row, "event_id")?);
            }
        }
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_survives_percent_encoding() {
        for text in ["ABC Corp", "Müller & Söhne/Nord", "plain-id_1.2~x", "100%"] {
            assert_eq!(decode(&encode(text)).as_deref(), Some(text));
        }
        assert_eq!(encode("ABC Corp"), "ABC%20Corp");
        assert_eq!(decode("%zz"), None);
    }

    #[test]
    fn quantities_are_json_numbers_that_read_back_exactly() {
        for units in [50_000_000_000_i64, 2_500_000, 1, 123_456_789_012] {
            let lot = LotQty {
                item: "paper".into(),
                gtin: None,
                lot: "L-1".into(),
                quantity: units,
                uom: "ST".into(),
            };
            let element = quantity_element(&lot);
            assert!(element["quantity"].is_number());
            assert_eq!(quantity_from(&element).unwrap(), lot);
        }
        let gtin = LotQty {
            item: String::new(),
            gtin: Some("09520123456788".into()),
            lot: "LOT-7".into(),
            quantity: 3_000_000,
            uom: "KGM".into(),
        };
        let element = quantity_element(&gtin);
        assert_eq!(
            element["epcClass"],
            "https://id.gs1.org/01/09520123456788/10/LOT-7"
        );
        assert_eq!(quantity_from(&element).unwrap(), gtin);
    }

    #[test]
    fn every_lot_event_reads_back_from_its_epcis_form() {
        let lot = |name: &str, quantity| LotQty {
            item: "paper".into(),
            gtin: None,
            lot: name.into(),
            quantity,
            uom: "ST".into(),
        };
        let base = |what| LotEvent {
            event_id: "0190f5a0-0000-7000-8000-000000000001".into(),
            event_time: "2025-10-15T08:30:00.000000Z".into(),
            record_time: "2025-10-15T08:31:00.000000Z".into(),
            warehouse: "WH-A".into(),
            bin: "A3-B2".into(),
            what,
        };
        let quality = json!({"moisture_pct": "4.2", "brightness": 92});
        let events = [
            base(What::Receiving {
                lot: lot("LOT-1", 5),
                details: Details {
                    supplier: Some("Acme Paper Co.".into()),
                    supplier_lot: Some("Roll #12345".into()),
                    expires_on: Some("2026-10-15".into()),
                    quality: quality.as_object().cloned(),
                },
                reference: Some("PO 77".into()),
            }),
            base(What::Transformation {
                transformation: Transformation::Split,
                inputs: vec![lot("LOT-1", 5)],
                outputs: vec![lot("LOT-1-A", 2), lot("LOT-1-B", 3)],
                details: Details::default(),
                job: Some("JOB-1".into()),
                order: Some("ORDER-1".into()),
                operator: Some("Jane Smith".into()),
                equipment: Some("Press-3".into()),
            }),
            base(What::Shipping {
                lot: lot("LOT-1-A", 2),
                shipment: "SHIP-1".into(),
                customer: "ABC Corp".into(),
                order: None,
            }),
            base(What::Waste {
                lot: lot("LOT-1-B", 1),
                reason: "color issues".into(),
                operator: None,
                equipment: Some("Press-3".into()),
                job: None,
            }),
        ];
        for event in events {
            let epcis = to_epcis(&event);
            let back = from_epcis(&epcis, "/e".into()).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(back, event, "{epcis}");
        }
    }

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
