//! One tower layer in front of every gRPC service: authenticates the bearer token
//! in the `authorization` metadata, continues the caller's trace and records
//! per-RPC metrics. Health checks and reflection stay open for probes and tools.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use tonic::{Status, body::Body};
use tower::{Layer, Service};
use tracing::Instrument;

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
        let traceparent = header(telemetry::TRACEPARENT);
        let span = tracing::info_span!("grpc", rpc.method = %path, otel.kind = "server");
        telemetry::link_parent(&span, traceparent.as_deref());
        let open = OPEN_PREFIXES.iter().any(|prefix| path.starts_with(prefix));
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
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse().ok())
                        .unwrap_or(0);
                    metrics::record_grpc(&routes, &path, code, started.elapsed());
                }
                Ok(response)
            }
            .instrument(span),
        )
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
