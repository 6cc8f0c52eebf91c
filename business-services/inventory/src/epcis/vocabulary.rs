//! Lots and quantities as EPCIS quantity elements (class URIs and JSON numbers), both ways.

use serde_json::{Value, json};
use switchyard_service_kit::{Quantity, Sign, money::LIMIT};

use crate::lotevent::LotQty;

const DIGITAL_LINK: &str = "https://id.gs1.org/01/";
const LGTIN: &str = "urn:switchyard:lgtin:";

/// RFC 3986 percent-encoding of everything but unreserved characters, so free text (a
/// customer's name) can sit in a URI.
pub fn encode(text: &str) -> String {
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

pub fn decode(text: &str) -> Option<String> {
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

pub fn quantity_element(lot: &LotQty) -> Value {
    json!({"epcClass": class(lot), "quantity": number(lot.quantity), "uom": lot.uom})
}

/// An item, warehouse, bin or lot code (the contract's identifier pattern).
pub fn is_code(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && text.as_bytes()[0].is_ascii_alphanumeric()
}

/// A quantity element as a lot with an unresolved item (a GTIN, or an item code).
pub fn quantity_from(element: &Value) -> Result<LotQty, String> {
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
}
