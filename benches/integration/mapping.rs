//! Bench A: a 10-field mapping applied to Shopify-like orders on one thread, records/s.
//!
//! Three mappings of the same ten output fields, each run for the phase's seconds after a
//! warm-up:
//! - `paths`: ten plain paths, all on the fast path (no interpreter);
//! - `paths_through_jq`: the same ten paths in parentheses (`(.id)`), which the fast path
//!   does not take, so each runs through jaq: what the fast path saves;
//! - `jq_functions`: six of the paths and four jq expressions (`ascii_downcase`, `tonumber`,
//!   string interpolation, `[.line_items[].sku]`): the record is converted into jaq's values
//!   once and shared by the four.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_provider_integration::Mapping;

use super::orders::order;

/// Distinct records cycled through, so the figure is not one record's cache-warm best.
/// One page of a sync (Shopify's largest, 250 orders, ~1.6 MB of values): a sync maps each
/// page right after parsing it, while its records are still in the cache. Records mapped
/// cold, round robin from a set far larger than the cache, cost about three times more
/// (docs/performance.md, issue 21: the B-tree searches then wait on memory).
const RECORDS: u64 = 250;

/// Also the mapping of bench B's sync.
pub const PATHS: [(&str, &str); 10] = [
    ("order_id", ".id"),
    ("number", ".order_number"),
    ("email", ".email"),
    ("total", ".total_price"),
    ("currency", ".currency"),
    ("customer_id", ".customer.id"),
    ("city", ".shipping_address.city"),
    ("country", ".shipping_address.country_code"),
    ("first_sku", ".line_items[0].sku"),
    ("updated_at", ".updated_at"),
];

const JQ_FUNCTIONS: [(&str, &str); 10] = [
    ("order_id", ".id"),
    ("number", ".order_number"),
    ("email", ".email | ascii_downcase"),
    ("total", ".total_price | tonumber"),
    ("currency", ".currency"),
    (
        "customer",
        r#""\(.customer.first_name) \(.customer.last_name)""#,
    ),
    ("city", ".shipping_address.city"),
    ("country", ".shipping_address.country_code"),
    ("skus", "[.line_items[].sku]"),
    ("updated_at", ".updated_at"),
];

pub struct Variant {
    pub name: &'static str,
    pub label: &'static str,
    pub records: u64,
    pub secs: f64,
}

impl Variant {
    pub fn per_sec(&self) -> f64 {
        self.records as f64 / self.secs
    }

    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "label": self.label, "records": self.records,
               "secs": self.secs, "per_sec": self.per_sec(),
               "ns_per_record": 1e9 / self.per_sec()})
    }
}

fn compile(fields: &[(&str, &str)], wrap: bool) -> Mapping {
    let fields: BTreeMap<String, String> = fields
        .iter()
        .map(|(name, code)| {
            let code = if wrap {
                format!("({code})")
            } else {
                (*code).to_owned()
            };
            ((*name).to_owned(), code)
        })
        .collect();
    Mapping::compile(&fields, "/streams/orders/mapping").expect("the bench's mappings compile")
}

/// Applies `mapping` to the records round robin for `duration`; records mapped.
fn run(mapping: &Mapping, records: &[Value], duration: Duration) -> (u64, f64) {
    let started = Instant::now();
    let mut mapped = 0u64;
    while started.elapsed() < duration {
        for record in records {
            let out = mapping.apply(black_box(record)).expect("maps");
            black_box(out);
        }
        mapped += records.len() as u64;
    }
    (mapped, started.elapsed().as_secs_f64())
}

pub fn bench(secs: u64) -> Vec<Variant> {
    let records: Vec<Value> = (0..RECORDS).map(order).collect();
    let bytes: usize = records.iter().map(|r| r.to_string().len()).sum();
    eprintln!(
        "bench integration: mapping {RECORDS} orders of {} bytes on average, {secs} s per mapping",
        bytes / records.len()
    );
    let variants = [
        (
            "paths",
            "10 plain paths (fast path)",
            compile(&PATHS, false),
        ),
        (
            "paths_through_jq",
            "10 plain paths through jaq",
            compile(&PATHS, true),
        ),
        (
            "jq_functions",
            "6 paths + 4 jq (tonumber, ascii_downcase, \\(..), [.[]])",
            compile(&JQ_FUNCTIONS, false),
        ),
    ];
    let mut results = Vec::new();
    for (name, label, mapping) in variants {
        run(&mapping, &records, Duration::from_millis(500));
        let (mapped, elapsed) = run(&mapping, &records, Duration::from_secs(secs));
        let variant = Variant {
            name,
            label,
            records: mapped,
            secs: elapsed,
        };
        eprintln!(
            "bench integration: mapping {name}: {:.0} records/s ({:.0} ns a record)",
            variant.per_sec(),
            1e9 / variant.per_sec()
        );
        results.push(variant);
    }
    results
}
