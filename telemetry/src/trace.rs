//! OpenTelemetry traces, off unless the standard variables turn them on:
//! `OTEL_TRACES_EXPORTER=otlp` (a list may name others; they are ignored with a warning), or,
//! with `OTEL_TRACES_EXPORTER` unset, an `OTEL_EXPORTER_OTLP_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`. `OTEL_TRACES_EXPORTER=none` turns them off. Spans go
//! out over OTLP/HTTP with protobuf bodies from the SDK's batch thread (`OTEL_BSP_*` tune it;
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` apply as usual).
//!
//! When off, [`enabled`] is one relaxed atomic load and every helper here returns before
//! touching a span, so the request path pays nothing else.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::context::FutureExt;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
    TracerProvider as _,
};
use opentelemetry::{KeyValue, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

pub use opentelemetry::Context;
pub use opentelemetry::trace::{SpanKind as Kind, Status};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The instrumentation scope of every span Switchyard makes.
const SCOPE: &str = "switchyard";

/// Whether spans are being recorded and exported in this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Flushes and stops the exporter when dropped, so spans of the last requests are not lost on
/// a clean shutdown.
pub struct TraceGuard(SdkTracerProvider);

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown() {
            tracing::warn!(error = %e, "trace exporter did not shut down cleanly");
        }
    }
}

/// Installs the OTLP exporter when the environment asks for one; `service` names the process
/// (`switchyard-gateway`, …) unless `OTEL_SERVICE_NAME` does. Fails only when the exporter
/// cannot be built (a malformed endpoint). Call once, before any tokio runtime exists: the
/// blocking HTTP client may not be built inside one.
pub fn init_from_env(service: &str) -> Result<Option<TraceGuard>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    let exporters = var("OTEL_TRACES_EXPORTER");
    let (wanted, unknown) = otlp_wanted(exporters.as_deref(), endpoint);
    for exporter in unknown {
        tracing::warn!(
            exporter,
            "OTEL_TRACES_EXPORTER names an exporter Switchyard does not have; only otlp is exported"
        );
    }
    if !wanted {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("the OTLP trace exporter could not be built: {e}"))?;
    let mut resource = Resource::builder();
    if var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    global::set_tracer_provider(provider.clone());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some(TraceGuard(provider)))
}

/// Whether to export over OTLP, and the exporters named that are not built in (ignored, so a
/// shared environment naming `console` does not stop the process).
fn otlp_wanted(exporters: Option<&str>, endpoint: bool) -> (bool, Vec<&str>) {
    match exporters {
        Some(list) => {
            let names: Vec<&str> = list.split(',').map(str::trim).collect();
            let unknown = names
                .iter()
                .copied()
                .filter(|n| !matches!(*n, "otlp" | "none"))
                .collect();
            (names.contains(&"otlp"), unknown)
        }
        None => (endpoint, Vec::new()),
    }
}

fn tracer() -> global::BoxedTracer {
    global::tracer_provider().tracer(SCOPE)
}

/// The context a W3C `traceparent` names as parent (remote), or the empty context when the
/// header is absent or malformed. Only version 00's four fields are read, as the W3C asks of
/// a version-00 parser meeting a later version.
pub fn remote_parent(traceparent: Option<&str>) -> Context {
    let parsed = traceparent.and_then(|value| {
        let mut fields = value.split('-');
        let (_version, trace, span, flags) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        let trace = TraceId::from_hex(trace).ok()?;
        let span = SpanId::from_hex(span).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace != TraceId::INVALID && span != SpanId::INVALID).then(|| {
            SpanContext::new(
                trace,
                span,
                TraceFlags::new(flags),
                true,
                TraceState::default(),
            )
        })
    });
    match parsed {
        Some(parent) => Context::new().with_remote_span_context(parent),
        None => Context::new(),
    }
}

/// The `traceparent` that makes the receiver's spans children of `cx`'s span.
pub fn traceparent(cx: &Context) -> String {
    let span = cx.span();
    let sc = span.span_context();
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    )
}

/// The trace id of `cx`'s span, as logged.
pub fn trace_id(cx: &Context) -> String {
    cx.span().span_context().trace_id().to_string()
}

/// Starts a span under `parent` and returns the context holding it; the span ends when that
/// context (and every clone) is dropped, or at [`end`].
pub fn start(
    name: &'static str,
    kind: SpanKind,
    parent: &Context,
    attrs: Vec<KeyValue>,
) -> Context {
    let tracer = tracer();
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attrs)
        .start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// Ends `cx`'s span, marking it an error with `code` when there is one.
pub fn end(cx: &Context, code: Option<&str>) {
    let span = cx.span();
    if let Some(code) = code {
        span.set_attribute(KeyValue::new("switchyard.code", code.to_owned()));
        span.set_status(Status::error(code.to_owned()));
    }
    span.end();
}

/// Runs `fut` inside a new span, child of the current context, when tracing is on; the span
/// is the current context for everything `fut` does, so nested calls become its children.
pub async fn in_span<F: Future>(
    name: &'static str,
    kind: SpanKind,
    attrs: impl FnOnce() -> Vec<KeyValue>,
    fut: F,
) -> F::Output {
    if !enabled() {
        return fut.await;
    }
    let cx = start(name, kind, &Context::current(), attrs());
    fut.with_context(cx).await
}

/// Runs `fut` as the server span of a request that arrived with `traceparent`.
pub async fn serve<F: Future>(
    name: &'static str,
    traceparent: Option<&str>,
    attrs: impl FnOnce() -> Vec<KeyValue>,
    fut: F,
) -> F::Output {
    if !enabled() {
        return fut.await;
    }
    let cx = start(name, SpanKind::Server, &remote_parent(traceparent), attrs());
    fut.with_context(cx).await
}

/// A span attribute.
pub fn attr(key: &'static str, value: impl Into<String>) -> KeyValue {
    KeyValue::new(key, value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_through_a_remote_parent() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = remote_parent(Some(value));
        assert!(cx.span().span_context().is_remote());
        assert_eq!(traceparent(&cx), value);
        assert_eq!(trace_id(&cx), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn the_standard_variables_decide_whether_spans_are_exported() {
        assert_eq!(otlp_wanted(None, false), (false, vec![]));
        assert_eq!(otlp_wanted(None, true), (true, vec![]));
        assert_eq!(otlp_wanted(Some("none"), true), (false, vec![]));
        assert_eq!(otlp_wanted(Some("otlp"), false), (true, vec![]));
        assert_eq!(
            otlp_wanted(Some("otlp, console"), false),
            (true, vec!["console"])
        );
        assert_eq!(otlp_wanted(Some("zipkin"), true), (false, vec!["zipkin"]));
    }

    #[test]
    fn malformed_traceparents_give_no_parent() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-zz-01",
            "garbage",
        ] {
            assert!(!remote_parent(Some(bad)).has_active_span(), "{bad}");
        }
        assert!(!remote_parent(None).has_active_span());
    }
}
