use proptest::prelude::*;
use serde_json::json;

use super::*;

fn mapping(fields: &[(&str, &str)]) -> Result<Mapping, ProviderError> {
    let fields = fields
        .iter()
        .map(|(name, code)| ((*name).to_owned(), (*code).to_owned()))
        .collect();
    Mapping::compile(&fields, "/streams/orders/mapping")
}

fn order() -> Value {
    json!({
        "id": 450789469,
        "email": "Bob.Norman@Example.COM",
        "total_price": "598.94",
        "currency": "USD",
        "customer": {"id": 207119551, "first_name": "Bob", "last_name": "Norman", "tags": ""},
        "line_items": [
            {"sku": "IPOD2008GREEN", "quantity": 1, "price": "199.00"},
            {"sku": "IPOD2008BLACK", "quantity": 2, "price": "199.97"}
        ],
        "note": null,
        "x y": {"z": true}
    })
}

#[test]
fn plain_paths_and_jq_fields_map_one_record() {
    let mapping = mapping(&[
        ("order_id", ".id"),
        ("email", ".email | ascii_downcase"),
        ("total", ".total_price | tonumber"),
        (
            "name",
            r#""\(.customer.first_name) \(.customer.last_name)""#,
        ),
        ("first_sku", ".line_items[0].sku"),
        ("last_qty", ".line_items[-1].quantity"),
        ("skus", "[.line_items[].sku]"),
        ("spaced", r#".["x y"].z"#),
        ("missing", ".shipping_address.city"),
        ("past_the_end", ".line_items[5]"),
        ("nothing", ".line_items[] | select(.quantity > 5) | .sku"),
    ])
    .expect("compiles");
    assert_eq!(
        mapping.apply(&order()).expect("maps"),
        json!({
            "order_id": 450789469,
            "email": "bob.norman@example.com",
            "total": 598.94,
            "name": "Bob Norman",
            "first_sku": "IPOD2008GREEN",
            "last_qty": 2,
            "skus": ["IPOD2008GREEN", "IPOD2008BLACK"],
            "spaced": true,
            "missing": null,
            "past_the_end": null,
            "nothing": null,
        })
    );
}

#[test]
fn a_bad_expression_is_refused_at_its_field_with_the_parsers_message() {
    let error = mapping(&[("ok", ".id"), ("total", ".total_price |")]).expect_err("refused");
    assert_eq!(error.code, ErrorCode::ConfigUnprocessable);
    assert_eq!(error.errors[0].pointer, "/streams/orders/mapping/total");
    assert!(
        error.detail.contains("expected term, found the end"),
        "{}",
        error.detail
    );

    let error = mapping(&[("a/b~c", "tonumbr")]).expect_err("refused");
    assert_eq!(error.errors[0].pointer, "/streams/orders/mapping/a~1b~0c");
    assert!(
        error.detail.contains("undefined filter tonumbr/0"),
        "{}",
        error.detail
    );
}

#[test]
fn a_run_time_error_names_the_field_and_jqs_message() {
    let mapping = mapping(&[("id", ".id"), ("bad", ".email | tonumber")]).expect("compiles");
    let error = mapping.apply(&order()).expect_err("fails");
    assert_eq!(error.code, ErrorCode::ConfigUnprocessable);
    assert_eq!(error.errors[0].pointer, "/streams/orders/mapping/bad");
    assert!(
        error
            .detail
            .starts_with("mapping field \"bad\" failed on a record: "),
        "{}",
        error.detail
    );
    assert!(error.detail.contains("Bob.Norman"), "{}", error.detail);
}

#[test]
fn a_plain_path_that_jq_refuses_fails_with_jqs_message() {
    let mapping = mapping(&[("sku", ".line_items.sku")]).expect("compiles");
    let error = mapping.apply(&order()).expect_err("an array has no keys");
    let jq = Program::compile(".line_items.sku")
        .expect("compiles")
        .run(jq::to_jaq(&order()));
    let Outcome::Failed(message) = jq else {
        panic!("jq should fail on a key into an array")
    };
    assert!(error.detail.ends_with(&message), "{}", error.detail);
}

#[test]
fn more_than_one_value_is_an_error_that_says_how_to_choose() {
    let mapping = mapping(&[("sku", ".line_items[].sku")]).expect("compiles");
    let error = mapping.apply(&order()).expect_err("two skus");
    assert_eq!(error.errors[0].pointer, "/streams/orders/mapping/sku");
    assert!(
        error.detail.contains("more than one value"),
        "{}",
        error.detail
    );
}

#[test]
fn a_long_message_is_cut_short() {
    let long = "x".repeat(10_000);
    let mapping = mapping(&[("bad", ".blob | tonumber")]).expect("compiles");
    let error = mapping
        .apply(&json!({"blob": long}))
        .expect_err("not a number");
    assert!(
        error.detail.len() < MESSAGE_LIMIT + 100,
        "{}",
        error.detail.len()
    );
    assert!(error.detail.ends_with('…'));
}

/// What the fast path reads, or `None` where it leaves the expression to jq.
fn fast(code: &str, record: &Value) -> Option<Value> {
    let steps = path::parse(code)?;
    path::read(&steps, record).map(|found| found.cloned().unwrap_or(Value::Null))
}

/// What jq gives, as the mapping would keep it.
fn slow(code: &str, record: &Value) -> Result<Value, String> {
    match Program::compile(code)?.run(jq::to_jaq(record)) {
        Outcome::One(value) => Ok(jq::from_jaq(value)),
        Outcome::Nothing => Ok(Value::Null),
        Outcome::Many => Err("many".into()),
        Outcome::Failed(why) => Err(why),
    }
}

#[test]
fn the_fast_path_and_jq_agree_on_plain_paths() {
    let records = [
        order(),
        json!(null),
        json!([1, [2, 3], {"a": 4}]),
        json!({"a": "text", "b": 5, "c": [], "d": {"e": null}}),
    ];
    let paths = [
        ".",
        ".id",
        ".customer.first_name",
        ".customer.missing.deeper",
        ".line_items[0]",
        ".line_items[1].price",
        ".line_items[-1]",
        ".line_items[-3]",
        ".line_items[9].sku",
        ".[0]",
        ".[1][1]",
        ".[2].a",
        ".[-1]",
        ".note.x",
        r#".["x y"].z"#,
        r#"."x y""#,
        ".a",
        ".a.b",
        ".a[0]",
        ".b[0]",
        ".c[0]",
        ".d.e[3]",
        ".line_items.sku",
        ".id[0]",
    ];
    let mut taken = 0;
    for record in &records {
        for code in paths {
            assert!(path::parse(code).is_some(), "{code} is a plain path");
            let jq = slow(code, record);
            match fast(code, record) {
                Some(value) => {
                    taken += 1;
                    assert_eq!(Ok(value), jq, "{code} on {record}");
                }
                // Left to jq only where jq refuses it.
                None => assert!(
                    jq.is_err(),
                    "{code} on {record}: the fast path declined {jq:?}"
                ),
            }
        }
    }
    assert!(taken > 50, "the fast path answered only {taken} cases");
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-c]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn any_path() -> impl Strategy<Value = String> {
    let step = prop_oneof![
        "[a-c]".prop_map(|k| format!(".{k}")),
        "[a-c]".prop_map(|k| format!(".[\"{k}\"]")),
        (-4i64..4).prop_map(|i| format!("[{i}]")),
    ];
    prop::collection::vec(step, 1..4).prop_map(|steps| {
        let path = steps.concat();
        // A path cannot start with a bare bracket: `[0]` is an array literal in jq.
        if path.starts_with('[') {
            format!(".{path}")
        } else {
            path
        }
    })
}

proptest! {
    #[test]
    fn the_fast_path_and_jq_agree_on_random_records(record in any_json(), code in any_path()) {
        let jq = slow(&code, &record);
        match fast(&code, &record) {
            Some(value) => prop_assert_eq!(Ok(value), jq, "{} on {}", code, record),
            None => prop_assert!(jq.is_err(), "{} on {}: declined {:?}", code, record, jq),
        }
    }
}
