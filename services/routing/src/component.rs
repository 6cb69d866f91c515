//! Routing as a component of a Hotline process.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock, PoisonError},
};

use async_trait::async_trait;
use hotline_kit::{
    component::{Component, Tasks},
    lease::{Campaign, Leadership},
    outbox::Outbox,
    platform::Platform,
};
use hotline_proto::clients::IdentityApi;
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    config::RoutingConfig,
    grpc::{PeerGrpc, RoutingGrpc},
    leader::{Hub, Leader, Request},
    migration::Migrator,
    peers::{LEASE, Peers},
    rest,
    service::RoutingService,
};

pub const NAME: &str = "routing";

/// Commands waiting for the router at most; more wait on their callers.
const REQUEST_BACKLOG: usize = 8192;

pub struct RoutingComponent {
    service: Arc<RoutingService>,
    platform: Platform,
    db: DatabaseConnection,
    /// The outbox relay's and the lease's own pool (see `Platform::background_database`).
    background_db: DatabaseConnection,
    leadership: Arc<Leadership>,
    leader: Mutex<Option<(Leader, mpsc::Receiver<Request>)>>,
    advertise: OnceLock<String>,
    configured_address: String,
    streams_end: CancellationToken,
}

impl RoutingComponent {
    pub async fn build(
        config: &RoutingConfig,
        platform: &Platform,
        identity: Arc<dyn IdentityApi>,
    ) -> anyhow::Result<Self> {
        let settings = config.settings().map_err(anyhow::Error::msg)?;
        let db = platform.database::<Migrator>(NAME).await?;
        let background_db = platform.background_database(NAME, &db).await?;
        let leadership = Leadership::new(Campaign::for_replica(
            LEASE,
            config.lease_ttl,
            config.lease_renew,
        ));
        let hub = Arc::new(Hub::default());
        let (requests, inbox) = mpsc::channel(REQUEST_BACKLOG);
        let peers = Arc::new(Peers::new(
            leadership.clone(),
            requests,
            db.clone(),
            config.forward_timeout,
            hub.clone(),
            crate::store::peer_key(&db).await?,
        ));
        let streams_end = CancellationToken::new();
        let service = Arc::new(RoutingService::new(
            peers,
            identity,
            db.clone(),
            config.screen_pop_timeout,
            config.stream_keep_alive,
            streams_end.clone(),
        ));
        // The router's commits get connections of their own: the relay holds
        // one of the background pool's while it waits for the broker, and the
        // lease's renewal must never queue behind a batch.
        let leader = Leader {
            db: platform.background_database(NAME, &db).await?,
            outbox: Outbox::new(NAME),
            leadership: leadership.clone(),
            settings,
            lease_ttl: config.lease_ttl,
            batch_max: config.batch_max,
            hub,
        };
        Ok(Self {
            service,
            platform: platform.clone(),
            db,
            background_db,
            leadership,
            leader: Mutex::new(Some((leader, inbox))),
            advertise: OnceLock::new(),
            configured_address: config.advertise_grpc.clone(),
            streams_end,
        })
    }

    pub fn service(&self) -> Arc<RoutingService> {
        self.service.clone()
    }

    /// Whether this replica holds the router now.
    pub fn is_leader(&self) -> bool {
        self.service.peers().is_leader()
    }
}

/// Applies routing's migrations (`hotline migrate`).
pub async fn migrate(platform: &Platform) -> anyhow::Result<()> {
    let location = platform.location(NAME);
    let db = hotline_kit::db::connect(&location, 1).await?;
    hotline_kit::db::migrate::<Migrator>(&db, &location.schema).await?;
    Ok(())
}

#[async_trait]
impl Component for RoutingComponent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn configure_rest(&self, config: &mut utoipa_actix_web::service_config::ServiceConfig) {
        rest::configure(config, self.service.clone());
    }

    fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) -> Vec<&'static str> {
        routes.add_service(RoutingGrpc::server(self.service.clone()));
        routes.add_service(PeerGrpc::server(self.service.clone()));
        vec![
            "hotline.routing.v1.RoutingService",
            "hotline.routing.v1.RouterPeerService",
        ]
    }

    fn listening(&self, _http: SocketAddr, grpc: SocketAddr) {
        let address = if self.configured_address.is_empty() {
            let host = if grpc.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                grpc.ip()
            };
            format!("http://{}", SocketAddr::new(host, grpc.port()))
        } else {
            self.configured_address.clone()
        };
        let _ = self.advertise.set(address);
    }

    fn spawn_background(&self, tasks: &mut Tasks, shutdown: CancellationToken) {
        let bus = self.platform.bus.clone();
        let poll = self.platform.bus_config.outbox_poll_interval;
        let (db, stop) = (self.background_db.clone(), shutdown.clone());
        let taken = self
            .leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((leader, inbox)) = taken {
            // The relay shares the leader's outbox, so each commit wakes it.
            let relay = leader.outbox.clone();
            tasks.spawn(async move { relay.relay(db, bus, poll, stop).await });
            tasks.spawn(leader.run(inbox, shutdown.clone()));
        }
        let address = self.advertise.get().cloned().unwrap_or_default();
        tasks.spawn(self.leadership.clone().run(
            self.background_db.clone(),
            address,
            shutdown.clone(),
        ));
        tasks.spawn(hotline_kit::housekeeping::run(self.db.clone(), shutdown));
    }

    /// Routing's database; the router lease moves between replicas on its own.
    async fn check_ready(&self) -> Result<(), String> {
        hotline_kit::db::ping(&self.db)
            .await
            .map_err(|e| format!("database: {e}"))
    }

    fn begin_shutdown(&self) {
        self.streams_end.cancel();
    }
}
