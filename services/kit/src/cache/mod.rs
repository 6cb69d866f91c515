//! Cache-aside storage shared by replicas (Redis) or kept per process (memory).
//! Nothing cached is the only copy of a fact: a cache failure counts in
//! `hotline_cache_operations_total` and the caller falls back to the source,
//! never fails the request. A Redis outage is logged once, by its circuit breaker.

mod breaker;
mod copies;
mod memory;
mod redis;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use serde::{Serialize, de::DeserializeOwned};

pub use self::{copies::FRESHNESS, memory::MemoryCache, redis::RedisCache};
use crate::metrics;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Skipped: the cache failed just before and its circuit is open.
    #[error("cache skipped while its circuit is open")]
    Bypassed,
    #[error("cache: {0}")]
    Failed(String),
}

impl CacheError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Bypassed => "bypassed",
            Self::Failed(_) => "error",
        }
    }
}

#[async_trait]
pub trait CacheBackend: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError>;
    async fn delete(&self, keys: &[String]) -> Result<(), CacheError>;
}

/// A key as logs show it: without its last part, which may be personal data
/// (a phone number).
fn loggable(key: &str) -> &str {
    key.rsplit_once(':').map_or(key, |(entity, _)| entity)
}

/// A service's view of the cache: keys are `<prefix>:<service>:<entity>:<id>`,
/// values JSON, and errors degrade to misses.
#[derive(Clone)]
pub struct Cache {
    backend: Arc<dyn CacheBackend>,
    service: String,
    namespace: String,
}

impl Cache {
    pub fn new(backend: Arc<dyn CacheBackend>, prefix: &str, service: &str) -> Self {
        Self {
            backend,
            service: service.to_owned(),
            namespace: format!("{prefix}:{service}"),
        }
    }

    /// The full key of `id` in `entity`.
    pub fn key(&self, entity: &str, id: &str) -> String {
        format!("{}:{entity}:{id}", self.namespace)
    }

    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.get_decoded(key).await.map(|(value, _)| value)
    }

    /// The JSON stored at `key`, as it is, once it has decoded as a `T` (an
    /// answer that is exactly what was cached is sent without encoding it
    /// again, and never as an entry of some other shape).
    pub async fn get_json_bytes<T: DeserializeOwned>(&self, key: &str) -> Option<Vec<u8>> {
        self.get_decoded::<T>(key).await.map(|(_, bytes)| bytes)
    }

    /// An entry that does not decode (written by a version with another
    /// shape, or by hand) is dropped, so the next read goes to the source.
    async fn get_decoded<T: DeserializeOwned>(&self, key: &str) -> Option<(T, Vec<u8>)> {
        let bytes = self.get_bytes(key).await?;
        match serde_json::from_slice(&bytes) {
            Ok(value) => Some((value, bytes)),
            Err(error) => {
                tracing::warn!(key = loggable(key), %error, "dropping undecodable cache entry");
                self.delete(&[key.to_owned()]).await;
                None
            }
        }
    }

    async fn get_bytes(&self, key: &str) -> Option<Vec<u8>> {
        let found = self.backend.get(key).await;
        let outcome = match &found {
            Ok(Some(_)) => "hit",
            Ok(None) => "miss",
            Err(error) => error.outcome(),
        };
        metrics::record_cache(&self.service, "get", outcome);
        match found {
            Ok(found) => found,
            Err(error) => {
                tracing::debug!(key = loggable(key), %error, "cache read failed; using the source");
                None
            }
        }
    }

    pub async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let bytes = match serde_json::to_vec(value) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(key = loggable(key), %error, "value not cacheable");
                return;
            }
        };
        let written = self.backend.set(key, bytes, ttl).await;
        self.record("set", &written);
        if let Err(error) = written {
            tracing::debug!(key = loggable(key), %error, "cache write failed");
        }
    }

    pub async fn delete(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let deleted = self.backend.delete(keys).await;
        self.record("delete", &deleted);
        if let Err(error) = deleted {
            let first = keys.first().map(String::as_str).map(loggable);
            tracing::debug!(count = keys.len(), key = first, %error, "cache invalidation failed; retried when the cache answers");
        }
    }

    fn record(&self, operation: &'static str, result: &Result<(), CacheError>) {
        let outcome = match result {
            Ok(()) => "ok",
            Err(error) => error.outcome(),
        };
        metrics::record_cache(&self.service, operation, outcome);
    }
}
