//! Observability shared by the gateway and the runtime (docs/observability.md,
//! docs/adr/0017-observability.md):
//!
//! - [`metrics`]: one OpenMetrics registry per process, RED metrics per tenant, domain,
//!   provider and action, plus breaker, bulkhead, rate-limit, idempotency and policy counts;
//! - [`trace`]: OpenTelemetry spans exported over OTLP/HTTP when the standard `OTEL_*`
//!   variables ask for it, and nothing at all otherwise;
//! - [`logs`]: JSON log lines with registered secrets and configured PII fields redacted.

pub mod logs;
pub mod metrics;
pub mod trace;
