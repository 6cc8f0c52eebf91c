//! One behaviour suite, every backend: each test in the areas below runs on SQLite in a fresh
//! data dir (`on_sqlite::…`) and on PostgreSQL in a fresh database (`on_postgres::…`), so the
//! two backends cannot drift apart. What only one backend has is tested in `opening`.

mod ai;
mod audit_log;
mod configs;
mod decision_retention;
mod decisions;
mod idempotency;
mod keys;
mod leases;
mod opening;
mod registrations;
mod tenancy;
/// Throwaway PostgreSQL databases: the db provider's test helper, shared rather than copied.
/// It also carries the db engine's app-role password, which the store has no use for.
#[allow(dead_code)]
#[path = "../../../../providers/db/tests/support/postgres.rs"]
mod throwaway;

use switchyard_contracts::TenantId;

use super::{Backend, PlatformStore};

/// A store on an empty backend, and the place that holds its data, which must outlive it.
struct Fresh {
    store: PlatformStore,
    place: Place,
}

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(throwaway::TestDatabase),
}

impl Fresh {
    async fn new(backend: Backend) -> Fresh {
        let place = match backend {
            Backend::Sqlite => Place::Sqlite(tempfile::tempdir().unwrap()),
            Backend::Postgres => Place::Postgres(throwaway::TestDatabase::create("store").await),
        };
        Fresh {
            store: open(&place).await,
            place,
        }
    }

    /// A fresh store with these tenants created.
    async fn with_tenants(backend: Backend, tenants: &[&str]) -> Fresh {
        let fresh = Fresh::new(backend).await;
        for tenant in tenants {
            fresh
                .store
                .create_tenant(&TenantId::parse(tenant).unwrap())
                .await
                .unwrap();
        }
        fresh
    }

    /// The same data opened anew, as a restarted process would.
    async fn reopen(&self) -> PlatformStore {
        open(&self.place).await
    }
}

async fn open(place: &Place) -> PlatformStore {
    match place {
        Place::Sqlite(dir) => PlatformStore::open(dir.path()).await.unwrap(),
        Place::Postgres(database) => PlatformStore::connect(&database.url).await.unwrap(),
    }
}

/// A `#[tokio::test]` per backend for each `area::test`, an `async fn(Backend)`. Every one
/// runs on several threads, so the concurrency tests race for real.
macro_rules! every_backend {
    ($($area:ident::$test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$area::$test(super::Backend::Sqlite).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$area::$test(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

every_backend!(
    ai::concurrent_reservations_from_several_replicas_never_exceed_the_cap,
    ai::a_reservation_over_several_buckets_is_all_or_nothing,
    ai::one_tenants_budgets_and_audit_records_are_invisible_to_another,
    ai::settling_counts_the_actual_use_once,
    ai::an_expired_reservation_is_settled_as_spent_and_ended_windows_go,
    ai::the_cap_follows_the_newest_config,
    ai::negative_or_repeated_charges_are_invalid,
    ai::audit_records_page_newest_first_and_purge_by_age,
    audit_log::records_page_by_seq_either_way_with_filters_and_stay_in_their_tenant,
    audit_log::an_untouched_chain_verifies_and_an_updated_record_is_named,
    audit_log::a_rehashed_record_breaks_the_link_after_it,
    audit_log::a_deleted_middle_record_or_tail_is_detected,
    audit_log::concurrent_appends_give_a_gapless_valid_chain,
    audit_log::a_service_event_is_recorded_once_however_often_it_is_appended,
    audit_log::the_export_holds_every_record_in_order_as_json_lines_or_csv,
    keys::a_key_verifies_once_created_and_nothing_else_does,
    keys::keys_need_an_existing_tenant_and_tenants_are_unique,
    keys::keys_are_listed_revoked_and_marked_used_only_within_their_tenant,
    configs::versions_grow_and_survive_reopening_the_store,
    configs::concurrent_saves_of_one_config_get_distinct_versions,
    configs::a_certification_is_kept_per_provider_version_and_replaced_by_a_rerun,
    configs::only_the_newest_config_versions_are_kept,
    configs::the_history_keeps_each_versions_note_and_tells_pruned_from_never,
    configs::secret_writes_are_counted_per_tenant_and_name,
    idempotency::a_first_request_proceeds_and_its_completed_response_replays,
    idempotency::a_different_request_under_a_used_key_is_refused,
    idempotency::the_same_key_in_two_tenants_is_two_records,
    idempotency::exactly_one_of_many_concurrent_first_requests_proceeds,
    idempotency::an_expired_lease_is_taken_over_by_exactly_one_request,
    idempotency::a_released_request_may_proceed_again,
    idempotency::records_past_retention_neither_replay_nor_survive_purge,
    idempotency::a_tenant_at_its_quota_is_refused_new_keys_until_its_records_expire,
    decisions::decisions_page_newest_first_per_tenant_with_filters,
    decisions::an_input_shared_by_decisions_is_stored_once_and_read_back_with_each,
    decision_retention::retention_deletes_exactly_what_is_older_than_each_tenants_setting,
    decision_retention::an_override_of_zero_days_is_the_default,
    decision_retention::the_upload_reads_every_decision_once_while_writers_commit,
    leases::a_lease_has_one_holder_until_it_runs_out_or_is_released,
    leases::renewing_extends_every_lease_of_its_holder_and_only_those,
    leases::of_many_concurrent_takers_exactly_one_holds_the_lease,
    leases::hosted_tenants_are_marked_once_and_listed_while_they_exist,
    registrations::registrations_survive_reopening_and_are_unique_until_deleted,
    tenancy::one_tenants_keys_configs_idempotency_records_and_decisions_are_invisible_to_another,
);
