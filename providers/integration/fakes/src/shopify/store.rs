//! The fake shop's records: one table per resource, kept in two orders (by id, and by the
//! resource's timestamp then id) so that a page of 250 out of 100,000 records is a range
//! read, the way Shopify's own keyset cursors (`page_info`) read them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// The resources the fake serves as lists, by the name of their endpoint.
pub const STREAMS: [&str; 4] = ["orders", "products", "customers", "inventory_levels"];

/// The fake shop's two locations (inventory levels sit at one of them).
pub const LOCATIONS: [u64; 2] = [655_441_491, 487_838_322];

/// How a list is sorted (`order=updated_at asc`, the default `id asc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    IdAsc,
    IdDesc,
    StampAsc,
    StampDesc,
}

impl Order {
    /// Reads an `order` parameter; `stamp` is the table's timestamp field.
    pub(crate) fn parse(order: Option<&str>, stamp: &str) -> Option<Order> {
        let Some(order) = order else {
            return Some(Order::IdAsc);
        };
        let mut words = order.split([' ', '+']).filter(|w| !w.is_empty());
        let field = words.next()?;
        let descending = match words.next() {
            None | Some("asc") | Some("ASC") => false,
            Some("desc") | Some("DESC") => true,
            Some(_) => return None,
        };
        match (field, descending) {
            ("id", false) => Some(Order::IdAsc),
            ("id", true) => Some(Order::IdDesc),
            (f, false) if f == stamp => Some(Order::StampAsc),
            (f, true) if f == stamp => Some(Order::StampDesc),
            _ => None,
        }
    }

    pub(crate) fn name(self, stamp: &str) -> String {
        match self {
            Order::IdAsc => "id asc".into(),
            Order::IdDesc => "id desc".into(),
            Order::StampAsc => format!("{stamp} asc"),
            Order::StampDesc => format!("{stamp} desc"),
        }
    }

    fn reversed(self) -> Order {
        match self {
            Order::IdAsc => Order::IdDesc,
            Order::IdDesc => Order::IdAsc,
            Order::StampAsc => Order::StampDesc,
            Order::StampDesc => Order::StampAsc,
        }
    }
}

/// One row: the record, its JSON text as the API answers it (kept, so a page of 250 is
/// copied rather than serialized again), and its timestamp (unix seconds) for ranges.
struct Row {
    stamp: i64,
    body: Value,
    text: Box<str>,
}

/// One resource's records.
pub(crate) struct Table {
    /// The field lists are filtered and sorted by (`updated_at`; `created_at` for events).
    pub(crate) stamp: &'static str,
    rows: BTreeMap<u64, Row>,
    by_stamp: BTreeSet<(i64, u64)>,
}

/// Which records a list answers, besides the page position.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    pub(crate) stamp_min: Option<i64>,
    pub(crate) stamp_max: Option<i64>,
    pub(crate) since_id: Option<u64>,
    /// `field == value` on top-level fields (`verb` of events, `location_id` of inventory
    /// levels, …), each field matching one of its values.
    pub(crate) equals: Vec<(String, Vec<Value>)>,
    /// Orders' `status`: `open` (neither closed nor cancelled), `closed`, `cancelled`; `None`
    /// for any.
    pub(crate) status: Option<String>,
}

impl Filter {
    fn admits(&self, id: u64, row: &Row) -> bool {
        self.stamp_min.is_none_or(|min| row.stamp >= min)
            && self.stamp_max.is_none_or(|max| row.stamp <= max)
            && self.since_id.is_none_or(|since| id > since)
            && self.equals.iter().all(|(field, values)| {
                let value = row.body.get(field).unwrap_or(&Value::Null);
                values.contains(value)
            })
            && match self.status.as_deref() {
                None => true,
                Some("open") => {
                    row.body["closed_at"].is_null() && row.body["cancelled_at"].is_null()
                }
                Some("closed") => !row.body["closed_at"].is_null(),
                Some(_) => !row.body["cancelled_at"].is_null(),
            }
    }
}

/// Where a page starts: after (or, reading backwards, before) this row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct After {
    pub(crate) stamp: i64,
    pub(crate) id: u64,
}

/// A page read: the rows (as JSON text), and whether more lie beyond its last one.
pub(crate) struct Slice {
    pub(crate) rows: Vec<(After, Box<str>)>,
    pub(crate) more: bool,
}

impl Table {
    pub(crate) fn new(stamp: &'static str) -> Self {
        Table {
            stamp,
            rows: BTreeMap::new(),
            by_stamp: BTreeSet::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(crate) fn ids(&self) -> Vec<u64> {
        self.rows.keys().copied().collect()
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Value> {
        self.rows.get(&id).map(|row| &row.body)
    }

    /// Stores `body` as record `id` with timestamp `stamp` (which its `stamp` field shows).
    pub(crate) fn put(&mut self, id: u64, stamp: i64, body: Value) {
        let text = body.to_string().into_boxed_str();
        if let Some(old) = self.rows.insert(id, Row { stamp, body, text }) {
            self.by_stamp.remove(&(old.stamp, id));
        }
        self.by_stamp.insert((stamp, id));
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<Value> {
        let row = self.rows.remove(&id)?;
        self.by_stamp.remove(&(row.stamp, id));
        Some(row.body)
    }

    /// How many records `filter` admits.
    pub(crate) fn count(&self, filter: &Filter) -> usize {
        self.rows
            .iter()
            .filter(|(id, row)| filter.admits(**id, row))
            .count()
    }

    /// Up to `limit` records in `order` after `after` (exclusive) that `filter` admits.
    pub(crate) fn page(
        &self,
        order: Order,
        filter: &Filter,
        after: Option<After>,
        limit: usize,
    ) -> Slice {
        let keys = self.keys(order, after);
        let mut rows = Vec::with_capacity(limit);
        let mut more = false;
        for (stamp, id) in keys {
            let row = &self.rows[&id];
            if !filter.admits(id, row) {
                continue;
            }
            if rows.len() == limit {
                more = true;
                break;
            }
            rows.push((After { stamp, id }, row.text.clone()));
        }
        Slice { rows, more }
    }

    /// The page before `before` in `order`: read backwards, then put back in `order`.
    pub(crate) fn page_before(
        &self,
        order: Order,
        filter: &Filter,
        before: After,
        limit: usize,
    ) -> Slice {
        let mut slice = self.page(order.reversed(), filter, Some(before), limit);
        slice.rows.reverse();
        slice
    }

    /// Whether any admitted record lies before `before` in `order`.
    pub(crate) fn any_before(&self, order: Order, filter: &Filter, before: After) -> bool {
        !self
            .page(order.reversed(), filter, Some(before), 1)
            .rows
            .is_empty()
    }

    fn keys(
        &self,
        order: Order,
        after: Option<After>,
    ) -> Box<dyn Iterator<Item = (i64, u64)> + '_> {
        let by_id = |(id, row): (&u64, &Row)| (row.stamp, *id);
        match (order, after) {
            (Order::IdAsc, None) => Box::new(self.rows.iter().map(by_id)),
            (Order::IdAsc, Some(a)) => {
                Box::new(self.rows.range(a.id.saturating_add(1)..).map(by_id))
            }
            (Order::IdDesc, None) => Box::new(self.rows.iter().rev().map(by_id)),
            (Order::IdDesc, Some(a)) => Box::new(self.rows.range(..a.id).rev().map(by_id)),
            (Order::StampAsc, None) => Box::new(self.by_stamp.iter().copied()),
            (Order::StampAsc, Some(a)) => Box::new(
                self.by_stamp
                    .range((a.stamp, a.id.saturating_add(1))..)
                    .copied(),
            ),
            (Order::StampDesc, None) => Box::new(self.by_stamp.iter().rev().copied()),
            (Order::StampDesc, Some(a)) => {
                Box::new(self.by_stamp.range(..(a.stamp, a.id)).rev().copied())
            }
        }
    }
}

/// A Shopify timestamp, as the Admin API writes them (ISO 8601 with the shop's offset; the
/// fake shop's time zone is UTC).
pub fn timestamp(unix: i64) -> String {
    let at =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Reads a timestamp parameter (`updated_at_min=2026-01-01T00:00:00-05:00`).
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|at| at.unix_timestamp())
}

/// A generated record of `stream`, as the REST Admin API shapes it (the fields a sync
/// usually maps; Shopify's records carry many more).
pub(crate) fn generate(stream: &str, id: u64, now: i64) -> Value {
    let at = timestamp(now);
    let n = id % 100_000;
    match stream {
        "orders" => json!({
            "id": id,
            "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
            "name": format!("#{}", 1000 + n),
            "order_number": 1000 + n,
            "email": format!("buyer{n}@example.com"),
            "created_at": at,
            "updated_at": at,
            "processed_at": at,
            "closed_at": if n.is_multiple_of(5) { Value::String(at.clone()) } else { Value::Null },
            "cancelled_at": null,
            "financial_status": "paid",
            "fulfillment_status": null,
            "currency": "USD",
            "total_price": format!("{}.{:02}", 10 + n % 90, n % 100),
            "subtotal_price": format!("{}.{:02}", 10 + n % 90, n % 100),
            "total_tax": "0.00",
            "note": null,
            "tags": "",
            "customer": {"id": 7_000_000_000 + n, "email": format!("buyer{n}@example.com")},
            "line_items": [{
                "id": id * 10 + 1,
                "product_id": 8_000_000_000 + n % 50,
                "variant_id": 9_000_000_000 + n % 50,
                "title": format!("Product {}", n % 50),
                "sku": format!("SKU-{:04}", n % 50),
                "quantity": 1 + n % 3,
                "price": format!("{}.00", 10 + n % 90)
            }]
        }),
        "products" => json!({
            "id": id,
            "admin_graphql_api_id": format!("gid://shopify/Product/{id}"),
            "title": format!("Product {n}"),
            "handle": format!("product-{n}"),
            "vendor": "Fake Vendor",
            "product_type": "Widget",
            "status": "active",
            "tags": "",
            "created_at": at,
            "updated_at": at,
            "published_at": at,
            "variants": [{
                "id": id * 10 + 1,
                "product_id": id,
                "title": "Default Title",
                "sku": format!("SKU-{n:06}"),
                "price": format!("{}.00", 5 + n % 95),
                "inventory_item_id": id * 10 + 2,
                "inventory_quantity": n % 40
            }]
        }),
        "customers" => json!({
            "id": id,
            "admin_graphql_api_id": format!("gid://shopify/Customer/{id}"),
            "email": format!("customer{id}@example.com"),
            "first_name": "Fake",
            "last_name": format!("Customer {n}"),
            "phone": null,
            "state": "enabled",
            "verified_email": true,
            "orders_count": n % 7,
            "total_spent": format!("{}.00", n % 500),
            "currency": "USD",
            "tags": "",
            "note": null,
            "created_at": at,
            "updated_at": at
        }),
        "inventory_levels" => {
            let location = LOCATIONS[(id % 2) as usize];
            let item = id * 10 + 3;
            json!({
                "inventory_item_id": item,
                "location_id": location,
                "available": (n % 60) as i64,
                "updated_at": at,
                "admin_graphql_api_id":
                    format!("gid://shopify/InventoryLevel/{location}?inventory_item_id={item}")
            })
        }
        other => panic!("the fake Shopify has no stream {other:?}"),
    }
}

/// Changes one field of a record the way an edit in the Shopify admin would.
pub(crate) fn touch(stream: &str, body: &mut Value, now: i64) {
    let at = timestamp(now);
    let field = match stream {
        "orders" => "note",
        "products" => "title",
        "customers" => "note",
        _ => "available",
    };
    body[field] = match stream {
        "inventory_levels" => json!(body["available"].as_i64().unwrap_or(0) + 1),
        _ => json!(format!("edited at {at}")),
    };
    body["updated_at"] = json!(at);
}
