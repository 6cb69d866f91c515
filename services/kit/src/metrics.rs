//! Prometheus metrics: one process-wide recorder rendered at `/metrics`, with
//! request counts and latency histograms per HTTP route and per RPC, the cache's
//! outcomes and the state of the process's dependencies.
//!
//! Label values come from bounded sets only: what a client sends (an unknown
//! path, method or RPC) is folded into one value, so a scanner can't grow the
//! number of series.

use std::{
    collections::HashSet,
    sync::{Arc, OnceLock},
    time::Duration,
};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use prost::Message;

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `route` of a request no route matched.
pub const UNMATCHED: &str = "unmatched";
/// The `method` of a request with a method outside the standard ones
/// (OpenTelemetry's convention).
pub const OTHER_METHOD: &str = "_OTHER";
/// The `service` and `method` of an RPC this process does not serve.
const UNKNOWN_RPC: &str = "unknown";

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

/// The label of an HTTP method: the standard ones as they are, any other as `_OTHER`.
pub fn http_method_label(method: &str) -> &'static str {
    const STANDARD: &[&str] = &[
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    STANDARD
        .iter()
        .find(|standard| **standard == method)
        .copied()
        .unwrap_or(OTHER_METHOD)
}

/// `method` must come from `http_method_label`, `route` from the router
/// (a pattern, or `UNMATCHED`).
pub fn record_http(method: &'static str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

/// The RPCs a process serves (`/package.Service/Method`), read from the
/// descriptors of the services it mounted. Any other path is labelled `unknown`.
#[derive(Clone, Debug, Default)]
pub struct GrpcRoutes(Arc<HashSet<String>>);

impl GrpcRoutes {
    /// The methods of `services` (full names) described in `descriptor_set`
    /// (an encoded `FileDescriptorSet`).
    pub fn new(descriptor_set: &[u8], services: &[&str]) -> Self {
        let files = prost_types::FileDescriptorSet::decode(descriptor_set)
            .map(|set| set.file)
            .unwrap_or_default();
        let mut paths = HashSet::new();
        for file in files {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let name = service.name.unwrap_or_default();
                let full = if package.is_empty() {
                    name
                } else {
                    format!("{package}.{name}")
                };
                if !services.contains(&full.as_str()) {
                    continue;
                }
                for method in service.method {
                    paths.insert(format!("/{full}/{}", method.name.unwrap_or_default()));
                }
            }
        }
        Self(Arc::new(paths))
    }

    /// `(package.Service, Method)` of a request path this process serves.
    pub fn known<'a>(&self, path: &'a str) -> Option<(&'a str, &'a str)> {
        if !self.0.contains(path) {
            return None;
        }
        path.trim_start_matches('/').split_once('/')
    }

    /// `(service, method)` labels of a request path.
    fn labels<'a>(&self, path: &'a str) -> (&'a str, &'a str) {
        self.known(path).unwrap_or((UNKNOWN_RPC, UNKNOWN_RPC))
    }
}

pub fn record_grpc(routes: &GrpcRoutes, path: &str, code: i32, elapsed: Duration) {
    let (service, method) = routes.labels(path);
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

/// Whether a dependency the process can serve without (`redis`, `rabbitmq`)
/// answers now: `hotline_dependency_up{dependency}` is 1 or 0. Such outages
/// show here and in the logs, not in `/readyz`.
pub fn set_dependency_up(dependency: &'static str, up: bool) {
    metrics::gauge!("hotline_dependency_up", "dependency" => dependency).set(if up {
        1.0
    } else {
        0.0
    });
}

/// One cache operation of `service`: `get` is a `hit`, `miss`, `error` or
/// `bypassed` (circuit open); `set` and `delete` are `ok`, `error` or `bypassed`.
pub fn record_cache(service: &str, operation: &'static str, outcome: &'static str) {
    metrics::counter!(
        "hotline_cache_operations_total",
        "service" => service.to_owned(),
        "operation" => operation,
        "outcome" => outcome
    )
    .increment(1);
}

/// An event no queue was bound for; it is kept, not dropped.
pub fn record_event_unroutable(kind: &str) {
    metrics::counter!("events_unroutable_total", "type" => kind.to_owned()).increment(1);
}

/// Unroutable events the embedded bus dropped to stay within its bound.
pub fn record_unroutable_dropped(events: u64) {
    metrics::counter!("events_unroutable_dropped_total").increment(events);
}

/// Events waiting in a service's outbox, and how long the oldest has waited,
/// as last seen by its relay.
pub fn set_outbox_backlog(source: &str, events: u64, oldest: Duration) {
    metrics::gauge!("outbox_pending_events", "source" => source.to_owned()).set(events as f64);
    metrics::gauge!("hotline_outbox_oldest_event_age_seconds", "source" => source.to_owned())
        .set(oldest.as_secs_f64());
}

/// `hotline_build_info{version, revision, service}`, always 1: what runs where.
pub fn set_build_info(version: &str, revision: &str, service: &str) {
    metrics::gauge!(
        "hotline_build_info",
        "version" => version.to_owned(),
        "revision" => if revision.is_empty() { "unknown".to_owned() } else { revision.to_owned() },
        "service" => service.to_owned()
    )
    .set(1.0);
}

/// One database pool's connections: in use, idle, and the most it opens.
pub fn set_db_pool(pool: &str, used: u32, idle: u32, max: u32) {
    let gauge = |state: &'static str, value: u32| {
        metrics::gauge!("hotline_db_pool_connections", "pool" => pool.to_owned(), "state" => state)
            .set(f64::from(value));
    };
    gauge("used", used);
    gauge("idle", idle);
    metrics::gauge!("hotline_db_pool_max_connections", "pool" => pool.to_owned())
        .set(f64::from(max));
}

/// Messages ready (published, not yet handed to a consumer) in the queue of
/// subscription `queue` this process consumes.
pub fn set_consumer_lag(queue: &str, ready: u64) {
    metrics::gauge!("hotline_consumer_lag_messages", "queue" => queue.to_owned()).set(ready as f64);
}

/// The circuit breaker in front of `dependency`: the gauge of the current
/// `state` is 1, the others 0.
pub fn set_breaker_state(dependency: &'static str, state: &'static str) {
    for each in ["closed", "open", "half_open"] {
        metrics::gauge!("hotline_circuit_breaker_state", "dependency" => dependency, "state" => each)
            .set(if each == state { 1.0 } else { 0.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_are_labels() {
        assert_eq!(http_method_label("PATCH"), "PATCH");
        assert_eq!(http_method_label("FOO"), "_OTHER");
        assert_eq!(http_method_label("get"), "_OTHER");
    }
}
