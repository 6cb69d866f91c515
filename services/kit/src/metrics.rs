//! Prometheus metrics: one process-wide recorder rendered at `/metrics`, with
//! request counts and latency histograms per HTTP route and per RPC.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder on first use; later calls (tests start many servers in
/// one process) share it.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric so far.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

pub fn record_http(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

pub fn record_grpc(path: &str, code: i32, elapsed: Duration) {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("unknown", path));
    let labels = [
        ("service", service.to_owned()),
        ("method", method.to_owned()),
        ("code", code.to_string()),
    ];
    metrics::counter!("grpc_requests_total", &labels).increment(1);
    metrics::histogram!("grpc_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

pub fn record_event_published(kind: &str) {
    metrics::counter!("events_published_total", "type" => kind.to_owned()).increment(1);
}

pub fn record_event_handled(consumer: &str, kind: &str, outcome: &'static str) {
    metrics::counter!(
        "events_handled_total",
        "consumer" => consumer.to_owned(),
        "type" => kind.to_owned(),
        "outcome" => outcome
    )
    .increment(1);
}

pub fn record_event_dead_lettered(consumer: &str, kind: &str) {
    metrics::counter!(
        "events_dead_lettered_total",
        "consumer" => consumer.to_owned(),
        "type" => kind.to_owned()
    )
    .increment(1);
}

/// An event no queue was bound for; it is kept, not dropped.
pub fn record_event_unroutable(kind: &str) {
    metrics::counter!("events_unroutable_total", "type" => kind.to_owned()).increment(1);
}

/// Events waiting in a service's outbox, as last seen by its relay.
pub fn set_outbox_pending(source: &str, events: u64) {
    metrics::gauge!("outbox_pending_events", "source" => source.to_owned()).set(events as f64);
}

/// Whether a dependency the process can run without (broker, cache) answers.
pub fn set_dependency_up(dependency: &'static str, up: bool) {
    metrics::gauge!("dependency_up", "dependency" => dependency).set(if up { 1.0 } else { 0.0 });
}
