//! Which backends a test runs on. Every suite runs on the embedded ones; the
//! real ones (PostgreSQL, RabbitMQ, Redis) are used when reachable, and with
//! `HOTLINE_REQUIRE_INFRA=1` their absence fails the test instead of skipping it.

use std::{path::PathBuf, sync::Arc, time::Duration};

use hotline_kit::{
    bus::{AmqpBus, AmqpSettings, Bus, MemoryBus},
    cache::{CacheBackend, MemoryCache, RedisCache},
    config::{BusConfig, BusKind, CacheConfig, CacheKind, DatabaseConfig, SecretUrl},
    platform::Platform,
};

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
    pub amqp_url: String,
    pub redis_url: String,
    /// Unique per test: schema prefix, exchange and cache prefix derive from it.
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
        if !missing.is_empty() {
            assert!(
                !infra_required(),
                "HOTLINE_REQUIRE_INFRA=1 but unreachable: {}",
                missing.join(", ")
            );
            eprintln!("skipping: unreachable {}", missing.join(", "));
            return None;
        }
        Some(Self::new(Backends::Real, database, amqp, redis))
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

    pub fn bus_config(&self) -> BusConfig {
        BusConfig {
            kind: if self.backends == Backends::Real {
                BusKind::Amqp
            } else {
                BusKind::Memory
            },
            amqp_url: SecretUrl::new(self.amqp_url.clone()),
            exchange: format!("hotline.events.{}", self.run_id),
            dead_letter_exchange: format!("hotline.dlx.{}", self.run_id),
            prefetch: 16,
            delivery_limit: 3,
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

    /// The platform on these backends; test queues expire a minute after the test.
    pub async fn platform(&self) -> Platform {
        let bus_config = self.bus_config();
        let cache_config = self.cache_config();
        let (bus, cache): (Arc<dyn Bus>, Arc<dyn CacheBackend>) = match self.backends {
            Backends::Embedded => (
                Arc::new(MemoryBus::new(bus_config.delivery_limit)),
                Arc::new(MemoryCache::new(cache_config.max_entries)),
            ),
            Backends::Real => (
                Arc::new(
                    AmqpBus::connect(AmqpSettings {
                        url: self.amqp_url.clone(),
                        exchange: bus_config.exchange.clone(),
                        dead_letter_exchange: bus_config.dead_letter_exchange.clone(),
                        prefetch: bus_config.prefetch,
                        delivery_limit: bus_config.delivery_limit,
                        queue_expires: Some(Duration::from_secs(60)),
                        queue_prefix: format!("{}.", self.run_id),
                    })
                    .await
                    .unwrap(),
                ),
                Arc::new(RedisCache::connect(&self.redis_url).await.unwrap()),
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
}
