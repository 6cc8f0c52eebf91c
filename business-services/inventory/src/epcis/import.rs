//! `import_epcis`: an EPCIS document's events recorded as lot events, those already known
//! skipped.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, FieldError, Problem};

use super::read::from_epcis;
use crate::Inventory;
use crate::db;
use crate::lotevent::LotEvent;

/// Most statements one import transaction carries (the db contract allows 1000).
const BATCH: usize = 900;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    document: Value,
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
