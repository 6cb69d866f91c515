//! What a service hands the process: its REST resources, its gRPC services, its
//! background work and its readiness. The process mounts one or all of them.

use async_trait::async_trait;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub type Tasks = JoinSet<anyhow::Result<()>>;

#[async_trait]
pub trait Component: Send + Sync + 'static {
    /// The target name: `identity`, `routing`, ...
    fn name(&self) -> &'static str;

    /// REST resources (services mount theirs under `/api/v1/...`).
    fn configure_rest(&self, config: &mut utoipa_actix_web::service_config::ServiceConfig);

    /// gRPC services, with their full names for `grpc.health.v1`.
    fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) -> Vec<&'static str>;

    /// Told where the process listens, once both servers are bound (before
    /// `spawn_background`): a service that advertises itself to its replicas
    /// learns its address here.
    fn listening(&self, _http: std::net::SocketAddr, _grpc: std::net::SocketAddr) {}

    /// Consumers and workers. Each returns soon after `shutdown` is cancelled; an
    /// error from any of them stops the process.
    fn spawn_background(&self, tasks: &mut Tasks, shutdown: CancellationToken);

    /// Whether this service and the dependencies it needs answer now.
    async fn check_ready(&self) -> Result<(), String>;

    /// Called once when shutdown begins, before the servers drain: long-lived
    /// streams end here so their clients reconnect to a replica that stays.
    fn begin_shutdown(&self) {}
}
