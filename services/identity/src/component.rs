//! Identity as a component of a Hotline process.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

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
    store::{self, rekey::RekeyReport},
    throttle::Throttle,
    tokens::Tokens,
};

pub const NAME: &str = "identity";
/// Where the embedded mode writes a generated bootstrap admin client, under the data dir.
pub const BOOTSTRAP_CREDENTIALS_FILE: &str = "bootstrap-admin.env";

pub struct IdentityComponent {
    service: Arc<IdentityService>,
    tokens: Arc<Tokens>,
    throttle: Arc<Throttle>,
    platform: Platform,
    db: DatabaseConnection,
    /// The outbox relay's own pool (see `Platform::background_database`).
    relay_db: DatabaseConnection,
    key_check: Duration,
}

/// A bootstrap admin client generated on an empty embedded installation. Its
/// secret is only in `credentials_file` (mode 0600), never on stdout or in logs.
#[derive(Clone, Debug)]
pub struct GeneratedAdmin {
    pub client_id: String,
    pub credentials_file: PathBuf,
}

impl IdentityComponent {
    pub async fn build(
        config: &IdentityConfig,
        auth: &AuthConfig,
        bootstrap: (&str, &str),
        platform: &Platform,
    ) -> anyhow::Result<(Self, Option<GeneratedAdmin>)> {
        let region = config.region().map_err(anyhow::Error::msg)?;
        let cipher = Arc::new(pii_cipher(config, platform)?);
        let db = platform.database::<Migrator>(NAME).await?;
        let relay_db = platform.background_database(NAME, &db).await?;
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
        ));
        // Identity's own queues exist before its relay publishes anything.
        platform.bus.declare(&[events::timeline_subscription()]);
        tokens.rotate_if_due().await?;
        let generated = bootstrap_admin(&tokens, bootstrap, platform).await?;
        let component = Self {
            service,
            tokens,
            throttle: Arc::new(Throttle::new(&config.token_endpoint)),
            platform: platform.clone(),
            db,
            relay_db,
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

/// Re-encrypts every value under the current PII key (`hotline pii rotate-key`),
/// `batch` rows per transaction; safe beside serving replicas.
pub async fn rotate_pii_key(
    config: &IdentityConfig,
    platform: &Platform,
    batch: u64,
) -> anyhow::Result<RekeyReport> {
    let cipher = pii_cipher(config, platform)?;
    let db = platform.database::<Migrator>(NAME).await?;
    Ok(store::rekey::rotate(&db, &cipher, batch).await?)
}

/// The PII keys: the current one configured, or in the embedded mode generated
/// once under the data dir; the previous ones configured.
fn pii_cipher(config: &IdentityConfig, platform: &Platform) -> anyhow::Result<PiiCipher> {
    if !config.pii_key.is_empty() {
        return Ok(config.pii_cipher(config.pii_key.expose())?);
    }
    if !platform.is_embedded() {
        anyhow::bail!(
            "identity.pii_key is required with PostgreSQL (HOTLINE_IDENTITY__PII_KEY); generate one with: head -c 32 /dev/urandom | base64"
        );
    }
    let path = platform.data_dir.join("identity.key");
    Ok(config.pii_cipher(&read_or_create_key(&path)?)?)
}

fn read_or_create_key(path: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(existing);
    }
    let key = PiiCipher::generate_key_base64()?;
    write_private(path, &key)?;
    tracing::warn!(path = %path.display(), "generated a PII encryption key; back it up: without it encrypted ID numbers are lost");
    Ok(key)
}

/// A new file only its owner may read (mode 0600); never overwrites one.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, contents.as_bytes())?;
    Ok(())
}

/// Makes sure an admin client can be had. A configured one is created or its
/// secret reset. Otherwise one is generated, only on an installation without any
/// client: in the embedded mode into a 0600 file under the data dir (stdout ends
/// up in log collectors); with PostgreSQL not at all — it must be configured.
async fn bootstrap_admin(
    tokens: &Tokens,
    (id, secret): (&str, &str),
    platform: &Platform,
) -> anyhow::Result<Option<GeneratedAdmin>> {
    if !id.is_empty() {
        tokens.ensure_configured_admin(id, secret).await?;
        return Ok(None);
    }
    if !tokens.has_no_clients().await? {
        return Ok(None);
    }
    if !platform.is_embedded() {
        anyhow::bail!(
            "identity has no API client yet: set HOTLINE_BOOTSTRAP_CLIENT_ID and HOTLINE_BOOTSTRAP_CLIENT_SECRET (16+ characters, e.g. from a Kubernetes Secret) for the first admin client; with PostgreSQL none is generated"
        );
    }
    let (client_id, secret) = Tokens::generate_credentials()?;
    let credentials_file = platform.data_dir.join(BOOTSTRAP_CREDENTIALS_FILE);
    // Left over from an installation whose database is gone: those credentials are void.
    match std::fs::remove_file(&credentials_file) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
        _ => {}
    }
    // Written before the client exists, so a failure never leaves an admin nobody can use.
    write_private(
        &credentials_file,
        &format!(
            "# Hotline's bootstrap admin API client, generated at first start. Keep it\n\
             # secret; once it is stored elsewhere, delete this file.\n\
             HOTLINE_BOOTSTRAP_CLIENT_ID={client_id}\n\
             HOTLINE_BOOTSTRAP_CLIENT_SECRET={secret}\n"
        ),
    )?;
    tokens.create_bootstrap_admin(&client_id, &secret).await?;
    tracing::info!(client_id, file = %credentials_file.display(), "bootstrap admin client generated");
    Ok(Some(GeneratedAdmin {
        client_id,
        credentials_file,
    }))
}

#[async_trait]
impl Component for IdentityComponent {
    fn name(&self) -> &'static str {
        NAME
    }

    fn configure_rest(&self, config: &mut utoipa_actix_web::service_config::ServiceConfig) {
        rest::configure(
            config,
            self.service.clone(),
            self.tokens.clone(),
            self.throttle.clone(),
        );
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
            self.relay_db.clone(),
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
