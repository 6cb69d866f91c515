//! Ticketing as a component of a Hotline process.

use std::sync::Arc;

use async_trait::async_trait;
use hotline_kit::{
    clock::Clock,
    component::{Component, Tasks},
    lease::{Campaign, Leadership},
    outbox::Outbox,
    platform::Platform,
};
use hotline_proto::clients::IdentityApi;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::{
    config::TicketingConfig,
    events::{self, EscalationFeed, IdentityConsumer},
    grpc::TicketingGrpc,
    migration::Migrator,
    rest,
    service::TicketingService,
    sms::{HttpProvider, Sink, SmppProvider, SmsProvider},
    webhooks::Sender,
    workers,
};

pub const NAME: &str = "ticketing";

pub struct TicketingComponent {
    service: Arc<TicketingService>,
    platform: Platform,
    db: DatabaseConnection,
    /// The outbox relay's and the leases' own pool (see `Platform::background_database`).
    relay_db: DatabaseConnection,
    timers: Arc<Leadership>,
    timer_poll: std::time::Duration,
    sms: Arc<Leadership>,
    sms_poll: std::time::Duration,
    sms_provider: Arc<dyn SmsProvider>,
    /// The same provider when it is an SMSC: its bind and reports run too.
    smpp: Option<Arc<SmppProvider>>,
    webhooks: Arc<Leadership>,
    sender: Arc<Sender>,
    webhook_poll: std::time::Duration,
    webhook_concurrency: usize,
    lease_ttl: std::time::Duration,
    streams: rest::Streams,
}

impl TicketingComponent {
    /// `clock` is what deadlines are measured by: the system's, or a
    /// manual one in tests.
    pub async fn build(
        config: &TicketingConfig,
        platform: &Platform,
        identity: Arc<dyn IdentityApi>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let settings = config.settings().map_err(anyhow::Error::msg)?;
        let db = platform.database::<Migrator>(NAME).await?;
        let relay_db = platform.background_database(NAME, &db).await?;
        let service = Arc::new(TicketingService::new(
            db.clone(),
            Outbox::new(NAME),
            identity,
            platform.cache(NAME),
            settings,
            clock,
        ));
        // Ticketing's queue exists before identity publishes the next change.
        platform.bus.declare(&[events::identity_subscription()]);
        let timers = Leadership::new(Campaign::for_replica(
            workers::timers::LEASE,
            config.lease_ttl,
            config.lease_renew,
        ));
        let sms = Leadership::new(Campaign::for_replica(
            workers::sms::LEASE,
            config.lease_ttl,
            config.lease_renew,
        ));
        let webhooks = Leadership::new(Campaign::for_replica(
            workers::webhooks::LEASE,
            config.lease_ttl,
            config.lease_renew,
        ));
        // Deliveries pass the same guard as registrations.
        let sender = Sender::new(service.guard().clone(), config.webhooks.timeout)?;
        let smpp = (config.sms.provider == "smpp")
            .then(|| Arc::new(SmppProvider::new(config.sms.smpp.clone())));
        let sms_provider: Arc<dyn SmsProvider> = match (&smpp, config.sms.provider.as_str()) {
            (Some(smpp), _) => smpp.clone(),
            (None, "http") => Arc::new(HttpProvider::new(config.sms.http.clone())?),
            _ => Arc::new(Sink),
        };
        Ok(Self {
            service,
            platform: platform.clone(),
            db,
            relay_db,
            timers,
            timer_poll: config.timer_poll,
            sms,
            sms_poll: config.sms.poll,
            sms_provider,
            smpp,
            webhooks,
            sender: Arc::new(sender),
            webhook_poll: config.webhooks.poll,
            webhook_concurrency: config.webhooks.concurrency,
            lease_ttl: config.lease_ttl,
            streams: rest::Streams {
                keep_alive: config.stream_keep_alive,
                end: CancellationToken::new(),
            },
        })
    }

    pub fn service(&self) -> Arc<TicketingService> {
        self.service.clone()
    }
}

/// Applies ticketing's migrations (`hotline migrate`).
pub async fn migrate(platform: &Platform) -> anyhow::Result<()> {
    let location = platform.location(NAME);
    let db = hotline_kit::db::connect(&location, 1).await?;
    hotline_kit::db::migrate::<Migrator>(&db, &location.schema).await?;
    Ok(())
}

#[async_trait]
impl Component for TicketingComponent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn configure_rest(&self, config: &mut utoipa_actix_web::service_config::ServiceConfig) {
        rest::configure(config, self.service.clone(), self.streams.clone());
    }

    fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) -> Vec<&'static str> {
        routes.add_service(TicketingGrpc::server(self.service.clone()));
        vec!["hotline.ticketing.v1.TicketingService"]
    }

    fn spawn_background(&self, tasks: &mut Tasks, shutdown: CancellationToken) {
        let bus = self.platform.bus.clone();
        let poll = self.platform.bus_config.outbox_poll_interval;
        let (outbox, db, stop, relay_bus) = (
            self.service.outbox().clone(),
            self.relay_db.clone(),
            shutdown.clone(),
            bus.clone(),
        );
        tasks.spawn(async move { outbox.relay(db, relay_bus, poll, stop).await });

        let (feed_bus, feed, stop) = (
            bus.clone(),
            self.service.escalation_feed(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            feed_bus
                .consume(
                    events::escalation_subscription(),
                    Arc::new(EscalationFeed(feed)),
                    stop,
                )
                .await
                .map_err(Into::into)
        });

        let (service, stop) = (self.service.clone(), shutdown.clone());
        tasks.spawn(async move {
            bus.consume(
                events::identity_subscription(),
                Arc::new(IdentityConsumer(service)),
                stop,
            )
            .await
            .map_err(Into::into)
        });

        tasks.spawn(self.timers.clone().run(
            self.relay_db.clone(),
            String::new(),
            shutdown.clone(),
        ));
        tasks.spawn(workers::timers::run(
            self.service.clone(),
            self.timers.clone(),
            self.timer_poll,
            self.lease_ttl,
            shutdown.clone(),
        ));

        tasks.spawn(
            self.sms
                .clone()
                .run(self.relay_db.clone(), String::new(), shutdown.clone()),
        );
        tasks.spawn(workers::sms::run(
            self.service.clone(),
            self.sms_provider.clone(),
            self.sms.clone(),
            self.sms_poll,
            self.lease_ttl,
            shutdown.clone(),
        ));
        if let Some(smpp) = &self.smpp {
            // Reports wait here while the service records them.
            let (reports, received) = tokio::sync::mpsc::channel(4096);
            tasks.spawn(
                smpp.clone()
                    .run(self.sms.clone(), reports.clone(), shutdown.clone()),
            );
            tasks.spawn(workers::sms::reports(
                self.service.clone(),
                reports,
                received,
                shutdown.clone(),
            ));
        }

        tasks.spawn(self.webhooks.clone().run(
            self.relay_db.clone(),
            String::new(),
            shutdown.clone(),
        ));
        tasks.spawn(workers::webhooks::run(
            self.service.clone(),
            self.sender.clone(),
            self.webhooks.clone(),
            workers::webhooks::Settings {
                poll: self.webhook_poll,
                ttl: self.lease_ttl,
                concurrency: self.webhook_concurrency,
            },
            shutdown.clone(),
        ));

        tasks.spawn(hotline_kit::housekeeping::run(self.db.clone(), shutdown));
    }

    /// Only ticketing's database: the broker and identity degrade it (events
    /// wait in the outbox; orders for a known customer wait on identity).
    async fn check_ready(&self) -> Result<(), String> {
        hotline_kit::db::ping(&self.db)
            .await
            .map_err(|e| format!("database: {e}"))
    }

    fn begin_shutdown(&self) {
        self.streams.end.cancel();
    }
}
