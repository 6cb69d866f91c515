//! One actix-web server and one tonic server per process, mounting every
//! component the process runs, plus probes, metrics, API docs and graceful
//! shutdown: readiness goes 503, in-flight work finishes, workers stop.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{
    App, HttpRequest, HttpResponse, HttpServer,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::{Next, from_fn},
    web,
};
use opentelemetry_semantic_conventions::attribute as semconv;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Span, field::Empty};
use tracing_actix_web::{RootSpanBuilder, TracingLogger};
use utoipa::openapi::{OpenApi, OpenApiBuilder};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    auth::{AuthLayer, Authenticator},
    component::{Component, Tasks},
    config::ServerConfig,
    metrics::{self, GrpcRoutes},
    openapi,
    platform::Platform,
    rest, telemetry,
};

/// Paths kept out of metrics, access logs and traces.
const PROBES: &[&str] = &["/livez", "/readyz", "/metrics"];

/// How often the queues this process consumes are measured for
/// `hotline_consumer_lag_messages`.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(5);

/// Everything a process serves.
pub struct Process {
    pub components: Vec<Arc<dyn Component>>,
    pub authenticator: Arc<Authenticator>,
    /// The encoded descriptor set of every `.proto`, for server reflection.
    pub file_descriptor_set: &'static [u8],
    /// The shared infrastructure the components use: its database pools and
    /// consumed queues are reported in `/metrics`.
    pub platform: Platform,
    /// The process's `service.name` (`hotline-identity`, `hotline`, …).
    pub service: String,
    pub version: &'static str,
    /// The source revision the binary was built from; empty if unknown.
    pub revision: &'static str,
}

/// A started process: its bound addresses and the handle to await its end.
pub struct Running {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    shutdown: CancellationToken,
    supervisor: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Begins a graceful shutdown.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the process has shut down, with the first failure if any.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.supervisor.await?
    }
}

struct Readiness {
    shutting_down: AtomicBool,
    components: Vec<Arc<dyn Component>>,
}

impl Process {
    /// Binds both servers, starts the components' background work, and returns
    /// once everything listens. Cancelling `shutdown` (or any task failing)
    /// stops the process gracefully.
    pub async fn start(
        self,
        config: &ServerConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Running> {
        // Record from the first request on, not from the first scrape.
        metrics::handle();
        metrics::set_build_info(self.version, self.revision, &self.service);
        let readiness = Arc::new(Readiness {
            shutting_down: AtomicBool::new(false),
            components: self.components.clone(),
        });

        let http_listener = std::net::TcpListener::bind(config.http_addr)
            .map_err(|e| anyhow::anyhow!("binding http on {}: {e}", config.http_addr))?;
        let http_addr = http_listener.local_addr()?;
        let grpc_listener = tokio::net::TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding grpc on {}: {e}", config.grpc_addr))?;
        let grpc_addr = grpc_listener.local_addr()?;

        let http = self.http_server(config, readiness.clone(), http_listener)?;
        let http_handle = http.handle();

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        let mut routes = tonic::service::RoutesBuilder::default();
        let mut grpc_names = Vec::new();
        for component in &self.components {
            grpc_names.extend(component.add_grpc(&mut routes));
        }
        for name in &grpc_names {
            health_reporter
                .set_service_status(*name, tonic_health::ServingStatus::Serving)
                .await;
        }
        // Both reflection versions: grpcurl and grpcui ask v1, Postman, older
        // grpcurl and Python's grpcio-reflection still ask v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(self.file_descriptor_set)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        routes
            .add_service(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?);
        let grpc_stop = CancellationToken::new();
        let grpc = tonic::transport::Server::builder()
            .layer(AuthLayer::new(
                self.authenticator.clone(),
                GrpcRoutes::new(self.file_descriptor_set, &grpc_names),
            ))
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(
                // No Nagle delay: a unary answer must not wait for the client's ACK.
                tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
                grpc_stop.clone().cancelled_owned(),
            );

        for component in &self.components {
            component.listening(http_addr, grpc_addr);
        }
        let workers_stop = CancellationToken::new();
        let mut workers: Tasks = JoinSet::new();
        for component in &self.components {
            component.spawn_background(&mut workers, workers_stop.clone());
        }
        workers.spawn(measure_backlog(self.platform.clone(), workers_stop.clone()));

        let mut servers: JoinSet<anyhow::Result<()>> = JoinSet::new();
        servers.spawn(async move { http.await.map_err(|e| anyhow::anyhow!("http server: {e}")) });
        servers.spawn(async move { grpc.await.map_err(|e| anyhow::anyhow!("grpc server: {e}")) });

        let components = self.components.clone();
        let drain_timeout = config.drain_timeout;
        let shutdown_delay = config.shutdown_delay;
        let stop = shutdown.clone();
        let supervisor = tokio::spawn(async move {
            // Run until asked to stop or until anything ends on its own (which is a failure).
            let mut failure = tokio::select! {
                () = stop.cancelled() => None,
                Some(ended) = servers.join_next() => Some(describe_exit("server", ended)),
                Some(ended) = workers.join_next() => Some(describe_exit("background task", ended)),
            };
            if let Some(error) = &failure {
                tracing::error!(error = format!("{error:#}"), "stopping after a failure");
            }
            tracing::info!("shutting down: readiness off");
            readiness.shutting_down.store(true, Ordering::SeqCst);
            for name in &grpc_names {
                health_reporter
                    .set_service_status(*name, tonic_health::ServingStatus::NotServing)
                    .await;
            }
            tokio::time::sleep(shutdown_delay).await;
            for component in &components {
                component.begin_shutdown();
            }

            // One deadline for the whole drain: what the servers leave of it is
            // what consumers and workers get.
            let deadline = tokio::time::Instant::now() + drain_timeout;
            tracing::info!("shutting down: finishing in-flight requests");
            grpc_stop.cancel();
            let drained = tokio::time::timeout_at(deadline, async {
                http_handle.stop(true).await;
                while let Some(ended) = servers.join_next().await {
                    if let Err(error) = describe_ok(ended) {
                        failure.get_or_insert(error);
                    }
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!("servers did not drain in time");
                servers.abort_all();
            }

            tracing::info!("shutting down: stopping consumers and workers");
            workers_stop.cancel();
            let drained = tokio::time::timeout_at(deadline, async {
                while let Some(ended) = workers.join_next().await {
                    if let Err(error) = describe_ok(ended) {
                        failure.get_or_insert(error);
                    }
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!("workers did not stop in time");
                workers.abort_all();
            }
            tracing::info!("shut down");
            match failure {
                Some(error) => Err(error),
                None => Ok(()),
            }
        });

        Ok(Running {
            http_addr,
            grpc_addr,
            shutdown,
            supervisor,
        })
    }

    fn http_server(
        &self,
        config: &ServerConfig,
        readiness: Arc<Readiness>,
        listener: std::net::TcpListener,
    ) -> anyhow::Result<actix_web::dev::Server> {
        let components = self.components.clone();
        let authenticator = web::Data::new(self.authenticator.clone());
        let max_body = config.max_body_bytes;
        let version = self.version;
        let platform = web::Data::new(self.platform.clone());
        let mut server = HttpServer::new(move || {
            let (app, mut api) = App::new()
                .into_utoipa_app()
                .openapi(base_openapi(version))
                .app_data(authenticator.clone())
                .app_data(rest::json_config(max_body))
                .app_data(rest::query_config())
                .app_data(rest::form_config(max_body))
                .app_data(rest::path_config())
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(web::Data::new(readiness.clone()))
                .app_data(platform.clone())
                .configure(|config| {
                    for component in &components {
                        component.configure_rest(config);
                    }
                })
                .split_for_parts();
            let routes = web::Data::new(openapi::complete(&mut api));
            let api = web::Data::new(api);
            app.route("/livez", web::get().to(livez))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics_text))
                .app_data(api.clone())
                .route("/openapi.json", web::get().to(openapi_json))
                .route("/docs", web::get().to(docs_redirect))
                .service(
                    SwaggerUi::new("/docs/{_:.*}")
                        .config(utoipa_swagger_ui::Config::from("/openapi.json")),
                )
                .app_data(routes)
                .default_service(web::to(rest::unmatched))
                .wrap(from_fn(observe))
                // Outermost, so the access log and every handler run in the request's span.
                .wrap(TracingLogger::<RequestSpan>::new())
        })
        .disable_signals()
        // actix's own drain runs inside the supervisor's deadline, never after it.
        .shutdown_timeout(whole_seconds(config.drain_timeout).max(1))
        .listen(listener)?;
        if config.http_workers > 0 {
            server = server.workers(config.http_workers);
        }
        Ok(server.run())
    }
}

fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

fn describe_exit(
    what: &str,
    ended: Result<anyhow::Result<()>, tokio::task::JoinError>,
) -> anyhow::Error {
    match describe_ok(ended) {
        Ok(()) => anyhow::anyhow!("{what} stopped unexpectedly"),
        Err(error) => error,
    }
}

fn describe_ok(ended: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    match ended {
        Ok(result) => result,
        Err(error) if error.is_cancelled() => Ok(()),
        Err(error) => Err(anyhow::anyhow!("task panicked: {error}")),
    }
}

fn base_openapi(version: &str) -> OpenApi {
    OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Hotline")
                .version(version)
                .description(Some(
                    "Customer-service platform for call centers. Every /api route needs a bearer \
                     token from POST /oauth/token (OAuth2 client credentials).",
                ))
                .build(),
        )
        .build()
}

async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "alive"}))
}

async fn readyz(readiness: web::Data<Arc<Readiness>>) -> HttpResponse {
    if readiness.shutting_down.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "shutting down"}));
    }
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    for component in &readiness.components {
        let outcome = tokio::time::timeout(Duration::from_secs(2), component.check_ready()).await;
        let state = match outcome {
            Ok(Ok(())) => "ready".to_owned(),
            Ok(Err(reason)) => {
                ready = false;
                reason
            }
            Err(_) => {
                ready = false;
                "readiness check timed out".to_owned()
            }
        };
        checks.insert(component.name().to_owned(), state.into());
    }
    let body =
        serde_json::json!({"status": if ready { "ready" } else { "not ready" }, "checks": checks});
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics_text(platform: web::Data<Platform>) -> HttpResponse {
    platform.record_pool_metrics();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::render())
}

async fn openapi_json(api: web::Data<OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(api.get_ref())
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// Measures the queues the process consumes until `stop`. A broker that
/// doesn't answer leaves the last figures (`hotline_dependency_up` says why).
async fn measure_backlog(platform: Platform, stop: CancellationToken) -> anyhow::Result<()> {
    loop {
        match platform.bus.backlog().await {
            Ok(queues) => {
                for queue in queues {
                    metrics::set_consumer_lag(&queue.queue, queue.ready);
                }
            }
            Err(error) => tracing::debug!(%error, "consumer lag not measured"),
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(BACKLOG_INTERVAL) => {}
        }
    }
}

/// Request spans as the HTTP semantic conventions name and describe them
/// (`GET /api/v1/customers/{id}`), continuing the caller's `traceparent`.
/// tracing-actix-web's own OpenTelemetry features stop at opentelemetry 0.32
/// and its span uses the pre-1.0 attribute names, so the span is built here.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        if PROBES.contains(&request.path()) {
            return Span::none();
        }
        let original = request.method().as_str();
        let method = metrics::http_method_label(original);
        let route = request.match_pattern();
        // An unknown method is `_OTHER` in attributes and `HTTP` in the name.
        let verb = if method == metrics::OTHER_METHOD {
            "HTTP"
        } else {
            method
        };
        let name = match &route {
            Some(route) => format!("{verb} {route}"),
            None => verb.to_owned(),
        };
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %name,
            otel.kind = "server",
            otel.status_code = Empty,
            { semconv::HTTP_REQUEST_METHOD } = method,
            { semconv::HTTP_REQUEST_METHOD_ORIGINAL } =
                (method == metrics::OTHER_METHOD).then_some(original),
            { semconv::HTTP_ROUTE } = route.as_deref(),
            { semconv::URL_PATH } = request.path(),
            { semconv::URL_SCHEME } = request.connection_info().scheme(),
            { semconv::NETWORK_PROTOCOL_VERSION } = protocol_version(request.version()),
            { semconv::USER_AGENT_ORIGINAL } = request
                .headers()
                .get(header::USER_AGENT)
                .and_then(|value| value.to_str().ok()),
            { semconv::HTTP_RESPONSE_STATUS_CODE } = Empty,
            { semconv::ERROR_TYPE } = Empty,
        );
        let traceparent = request
            .headers()
            .get(telemetry::TRACEPARENT)
            .and_then(|value| value.to_str().ok());
        telemetry::link_parent(&span, traceparent);
        span
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = status_of(outcome);
        span.record(semconv::HTTP_RESPONSE_STATUS_CODE, status);
        // A server span fails on 5xx only; 4xx is the client's.
        if status >= 500 {
            span.record("otel.status_code", "ERROR");
            span.record(semconv::ERROR_TYPE, status.to_string());
        }
    }
}

fn protocol_version(version: actix_web::http::Version) -> &'static str {
    match version {
        actix_web::http::Version::HTTP_09 => "0.9",
        actix_web::http::Version::HTTP_10 => "1.0",
        actix_web::http::Version::HTTP_2 => "2",
        actix_web::http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

fn status_of<B>(outcome: &Result<ServiceResponse<B>, actix_web::Error>) -> u16 {
    match outcome {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    }
}

/// Access log (inside the request's span, so with its trace and span ids) and metrics.
async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if PROBES.contains(&request.path()) {
        return next.call(request).await;
    }
    let method = metrics::http_method_label(request.method().as_str());
    let route = request
        .match_pattern()
        .unwrap_or_else(|| metrics::UNMATCHED.to_owned());
    let started = Instant::now();
    let result = next.call(request).await;
    let status = status_of(&result);
    let elapsed = started.elapsed();
    metrics::record_http(method, &route, status, elapsed);
    tracing::info!(
        target: telemetry::ACCESS_LOG,
        status,
        elapsed_ms = elapsed.as_millis() as u64,
        "{method} {route}"
    );
    result
}

/// The caller's `traceparent`, for handlers that start work on another task.
pub fn request_traceparent(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get(telemetry::TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}
