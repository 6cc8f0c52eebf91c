//! The `bus` domain suite (`contracts/schemas/domains/bus.json`), one file per concern.
//!
//! Behaviour an engine may lack is gated on the capability it declares (`ordering`,
//! `consumer_groups`, `replay`, `durable`); everything else is required of every engine.
//! Topics and offsets are the tenant's own, so the checks need nothing beyond the harness:
//! the domain has no fixture.

mod commit;
mod dead_letter;
mod durability;
mod poll;
mod publish;
mod replay;
mod stable;
mod tenancy;

use serde_json::{Value, json};
use switchyard_spi::testkit::TenantInstance;

use crate::{Check, Level, check};
use commit::*;
use dead_letter::*;
use durability::*;
use poll::*;
use publish::*;
use replay::*;
use stable::*;
use tenancy::*;

/// Every check with its level, in the order reports list them.
pub fn checks() -> Vec<Check> {
    vec![
        // publish
        check!(
            Level::Core,
            batches_get_consecutive_offsets_starting_at_zero
        ),
        check!(Level::Core, publish_echoes_the_topic),
        check!(Level::Core, topics_have_independent_offsets),
        check!(
            Level::Core,
            an_invalid_topic_name_is_params_invalid_at_topic
        ),
        check!(Level::Core, an_empty_batch_is_params_invalid),
        // poll
        check!(
            Level::Core,
            poll_returns_published_records_in_order_with_key_headers_and_payload,
            requires = ["ordering"]
        ),
        check!(
            Level::Core,
            poll_does_not_commit,
            requires = ["consumer_groups"]
        ),
        check!(
            Level::Core,
            groups_have_independent_positions,
            requires = ["consumer_groups"]
        ),
        check!(
            Level::Core,
            an_explicit_offset_overrides_the_committed_one,
            requires = ["consumer_groups"]
        ),
        check!(Level::Core, max_records_pages_through_the_topic),
        check!(Level::Core, an_unknown_topic_polls_empty_from_zero),
        check!(
            Level::Core,
            polling_past_the_end_returns_nothing_and_keeps_the_offset
        ),
        // commit
        check!(
            Level::Core,
            commit_then_poll_returns_nothing_new,
            requires = ["consumer_groups"]
        ),
        check!(
            Level::Core,
            committing_past_the_end_is_a_conflict_and_changes_nothing,
            requires = ["consumer_groups"]
        ),
        check!(
            Level::Core,
            committing_the_end_is_allowed_and_committing_back_rewinds,
            requires = ["consumer_groups"]
        ),
        check!(
            Level::Core,
            commits_are_per_topic,
            requires = ["consumer_groups"]
        ),
        // replay
        check!(
            Level::Core,
            replay_reads_from_an_offset_or_from_zero,
            requires = ["replay", "action:replay"]
        ),
        check!(
            Level::Core,
            replay_from_a_time_starts_at_the_first_record_published_at_or_after_it,
            requires = ["replay", "action:replay"]
        ),
        check!(
            Level::Core,
            replay_pages_with_max_records,
            requires = ["replay", "action:replay"]
        ),
        check!(
            Level::Core,
            replay_does_not_move_any_group,
            requires = ["replay", "action:replay", "consumer_groups"]
        ),
        check!(
            Level::Core,
            an_unparsable_time_is_params_invalid_at_from_time,
            requires = ["replay", "action:replay"]
        ),
        check!(
            Level::Core,
            an_offset_and_a_time_together_are_params_invalid,
            requires = ["replay", "action:replay"]
        ),
        // dead letters
        check!(
            Level::Core,
            a_record_delivered_max_deliveries_times_moves_to_the_dead_letter_topic,
            requires = ["consumer_groups", "action:replay"]
        ),
        check!(
            Level::Core,
            the_next_record_gets_its_own_count_after_a_dead_letter,
            requires = ["consumer_groups", "action:replay"]
        ),
        check!(
            Level::Core,
            a_commit_resets_the_delivery_count,
            requires = ["consumer_groups"]
        ),
        check!(
            Level::Core,
            polls_at_an_explicit_offset_and_replays_count_no_delivery,
            requires = ["consumer_groups", "action:replay"]
        ),
        check!(
            Level::Core,
            without_max_deliveries_a_record_is_delivered_forever,
            requires = ["consumer_groups", "action:replay"]
        ),
        check!(
            Level::Core,
            a_topic_too_long_for_a_dead_letter_topic_is_params_invalid,
            requires = ["consumer_groups"]
        ),
        // all-or-nothing under concurrency
        check!(
            Level::Transactions,
            concurrent_publishers_get_dense_unique_offsets_and_lose_nothing,
            requires = ["ordering", "action:replay"]
        ),
        // tenancy
        check!(
            Level::Isolation,
            tenants_do_not_see_each_others_topics,
            requires = ["action:replay"]
        ),
        check!(
            Level::Isolation,
            tenants_do_not_share_group_positions,
            requires = ["consumer_groups"]
        ),
        check!(
            Level::Isolation,
            dead_letters_stay_with_their_tenant,
            requires = ["consumer_groups", "action:replay"]
        ),
        // restarts
        check!(
            Level::Resilience,
            a_restarted_tenant_shares_the_log_with_its_running_instance
        ),
        check!(
            Level::Resilience,
            records_and_commits_survive_dropping_the_engine_without_stop,
            requires = ["durable"]
        ),
        check!(
            Level::Resilience,
            records_and_commits_survive_an_engine_that_never_shuts_down,
            requires = ["durable"]
        ),
        // the broker restarts (run only where the fixture can restart it)
        check!(
            Level::Stable,
            the_instance_reconnects_after_its_backing_server_restarts,
            requires = ["durable"]
        ),
    ]
}

/// Publishes one message per payload, in one batch, and returns the offsets.
async fn publish(tenant: &TenantInstance, topic: &str, payloads: &[Value]) -> Vec<u64> {
    let messages: Vec<Value> = payloads.iter().map(|p| json!({"payload": p})).collect();
    let result = tenant
        .ok("publish", json!({"topic": topic, "messages": messages}))
        .await;
    offsets_of(&result["offsets"])
}

fn offsets_of(values: &Value) -> Vec<u64> {
    values
        .as_array()
        .expect("an array of offsets")
        .iter()
        .map(|o| o.as_u64().expect("an offset"))
        .collect()
}

/// The offsets of a poll or replay result's records.
fn record_offsets(result: &Value) -> Vec<u64> {
    result["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["offset"].as_u64().expect("an offset"))
        .collect()
}

/// The payloads of a poll or replay result's records.
fn payloads(result: &Value) -> Vec<Value> {
    result["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["payload"].clone())
        .collect()
}
