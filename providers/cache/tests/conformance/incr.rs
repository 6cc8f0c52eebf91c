//! The checks live in `switchyard_conformance::cache`, shared with `switchyard conformance`.

use switchyard_conformance::cache;

use crate::engines;

#[tokio::test]
async fn incr_counts_from_zero_and_by_any_step() {
    for h in engines() {
        cache::incr_counts_from_zero_and_by_any_step(&h).await;
    }
}

#[tokio::test]
async fn incr_on_a_non_integer_is_a_conflict_and_changes_nothing() {
    for h in engines() {
        cache::incr_on_a_non_integer_is_a_conflict_and_changes_nothing(&h).await;
    }
}

#[tokio::test]
async fn concurrent_incr_loses_no_update() {
    for h in engines() {
        cache::concurrent_incr_loses_no_update(&h).await;
    }
}
