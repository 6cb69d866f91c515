//! Identity as a component of a Hotline process.

use std::{path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use hotline_kit::{
    auth::KeySource,
    component::{Component, Tasks},
    config::AuthConfig,
    outbox::Outbox,
    platform::Platform,
};
use hotline_proto::clients::IdentityApi;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::{
    billing::Billing,
    config::IdentityConfig,
    events::{self, InvalidationConsumer, TimelineConsumer},
    grpc::IdentityGrpc,
    migration::Migrator,
    pii::PiiCipher,
    rest,
    service::IdentityService,
    tokens::Tokens,
};

pub const NAME: &str = "identity";

pub struct IdentityComponent {
    service: Arc<IdentityService>,
    tokens: Arc<Tokens>,
    platform: Platform,
    db: DatabaseConnection,
    key_check: Duration,
}

/// Credentials generated for the bootstrap admin client, to print once.
pub type GeneratedCredentials = Option<(String, String)>;

impl IdentityComponent {
    pub async fn build(
        config: &IdentityConfig,
        auth: &AuthConfig,
        bootstrap: (&str, &str),
        platform: &Platform,
    ) -> anyhow::Result<(Self, GeneratedCredentials)> {
        let region = config.region().map_err(anyhow::Error::msg)?;
        let cipher = Arc::new(pii_cipher(config, platform)?);
        let db = platform.database::<Migrator>(NAME).await?;
        let cache = platform.cache(NAME);
        let billing = Billing::from_config(&config.billing, cache.clone())?;
        let service = Arc::new(IdentityService::new(
            db.clone(),
            Outbox::new(NAME),
            cache,
            cipher.clone(),
            billing,
            region,
            config.lookup_cache_ttl,
            config.lookup_history,
        ));
        let tokens = Arc::new(Tokens::new(
            db.clone(),
            cipher,
            auth.issuer.clone(),
            auth.audience.clone(),
            config.token_ttl,
            config.key_rotation,
        )?);
        tokens.rotate_if_due().await?;
        let generated = tokens.bootstrap(bootstrap.0, bootstrap.1).await?;
        let component = Self {
            service,
            tokens,
            platform: platform.clone(),
            db,
            key_check: (config.key_rotation / 10).min(Duration::from_secs(3600)),
        };
        Ok((component, generated))
    }

    /// Identity's own signing keys, for verifying tokens in this process.
    pub fn key_source(&self) -> Arc<dyn KeySource> {
        self.tokens.clone()
    }

    /// Identity's contract for services in the same process.
    pub fn api(&self) -> Arc<dyn IdentityApi> {
        self.service.clone()
    }

    pub fn service(&self) -> Arc<IdentityService> {
        self.service.clone()
    }
}

/// Applies identity's migrations (`hotline migrate`).
pub async fn migrate(platform: &Platform) -> anyhow::Result<()> {
    let location = platform.location(NAME);
    let db = hotline_kit::db::connect(&location, 1).await?;
    hotline_kit::db::migrate::<Migrator>(&db, &location.schema).await?;
    Ok(())
}

/// The PII key: configured, or in the embedded mode generated once under the data dir.
fn pii_cipher(config: &IdentityConfig, platform: &Platform) -> anyhow::Result<PiiCipher> {
    if !config.pii_key.is_empty() {
        return Ok(PiiCipher::from_base64(config.pii_key.expose())?);
    }
    if !platform.is_embedded() {
        anyhow::bail!(
            "identity.pii_key is required with PostgreSQL (HOTLINE_IDENTITY__PII_KEY); generate one with: head -c 32 /dev/urandom | base64"
        );
    }
    let path = platform.data_dir.join("identity.key");
    read_or_create_key(&path)
}

fn read_or_create_key(path: &Path) -> anyhow::Result<PiiCipher> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(PiiCipher::from_base64(existing.trim())?);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = PiiCipher::generate_key_base64()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, key.as_bytes())?;
    tracing::warn!(path = %path.display(), "generated a PII encryption key; back it up: without it encrypted ID numbers are lost");
    Ok(PiiCipher::from_base64(&key)?)
}

#[async_trait]
impl Component for IdentityComponent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn configure_rest(&self, config: &mut utoipa_actix_web::service_config::ServiceConfig) {
        rest::configure(config, self.service.clone(), self.tokens.clone());
    }

    fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) -> Vec<&'static str> {
        routes.add_service(IdentityGrpc::server(self.service.clone()));
        vec!["hotline.identity.v1.IdentityService"]
    }

    fn spawn_background(&self, tasks: &mut Tasks, shutdown: CancellationToken) {
        let bus = self.platform.bus.clone();
        let poll = self.platform.bus_config.outbox_poll_interval;
        let (outbox, db, stop) = (
            self.service.outbox().clone(),
            self.db.clone(),
            shutdown.clone(),
        );
        let relay_bus = bus.clone();
        tasks.spawn(async move { outbox.relay(db, relay_bus, poll, stop).await });

        let (timeline_bus, service, stop) = (bus.clone(), self.service.clone(), shutdown.clone());
        tasks.spawn(async move {
            timeline_bus
                .consume(
                    events::timeline_subscription(),
                    Arc::new(TimelineConsumer(service)),
                    stop,
                )
                .await
                .map_err(Into::into)
        });

        let (service, stop) = (self.service.clone(), shutdown.clone());
        tasks.spawn(async move {
            bus.consume(
                events::invalidation_subscription(),
                Arc::new(InvalidationConsumer(service)),
                stop,
            )
            .await
            .map_err(Into::into)
        });

        tasks.spawn(hotline_kit::housekeeping::run(
            self.db.clone(),
            shutdown.clone(),
        ));

        let (tokens, every) = (self.tokens.clone(), self.key_check);
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(every) => {}
                }
                if let Err(error) = tokens.rotate_if_due().await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "signing key rotation failed; will retry"
                    );
                }
            }
        });
    }

    /// Only what identity can't serve without: its database. The broker and the
    /// cache degrade it (events wait in the outbox, lookups go to the database)
    /// and show in `/metrics` and the logs instead.
    async fn check_ready(&self) -> Result<(), String> {
        hotline_kit::db::ping(&self.db)
            .await
            .map_err(|e| format!("database: {e}"))
    }
}
