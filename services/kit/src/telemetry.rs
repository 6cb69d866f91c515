//! Logs, traces and trace-context propagation.
//!
//! Spans always carry OpenTelemetry context (so `traceparent` flows through HTTP,
//! gRPC and AMQP even when nothing exports); they are exported over OTLP/gRPC
//! only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Spans follow the
//! OpenTelemetry semantic conventions (`semconv`); every log line written
//! inside a span carries its `trace_id` and `span_id`.

use std::{collections::HashMap, fmt};

use opentelemetry::{
    Context, KeyValue, global,
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    resource::{EnvResourceDetector, ResourceDetector, TelemetryResourceDetector},
    trace::SdkTracerProvider,
};
use opentelemetry_semantic_conventions::{SCHEMA_URL, resource as semconv};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{LevelFilter, filter_fn},
    fmt::{FmtContext, FormatEvent, FormatFields, format},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::config::{LogFormat, TelemetryConfig};

pub const TRACEPARENT: &str = "traceparent";

/// Keeps the tracer provider alive; `shutdown` flushes spans still buffered.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

/// The `service.name` a process reports: `OTEL_SERVICE_NAME`, else the one in
/// `OTEL_RESOURCE_ATTRIBUTES`, else `telemetry.service_name`, else `default`
/// (the name of what the process serves).
pub fn service_name(config: &TelemetryConfig, default: &str) -> String {
    let from_env = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .or_else(|| {
            EnvResourceDetector::new()
                .detect()
                .get(&opentelemetry::Key::new(semconv::SERVICE_NAME))
                .map(|name| name.to_string())
        });
    from_env
        .or_else(|| Some(config.service_name.clone()).filter(|name| !name.trim().is_empty()))
        .unwrap_or_else(|| default.to_owned())
}

/// The resource every exported span describes: `service.name` as above,
/// `service.version`, a `service.instance.id` per process (to tell replicas
/// apart), then whatever `OTEL_RESOURCE_ATTRIBUTES` adds or overrides.
fn resource(service: &str, version: &str) -> Resource {
    Resource::builder_empty()
        .with_schema_url(
            [
                KeyValue::new(semconv::SERVICE_VERSION, version.to_owned()),
                KeyValue::new(
                    semconv::SERVICE_INSTANCE_ID,
                    uuid::Uuid::new_v4().to_string(),
                ),
            ],
            SCHEMA_URL,
        )
        .with_detectors(&[
            Box::new(TelemetryResourceDetector),
            Box::new(EnvResourceDetector::new()),
        ])
        .with_service_name(service.to_owned())
        .build()
}

impl Telemetry {
    /// Installs the process-wide subscriber. Call once, first thing in `main`,
    /// with the name from [`service_name`] and the build's version.
    pub fn init(config: &TelemetryConfig, service: &str, version: &str) -> anyhow::Result<Self> {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let mut builder = SdkTracerProvider::builder().with_resource(resource(service, version));
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?;
            builder = builder.with_batch_exporter(exporter);
        }
        let provider = builder.build();
        global::set_tracer_provider(provider.clone());
        let tracer = provider.tracer_with_scope(
            opentelemetry::InstrumentationScope::builder("hotline")
                .with_version(version.to_owned())
                .with_schema_url(SCHEMA_URL)
                .build(),
        );

        let filter = quiet_lapin(
            EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(&config.level))?,
        );
        // No ANSI colours: logs go to files and collectors, and the ids are
        // appended to each line after it is formatted.
        let fmt = match config.log_format {
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .fmt_fields(format::JsonFields::new())
                .event_format(WithTraceIds {
                    inner: format::format()
                        .json()
                        .flatten_event(true)
                        .with_current_span(true),
                    layout: Layout::Json,
                })
                .boxed(),
            LogFormat::Pretty => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .event_format(WithTraceIds {
                    inner: format::format().compact().with_ansi(false),
                    layout: Layout::Text,
                })
                .boxed(),
        };
        // The log level filters logs only: spans stay on for tracing, so trace
        // context propagates even when logs are quiet.
        tracing_subscriber::registry()
            .with(fmt.with_filter(filter))
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(filter_fn(traced).with_max_level_hint(LevelFilter::INFO)),
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

#[derive(Clone, Copy)]
enum Layout {
    /// `… message fields trace_id=… span_id=…`
    Text,
    /// `{"trace_id":"…","span_id":"…",…}`
    Json,
}

/// Formats an event with `inner`, then adds the trace and span id of the
/// innermost span around it that the OpenTelemetry layer tracks, so a log
/// line leads to its trace and a trace to its log lines.
struct WithTraceIds<F> {
    inner: F,
    layout: Layout,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = current_ids(ctx) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, format::Writer::new(&mut line), event)?;
        match self.layout {
            Layout::Json => match line.strip_prefix('{') {
                Some(rest) => write!(
                    writer,
                    "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
                ),
                None => writer.write_str(&line),
            },
            Layout::Text => {
                let body = line.strip_suffix('\n').unwrap_or(&line);
                writeln!(writer, "{body} trace_id={trace_id} span_id={span_id}")
            }
        }
    }
}

/// The ids of the innermost span in scope that has a valid span context (a
/// span below the OpenTelemetry layer's level has none: its parent's are used).
/// The OpenTelemetry layer is reached through the global dispatcher that
/// `Telemetry::init` installs (a scoped one would hide it: no ids then).
fn current_ids<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<(String, String)>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let spans: Vec<tracing::span::Id> = ctx.event_scope()?.map(|span| span.id()).collect();
    tracing::dispatcher::get_default(|dispatch| {
        spans.iter().find_map(|id| {
            let context = tracing_opentelemetry::get_otel_context(id, dispatch)?;
            let span = context.span();
            let span_context = span.span_context();
            span_context.is_valid().then(|| {
                (
                    span_context.trace_id().to_string(),
                    span_context.span_id().to_string(),
                )
            })
        })
    })
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

/// The target of the access log: one line per request in the logs, but not a
/// span event in traces, where the request's span already says it all (and an
/// event per request was the costliest part of tracing a screen pop).
pub const ACCESS_LOG: &str = "hotline::access";

/// What the OpenTelemetry layer sees: spans and events from INFO up, but
/// for the access log.
fn traced(metadata: &tracing::Metadata<'_>) -> bool {
    *metadata.level() <= tracing::Level::INFO
        && !(metadata.is_event() && metadata.target() == ACCESS_LOG)
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
                    .with_filter(filter_fn(traced).with_max_level_hint(LevelFilter::INFO)),
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

/// The remote parent described by the trace context headers of a request
/// (gRPC metadata, or any `http` 1 request).
pub fn parent_from_headers(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    })
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
