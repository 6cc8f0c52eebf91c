//! The `storage` domain suite (`contracts/schemas/domains/storage.json`): every storage engine
//! must pass every check here that applies to it.
//!
//! Optional behaviours are gated on the engine's capabilities (`list_pagination`, `raw_body`,
//! `durable` for objects that outlive the process), optional actions (`presign`) on the
//! descriptor offering them, optional tenant settings (`max_object_bytes`, `max_presign_secs`)
//! on its config schema accepting them, and the checks that plant links behind the provider's
//! back on a fixture that knows where a local engine keeps a tenant's files.

mod delete;
mod get;
mod head;
mod keys;
mod list;
mod presign;
mod put;
mod stable;
mod tenancy;

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use switchyard_spi::testkit::TenantInstance;
use switchyard_spi::{ErrorCode, ProviderError};

use delete::*;
use get::*;
use head::*;
use keys::*;
use list::*;
use presign::*;
use put::*;
use stable::*;
use tenancy::*;

use crate::{Check, Level, check};

/// Maps a tenant id to the host folder that holds its keys as files.
pub type LocalObjects = Arc<dyn Fn(&str) -> PathBuf + Send + Sync>;

/// What only a test fixture knows about a storage engine.
#[derive(Default)]
pub struct Fixture {
    /// Where each tenant's keys are files, for engines that keep objects in local files
    /// (`fixture:local_objects`). The link checks plant links there; a remote store has no
    /// links to plant.
    pub local_objects: Option<LocalObjects>,
}

/// Every check with its level, in the order reports list them.
pub fn checks() -> Vec<Check> {
    vec![
        check!(Level::Core, put_base64_then_get_round_trips_binary_bytes),
        check!(Level::Core, put_reports_modified_at_as_recent_rfc3339_utc),
        check!(
            Level::Core,
            put_raw_payload_stores_the_body_as_is,
            requires = ["raw_body"]
        ),
        check!(
            Level::Core,
            put_both_raw_payload_and_base64_is_params_unprocessable,
            requires = ["raw_body"]
        ),
        check!(Level::Core, put_without_content_is_params_unprocessable),
        check!(Level::Core, put_invalid_base64_is_params_invalid),
        check!(Level::Core, put_empty_object_is_an_object_of_size_zero),
        check!(Level::Core, put_overwrites_an_existing_object),
        check!(Level::Core, put_nested_keys_creates_what_it_needs),
        check!(
            Level::Core,
            put_over_max_object_bytes_is_payload_too_large,
            requires = ["config:max_object_bytes"]
        ),
        check!(
            Level::Core,
            get_answers_content_and_the_same_metadata_as_put
        ),
        check!(Level::Core, get_missing_is_resource_not_found),
        check!(Level::Core, get_of_a_prefix_is_not_an_object),
        check!(Level::Core, head_answers_metadata_without_content),
        check!(Level::Core, head_missing_is_resource_not_found),
        check!(Level::Core, delete_removes_an_object_once),
        check!(Level::Core, delete_missing_is_false),
        check!(Level::Core, delete_of_a_prefix_removes_nothing),
        check!(Level::Core, delete_leaves_siblings_and_frees_the_prefix),
        check!(Level::Core, list_empty_store_is_an_empty_last_page),
        check!(Level::Core, list_filters_by_string_prefix_in_key_order),
        check!(Level::Core, list_reports_the_same_metadata_as_head),
        check!(
            Level::Core,
            list_paginates_across_three_pages,
            requires = ["list_pagination"]
        ),
        check!(
            Level::Core,
            list_full_last_page_has_no_cursor,
            requires = ["list_pagination"]
        ),
        check!(
            Level::Core,
            list_starts_strictly_after_the_cursor,
            requires = ["list_pagination"]
        ),
        check!(Level::Core, unsafe_keys_are_params_invalid_for_every_action),
        check!(Level::Core, a_missing_key_violates_the_schema),
        check!(
            Level::Core,
            dotted_names_that_are_not_dot_segments_are_ordinary_keys
        ),
        check!(
            Level::Core,
            a_presigned_get_url_fetched_with_curl_returns_the_object,
            requires = ["action:presign"]
        ),
        check!(
            Level::Core,
            presign_lasts_fifteen_minutes_by_default,
            requires = ["action:presign"]
        ),
        check!(
            Level::Core,
            an_expired_presigned_url_is_refused,
            requires = ["action:presign"]
        ),
        check!(
            Level::Core,
            a_tampered_presigned_url_is_refused,
            requires = ["action:presign"]
        ),
        check!(
            Level::Core,
            a_presigned_put_uploads_the_object_get_reads,
            requires = ["action:presign"]
        ),
        check!(
            Level::Core,
            presign_params_are_checked,
            requires = ["action:presign"]
        ),
        check!(
            Level::Core,
            a_tenant_can_cap_presigned_lifetimes,
            requires = ["action:presign", "config:max_presign_secs"]
        ),
        check!(Level::Core, a_started_tenant_is_healthy),
        check!(
            Level::Isolation,
            a_tenant_cannot_reach_another_tenants_objects
        ),
        check!(Level::Isolation, the_same_key_in_two_tenants_is_two_objects),
        check!(
            Level::Isolation,
            a_tenant_cannot_presign_or_read_another_tenants_objects,
            requires = ["action:presign"]
        ),
        check!(
            Level::Isolation,
            links_pointing_outside_the_tenant_are_never_followed,
            requires = ["fixture:local_objects"]
        ),
        check!(
            Level::Isolation,
            a_link_into_another_tenant_is_never_followed,
            requires = ["fixture:local_objects"]
        ),
        // Only an engine that says its objects outlive its process is held to it.
        check!(
            Level::Resilience,
            objects_survive_a_restart,
            requires = ["durable"]
        ),
        check!(
            Level::Resilience,
            two_instances_of_a_tenant_share_its_objects
        ),
        check!(
            Level::Stable,
            the_instance_reconnects_after_its_backing_server_restarts
        ),
    ]
}

fn b64(content: &[u8]) -> String {
    BASE64.encode(content)
}

/// Puts `content` (as base64 params) and returns the result.
async fn put(tenant: &TenantInstance, key: &str, content: &[u8]) -> Value {
    tenant
        .ok("put", json!({"key": key, "content_base64": b64(content)}))
        .await
}

/// Gets an object's content, decoded.
async fn content_of(tenant: &TenantInstance, key: &str) -> Vec<u8> {
    let got = tenant.ok("get", json!({"key": key})).await;
    let text = got["content_base64"]
        .as_str()
        .expect("content_base64 is a string");
    BASE64.decode(text).expect("content_base64 is base64")
}

/// The keys of one list page, in the order answered.
fn keys_of(page: &Value) -> Vec<String> {
    page["objects"]
        .as_array()
        .expect("objects is an array")
        .iter()
        .map(|o| o["key"].as_str().expect("key is a string").to_owned())
        .collect()
}

#[track_caller]
fn assert_code(engine: &str, err: &ProviderError, code: ErrorCode) {
    assert_eq!(err.code, code, "{engine}: {err:?}");
}

/// params_invalid with a field error at `pointer`, as the caller needs to fix the request.
#[track_caller]
fn assert_params_invalid(engine: &str, err: &ProviderError, pointer: &str) {
    assert_field(engine, err, ErrorCode::ParamsInvalid, pointer);
}

/// `code` with a field error at `pointer`.
#[track_caller]
fn assert_field(engine: &str, err: &ProviderError, code: ErrorCode, pointer: &str) {
    assert_code(engine, err, code);
    assert!(
        err.errors.iter().any(|e| e.pointer == pointer),
        "{engine}: expected a field error at {pointer}, got {:?}",
        err.errors
    );
}
