//! The checks live in `switchyard_conformance::cache`, shared with `switchyard conformance`.

use switchyard_conformance::cache;

use crate::engines;

#[tokio::test]
async fn one_tenant_never_reads_counts_or_deletes_another_tenants_keys() {
    for h in engines() {
        cache::one_tenant_never_reads_counts_or_deletes_another_tenants_keys(&h).await;
    }
}

#[tokio::test]
async fn a_restarted_instance_of_the_same_tenant_keeps_its_keys() {
    for h in engines() {
        cache::a_restarted_instance_of_the_same_tenant_keeps_its_keys(&h).await;
    }
}
