//! `classify`: the label whose examples the text is most like, with every label's score.

use serde_json::{Value, json};
use switchyard_spi::ErrorCode;

use super::tenant;
use crate::Subject;

fn support_labels() -> Value {
    json!([
        {"name": "shipping", "examples": ["where is my parcel", "tracking number not updated", "delivery is late, parcel not shipped"]},
        {"name": "billing", "examples": ["invoice amount is wrong", "charged twice on my card", "refund for invoice"]},
        {"name": "returns", "examples": ["return the damaged item", "how do I send it back", "exchange for another size"]}
    ])
}

pub async fn the_text_gets_the_label_its_words_match(s: &Subject) {
    let name = s.name();
    let t = tenant(s, "acme").await;
    for (text, expected) in [
        (
            "my parcel has not shipped, tracking says nothing",
            "shipping",
        ),
        ("the invoice charged my card twice", "billing"),
        ("I want to return a damaged item", "returns"),
    ] {
        let answer = t
            .ok(
                "classify",
                json!({"text": text, "labels": support_labels()}),
            )
            .await;
        assert_eq!(answer["label"], expected, "{name}: {text}: {answer}");
        let scores = answer["scores"].as_array().unwrap();
        let order: Vec<&str> = scores
            .iter()
            .map(|s| s["label"].as_str().unwrap())
            .collect();
        assert_eq!(
            order,
            ["shipping", "billing", "returns"],
            "{name}: in the order given"
        );
        let best = scores
            .iter()
            .map(|s| s["score"].as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        let winner = scores.iter().find(|s| s["label"] == expected).unwrap();
        assert_eq!(winner["score"].as_f64().unwrap(), best, "{name}");
    }
}

pub async fn classification_is_the_same_on_every_call(s: &Subject) {
    let t = tenant(s, "acme").await;
    let params = json!({"text": "refund my invoice please", "labels": support_labels()});
    let first = t.ok("classify", params.clone()).await;
    assert_eq!(t.ok("classify", params).await, first, "{}", s.name());
}

pub async fn a_text_like_no_label_picks_the_first_of_equals(s: &Subject) {
    let t = tenant(s, "acme").await;
    let answer = t
        .ok(
            "classify",
            json!({"text": "?!", "labels": support_labels()}),
        )
        .await;
    assert_eq!(answer["label"], "shipping", "{}: {answer}", s.name());
}

pub async fn labels_must_be_unique_and_at_least_two(s: &Subject) {
    let name = s.name();
    let t = tenant(s, "acme").await;
    let twice = t
        .err(
            "classify",
            json!({"text": "x", "labels": [
                {"name": "a", "examples": ["one"]}, {"name": "a", "examples": ["two"]}
            ]}),
        )
        .await;
    assert_eq!(twice.code, ErrorCode::ParamsUnprocessable, "{name}");
    assert_eq!(twice.errors[0].pointer, "/labels/1/name", "{name}");
    let alone = t
        .err(
            "classify",
            json!({"text": "x", "labels": [{"name": "a", "examples": ["one"]}]}),
        )
        .await;
    assert_eq!(alone.code, ErrorCode::ParamsInvalid, "{name}");
    let no_examples = t
        .err(
            "classify",
            json!({"text": "x", "labels": [{"name": "a", "examples": []}, {"name": "b", "examples": ["x"]}]}),
        )
        .await;
    assert_eq!(
        no_examples.errors[0].pointer, "/labels/0/examples",
        "{name}"
    );
}
