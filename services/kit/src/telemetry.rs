//! Logs, traces and trace-context propagation.
//!
//! Spans always carry OpenTelemetry context (so `traceparent` flows through HTTP,
//! gRPC and AMQP even when nothing exports); they are exported over OTLP/gRPC
//! only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use std::collections::HashMap;

use opentelemetry::{Context, global, trace::TracerProvider as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::config::{LogFormat, TelemetryConfig};

pub const TRACEPARENT: &str = "traceparent";

/// Keeps the tracer provider alive; `shutdown` flushes spans still buffered.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Installs the process-wide subscriber. Call once, first thing in `main`.
    pub fn init(config: &TelemetryConfig) -> anyhow::Result<Self> {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let mut builder = SdkTracerProvider::builder().with_resource(resource);
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?;
            builder = builder.with_batch_exporter(exporter);
        }
        let provider = builder.build();
        global::set_tracer_provider(provider.clone());
        let tracer = provider.tracer("hotline");

        let filter = quiet_lapin(
            EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&config.level))?,
        );
        let fmt = match config.log_format {
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .boxed(),
            LogFormat::Pretty => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .compact()
                .boxed(),
        };
        // The log level filters logs only: spans stay on for tracing, so trace
        // context propagates even when logs are quiet.
        tracing_subscriber::registry()
            .with(fmt.with_filter(filter))
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(LevelFilter::INFO),
            )
            .try_init()?;
        Ok(Self { provider })
    }

    /// Flushes and stops the exporters. Blocking work, so it runs off the async
    /// threads (an inline flush starves a current-thread runtime).
    pub async fn shutdown(self) {
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = flushed {
            eprintln!("telemetry shutdown: {error}");
        }
    }
}

/// lapin logs every message the broker returns as unroutable, whole, at WARN
/// (under load most of the process's work), and every channel the broker
/// closes at ERROR, including the expected closes of the bus's passive
/// declarations. The bus reports both itself: it parks, counts and warns once
/// per kind of unroutable event, and each failed operation returns its error.
fn quiet_lapin(filter: EnvFilter) -> EnvFilter {
    ["lapin::returned_messages=off", "lapin::channel=off"]
        .into_iter()
        .filter_map(|directive| directive.parse().ok())
        .fold(filter, EnvFilter::add_directive)
}

/// Installs a subscriber for tests (once per test binary); never fails.
pub fn init_for_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let tracer = provider.tracer("hotline-test");
        global::set_tracer_provider(provider);
        let filter = quiet_lapin(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        );
        let _ = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(filter),
            )
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(LevelFilter::INFO),
            )
            .try_init();
    });
}

/// The W3C `traceparent` of the current span, to pass on to the next hop.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut carrier));
    carrier.remove(TRACEPARENT)
}

/// The remote parent described by a received `traceparent` header.
pub fn parent_context(traceparent: Option<&str>) -> Context {
    let mut carrier = HashMap::new();
    if let Some(value) = traceparent {
        carrier.insert(TRACEPARENT.to_owned(), value.to_owned());
    }
    global::get_text_map_propagator(|propagator| propagator.extract(&carrier))
}

/// Makes `span` a child of the received trace (a no-op without a valid header).
pub fn link_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if traceparent.is_some() {
        let _ = span.set_parent(parent_context(traceparent));
    }
}

/// The trace id part of a `traceparent` (`00-<trace id>-<span id>-<flags>`).
pub fn trace_id(traceparent: &str) -> Option<&str> {
    traceparent.split('-').nth(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_span_continues_the_received_trace() {
        init_for_tests();
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let span = tracing::info_span!("handler");
        link_parent(&span, Some(incoming));
        let outgoing = span.in_scope(current_traceparent).unwrap_or_default();
        assert_eq!(
            trace_id(&outgoing),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_ne!(outgoing, incoming, "a new span id is passed on");
    }

    #[test]
    fn without_a_parent_a_new_trace_starts() {
        init_for_tests();
        let span = tracing::info_span!("root");
        let outgoing = span.in_scope(current_traceparent).unwrap_or_default();
        assert_eq!(outgoing.len(), 55, "{outgoing}");
    }
}
