//! The checks live in `switchyard_conformance::cache`, shared with `switchyard conformance`.

use switchyard_conformance::cache;

use crate::engines;

#[tokio::test]
async fn mset_then_mget_answers_in_the_order_asked() {
    for h in engines() {
        cache::mset_then_mget_answers_in_the_order_asked(&h).await;
    }
}

#[tokio::test]
async fn an_mset_with_one_oversized_value_stores_nothing() {
    for h in engines() {
        cache::an_mset_with_one_oversized_value_stores_nothing(&h).await;
    }
}
