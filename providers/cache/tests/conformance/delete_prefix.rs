//! The checks live in `switchyard_conformance::cache`, shared with `switchyard conformance`.

use switchyard_conformance::cache;

use crate::engines;

#[tokio::test]
async fn delete_prefix_removes_exactly_the_matching_keys() {
    for h in engines() {
        cache::delete_prefix_removes_exactly_the_matching_keys(&h).await;
    }
}
