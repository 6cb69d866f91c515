//! Assembles a Hotline process from its configuration and targets: the shared
//! platform, the selected services, and how services reach the ones it doesn't run.

pub mod config;
pub mod simulate;

use std::sync::Arc;

use hotline_identity::{GeneratedAdmin, IdentityComponent, store::rekey::RekeyReport};
use hotline_kit::{
    auth::{Authenticator, HttpKeySource, KeySource},
    component::Component,
    platform::Platform,
    server::{Process, Running},
};
use hotline_proto::clients::{IdentityApi, IdentityGrpcClient};
use hotline_routing::RoutingComponent;
use hotline_ticketing::TicketingComponent;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The version every process reports (`service.version`, `hotline_build_info`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The source revision the binary was built from (empty when unknown).
pub const REVISION: &str = env!("BUILT_FROM_REVISION");

/// The `service.name` of a process serving `targets` with `config`.
pub fn service_name(config: &Config, targets: &[Target]) -> String {
    hotline_kit::telemetry::service_name(&config.telemetry, Target::service_name(targets))
}

/// A service the binary can run (`--target`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Target {
    /// Every service in one process.
    All,
    /// Customers, screen pop, timeline, API clients and tokens.
    Identity,
    /// Agents, queues, tasks and reservations: who handles what.
    Routing,
    /// Work orders, their dispatch to technicians and repair shops, history and notes.
    Ticketing,
}

impl Target {
    /// The services a list of targets stands for, `all` expanded.
    /// The `service.name` of a process serving `targets` (unless telemetry
    /// settings or `OTEL_SERVICE_NAME` say otherwise): `hotline-<service>`
    /// for one service (the microservices mode), `hotline` for more.
    pub fn service_name(targets: &[Target]) -> &'static str {
        match Self::expand(targets).as_slice() {
            [Target::Identity] => "hotline-identity",
            [Target::Routing] => "hotline-routing",
            [Target::Ticketing] => "hotline-ticketing",
            _ => "hotline",
        }
    }

    pub fn expand(targets: &[Target]) -> Vec<Target> {
        let mut services = Vec::new();
        for target in targets {
            let members: &[Target] = match target {
                Target::All => &[Target::Identity, Target::Routing, Target::Ticketing],
                other @ (Target::Identity | Target::Routing | Target::Ticketing) => {
                    std::slice::from_ref(other)
                }
            };
            for member in members {
                if !services.contains(member) {
                    services.push(*member);
                }
            }
        }
        services
    }
}

/// A started process.
pub struct Started {
    pub running: Running,
    /// The shared infrastructure, to close once the process has stopped.
    pub platform: Platform,
    /// The bootstrap admin client generated at this start, if any.
    pub bootstrap_admin: Option<GeneratedAdmin>,
}

pub async fn connect_platform(config: &Config) -> anyhow::Result<Platform> {
    Platform::connect(
        config.database.clone(),
        config.bus.clone(),
        config.cache.clone(),
        config.data_dir.clone(),
    )
    .await
}

/// Identity as configured, with the bootstrap admin client it generated (if any).
pub async fn build_identity(
    config: &Config,
    platform: &Platform,
) -> anyhow::Result<(IdentityComponent, Option<GeneratedAdmin>)> {
    IdentityComponent::build(
        &config.identity,
        &config.auth,
        (
            &config.bootstrap_client_id,
            config.bootstrap_client_secret.expose(),
        ),
        platform,
    )
    .await
}

/// Identity for a service that calls it: the component in this process when
/// it runs here, its gRPC endpoint otherwise.
fn identity_for(
    config: &Config,
    local: &Option<Arc<dyn IdentityApi>>,
) -> anyhow::Result<Arc<dyn IdentityApi>> {
    Ok(match local {
        Some(local) => local.clone(),
        None => Arc::new(IdentityGrpcClient::connect_lazy(
            &config.peers.identity_grpc,
        )?),
    })
}

/// Builds the selected services and starts serving them.
pub async fn start(
    config: &Config,
    targets: &[Target],
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let services = Target::expand(targets);
    let platform = connect_platform(config).await?;
    let mut components: Vec<Arc<dyn Component>> = Vec::new();
    let mut local_keys: Option<Arc<dyn KeySource>> = None;
    let mut bootstrap_admin = None;
    // Identity in this process when it runs here, its gRPC endpoint otherwise.
    let mut identity_api: Option<Arc<dyn IdentityApi>> = None;
    for service in &services {
        match service {
            Target::Identity => {
                let (identity, generated) = build_identity(config, &platform).await?;
                local_keys = Some(identity.key_source());
                identity_api = Some(identity.api());
                bootstrap_admin = generated;
                components.push(Arc::new(identity));
            }
            Target::Routing => {
                let identity = identity_for(config, &identity_api)?;
                let routing = RoutingComponent::build(&config.routing, &platform, identity).await?;
                components.push(Arc::new(routing));
            }
            Target::Ticketing => {
                let identity = identity_for(config, &identity_api)?;
                let ticketing = TicketingComponent::build(
                    &config.ticketing,
                    &platform,
                    identity,
                    Arc::new(hotline_kit::clock::SystemClock),
                )
                .await?;
                components.push(Arc::new(ticketing));
            }
            Target::All => {}
        }
    }
    // Tokens are verified against identity's keys: read directly when identity
    // runs here, fetched from its JWKS endpoint otherwise.
    let keys = local_keys.unwrap_or_else(|| {
        let url = if config.auth.jwks_url.is_empty() {
            format!(
                "{}/.well-known/jwks.json",
                config.peers.identity_http.trim_end_matches('/')
            )
        } else {
            config.auth.jwks_url.clone()
        };
        Arc::new(HttpKeySource::new(url))
    });
    let process = Process {
        components,
        authenticator: Arc::new(Authenticator::new(keys, &config.auth)),
        file_descriptor_set: hotline_proto::FILE_DESCRIPTOR_SET,
        platform: platform.clone(),
        service: service_name(config, targets),
        version: VERSION,
        revision: REVISION,
    };
    let running = process.start(&config.server, shutdown).await?;
    Ok(Started {
        running,
        platform,
        bootstrap_admin,
    })
}

/// The platform of a command that needs only the database: no broker, no cache.
fn database_only(config: &Config) -> Platform {
    Platform::new(
        Arc::new(hotline_kit::bus::MemoryBus::new(config.bus.retry_policy())),
        config.bus.clone(),
        Arc::new(hotline_kit::cache::MemoryCache::new(1)),
        &config.cache.prefix,
        config.database.clone(),
        config.data_dir.clone(),
    )
}

/// Re-encrypts identity's personal data under the current PII key
/// (`hotline pii rotate-key`).
pub async fn rotate_pii_key(config: &Config, batch: u64) -> anyhow::Result<RekeyReport> {
    hotline_identity::component::rotate_pii_key(&config.identity, &database_only(config), batch)
        .await
}

/// Applies the migrations of the selected services.
pub async fn migrate(config: &Config, targets: &[Target]) -> anyhow::Result<()> {
    let platform = database_only(config);
    for service in Target::expand(targets) {
        match service {
            Target::Identity => hotline_identity::component::migrate(&platform).await?,
            Target::Routing => hotline_routing::component::migrate(&platform).await?,
            Target::Ticketing => hotline_ticketing::component::migrate(&platform).await?,
            Target::All => {}
        }
        tracing::info!(service = ?service, "migrated");
    }
    Ok(())
}

/// Lists, replays or drops dead letters on the configured bus (RabbitMQ, or the
/// embedded bus's spool while no `hotline serve` holds it).
pub async fn dead_letters(
    config: &Config,
    action: hotline_kit::bus::DeadLetterAction,
    filter: &hotline_kit::bus::DeadLetterFilter,
) -> anyhow::Result<Vec<hotline_kit::bus::DeadLetter>> {
    let bus = hotline_kit::platform::connect_bus(&config.bus, &config.data_dir)?;
    let letters = bus.dead_letters(action, filter).await;
    bus.close().await;
    Ok(letters?)
}
