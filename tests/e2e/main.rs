//! End-to-end tests against the real `switchyard` binary, as one test binary: each module
//! below was once its own binary, and every one of them linked the whole gateway, runtime and
//! all providers again — a dozen copies of the same code on disk and a dozen links per build.

mod common;

mod admin;
mod ai_budget;
mod ai_ceiling;
mod ai_gateway;
mod attacks;
mod audit_log;
mod bench_smoke;
mod cluster;
mod config_history;
mod conformance_cli;
mod console;
mod console_admin;
mod contract;
mod decision_log;
mod deploy;
mod errors;
mod faults;
mod gateway;
mod idempotency_retry;
mod in_process;
mod inbound;
mod integration;
mod inventory;
mod kafka_thirdparty;
mod ledger;
mod mtls;
mod mysql;
mod observability;
mod orders;
mod orders_production;
mod outbox_crash;
mod pipeline;
mod plugins;
mod policy;
mod python_client;
mod register;
mod restart;
mod scaffold;
mod schemathesis;
mod secrets;
mod store_postgres;
mod tasks;
mod vault_rotation;
mod walkthrough;
mod workflow_chaos;
mod workflows;
