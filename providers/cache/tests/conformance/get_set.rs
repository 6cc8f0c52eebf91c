//! The checks live in `switchyard_conformance::cache`, shared with `switchyard conformance`.

use switchyard_conformance::cache;

use crate::engines;

#[tokio::test]
async fn set_then_get_returns_the_json_value() {
    for h in engines() {
        cache::set_then_get_returns_the_json_value(&h).await;
    }
}

#[tokio::test]
async fn get_of_a_missing_key_is_not_an_error() {
    for h in engines() {
        cache::get_of_a_missing_key_is_not_an_error(&h).await;
    }
}

#[tokio::test]
async fn a_key_expires_after_its_ttl() {
    for h in engines() {
        cache::a_key_expires_after_its_ttl(&h).await;
    }
}

#[tokio::test]
async fn the_tenant_default_ttl_applies_when_a_call_gives_none() {
    for h in engines() {
        cache::the_tenant_default_ttl_applies_when_a_call_gives_none(&h).await;
    }
}

#[tokio::test]
async fn oversized_values_are_refused_and_not_stored() {
    for h in engines() {
        cache::oversized_values_are_refused_and_not_stored(&h).await;
    }
}

#[tokio::test]
async fn params_outside_the_schema_are_refused_with_pointers() {
    for h in engines() {
        cache::params_outside_the_schema_are_refused_with_pointers(&h).await;
    }
}
