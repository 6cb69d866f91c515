//! Which backends a test runs on. Every suite runs on the embedded ones; the
//! real ones (PostgreSQL, RabbitMQ, Redis) are used when reachable, and with
//! `HOTLINE_REQUIRE_INFRA=1` their absence fails the test instead of skipping it.
//!
//! A run on the real servers has a namespace of its own on each — PostgreSQL
//! schemas prefixed with its id, a RabbitMQ virtual host, Redis keys under its
//! prefix — and removes all of it when the `Infra` is dropped, so runs never
//! meet and leave nothing behind.

use std::{path::PathBuf, sync::Arc, time::Duration};

use hotline_kit::{
    bus::{Bus, MemoryBus},
    cache::{CacheBackend, MemoryCache, RedisCache},
    config::{BusConfig, BusKind, CacheConfig, CacheKind, DatabaseConfig, SecretUrl},
    platform::{Platform, connect_bus},
};
use sea_orm::ConnectionTrait;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backends {
    /// SQLite in a temporary directory, in-process bus, in-memory cache.
    Embedded,
    /// PostgreSQL (a fresh schema), RabbitMQ (a fresh exchange), Redis (a fresh prefix).
    Real,
}

pub struct Infra {
    pub backends: Backends,
    pub database_url: String,
    /// The run's own virtual host on the broker.
    pub amqp_url: String,
    pub redis_url: String,
    /// Unique per test: schema prefix, virtual host and cache prefix derive from it.
    pub run_id: String,
    dir: tempfile::TempDir,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

pub fn database_url() -> String {
    env_or(
        "HOTLINE_TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )
}

pub fn amqp_url() -> String {
    env_or(
        "HOTLINE_TEST_AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
    )
}

pub fn redis_url() -> String {
    env_or("HOTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// RabbitMQ's management API, which creates and deletes the runs' virtual hosts.
pub fn rabbitmq_api_url() -> String {
    env_or(
        "HOTLINE_TEST_RABBITMQ_API",
        "http://guest:guest@127.0.0.1:15672",
    )
}

/// `amqp_url` with its virtual host replaced by `vhost`.
pub fn amqp_url_for_vhost(amqp_url: &str, vhost: &str) -> String {
    let (scheme, rest) = amqp_url.split_once("://").unwrap_or(("amqp", amqp_url));
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{authority}/{vhost}")
}

/// One call to the management API (`PUT` with a JSON body, or `DELETE`).
async fn rabbitmq_api(
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(), String> {
    let mut url = reqwest::Url::parse(&rabbitmq_api_url()).map_err(|e| e.to_string())?;
    let (user, password) = (url.username().to_owned(), url.password().map(str::to_owned));
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let url = format!("{}{path}", url.as_str().trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .request(method, &url)
        .basic_auth(user, password)
        .timeout(Duration::from_secs(10));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
    if response.status().is_success() || response.status() == reqwest::StatusCode::NOT_FOUND {
        Ok(())
    } else {
        Err(format!("{url}: {}", response.status()))
    }
}

/// Creates the run's virtual host and lets the broker user use it.
async fn create_vhost(vhost: &str, amqp_url: &str) -> Result<(), String> {
    rabbitmq_api(
        reqwest::Method::PUT,
        &format!("/api/vhosts/{vhost}"),
        Some(serde_json::json!({})),
    )
    .await?;
    let user = reqwest::Url::parse(&amqp_url.replacen("amqp", "http", 1))
        .map(|url| url.username().to_owned())
        .ok()
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "guest".to_owned());
    rabbitmq_api(
        reqwest::Method::PUT,
        &format!("/api/permissions/{vhost}/{user}"),
        Some(serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"})),
    )
    .await
}

pub fn infra_required() -> bool {
    std::env::var("HOTLINE_REQUIRE_INFRA").is_ok_and(|v| v == "1" || v == "true")
}

/// `host[:port]` of a URL, as written in it.
pub(crate) fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// `host:port` of a URL, for a reachability probe.
pub(crate) fn host_port(url: &str, default_port: u16) -> String {
    let host = authority(url);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    }
}

async fn reachable(url: &str, default_port: u16) -> bool {
    let address = host_port(url, default_port);
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(&address)
        )
        .await,
        Ok(Ok(_))
    )
}

impl Infra {
    pub fn embedded() -> Self {
        Self::new(
            Backends::Embedded,
            String::new(),
            String::new(),
            String::new(),
        )
    }

    /// The real servers, or `None` (after saying so) when one is unreachable and
    /// they are not required.
    pub async fn real() -> Option<Self> {
        let (database, amqp, redis) = (database_url(), amqp_url(), redis_url());
        let mut missing = Vec::new();
        for (name, url, port) in [
            ("postgresql", &database, 5432),
            ("rabbitmq", &amqp, 5672),
            ("redis", &redis, 6379),
        ] {
            if !reachable(url, port).await {
                missing.push(format!("{name} at {}", host_port(url, port)));
            }
        }
        let mut infra = Self::new(Backends::Real, database, amqp.clone(), redis);
        if missing.is_empty() {
            let vhost = infra.vhost();
            match create_vhost(&vhost, &amqp).await {
                Ok(()) => infra.amqp_url = amqp_url_for_vhost(&amqp, &vhost),
                Err(error) => missing.push(format!("rabbitmq management api ({error})")),
            }
        }
        if !missing.is_empty() {
            assert!(
                !infra_required(),
                "HOTLINE_REQUIRE_INFRA=1 but unreachable: {}",
                missing.join(", ")
            );
            eprintln!("skipping: unreachable {}", missing.join(", "));
            return None;
        }
        Some(infra)
    }

    fn vhost(&self) -> String {
        format!("hotline-test-{}", self.run_id)
    }

    /// Stands in for a consumer that does not run here (reporting, say): a
    /// queue in the run's virtual host bound to `exchange` by `pattern`, keeping
    /// only its newest `max_length` messages, so the events it takes are routed
    /// as in production instead of returned as unroutable.
    pub async fn bind_stand_in_queue(
        &self,
        exchange: &str,
        queue: &str,
        pattern: &str,
        max_length: u32,
    ) -> Result<(), String> {
        let vhost = self.vhost();
        rabbitmq_api(
            reqwest::Method::PUT,
            &format!("/api/queues/{vhost}/{queue}"),
            Some(serde_json::json!({
                "durable": false,
                "arguments": {"x-max-length": max_length, "x-overflow": "drop-head"},
            })),
        )
        .await?;
        rabbitmq_api(
            reqwest::Method::POST,
            &format!("/api/bindings/{vhost}/e/{exchange}/q/{queue}"),
            Some(serde_json::json!({"routing_key": pattern})),
        )
        .await
    }

    /// Removes the run's schemas, virtual host and cache keys.
    async fn clean_up(run_id: String, vhost: String, database_url: String, redis_url: String) {
        if let Err(error) = rabbitmq_api(
            reqwest::Method::DELETE,
            &format!("/api/vhosts/{vhost}"),
            None,
        )
        .await
        {
            eprintln!("cleanup: deleting vhost {vhost}: {error}");
        }
        match sea_orm::Database::connect(&database_url).await {
            Ok(db) => {
                let schemas = db
                    .query_all_raw(sea_orm::Statement::from_string(
                        sea_orm::DatabaseBackend::Postgres,
                        format!(
                            "SELECT nspname FROM pg_namespace WHERE nspname LIKE '{run_id}\\_%'"
                        ),
                    ))
                    .await
                    .unwrap_or_default();
                for row in schemas {
                    if let Ok(schema) = row.try_get::<String>("", "nspname") {
                        let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                        if let Err(error) = db.execute_unprepared(&drop).await {
                            eprintln!("cleanup: {drop}: {error}");
                        }
                    }
                }
                let _ = db.close().await;
            }
            Err(error) => eprintln!("cleanup: postgresql: {error}"),
        }
        if let Err(error) = delete_redis_keys(&redis_url, &format!("{run_id}:*")).await {
            eprintln!("cleanup: redis: {error}");
        }
    }

    fn new(backends: Backends, database_url: String, amqp_url: String, redis_url: String) -> Self {
        let run_id = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        Self {
            backends,
            database_url,
            amqp_url,
            redis_url,
            run_id,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The `HOTLINE_*` variables that point a `hotline` process at these
    /// backends under this run's names (none for the embedded ones).
    pub fn process_env(&self) -> Vec<(String, String)> {
        if self.backends != Backends::Real {
            return Vec::new();
        }
        [
            ("HOTLINE_DATABASE__URL", self.database_url.clone()),
            (
                "HOTLINE_DATABASE__SCHEMA_PREFIX",
                format!("{}_", self.run_id),
            ),
            ("HOTLINE_BUS__KIND", "amqp".to_owned()),
            ("HOTLINE_BUS__AMQP_URL", self.amqp_url.clone()),
            ("HOTLINE_CACHE__KIND", "redis".to_owned()),
            ("HOTLINE_CACHE__REDIS_URL", self.redis_url.clone()),
            ("HOTLINE_CACHE__PREFIX", self.run_id.clone()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn database_config(&self) -> DatabaseConfig {
        DatabaseConfig {
            url: SecretUrl::new(self.database_url.clone()),
            max_connections: 5,
            schema_prefix: if self.backends == Backends::Real {
                format!("{}_", self.run_id)
            } else {
                String::new()
            },
            migrate_on_start: true,
        }
    }

    /// The production names and defaults, in the run's own virtual host, with
    /// retries quick enough for a test.
    pub fn bus_config(&self) -> BusConfig {
        BusConfig {
            kind: if self.backends == Backends::Real {
                BusKind::Amqp
            } else {
                BusKind::Memory
            },
            amqp_url: SecretUrl::new(self.amqp_url.clone()),
            exchange: "hotline.events".into(),
            dead_letter_exchange: "hotline.dlx".into(),
            prefetch: 16,
            delivery_limit: 3,
            retry_initial_delay: Duration::from_millis(50),
            retry_max_delay: Duration::from_millis(200),
            outbox_poll_interval: Duration::from_millis(100),
        }
    }

    pub fn cache_config(&self) -> CacheConfig {
        CacheConfig {
            kind: if self.backends == Backends::Real {
                CacheKind::Redis
            } else {
                CacheKind::Memory
            },
            redis_url: SecretUrl::new(self.redis_url.clone()),
            prefix: self.run_id.clone(),
            max_entries: 10_000,
        }
    }

    /// The platform on these backends.
    pub async fn platform(&self) -> Platform {
        let bus_config = self.bus_config();
        let cache_config = self.cache_config();
        let (bus, cache): (Arc<dyn Bus>, Arc<dyn CacheBackend>) = match self.backends {
            Backends::Embedded => (
                Arc::new(MemoryBus::new(bus_config.retry_policy())),
                Arc::new(MemoryCache::new(cache_config.max_entries)),
            ),
            Backends::Real => (
                connect_bus(&bus_config, &self.data_dir()).unwrap(),
                Arc::new(
                    RedisCache::connect(&self.redis_url, cache_config.max_entries)
                        .await
                        .unwrap(),
                ),
            ),
        };
        Platform::new(
            bus,
            bus_config,
            cache,
            &cache_config.prefix,
            self.database_config(),
            self.data_dir(),
        )
    }
}

impl Drop for Infra {
    fn drop(&mut self) {
        if self.backends != Backends::Real {
            return;
        }
        let (run_id, vhost) = (self.run_id.clone(), self.vhost());
        let (database_url, redis_url) = (self.database_url.clone(), self.redis_url.clone());
        // Its own thread and runtime: drop may run inside or outside a runtime.
        let cleaner =
            std::thread::spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        runtime.block_on(Self::clean_up(run_id, vhost, database_url, redis_url))
                    }
                    Err(error) => eprintln!("cleanup: no runtime: {error}"),
                }
            });
        let _ = cleaner.join();
    }
}

async fn delete_redis_keys(url: &str, pattern: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let keys: Vec<String> = {
        let mut iter: redis::AsyncIter<String> =
            redis::AsyncCommands::scan_match(&mut connection, pattern)
                .await
                .map_err(|e| e.to_string())?;
        let mut keys = Vec::new();
        while let Some(key) = futures::StreamExt::next(&mut iter).await {
            keys.push(key.map_err(|e| e.to_string())?);
        }
        keys
    };
    for chunk in keys.chunks(500) {
        let _: () = redis::AsyncCommands::del(&mut connection, chunk)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_come_out_of_any_url() {
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/test", 5432),
            "127.0.0.1:5432"
        );
        assert_eq!(
            host_port("amqp://guest:guest@localhost/%2f", 5672),
            "localhost:5672"
        );
        assert_eq!(host_port("redis://127.0.0.1", 6379), "127.0.0.1:6379");
    }

    #[test]
    fn a_run_gets_its_own_virtual_host() {
        assert_eq!(
            amqp_url_for_vhost("amqp://guest:guest@127.0.0.1:5672/%2f", "hotline-test-t1"),
            "amqp://guest:guest@127.0.0.1:5672/hotline-test-t1"
        );
        assert_eq!(
            amqp_url_for_vhost("amqp://localhost", "v"),
            "amqp://localhost/v"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_real_run_leaves_nothing_behind() {
        let Some(infra) = Infra::real().await else {
            return;
        };
        let (run_id, vhost) = (infra.run_id.clone(), infra.vhost());
        let db = sea_orm::Database::connect(&infra.database_url)
            .await
            .unwrap();
        db.execute_unprepared(&format!("CREATE SCHEMA \"{run_id}_probe\""))
            .await
            .unwrap();
        let client = redis::Client::open(infra.redis_url.as_str()).unwrap();
        let mut redis = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::AsyncCommands::set(&mut redis, format!("{run_id}:probe"), 1)
            .await
            .unwrap();
        let api = reqwest::Url::parse(&rabbitmq_api_url()).unwrap();
        let vhost_url = format!(
            "http://{}:{}/api/vhosts/{vhost}",
            api.host_str().unwrap(),
            api.port().unwrap_or(15672)
        );
        let vhost_status = || async {
            reqwest::Client::new()
                .get(&vhost_url)
                .basic_auth(api.username(), api.password())
                .send()
                .await
                .unwrap()
                .status()
        };
        assert_eq!(vhost_status().await, reqwest::StatusCode::OK);

        drop(infra);

        let schemas = db
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT nspname FROM pg_namespace WHERE nspname = '{run_id}_probe'"),
            ))
            .await
            .unwrap();
        assert!(schemas.is_empty(), "schema left behind");
        let exists: bool = redis::AsyncCommands::exists(&mut redis, format!("{run_id}:probe"))
            .await
            .unwrap();
        assert!(!exists, "cache key left behind");
        assert_eq!(vhost_status().await, reqwest::StatusCode::NOT_FOUND);
    }
}
