//! The `db` domain suite (`contracts/schemas/domains/db.json`): every db engine must pass every
//! check here, so a caller cannot tell engines apart by params, results or error codes.
//!
//! Checks of optional behaviour are gated on the engine's declared capabilities
//! (`transactions`, `metadata`). The SQL of a check is written once in a template that the
//! provider's [`Dialect`] fills in ([`dialect`] says how the dialect is found).

mod dialect;
mod execute;
mod metadata;
mod query;
mod stable;
mod tenancy;
mod transaction;

use serde_json::Value;
use switchyard_spi::testkit::TenantInstance;
use switchyard_spi::{ErrorCode, ProviderError};

pub use dialect::{DIALECTS, Dialect, Type};
use execute::*;
use metadata::*;
use query::*;
use stable::*;
use tenancy::*;
use transaction::*;

use crate::{Check, Level, Subject, check};

/// Every check with its level, in the order reports list them.
pub fn checks() -> Vec<Check> {
    vec![
        check!(Level::Core, reports_rows_affected_and_the_inserted_id),
        check!(Level::Core, constraint_violations_are_conflicts),
        check!(Level::Core, bad_sql_is_statement_failed_at_sql),
        check!(
            Level::Core,
            execute_params_violating_the_schema_point_at_the_field
        ),
        check!(Level::Core, integers_beyond_64_bits_are_refused_not_rounded),
        check!(Level::Core, bound_values_of_every_type_come_back_as_stored),
        check!(Level::Core, an_empty_result_still_describes_its_columns),
        check!(Level::Core, query_refuses_writes),
        check!(Level::Core, max_rows_truncates_and_says_so),
        check!(
            Level::Core,
            query_params_violating_the_schema_point_at_the_field
        ),
        check!(Level::Core, bad_sql_is_statement_failed),
        check!(
            Level::Core,
            lists_tables_with_their_columns,
            requires = ["metadata"]
        ),
        check!(Level::Core, one_table_by_name, requires = ["metadata"]),
        check!(
            Level::Core,
            an_unknown_table_is_resource_not_found,
            requires = ["metadata"]
        ),
        check!(
            Level::Core,
            a_fresh_tenant_has_no_tables,
            requires = ["metadata"]
        ),
        check!(
            Level::Core,
            a_batch_needs_at_least_one_statement,
            requires = ["transactions"]
        ),
        check!(
            Level::Transactions,
            a_batch_commits_all_its_statements_together,
            requires = ["transactions"]
        ),
        check!(
            Level::Transactions,
            a_failing_statement_rolls_back_the_batch_and_is_named,
            requires = ["transactions"]
        ),
        check!(
            Level::Transactions,
            statements_inside_a_batch_cannot_commit_it_early,
            requires = ["transactions"]
        ),
        check!(
            Level::Isolation,
            tenants_cannot_see_each_others_tables_or_rows
        ),
        check!(Level::Resilience, data_survives_a_restart),
        check!(
            Level::Resilience,
            old_and_new_instance_of_a_tenant_share_data_during_a_swap
        ),
        check!(
            Level::Stable,
            the_instance_reconnects_after_its_backing_server_restarts
        ),
    ]
}

/// The dialect the provider under test speaks: the one it declares with a `dialect:<name>`
/// capability (`sqlite`, `postgres`, `mysql` or `mssql`), else the built-in engine's of the
/// same name. A provider that names none fails with this message rather than being tested in
/// a dialect it does not speak.
pub fn dialect(s: &Subject) -> &'static Dialect {
    Dialect::declared_by(s.factory.descriptor()).unwrap_or_else(|| {
        let names: Vec<&str> = DIALECTS.iter().map(|d| d.name).collect();
        panic!(
            "{}: declares no SQL dialect the suite can write; declare the capability \
             dialect:<name>, one of {names:?}",
            s.name()
        )
    })
}

/// Asserts an error's code and, when given, that one of its field errors has `pointer`.
pub fn assert_error(engine: &str, err: &ProviderError, code: ErrorCode, pointer: Option<&str>) {
    assert_eq!(err.code, code, "{engine}: wrong code in {err:?}");
    if let Some(pointer) = pointer {
        assert!(
            err.errors.iter().any(|e| e.pointer == pointer),
            "{engine}: no field error at {pointer} in {err:?}"
        );
    }
}

/// `SELECT count(*)` of a table, through `query`.
pub async fn count(tenant: &TenantInstance, table: &str) -> i64 {
    let result = tenant
        .ok(
            "query",
            serde_json::json!({"sql": format!("SELECT count(*) AS n FROM {table}")}),
        )
        .await;
    result["rows"][0]["n"]
        .as_i64()
        .expect("count is an integer")
}

/// The `rows` of a query result.
pub fn rows(result: &Value) -> &Vec<Value> {
    result["rows"].as_array().expect("rows is an array")
}
