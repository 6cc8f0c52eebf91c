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

mod export;
mod import;
mod read;
mod vocabulary;

/// The namespace of this service's extension properties, prefix `sy`.
pub const NAMESPACE: &str = "urn:switchyard:epcis:";

const LOCATION: &str = "urn:switchyard:location:";
const PARTY: &str = "urn:switchyard:party:";
const UUID: &str = "urn:uuid:";

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::export::to_epcis;
    use super::read::from_epcis;
    use crate::lotevent::{Details, LotEvent, LotQty, Transformation, What};

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
}
