//! Cache-aside storage shared by replicas (Redis) or kept per process (memory).
//! Nothing cached is the only copy of a fact: a cache failure is logged and the
//! caller falls back to the source, never fails the request.

mod memory;
mod redis;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use serde::{Serialize, de::DeserializeOwned};

pub use self::{memory::MemoryCache, redis::RedisCache};

#[derive(Debug, thiserror::Error)]
#[error("cache: {0}")]
pub struct CacheError(pub String);

#[async_trait]
pub trait CacheBackend: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError>;
    async fn delete(&self, keys: &[String]) -> Result<(), CacheError>;
    async fn check(&self) -> Result<(), CacheError>;
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
    namespace: String,
}

impl Cache {
    pub fn new(backend: Arc<dyn CacheBackend>, prefix: &str, service: &str) -> Self {
        Self {
            backend,
            namespace: format!("{prefix}:{service}"),
        }
    }

    /// The full key of `id` in `entity`.
    pub fn key(&self, entity: &str, id: &str) -> String {
        format!("{}:{entity}:{id}", self.namespace)
    }

    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        match self.backend.get(key).await {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(value) => Some(value),
                Err(error) => {
                    tracing::warn!(key = loggable(key), %error, "dropping undecodable cache entry");
                    self.delete(&[key.to_owned()]).await;
                    None
                }
            },
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(key = loggable(key), %error, "cache read failed; using the source");
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
        if let Err(error) = self.backend.set(key, bytes, ttl).await {
            tracing::warn!(key = loggable(key), %error, "cache write failed");
        }
    }

    pub async fn delete(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        if let Err(error) = self.backend.delete(keys).await {
            let first = keys.first().map(String::as_str).map(loggable);
            tracing::warn!(count = keys.len(), key = first, %error, "cache invalidation failed; entries expire by ttl");
        }
    }

    pub async fn check(&self) -> Result<(), CacheError> {
        self.backend.check().await
    }
}
