//! What operators' tools see of a running `hotline`: spans exported over
//! OTLP as the semantic conventions name and describe them, under the
//! service's own name; `/metrics` with the build, the outbox, the cache, the
//! database pools and the consumers' lag; log lines that carry their trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::HashMap, time::Duration};

use common::{Server, serve};
use hotline_proto::identity::v1::{
    LookupByPhoneRequest, identity_service_client::IdentityServiceClient,
};
use hotline_testkit::{Infra, Link, TcpProxy, eventually};
use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::{Span, span::SpanKind},
};

const ADMIN: (&str, &str) = ("ops-admin", "ops-admin-secret-0123456789");
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// A collector on loopback that keeps what is exported to it.
mod collector {
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    };

    #[derive(Clone, Default)]
    pub struct Collector(pub Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            self.0.lock().unwrap().push(request.into_inner());
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: None,
            }))
        }
    }

    pub async fn start() -> (String, Collector) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let collector = Collector::default();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (address, collector)
    }
}

use collector::Collector;

impl Collector {
    /// Every span exported so far, with the `service.name` of its resource.
    fn spans(&self) -> Vec<(String, Span)> {
        let exports = self.0.lock().unwrap().clone();
        let mut spans = Vec::new();
        for resource_spans in exports.iter().flat_map(|e| e.resource_spans.iter()) {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| value(&resource.attributes, "service.name"))
                .unwrap_or_default();
            for span in resource_spans
                .scope_spans
                .iter()
                .flat_map(|scope| scope.spans.iter())
            {
                spans.push((service.clone(), span.clone()));
            }
        }
        spans
    }

    /// The attributes of the first exported resource.
    fn resource(&self) -> HashMap<String, String> {
        let exports = self.0.lock().unwrap();
        let attributes = exports
            .iter()
            .flat_map(|e| e.resource_spans.iter())
            .find_map(|r| r.resource.as_ref())
            .map(|resource| resource.attributes.clone())
            .unwrap_or_default();
        attributes
            .iter()
            .filter_map(|kv| Some((kv.key.clone(), render(kv.value.as_ref()?)?)))
            .collect()
    }

    fn named(&self, name: &str) -> Option<Span> {
        self.spans()
            .into_iter()
            .map(|(_, span)| span)
            .find(|span| span.name == name)
    }
}

#[allow(clippy::wildcard_enum_match_arm)]
fn render(value: &AnyValue) -> Option<String> {
    Some(match value.value.as_ref()? {
        any_value::Value::StringValue(text) => text.clone(),
        any_value::Value::IntValue(number) => number.to_string(),
        any_value::Value::BoolValue(flag) => flag.to_string(),
        any_value::Value::DoubleValue(number) => number.to_string(),
        // Not a type these spans use: shown as the collector got it.
        other => format!("{other:?}"),
    })
}

fn value(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| render(kv.value.as_ref()?))
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    value(&span.attributes, key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `hotline serve` with `args` (a target) on `infra`'s backends, exporting
/// spans to `endpoint` at once, with the bootstrap admin and `extra` settings.
fn serve_on(infra: &Infra, target: &str, endpoint: &str, extra: &[(&str, &str)]) -> Server {
    let mut env: Vec<(String, String)> = infra.process_env();
    env.extend(
        [
            ("HOTLINE_TARGET", target),
            ("HOTLINE_BOOTSTRAP_CLIENT_ID", ADMIN.0),
            ("HOTLINE_BOOTSTRAP_CLIENT_SECRET", ADMIN.1),
            (
                "HOTLINE_IDENTITY__PII_KEY",
                "YmVuY2gtb25seS1rZXktMzItYnl0ZXMtZm9yLXRlc3Q=",
            ),
            ("HOTLINE_BUS__OUTBOX_POLL_INTERVAL", "100ms"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            // Spans leave every 100 ms instead of every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ]
        .iter()
        .chain(extra)
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    serve(&infra.data_dir(), &env)
}

/// The embedded backends serve all services in one process only; the real
/// ones let a process serve identity alone, under its own name.
fn identity_target(infra: &Infra) -> (&'static str, &'static str) {
    if infra.backends == hotline_testkit::Backends::Real {
        ("identity", "hotline-identity")
    } else {
        ("all", "hotline")
    }
}

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{CALLER_SPAN}-01")
}

/// A REST call, a gRPC call and an event published and consumed, each seen
/// as its span: names, kinds, attributes, parents and the service's name.
async fn spans_follow_the_semantic_conventions(infra: Infra) {
    let (endpoint, collector) = collector::start().await;
    let (target, service_name) = identity_target(&infra);
    let mut server = serve_on(&infra, target, &endpoint, &[]);
    let client = reqwest::Client::new();
    let token = hotline_testkit::client_token(&client, &server.http, ADMIN.0, ADMIN.1).await;

    // REST, continuing the caller's trace; the creation publishes an event
    // that identity's own lookup-invalidation consumer takes.
    let created: serde_json::Value = client
        .post(format!("{}/api/v1/customers", server.http))
        .bearer_auth(&token)
        .header("traceparent", traceparent())
        .json(&serde_json::json!({"name": "张伟", "phones": [{"number": "138 0013 8000"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string(), "{created}");
    let missing = client
        .get(format!(
            "{}/api/v1/customers/{}",
            server.http,
            uuid::Uuid::nil()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // gRPC: one served call, one refused for want of a token.
    let mut grpc = IdentityServiceClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let mut request = tonic::Request::new(LookupByPhoneRequest {
        phone: "13800138000".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let found = grpc.lookup_by_phone(request).await.unwrap().into_inner();
    assert_eq!(found.candidates.len(), 1);
    let refused = grpc
        .lookup_by_phone(LookupByPhoneRequest {
            phone: "13800138000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let consumed = "process identity.lookup-invalidation";
    assert!(
        eventually(Duration::from_secs(30), || async {
            collector.named(consumed).is_some()
        })
        .await,
        "no {consumed} span among {:?}",
        collector
            .spans()
            .iter()
            .map(|(_, s)| s.name.clone())
            .collect::<Vec<_>>()
    );
    server.stop();

    let spans = collector.spans();
    for (service, span) in &spans {
        assert_eq!(service, service_name, "{}", span.name);
    }
    let system = if infra.backends == hotline_testkit::Backends::Real {
        "rabbitmq"
    } else {
        "in_process"
    };

    let create = collector.named("POST /api/v1/customers").unwrap();
    assert_eq!(create.kind, SpanKind::Server as i32);
    assert_eq!(
        hex(&create.trace_id),
        TRACE_ID,
        "the caller's trace goes on"
    );
    assert_eq!(hex(&create.parent_span_id), CALLER_SPAN);
    for (key, expected) in [
        ("http.request.method", "POST"),
        ("http.route", "/api/v1/customers"),
        ("http.response.status_code", "201"),
        ("url.path", "/api/v1/customers"),
        ("url.scheme", "http"),
    ] {
        assert_eq!(attribute(&create, key).as_deref(), Some(expected), "{key}");
    }
    for old in ["http.method", "http.status_code", "http.target"] {
        assert_eq!(attribute(&create, old), None, "{old}");
    }
    let get = collector.named("GET /api/v1/customers/{id}").unwrap();
    assert_eq!(
        attribute(&get, "http.response.status_code").as_deref(),
        Some("404")
    );
    assert_eq!(
        attribute(&get, "url.path").unwrap(),
        format!("/api/v1/customers/{}", uuid::Uuid::nil())
    );
    assert_eq!(get.status.as_ref().map_or(0, |s| s.code), 0, "4xx is unset");

    // The event: published in the request's trace, processed as its child.
    let publish = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| {
            span.name == "publish hotline.events"
                && attribute(span, "messaging.rabbitmq.destination.routing_key").as_deref()
                    == Some("identity.customer.created")
        })
        .unwrap();
    assert_eq!(publish.kind, SpanKind::Producer as i32);
    assert_eq!(hex(&publish.trace_id), TRACE_ID);
    let message_id = attribute(publish, "messaging.message.id").unwrap();
    for (key, expected) in [
        ("messaging.system", system),
        ("messaging.operation.type", "send"),
        ("messaging.operation.name", "publish"),
        ("messaging.destination.name", "hotline.events"),
    ] {
        assert_eq!(attribute(publish, key).as_deref(), Some(expected), "{key}");
    }
    let process = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| {
            span.name == consumed
                && attribute(span, "messaging.message.id").as_ref() == Some(&message_id)
        })
        .unwrap();
    assert_eq!(process.kind, SpanKind::Consumer as i32);
    assert_eq!(hex(&process.trace_id), TRACE_ID);
    assert_eq!(
        process.parent_span_id, publish.span_id,
        "a child of its publish"
    );
    for (key, expected) in [
        ("messaging.system", system),
        ("messaging.operation.type", "process"),
        ("messaging.operation.name", "process"),
        ("messaging.destination.name", "identity.lookup-invalidation"),
        (
            "messaging.rabbitmq.destination.routing_key",
            "identity.customer.created",
        ),
    ] {
        assert_eq!(attribute(process, key).as_deref(), Some(expected), "{key}");
    }
    assert!(uuid::Uuid::parse_str(&message_id).is_ok(), "the event's id");

    // gRPC: fully qualified method, the status as code and as name.
    let rpcs: Vec<&Span> = spans
        .iter()
        .map(|(_, span)| span)
        .filter(|span| span.name == "hotline.identity.v1.IdentityService/LookupByPhone")
        .collect();
    assert_eq!(rpcs.len(), 2, "one span per call");
    let status = |span: &Span| attribute(span, "rpc.grpc.status_code").unwrap();
    let served = rpcs.iter().find(|span| status(span) == "0").unwrap();
    assert_eq!(served.kind, SpanKind::Server as i32);
    for (key, expected) in [
        ("rpc.system.name", "grpc"),
        ("rpc.system", "grpc"),
        (
            "rpc.method",
            "hotline.identity.v1.IdentityService/LookupByPhone",
        ),
        ("rpc.service", "hotline.identity.v1.IdentityService"),
        ("rpc.response.status_code", "OK"),
    ] {
        assert_eq!(attribute(served, key).as_deref(), Some(expected), "{key}");
    }
    let unauthenticated = rpcs.iter().find(|span| status(span) == "16").unwrap();
    assert_eq!(
        attribute(unauthenticated, "rpc.response.status_code").as_deref(),
        Some("UNAUTHENTICATED")
    );
    assert!(
        !spans
            .iter()
            .any(|(_, span)| span.name.contains("grpc.health")
                || span.name.contains("/livez")
                || span.name.contains("/metrics")),
        "probes are not traced"
    );
}

/// The `service.name` of a process serving every service, and one set by
/// the standard variables, which win over the configuration.
async fn the_service_name_comes_from_the_targets_or_the_environment(infra: Infra) {
    let (first, second, default) = if infra.backends == hotline_testkit::Backends::Real {
        ("routing", "ticketing", "hotline-routing")
    } else {
        ("all", "all", "hotline")
    };
    let cases = [
        (first, vec![], default),
        (
            second,
            vec![("HOTLINE_TELEMETRY__SERVICE_NAME", "from-settings")],
            "from-settings",
        ),
        (
            second,
            vec![
                ("HOTLINE_TELEMETRY__SERVICE_NAME", "from-settings"),
                ("OTEL_SERVICE_NAME", "call-center-edge"),
            ],
            "call-center-edge",
        ),
    ];
    for (target, mut extra, expected) in cases {
        let (endpoint, collector) = collector::start().await;
        extra.push((
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test",
        ));
        let mut server = serve_on(&infra, target, &endpoint, &extra);
        let answer = reqwest::get(format!("{}/api/v1/nothing-here", server.http))
            .await
            .unwrap();
        assert_eq!(answer.status(), 404);
        server.stop();
        let resource = collector.resource();
        assert_eq!(
            resource.get("service.name").map(String::as_str),
            Some(expected),
            "{target}: {resource:?}"
        );
        assert_eq!(
            resource
                .get("deployment.environment.name")
                .map(String::as_str),
            Some("test")
        );
        assert_eq!(
            resource.get("service.version").map(String::as_str),
            Some(hotline::VERSION)
        );
        // No route matched: the span is named by its method alone.
        let span = collector.named("GET").unwrap();
        assert_eq!(attribute(&span, "http.route"), None);
    }
}

/// The value of the series `series` (name and labels exactly as exposed).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

async fn scrape(client: &reqwest::Client, server: &Server) -> String {
    client
        .get(format!("{}/metrics", server.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `/metrics` after a screen pop looked up twice: the build, the cache's hit,
/// the pools, the outbox drained and the consumed queues' lag.
async fn metrics_describe_the_build_cache_pools_outbox_and_consumers(infra: Infra) {
    let (endpoint, _collector) = collector::start().await;
    let (target, service_name) = identity_target(&infra);
    let mut server = serve_on(&infra, target, &endpoint, &[]);
    let client = reqwest::Client::new();
    let token = hotline_testkit::client_token(&client, &server.http, ADMIN.0, ADMIN.1).await;
    let created = client
        .post(format!("{}/api/v1/customers", server.http))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "李娜", "phones": [{"number": "139 0013 9000"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let before = scrape(&client, &server).await;
    let hits =
        r#"hotline_cache_operations_total{service="identity",operation="get",outcome="hit"}"#;
    let hits_before = sample(&before, hits).unwrap_or(0.0);
    for _ in 0..2 {
        let found = client
            .get(format!("{}/api/v1/customers/lookup", server.http))
            .query(&[("phone", "13900139000")])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(found.status(), 200);
    }

    let revision = if hotline::REVISION.is_empty() {
        "unknown"
    } else {
        hotline::REVISION
    };
    let build = format!(
        r#"hotline_build_info{{version="{}",revision="{revision}",service="{service_name}"}}"#,
        hotline::VERSION
    );
    let (max, pools): (f64, &[&str]) = if infra.backends == hotline_testkit::Backends::Real {
        (16.0, &["identity", "identity/background"])
    } else {
        (1.0, &["identity"])
    };
    let drained = eventually(Duration::from_secs(15), || async {
        let metrics = scrape(&client, &server).await;
        sample(
            &metrics,
            r#"outbox_pending_events{source="/hotline/identity"}"#,
        ) == Some(0.0)
            && sample(
                &metrics,
                r#"hotline_consumer_lag_messages{queue="identity.lookup-invalidation"}"#,
            ) == Some(0.0)
    })
    .await;
    let metrics = scrape(&client, &server).await;
    assert!(drained, "{metrics}");
    assert_eq!(sample(&metrics, &build), Some(1.0), "{build} in {metrics}");
    assert!(
        sample(&metrics, hits).unwrap_or(0.0) > hits_before,
        "the second lookup is a cache hit: {metrics}"
    );
    assert!(
        sample(
            &metrics,
            r#"hotline_cache_operations_total{service="identity",operation="get",outcome="miss"}"#
        )
        .is_some()
    );
    for pool in pools {
        let used = sample(
            &metrics,
            &format!(r#"hotline_db_pool_connections{{pool="{pool}",state="used"}}"#),
        )
        .unwrap_or_else(|| panic!("{pool} in {metrics}"));
        let idle = sample(
            &metrics,
            &format!(r#"hotline_db_pool_connections{{pool="{pool}",state="idle"}}"#),
        )
        .unwrap();
        let pool_max = sample(
            &metrics,
            &format!(r#"hotline_db_pool_max_connections{{pool="{pool}"}}"#),
        )
        .unwrap();
        assert!(
            used + idle >= 1.0 && used + idle <= pool_max,
            "{pool}: {metrics}"
        );
        if *pool == "identity" {
            assert_eq!(pool_max, max);
        }
    }
    assert_eq!(
        sample(
            &metrics,
            r#"hotline_outbox_oldest_event_age_seconds{source="/hotline/identity"}"#
        ),
        Some(0.0)
    );
    assert!(
        sample(
            &metrics,
            r#"hotline_consumer_lag_messages{queue="identity.timeline"}"#
        )
        .is_some(),
        "{metrics}"
    );
    server.stop();
}

hotline_testkit::on_both_backends!(std::future::ready =>
    spans_follow_the_semantic_conventions,
    the_service_name_comes_from_the_targets_or_the_environment,
    metrics_describe_the_build_cache_pools_outbox_and_consumers,
);

/// With the broker cut off, events wait in the outbox and its gauges grow;
/// once it is back they drain to zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_backlog_grows_while_the_broker_is_away() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    let (proxy, proxied) = TcpProxy::in_front_of(&infra.amqp_url, 5672, Link::Down).await;
    let (endpoint, _collector) = collector::start().await;
    let mut server = serve_on(
        &infra,
        "identity",
        &endpoint,
        &[("HOTLINE_BUS__AMQP_URL", proxied.as_str())],
    );
    let client = reqwest::Client::new();
    let token = hotline_testkit::client_token(&client, &server.http, ADMIN.0, ADMIN.1).await;
    for number in ["137 0013 7001", "137 0013 7002"] {
        let created = client
            .post(format!("{}/api/v1/customers", server.http))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": "王芳", "phones": [{"number": number}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let pending = r#"outbox_pending_events{source="/hotline/identity"}"#;
    let age = r#"hotline_outbox_oldest_event_age_seconds{source="/hotline/identity"}"#;
    let backed_up = eventually(Duration::from_secs(20), || async {
        let metrics = scrape(&client, &server).await;
        sample(&metrics, pending).is_some_and(|events| events >= 2.0)
            && sample(&metrics, age).is_some_and(|seconds| seconds > 0.0)
    })
    .await;
    assert!(backed_up, "{}", scrape(&client, &server).await);
    assert_eq!(
        sample(
            &scrape(&client, &server).await,
            r#"hotline_dependency_up{dependency="rabbitmq"}"#
        ),
        Some(0.0)
    );

    proxy.set(Link::Up);
    // The relay backs off up to 30 poll intervals (3 s here) between tries.
    let drained = eventually(Duration::from_secs(30), || async {
        sample(&scrape(&client, &server).await, pending) == Some(0.0)
    })
    .await;
    assert!(drained, "{}", scrape(&client, &server).await);
    server.stop();
}

/// Every log line written inside a request's span names its trace and span,
/// in both log formats; lines outside any span don't.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_inside_a_span_carry_its_trace_and_span_ids() {
    for format in ["json", "pretty"] {
        let infra = Infra::embedded();
        let (endpoint, collector) = collector::start().await;
        let mut server = serve_on(
            &infra,
            "all",
            &endpoint,
            &[("HOTLINE_TELEMETRY__LOG_FORMAT", format)],
        );
        let answer = reqwest::Client::new()
            .get(format!("{}/api/v1/customers?name=x", server.http))
            .header("traceparent", traceparent())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        server.stop();
        let logs = server.logs();
        let span = collector.named("GET /api/v1/customers").unwrap();
        let span_id = hex(&span.span_id);
        let access = logs
            .iter()
            .find(|line| line.contains("GET /api/v1/customers") && line.contains("401"))
            .unwrap_or_else(|| panic!("no access log line in {logs:#?}"));
        let outside = logs
            .iter()
            .find(|line| line.contains("shutting down"))
            .unwrap_or_else(|| panic!("no shutdown line in {logs:#?}"));
        assert!(!outside.contains("trace_id"), "{outside}");
        if format == "json" {
            let line: serde_json::Value = serde_json::from_str(access).unwrap();
            assert_eq!(line["trace_id"], TRACE_ID, "{line}");
            assert_eq!(line["span_id"], span_id.as_str(), "{line}");
            assert_eq!(line["status"], 401, "{line}");
            let outside: serde_json::Value = serde_json::from_str(outside).unwrap();
            assert!(outside.get("trace_id").is_none());
        } else {
            assert!(
                access.ends_with(&format!("trace_id={TRACE_ID} span_id={span_id}")),
                "{access}"
            );
        }
    }
}
