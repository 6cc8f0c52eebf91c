//! `embed`: one vector per text, in order, all of one dimension.

use serde_json::json;
use switchyard_spi::ErrorCode;

use super::{cosine, tenant, vectors};
use crate::Subject;

pub async fn one_vector_per_text_in_order_all_of_the_stated_dimension(s: &Subject) {
    let name = s.name();
    let t = tenant(s, "acme").await;
    let texts = ["invoice overdue", "parcel shipped", "invoice overdue"];
    let answer = t.ok("embed", json!({"texts": texts})).await;
    let vectors = vectors(&answer);
    assert_eq!(vectors.len(), 3, "{name}");
    let dimensions = answer["dimensions"].as_u64().unwrap() as usize;
    assert!(vectors.iter().all(|v| v.len() == dimensions), "{name}");
    assert!(!answer["model"].as_str().unwrap().is_empty(), "{name}");
    // Order: the first and third texts are the same, the second differs.
    assert!(cosine(&vectors[0], &vectors[2]) > 0.99, "{name}");
    assert!(cosine(&vectors[0], &vectors[1]) < 0.99, "{name}");
}

pub async fn shared_words_are_closer_than_none(s: &Subject) {
    let name = s.name();
    let t = tenant(s, "acme").await;
    let answer = t
        .ok(
            "embed",
            json!({"texts": ["invoice 1042 is overdue", "invoices overdue", "the parcel was shipped today"]}),
        )
        .await;
    let v = vectors(&answer);
    assert!(
        cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]),
        "{name}: {} vs {}",
        cosine(&v[0], &v[1]),
        cosine(&v[0], &v[2])
    );
}

pub async fn the_same_texts_give_the_same_vectors_on_every_call(s: &Subject) {
    let name = s.name();
    let t = tenant(s, "acme").await;
    let params = json!({"texts": ["Order SO-1042: 2 × A-1, ship to Lyon", "héllo wörld ✓"]});
    let first = t.ok("embed", params.clone()).await;
    for _ in 0..3 {
        assert_eq!(t.ok("embed", params.clone()).await, first, "{name}");
    }
}

pub async fn params_outside_the_schema_are_refused_with_pointers(s: &Subject) {
    let name = s.name();
    let t = tenant(s, "acme").await;
    for (params, pointer) in [
        (json!({"texts": []}), "/texts"),
        (json!({"texts": [""]}), "/texts/0"),
        // `model` is a param (a router names the model per call), but never an empty one.
        (json!({"texts": ["a"], "model": ""}), "/model"),
    ] {
        let err = t.err("embed", params.clone()).await;
        assert_eq!(err.code, ErrorCode::ParamsInvalid, "{name}: {params}");
        assert!(
            err.errors.iter().any(|e| e.pointer == pointer),
            "{name}: {params}: {:?}",
            err.errors
        );
    }
}
