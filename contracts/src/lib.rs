//! The contract every Switchyard component speaks: the invoke envelope, the RFC 9457 error
//! model with stable codes, provider descriptors, the per-domain action schemas and the
//! OpenAPI document built from them.
//!
//! The action schemas live per *domain* (not per engine) on purpose: `db/sqlite` and a later
//! `db/postgres` must accept the same params and answer the same shape, so they share one file
//! under `contracts/schemas/domains/`.

pub mod descriptor;
pub mod domains;
pub mod envelope;
pub mod event;
pub mod masking;
pub mod openapi;
pub mod problem;
pub mod schema;
pub mod scope;
pub mod tenant;

pub use descriptor::{
    ActionDescriptor, DependencyHealth, Health, HealthStatus, ProviderDescriptor, ServiceDescriptor,
};
pub use envelope::{InvokeRequest, InvokeResponse, ResponseMeta};
pub use event::{Event, SPEC_VERSION};
pub use problem::{ErrorCode, FieldError, PROBLEM_CONTENT_TYPE, Problem};
pub use schema::{ActionValidators, SchemaError};
pub use scope::{Operation, Scopes};
pub use tenant::TenantId;
