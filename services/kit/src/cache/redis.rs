//! The shared cache: Redis through a reconnecting connection manager, behind
//! short timeouts and a circuit breaker. Redis being down (at start or later)
//! costs a request at most `TIMEOUT`, and nothing once the circuit is open; the
//! manager reconnects in the background and the cache refills on use.
//!
//! What a process reads it also keeps in memory (`copies`), tracked by Redis on
//! this connection: redis-rs sets tracking up on every connection it opens
//! (its cache configuration, opt-in, into which no command opts), the reads opt
//! in themselves, and its pushes reach `Copies`.

use std::{
    collections::HashSet,
    future::Future,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use redis::{
    AsyncCommands, IntoConnectionInfo, ProtocolVersion, PushInfo, RedisResult,
    aio::ConnectionManager,
    caching::{CacheConfig, CacheMode},
};

use super::{
    CacheBackend, CacheError,
    breaker::Breaker,
    copies::{Copies, HEARTBEAT},
};

const DEPENDENCY: &str = "redis";
/// The most one cache operation may cost a request, reconnecting included.
const TIMEOUT: Duration = Duration::from_millis(250);
/// Invalidations kept while Redis is unreachable, replayed when it answers again.
const MAX_MISSED_DELETES: usize = 100_000;

#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    breaker: Breaker,
    copies: Arc<Copies>,
    /// Keys whose invalidation did not reach Redis: deleted before the cache is
    /// read again, so an entry cached before an outage can't outlive a change
    /// made during it.
    missed_deletes: Mutex<HashSet<String>>,
}

impl RedisCache {
    /// Fails only on a malformed URL: an unreachable Redis is logged, shown in
    /// metrics and skipped until it answers. Keeps up to `local_entries` values
    /// in memory; needs Redis 6 or later (RESP3).
    pub async fn connect(url: &str, local_entries: u64) -> Result<Self, CacheError> {
        let mut info = url.into_connection_info().map_err(failed)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(failed)?;
        let copies = Arc::new(Copies::new(local_entries));
        let pushes = copies.clone();
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(TIMEOUT))
            // Each request that finds the connection broken starts one reconnect
            // in the background; none waits on a retry schedule.
            .set_number_of_retries(0)
            .set_cache_config(CacheConfig::new().set_mode(CacheMode::OptIn))
            .set_push_sender(move |push: PushInfo| {
                pushes.pushed(&push);
                Ok::<(), std::convert::Infallible>(())
            });
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(failed)?;
        let cache = Self {
            inner: Arc::new(Inner {
                connection,
                breaker: Breaker::new(DEPENDENCY),
                copies,
                missed_deletes: Mutex::new(HashSet::new()),
            }),
        };
        let asked = Instant::now();
        match cache.attempt(ping).await {
            Ok(()) => cache.inner.copies.confirmed(asked),
            Err(error) => cache.inner.breaker.trip(&error.to_string()),
        }
        tokio::spawn(heartbeat(Arc::downgrade(&cache.inner)));
        Ok(cache)
    }

    /// Runs `operation` unless the circuit is open, within `TIMEOUT`, and tells
    /// the breaker how it went. Invalidations that missed Redis go first.
    async fn call<T, F, Fut>(&self, operation: F) -> Result<T, CacheError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.inner.breaker.allows() {
            return Err(CacheError::Bypassed);
        }
        let outcome = match self.apply_missed_deletes().await {
            Ok(()) => self.attempt(operation).await,
            Err(error) => Err(error),
        };
        match &outcome {
            Ok(_) => self.inner.breaker.succeeded(),
            Err(error) => self.inner.breaker.failed(&error.to_string()),
        }
        outcome
    }

    async fn apply_missed_deletes(&self) -> Result<(), CacheError> {
        let missed: Vec<String> = {
            let mut missed = self.missed();
            if missed.is_empty() {
                return Ok(());
            }
            std::mem::take(&mut *missed).into_iter().collect()
        };
        for chunk in missed.chunks(1000) {
            if let Err(error) = self.attempt(|c| del(c, chunk)).await {
                self.remember_deletes(&missed);
                return Err(error);
            }
        }
        tracing::info!(
            count = missed.len(),
            "applied the cache invalidations that missed redis"
        );
        Ok(())
    }

    /// One try within `TIMEOUT`, and a second on a broken connection: the first
    /// failure made the manager reconnect, which the second one uses.
    async fn attempt<T, F, Fut>(&self, operation: F) -> Result<T, CacheError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let connection = &self.inner.connection;
        let tries = async {
            match operation(connection.clone()).await {
                Err(error) if error.is_io_error() || error.is_unrecoverable_error() => {
                    operation(connection.clone()).await
                }
                outcome => outcome,
            }
        };
        match tokio::time::timeout(TIMEOUT, tries).await {
            Ok(outcome) => outcome.map_err(failed),
            Err(_) => Err(CacheError::Failed(format!(
                "no answer within {}ms",
                TIMEOUT.as_millis()
            ))),
        }
    }

    fn missed(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner
            .missed_deletes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn remember_deletes(&self, keys: &[String]) {
        let mut missed = self.missed();
        let room = MAX_MISSED_DELETES.saturating_sub(missed.len());
        if keys.len() > room {
            tracing::warn!(
                dropped = keys.len() - room,
                "too many cache invalidations missed while redis was unreachable; \
                 some entries may be stale until their ttl"
            );
        }
        missed.extend(keys.iter().take(room).cloned());
    }
}

/// Confirms the connection every `HEARTBEAT` while the cache is in use, and
/// drops the copies when Redis doesn't answer.
async fn heartbeat(inner: Weak<Inner>) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let cache = RedisCache { inner };
        let asked = Instant::now();
        match cache.call(ping).await {
            Ok(()) => cache.inner.copies.confirmed(asked),
            Err(_) => cache.inner.copies.clear(),
        }
    }
}

fn failed(error: redis::RedisError) -> CacheError {
    CacheError::Failed(error.to_string())
}

async fn ping(mut connection: ConnectionManager) -> RedisResult<()> {
    let _: String = redis::cmd("PING").query_async(&mut connection).await?;
    Ok(())
}

async fn del(mut connection: ConnectionManager, keys: &[String]) -> RedisResult<()> {
    connection.del(keys).await
}

/// The value at `key` and its PTTL, the key tracked for this connection.
async fn tracked_get(
    mut connection: ConnectionManager,
    key: &str,
) -> RedisResult<(Option<Vec<u8>>, i64)> {
    redis::pipe()
        .cmd("CLIENT")
        .arg("CACHING")
        .arg("YES")
        .ignore()
        .cmd("GET")
        .arg(key)
        .cmd("PTTL")
        .arg(key)
        .query_async(&mut connection)
        .await
}

#[async_trait]
impl CacheBackend for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let copies = &self.inner.copies;
        if let Some(value) = copies.get(key) {
            return Ok(Some(value));
        }
        let sent = copies.generation();
        let (value, ttl) = self.call(|c| tracked_get(c, key)).await?;
        if let Some(value) = &value {
            copies.keep(key, value, ttl, sent);
        }
        Ok(value)
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        self.inner.copies.invalidate([key]);
        let seconds = ttl.as_secs().max(1);
        self.call(|mut c| {
            let value = value.clone();
            async move { c.set_ex(key, value, seconds).await }
        })
        .await
    }

    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        self.inner
            .copies
            .invalidate(keys.iter().map(String::as_str));
        let outcome = self.call(|c| del(c, keys)).await;
        if outcome.is_err() {
            self.remember_deletes(keys);
        }
        outcome
    }
}
