//! One tower layer in front of every gRPC service: authenticates the bearer token
//! in the `authorization` metadata, continues the caller's trace in a server
//! span named and described by the RPC semantic conventions, and records
//! per-RPC metrics. Health checks and reflection stay open for probes and
//! tools, and out of spans and metrics.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use opentelemetry_semantic_conventions::attribute as semconv;
use tonic::{Code, Status, body::Body};
use tower::{Layer, Service};
use tracing::{Instrument, Span, field::Empty};

use super::{Authenticator, Principal};
use crate::{
    metrics::{self, GrpcRoutes},
    telemetry,
};

const OPEN_PREFIXES: &[&str] = &["/grpc.health.v1.", "/grpc.reflection."];

#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
    routes: GrpcRoutes,
}

impl AuthLayer {
    /// `routes`: the RPCs served, the only ones metrics name.
    pub fn new(authenticator: Arc<Authenticator>, routes: GrpcRoutes) -> Self {
        Self {
            authenticator,
            routes,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            authenticator: self.authenticator.clone(),
            routes: self.routes.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
    routes: GrpcRoutes,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = self.authenticator.clone();
        let routes = self.routes.clone();
        let path = request.uri().path().to_owned();
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let authorization = header("authorization");
        let open = OPEN_PREFIXES.iter().any(|prefix| path.starts_with(prefix));
        let span = if open {
            Span::none()
        } else {
            rpc_span(&routes, &path, request.headers())
        };
        let recorded = span.clone();
        Box::pin(
            async move {
                let started = Instant::now();
                let response = if open {
                    inner.call(request).await?
                } else {
                    match authenticator.authenticate(authorization.as_deref()).await {
                        Ok(principal) => {
                            request.extensions_mut().insert(principal);
                            inner.call(request).await?
                        }
                        Err(error) => Status::from(error).into_http(),
                    }
                };
                if !open {
                    // An error is in the headers (a trailers-only answer); an
                    // answer with a body ends with its status in trailers,
                    // which a unary success sets to OK.
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse().ok())
                        .unwrap_or(0);
                    record_status(&recorded, code);
                    metrics::record_grpc(&routes, &path, code, started.elapsed());
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The server span of one RPC, `package.Service/Method`, continuing the trace
/// in the caller's `traceparent`. `rpc.method` is fully qualified as semantic
/// conventions 1.42 have it; `rpc.system`, `rpc.service` and
/// `rpc.grpc.status_code`, which they deprecate, are kept for the backends
/// that still read them. A method this process does not serve is `_OTHER`.
fn rpc_span(routes: &GrpcRoutes, path: &str, headers: &http::HeaderMap) -> Span {
    const OTHER: &str = "_OTHER";
    let known = routes.known(path);
    let (name, method, service) = match known {
        Some((service, method)) => (format!("{service}/{method}"), None, Some(service)),
        None => ("grpc".to_owned(), Some(path), None),
    };
    let span = tracing::info_span!(
        "rpc",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        { semconv::RPC_SYSTEM_NAME } = "grpc",
        { semconv::RPC_METHOD } = if known.is_some() { name.as_str() } else { OTHER },
        { semconv::RPC_METHOD_ORIGINAL } = method,
        { semconv::RPC_RESPONSE_STATUS_CODE } = Empty,
        { semconv::ERROR_TYPE } = Empty,
        { DEPRECATED_RPC_SYSTEM } = "grpc",
        { DEPRECATED_RPC_SERVICE } = service,
        { DEPRECATED_RPC_GRPC_STATUS_CODE } = Empty,
    );
    let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(
        &span,
        telemetry::parent_from_headers(headers),
    );
    span
}

#[allow(deprecated)]
const DEPRECATED_RPC_SYSTEM: &str = semconv::RPC_SYSTEM;
#[allow(deprecated)]
const DEPRECATED_RPC_SERVICE: &str = semconv::RPC_SERVICE;
#[allow(deprecated)]
const DEPRECATED_RPC_GRPC_STATUS_CODE: &str = semconv::RPC_GRPC_STATUS_CODE;

/// Status codes a server span counts as its own failure (the others are the
/// caller's: semantic conventions, gRPC server spans).
const SERVER_ERRORS: &[Code] = &[
    Code::Unknown,
    Code::DeadlineExceeded,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
];

fn record_status(span: &Span, code: i32) {
    let status = Code::from_i32(code);
    let name = code_name(status);
    span.record(semconv::RPC_RESPONSE_STATUS_CODE, name);
    span.record(DEPRECATED_RPC_GRPC_STATUS_CODE, code);
    if SERVER_ERRORS.contains(&status) {
        span.record("otel.status_code", "ERROR");
        span.record(semconv::ERROR_TYPE, name);
    }
}

/// The status code as gRPC spells it (`NOT_FOUND`).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The authenticated caller of an RPC.
pub fn principal_of<T>(request: &tonic::Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))
}
