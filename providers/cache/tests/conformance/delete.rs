//! The checks live in `switchyard_conformance::cache`, shared with `switchyard conformance`.

use switchyard_conformance::cache;

use crate::engines;

#[tokio::test]
async fn delete_reports_whether_the_key_existed() {
    for h in engines() {
        cache::delete_reports_whether_the_key_existed(&h).await;
    }
}
