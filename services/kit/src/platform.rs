//! The shared infrastructure of one process — event bus, cache backend and
//! database settings — built once from configuration and handed to every service.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
};

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

use crate::{
    bus::{AmqpBus, AmqpSettings, Bus, MemoryBus},
    cache::{Cache, CacheBackend, MemoryCache, RedisCache},
    config::{BusConfig, BusKind, CacheConfig, CacheKind, DatabaseConfig},
    db::{self, Location},
};

#[derive(Clone)]
pub struct Platform {
    pub bus: Arc<dyn Bus>,
    pub bus_config: BusConfig,
    cache_backend: Arc<dyn CacheBackend>,
    cache_prefix: String,
    pub database: DatabaseConfig,
    pub data_dir: PathBuf,
    /// The pools opened through this platform, by name, for their metrics.
    pools: Arc<Mutex<Vec<(String, DatabaseConnection)>>>,
}

impl Platform {
    pub async fn connect(
        database: DatabaseConfig,
        bus_config: BusConfig,
        cache: CacheConfig,
        data_dir: PathBuf,
    ) -> anyhow::Result<Self> {
        let bus = connect_bus(&bus_config, &data_dir)?;
        let cache_backend: Arc<dyn CacheBackend> = match cache.kind {
            CacheKind::Memory => Arc::new(MemoryCache::new(cache.max_entries)),
            CacheKind::Redis => Arc::new(
                RedisCache::connect(cache.redis_url.expose(), cache.max_entries)
                    .await
                    .map_err(|e| anyhow::anyhow!("redis at {}: {e}", cache.redis_url.redacted()))?,
            ),
        };
        Ok(Self::new(
            bus,
            bus_config,
            cache_backend,
            &cache.prefix,
            database,
            data_dir,
        ))
    }

    /// Assembles a platform from parts already built (tests swap backends this way).
    pub fn new(
        bus: Arc<dyn Bus>,
        bus_config: BusConfig,
        cache_backend: Arc<dyn CacheBackend>,
        cache_prefix: &str,
        database: DatabaseConfig,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            bus,
            bus_config,
            cache_backend,
            cache_prefix: cache_prefix.to_owned(),
            database,
            data_dir,
            pools: Arc::default(),
        }
    }

    /// A second pool of the same name (a service with two background pools)
    /// is `<name>-2`, and so on.
    fn watch_pool(&self, name: String, pool: &DatabaseConnection) {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        let same = pools
            .iter()
            .filter(|(known, _)| known == &name || known.starts_with(&format!("{name}-")))
            .count();
        let name = if same == 0 {
            name
        } else {
            format!("{name}-{}", same + 1)
        };
        pools.push((name, pool.clone()));
    }

    /// Sets `hotline_db_pool_*` from each pool's state now (at every scrape).
    pub fn record_pool_metrics(&self) {
        let pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, pool) in pools.iter() {
            let (size, idle, max) = match pool.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => {
                    let pool = pool.get_postgres_connection_pool();
                    (
                        pool.size(),
                        pool.num_idle(),
                        pool.options().get_max_connections(),
                    )
                }
                sea_orm::DatabaseBackend::Sqlite => {
                    let pool = pool.get_sqlite_connection_pool();
                    (
                        pool.size(),
                        pool.num_idle(),
                        pool.options().get_max_connections(),
                    )
                }
                // Not a backend this platform opens (nor one added later).
                sea_orm::DatabaseBackend::MySql | _ => continue,
            };
            let idle = u32::try_from(idle).unwrap_or(u32::MAX);
            crate::metrics::set_db_pool(name, size.saturating_sub(idle), idle, max);
        }
    }

    /// The cache as `service` sees it (its own key space).
    pub fn cache(&self, service: &str) -> Cache {
        Cache::new(self.cache_backend.clone(), &self.cache_prefix, service)
    }

    pub fn location(&self, service: &str) -> Location {
        Location::for_service(&self.database, &self.data_dir, service)
    }

    /// Whether `service` keeps its data in the embedded SQLite files.
    pub fn is_embedded(&self) -> bool {
        self.database.url.is_empty()
    }

    /// Connects `service` to its database, applying `M`'s migrations first when
    /// configured to (otherwise `hotline migrate` does it).
    pub async fn database<M: MigratorTrait>(
        &self,
        service: &str,
    ) -> anyhow::Result<DatabaseConnection> {
        let location = self.location(service);
        let connection = db::connect(&location, self.database.max_connections)
            .await
            .map_err(|e| anyhow::anyhow!("database for {service}: {e}"))?;
        if self.database.migrate_on_start {
            db::migrate::<M>(&connection, &location.schema)
                .await
                .map_err(|e| anyhow::anyhow!("migrating {service}: {e}"))?;
        }
        self.watch_pool(service.to_owned(), &connection);
        Ok(connection)
    }

    /// A pool of its own for `service`'s background work (the outbox relay) on
    /// PostgreSQL; `shared` itself on SQLite. A pool's connections belong to the
    /// runtime that opened them, and actix-web's workers run runtimes of their
    /// own that stop before background work drains at shutdown: a relay handed
    /// one of their connections then fails after publishing, and its events go
    /// out twice. SQLite connections run on threads of their own.
    pub async fn background_database(
        &self,
        service: &str,
        shared: &DatabaseConnection,
    ) -> anyhow::Result<DatabaseConnection> {
        if self.is_embedded() {
            return Ok(shared.clone());
        }
        let connection = db::connect(&self.location(service), 2)
            .await
            .map_err(|e| anyhow::anyhow!("database for {service}'s background work: {e}"))?;
        self.watch_pool(format!("{service}/background"), &connection);
        Ok(connection)
    }
}

/// The event bus as configured. Nothing connects here: RabbitMQ is reached on
/// first use, so a process starts with the broker down. The embedded bus keeps
/// its queues across restarts in `<data_dir>/bus.spool`.
pub fn connect_bus(config: &BusConfig, data_dir: &std::path::Path) -> anyhow::Result<Arc<dyn Bus>> {
    Ok(match config.kind {
        BusKind::Memory => {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| anyhow::anyhow!("data dir {}: {e}", data_dir.display()))?;
            Arc::new(MemoryBus::with_spool(
                config.retry_policy(),
                &data_dir.join("bus.spool"),
                &config.exchange,
            )?)
        }
        BusKind::Amqp => Arc::new(AmqpBus::new(AmqpSettings {
            url: config.amqp_url.expose().to_owned(),
            exchange: config.exchange.clone(),
            dead_letter_exchange: config.dead_letter_exchange.clone(),
            prefetch: config.prefetch,
            retry: config.retry_policy(),
        })),
    })
}
